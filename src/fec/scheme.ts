// The FEC schemes the wire protocol can carry, behind one block-level interface, so the sender and the
// receiver handle a block the same way whatever code protects it. See docs/fec.md and docs/protocol.md.

import { getCodec, MAX_BLOCK_SYMBOLS, MAX_SYMBOL_ID } from './index.js';
import { decodeMissing } from './raptorq/decoder.js';
import { MAX_ESI, RaptorQEncoder } from './raptorq/index.js';
import { checkBlockShape, raptorqParams } from './raptorq/params.js';

/** Wire values (ANNOUNCE byte 14). */
export enum FecScheme {
  /**
   * Systematic Cauchy Reed-Solomon over GF(2^8): k <= 255; ids 0..255 are MDS (any k of them decode), ids
   * 256..65535 pseudo-random combinations for a block that needs more (k of them almost always decode).
   */
  ReedSolomon = 0,
  /** RaptorQ (RFC 6330): blocks of thousands of symbols, repair symbols without limit (ids up to 2^16 - 1 here). */
  RaptorQ = 1,
}

export const FEC_SCHEME_NAMES: Record<FecScheme, string> = {
  [FecScheme.ReedSolomon]: 'reed-solomon',
  [FecScheme.RaptorQ]: 'raptorq',
};

/**
 * RaptorQ's usual block size on the wire: large enough that the repair a block needs follows the loss rate
 * rather than the unluckiest receiver's luck (at 8 receivers x 5 % loss the worst needs 5.9 % repair per
 * block at K = 4096 against 6.5 % at 1024; p/(1-p) is 5.3 %), small enough that a block's first pass takes
 * about 0.1 s at 500 Mbit/s and that decoding stays near linear (the dense part grows with K).
 */
export const DEFAULT_RAPTORQ_SYMBOLS = 4096;
/**
 * Blocks are kept whole in memory on both ends: with large symbols (jumbo frames) fewer per block. 20 MiB: 2048
 * symbols at MTU 9000 (18 MB; the sender's cache keeps at least 4 blocks). Against 1024 there, on the namespace
 * LAN at 5 % loss: wire 1.0657 vs 1.0702 (3 receivers) and 1.0685 vs 1.0714 (8), at the same CPU per byte
 * (a solve costs about the same per block byte at K = 1024 and 2048 since the solver works in fewer passes).
 */
const RAPTORQ_BLOCK_BYTES_TARGET = 20 * 2 ** 20;
export const MAX_RAPTORQ_SYMBOLS = 8192;
export const DEFAULT_REED_SOLOMON_SYMBOLS = 128;
/**
 * Reed-Solomon by default: its decoding costs a receiver little CPU (only the lost symbols are rebuilt), where
 * RaptorQ rebuilds a whole block's intermediate symbols whenever one symbol is missing (190-280 MB/s of block
 * per core in `npm run bench:fec`, against 950-1150 for Reed-Solomon). RaptorQ saves 2-3 % of wire under loss with many receivers (docs/fec.md, BENCHMARKS.md).
 */
export const DEFAULT_FEC_SCHEME = FecScheme.ReedSolomon;

export function isFecScheme(value: number): value is FecScheme {
  return value === FecScheme.ReedSolomon || value === FecScheme.RaptorQ;
}

/** Parses a scheme name as the CLI and the server settings spell it. */
export function parseFecScheme(name: string): FecScheme {
  for (const [value, n] of Object.entries(FEC_SCHEME_NAMES)) if (n === name) return Number(value) as FecScheme;
  throw new RangeError(`unknown FEC scheme '${name}' (expected ${Object.values(FEC_SCHEME_NAMES).join(' or ')})`);
}

/** Largest number of source symbols in one block. */
export function maxBlockSymbols(scheme: FecScheme): number {
  return scheme === FecScheme.RaptorQ ? MAX_RAPTORQ_SYMBOLS : MAX_BLOCK_SYMBOLS;
}

/** Source symbols per block unless told otherwise: RaptorQ 4096, fewer (a power of two) for symbols over 6 KiB. */
export function defaultBlockSymbols(scheme: FecScheme, symbolSize: number): number {
  if (scheme !== FecScheme.RaptorQ) return DEFAULT_REED_SOLOMON_SYMBOLS;
  let k = DEFAULT_RAPTORQ_SYMBOLS;
  while (k > 256 && k * symbolSize > RAPTORQ_BLOCK_BYTES_TARGET) k /= 2;
  return k;
}

/** Makes repair symbols of one block (k source symbols of symbolSize bytes, the last one zero-padded). */
export interface BlockEncoder {
  /** Repair symbols with the given ids (each >= k), as fresh buffers. */
  repair(ids: readonly number[]): Uint8Array[];
  /** Frees the coder's working memory; repair() is unavailable afterwards. */
  dispose(): void;
}

