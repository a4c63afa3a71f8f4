// Systematic MDS erasure code over GF(2^8) (polynomial 0x11D), Cauchy construction.
// Symbols 0..k-1 are the source symbols themselves; parity symbol sid (k <= sid <= 255) is
// sum_j source_j / (sid ^ j). Any k distinct symbols of ids 0..255 rebuild the block. Ids 256..65535
// extend it with pseudo-random combinations (near-MDS: k symbols almost always decode). See docs/fec.md.

import type { Kernel } from './kernel.js';
import { jsKernel } from './kernel-js.js';
import { wasmKernel, wasmUnavailableReason } from './kernel-wasm.js';
import { checkDecodeInput, checkEncodeInput, MAX_CAUCHY_ID, MAX_ID, planDecode, repairRow } from './matrix.js';

/** Largest symbol id (ids above MAX_BLOCK_SYMBOLS are extension symbols) and largest k. */
export const MAX_SYMBOL_ID = MAX_ID;
export const MAX_BLOCK_SYMBOLS = MAX_CAUCHY_ID;

export interface ErasureCodec {
  readonly k: number;
  readonly symbolSize: number;
  /** Repair symbols with the given ids (k <= id <= 65535) of a block of k*symbolSize bytes. Fresh buffers. */
  encode(block: Uint8Array, ids: readonly number[]): Uint8Array[];
  /**
   * Rebuild the k*symbolSize-byte block from at least k symbols with distinct ids (source and/or repair), as a
   * fresh buffer; null if they do not determine it (only possible with extension ids > 255: add a symbol).
   * Throws a clear Error on bad input (too few, duplicate/out-of-range id, wrong symbol length).
   */
  decode(ids: readonly number[], symbols: readonly Uint8Array[]): Uint8Array | null;
  /**
   * As decode, in place: `block` (k*symbolSize bytes) already holds the source symbols among `ids` at their
   * places; only the missing source symbols are written (false, and nothing written, if undetermined).
   * `symbols` may be views of `block`.
   */
  decodeInto(ids: readonly number[], symbols: readonly Uint8Array[], block: Uint8Array): boolean;
}

class CauchyCodec implements ErasureCodec {
  /** Cauchy rows by parity id, built on first use (k bytes each); extension rows are made per call. */
  private readonly rows: (Uint8Array | undefined)[] = [];

  constructor(
    readonly k: number,
    readonly symbolSize: number,
    private readonly kernel: Kernel,
  ) {}

  encode(block: Uint8Array, ids: readonly number[]): Uint8Array[] {
    const { k, symbolSize } = this;
    checkEncodeInput(k, symbolSize, block, ids);
    if (ids.length === 0) return [];
    const rows = new Uint8Array(ids.length * k);
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (id <= MAX_CAUCHY_ID) rows.set((this.rows[id] ??= repairRow(id, k)), i * k);
      else repairRow(id, k, rows.subarray(i * k, (i + 1) * k));
    }
    return this.kernel.encode(k, symbolSize, block, rows, ids.length);
  }

  decode(ids: readonly number[], symbols: readonly Uint8Array[]): Uint8Array | null {
    const { k, symbolSize: S } = this;
    checkDecodeInput(k, S, ids, symbols);
    const out = new Uint8Array(k * S);
    for (let t = 0; t < ids.length; t++) if (ids[t]! < k) out.set(symbols[t]!, ids[t]! * S);
    return this.rebuildMissing(ids, symbols, out) ? out : null;
  }

  decodeInto(ids: readonly number[], symbols: readonly Uint8Array[], block: Uint8Array): boolean {
    const { k, symbolSize: S } = this;
    checkDecodeInput(k, S, ids, symbols);
    if (block.length !== k * S) throw new RangeError(`fec decode: block is ${block.length} bytes, expected k*symbolSize = ${k * S}`);
    return this.rebuildMissing(ids, symbols, block);
  }

  private rebuildMissing(ids: readonly number[], symbols: readonly Uint8Array[], out: Uint8Array): boolean {
    const plan = planDecode(this.k, ids);
    if (!plan) return false;
    if (plan.missing.length > 0) {
      const inputs = plan.terms.map((t) => symbols[t]!);
      this.kernel.combine(this.symbolSize, inputs, plan.coefs, plan.missing, out);
    }
    return true;
  }
}

const cache = new Map<string, ErasureCodec>();

/** Cached per (k, symbolSize, kernel). kernel defaults to the fastest available (wasm SIMD, else js). */
export function getCodec(k: number, symbolSize: number, options?: { kernel?: 'wasm' | 'js' }): ErasureCodec {
  if (!Number.isInteger(k) || k < 1 || k > MAX_BLOCK_SYMBOLS) {
    throw new RangeError(`fec: k=${String(k)} out of range (expected an integer 1..${MAX_BLOCK_SYMBOLS})`);
  }
  if (!Number.isSafeInteger(symbolSize) || symbolSize < 1) {
    throw new RangeError(`fec: symbolSize=${String(symbolSize)} must be a positive integer`);
  }
  const want = options?.kernel;
  if (want !== undefined && want !== 'wasm' && want !== 'js') {
    throw new RangeError(`fec: unknown kernel ${String(want)} (expected 'wasm' or 'js')`);
  }
  let kernel: Kernel;
  if (want === 'js') kernel = jsKernel;
  else if (want === 'wasm') {
    const wasm = wasmKernel();
    if (!wasm) throw new Error(`fec: the wasm SIMD kernel is not available: ${wasmUnavailableReason() ?? 'unknown reason'}`);
    kernel = wasm;
  } else kernel = wasmKernel() ?? jsKernel;
  const key = `${k}/${symbolSize}/${kernel.name}`;
  let codec = cache.get(key);
  if (!codec) {
    codec = new CauchyCodec(k, symbolSize, kernel);
    cache.set(key, codec);
  }
  return codec;
}

export function fecKernelName(): 'wasm-simd' | 'js' {
  return (wasmKernel() ?? jsKernel).name;
}