/**
 * Collects one block's symbols and rebuilds its source once enough have arrived. Symbols are copied as they
 * arrive (source symbols straight to their place in the block), so the caller may reuse a datagram's memory
 * as soon as add() returns: a receive ring reused for every batch costs no fresh pages.
 */
export interface BlockDecoder {
  /**
   * Adds symbol `id`: symbolSize bytes, or fewer for a source symbol (the image's short last one is zero-padded).
   * False if it brings nothing new.
   */
  add(id: number, symbol: Uint8Array): boolean;
  /** Distinct symbols held. */
  readonly received: number;
  /** Symbols still lacking before decode() can succeed (at least 1 after a failed attempt). */
  readonly missing: number;
  /**
   * The k * symbolSize-byte source block (the decoder's working block), or null when the symbols held do not
   * determine it yet (then `missing` >= 1). Frees the working memory other than the block on success.
   */
  decode(): Uint8Array | null;
  /** Whether decoding needed the code (some source symbol came from repair symbols). */
  readonly repaired: boolean;
  /**
   * Whether decode() would now run a costly solve (a RaptorQ block short of a source symbol): that solve may
   * run on another thread instead, from solveJob(), and its outcome come back through solved().
   */
  readonly needsSolve: boolean;
  /** The solve decode() would run, as plain data (solveBlock() runs it); `block` is the working block. */
  solveJob(): SolveJob;
  /** What decode() would have returned, given whether solveBlock() succeeded on solveJob(). */
  solved(ok: boolean): Uint8Array | null;
  /** Frees the working memory (the block is abandoned); the working block may be reused by the caller. */
  dispose(): void;
}

/** Whether a block of this scheme can need a costly solve (BlockDecoder.needsSolve); Reed-Solomon's never does. */
export function canNeedSolve(scheme: FecScheme): boolean {
  return scheme === FecScheme.RaptorQ;
}

/**
 * Whether an encoder of this scheme costs a set-up before its first repair symbol, worth making ahead and
 * keeping for a block's later rounds: a RaptorQ encoder solves the whole block; Reed-Solomon's works from the
 * block as it goes.
 */
export function encoderHasSetUp(scheme: FecScheme): boolean {
  return scheme === FecScheme.RaptorQ;
}

export function blockEncoder(scheme: FecScheme, block: Uint8Array, k: number, symbolSize: number): BlockEncoder {
  if (scheme === FecScheme.RaptorQ) {
    const encoder = new RaptorQEncoder(block, symbolSize, k);
    return {
      repair: (ids) => ids.map((id) => encoder.symbol(id)),
      dispose: () => encoder.dispose(),
    };
  }
  const codec = getCodec(k, symbolSize);
  return { repair: (ids) => codec.encode(block, ids), dispose: () => undefined };
}

/**
 * `block` (k * symbolSize bytes, any content) is the working block the source is assembled and decoded in:
 * memory already in use is far cheaper than fresh pages, whose first touch costs more than the copy.
 * Default: a fresh zeroed one.
 */
export function blockDecoder(scheme: FecScheme, k: number, symbolSize: number, block?: Uint8Array): BlockDecoder {
  if (block !== undefined && block.length !== k * symbolSize) throw new RangeError(`fec: working block is ${block.length} bytes, expected ${k * symbolSize}`);
  const out = block ?? new Uint8Array(k * symbolSize);
  return scheme === FecScheme.RaptorQ ? new RaptorQBlockDecoder(k, symbolSize, out) : new ReedSolomonBlockDecoder(k, symbolSize, out);
}

/** Copies a source symbol to its place in the working block, zero-padding a short (last) one. */
function placeSource(block: Uint8Array, id: number, symbol: Uint8Array, symbolSize: number): void {
  const at = id * symbolSize;
  block.set(symbol, at);
  if (symbol.length < symbolSize) block.fill(0, at + symbol.length, at + symbolSize);
}

class ReedSolomonBlockDecoder implements BlockDecoder {
  /** Ids held, and for repair ids their copied symbols (source symbols live in the block). */
  private readonly ids: number[] = [];
  private readonly repairs = new Map<number, Uint8Array>();
  private readonly have = new Set<number>();
  /** Symbols decoding needs: k, then one more than held after an attempt whose extension symbols were dependent. */
  private target: number;
  repaired = false;

  constructor(
    private readonly k: number,
    private readonly symbolSize: number,
    private readonly block: Uint8Array,
  ) {
    this.target = k;
  }

  add(id: number, symbol: Uint8Array): boolean {
    checkSymbol(id, symbol, this.k, this.symbolSize, MAX_SYMBOL_ID);
    if (this.have.has(id) || this.ids.length >= this.target) return false;
    this.have.add(id);
    this.ids.push(id);
    if (id < this.k) placeSource(this.block, id, symbol, this.symbolSize);
    else this.repairs.set(id, Uint8Array.prototype.slice.call(symbol));
    return true;
  }

  get received(): number {
    return this.ids.length;
  }

  get missing(): number {
    return this.target - this.ids.length;
  }

  decode(): Uint8Array | null {
    const { k, symbolSize: L, block } = this;
    if (this.ids.length < this.target) return null;
    if (this.ids.length - this.repairs.size < k) {
      const symbols = this.ids.map((id) => (id < k ? block.subarray(id * L, (id + 1) * L) : this.repairs.get(id)!));
      if (!getCodec(k, L).decodeInto(this.ids, symbols, block)) {
        this.target = this.ids.length + 1;
        return null;
      }
      this.repaired = true;
      this.repairs.clear();
    }
    return block;
  }

  /** Rebuilding a few symbols costs microseconds: always here. */
  readonly needsSolve = false;

  solveJob(): SolveJob {
    throw new Error('fec: Reed-Solomon blocks are decoded in place');
  }

  solved(): Uint8Array | null {
    throw new Error('fec: Reed-Solomon blocks are decoded in place');
  }

  dispose(): void {
    this.ids.length = 0;
    this.repairs.clear();
  }
}

/**
 * Source symbols go to their place in the working block as they arrive and repair symbols are copied aside:
 * a block whose source symbols all arrived never touches the RaptorQ decoder, and a damaged one is solved
 * straight from the block and the repair copies (the solver's working memory comes from the pool: fresh
 * memory costs a page fault per 4 KiB, more than the solve itself), writing only the missing source symbols.
 */
class RaptorQBlockDecoder implements BlockDecoder {
  /** Ids held, in arrival order. */
  private readonly ids: number[] = [];
  private readonly have = new Set<number>();
  private readonly repairs = new Map<number, Uint8Array>();
  private sources = 0;
  /** Symbols decoding needs: k, then one more than held after each failed attempt. */
  private target: number;
  repaired = false;

  constructor(
    private readonly k: number,
    private readonly symbolSize: number,
    private readonly block: Uint8Array,
  ) {
    checkBlockShape('raptorq decoder', k, symbolSize);
    this.target = k;
  }

  add(id: number, symbol: Uint8Array): boolean {
    checkSymbol(id, symbol, this.k, this.symbolSize, MAX_ESI);
    if (this.have.has(id)) return false;
    this.have.add(id);
    this.ids.push(id);
    if (id < this.k) {
      this.sources++;
      placeSource(this.block, id, symbol, this.symbolSize);
    } else this.repairs.set(id, Uint8Array.prototype.slice.call(symbol));
    return true;
  }

  get received(): number {
    return this.have.size;
  }

  get missing(): number {
    return Math.max(0, this.target - this.have.size);
  }

  decode(): Uint8Array | null {
    if (this.ids.length < this.target) return null;
    return this.solved(this.sources === this.k || solveBlock(this.solveJob()));
  }

  get needsSolve(): boolean {
    return this.sources < this.k && this.ids.length >= this.target;
  }

  solveJob(): SolveJob {
    const repairIds = [...this.repairs.keys()];
    return { k: this.k, symbolSize: this.symbolSize, ids: this.ids.slice(), repairIds, repairs: repairIds.map((id) => this.repairs.get(id)!), block: this.block };
  }

  solved(ok: boolean): Uint8Array | null {
    if (!ok) {
      this.target = this.ids.length + 1;
      return null;
    }
    if (this.sources < this.k) this.repaired = true;
    this.dispose();
    return this.block;
  }

  dispose(): void {
    this.repairs.clear();
  }
}

/**
 * A RaptorQ block's solve, for another thread: the working block (received source symbols in place; on a
 * SharedArrayBuffer it is shared, not copied) and the repair symbols held, by id.
 */
export interface SolveJob {
  k: number;
  symbolSize: number;
  /** Ids held, in the order the solve takes them. */
  ids: number[];
  repairIds: number[];
  repairs: Uint8Array[];
  block: Uint8Array;
}

/** Writes the missing source symbols of a job's block; false when its symbols do not determine the block. */
export function solveBlock(job: SolveJob): boolean {
  const { k, symbolSize: L, ids, block } = job;
  const repairs = new Map(job.repairIds.map((id, i) => [id, job.repairs[i]!]));
  const symbol = (t: number): Uint8Array => {
    const id = ids[t]!;
    return id < k ? block.subarray(id * L, (id + 1) * L) : repairs.get(id)!;
  };
  return decodeMissing(raptorqParams(k), L, ids, symbol, block) !== null;
}

function checkSymbol(id: number, symbol: Uint8Array, k: number, symbolSize: number, maxId: number): void {
  if (!Number.isInteger(id) || id < 0 || id > maxId) throw new RangeError(`fec: symbol id ${id} out of range 0..${maxId}`);
  if (symbol.length !== symbolSize && !(id < k && symbol.length > 0 && symbol.length < symbolSize)) {
    throw new RangeError(`fec: symbol ${id} is ${symbol.length} bytes, expected ${symbolSize}`);
  }
}
