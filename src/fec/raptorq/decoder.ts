// RaptorQ decoder for one source block: collects encoding symbols by ESI and, once at least K have
// arrived, solves for the intermediate symbols and rebuilds the missing source symbols. With K
// symbols decoding fails rarely (RFC 6330 targets under 1% at K received, about 1e-4 at K+1 and
// 1e-6 at K+2 for the RFC's decoder); tryDecode() then returns null and the caller adds more.
// The decoder's working memory goes back to a pool after decoding (or on dispose()).

import { acquireArena, releaseArena, type SymbolArena } from './arena.js';
import type { RaptorQOptions } from './encoder.js';
import { checkBlockShape, checkEsi, isiOf, raptorqParams, type RaptorQParams } from './params.js';
import { encodeSymbol, solve } from './solver.js';

export interface RaptorQDecodeStats {
  /** Distinct symbols added so far. */
  readonly received: number;
  /** Symbols the last solve used (0 when no solve ran, e.g. every source symbol arrived). */
  readonly used: number;
  /** Columns the last solve handled by Gaussian elimination (PI plus inactivated while peeling). */
  readonly inactivated: number;
  /** Solves that found the symbols insufficient (rank deficient). */
  readonly failedAttempts: number;
}

export class RaptorQDecoder {
  readonly params: RaptorQParams;
  private readonly esis: number[] = [];
  /** The symbols as added, slot t for the t-th (no per-symbol allocations; pooled memory). */
  private store: SymbolArena | null = null;
  private readonly seen = new Set<number>();
  private readonly sourceIndex: Int32Array;
  private sourceCount = 0;
  private result: Uint8Array | null = null;
  private used = 0;
  private inactivated = 0;
  private failedAttempts = 0;

  constructor(readonly K: number, readonly symbolSize: number, private readonly options: RaptorQOptions = {}) {
    checkBlockShape('raptorq decoder', K, symbolSize);
    this.params = raptorqParams(K);
    this.sourceIndex = new Int32Array(K).fill(-1);
  }

  /**
   * Adds encoding symbol `esi` (copied). Returns false when it brings nothing new: a duplicate ESI,
   * or the block is already decoded. Throws a RangeError/TypeError on a bad ESI or length.
   * After dispose() without a decode, the decoder is empty again.
   */
  add(esi: number, symbol: Uint8Array): boolean {
    checkEsi('raptorq decoder', esi);
    if (!(symbol instanceof Uint8Array)) throw new TypeError(`raptorq decoder: symbol ${esi} is not a Uint8Array`);
    if (symbol.length !== this.symbolSize) {
      throw new RangeError(`raptorq decoder: symbol ${esi} is ${symbol.length} bytes, expected symbolSize=${this.symbolSize}`);
    }
    if (this.result || this.seen.has(esi)) return false;
    this.seen.add(esi);
    if (esi < this.K) {
      this.sourceIndex[esi] = this.esis.length;
      this.sourceCount++;
    }
    const store = (this.store ??= acquireArena(this.symbolSize, this.K + 16, this.options.kernel));
    if (this.esis.length >= store.slots) store.reserve(Math.ceil(store.slots * 1.25));
    store.load(this.esis.length, symbol);
    this.esis.push(esi);
    return true;
  }

  get received(): number {
    return this.esis.length;
  }

  get stats(): RaptorQDecodeStats {
    return { received: this.esis.length, used: this.used, inactivated: this.inactivated, failedAttempts: this.failedAttempts };
  }

  /**
   * The K * symbolSize-byte source block once the symbols added so far determine it, else null
   * (fewer than K symbols, or a rare rank-deficient set: add another symbol and try again).
   * `output`, if given, receives the block (K * symbolSize bytes) and is returned; else a fresh
   * buffer. Returns the same buffer on every call after success.
   */
  tryDecode(output?: Uint8Array): Uint8Array | null {
    if (this.result) return this.result;
    const { K, symbolSize: S } = this;
    if (output !== undefined && (!(output instanceof Uint8Array) || output.length !== K * S)) {
      throw new RangeError(`raptorq decoder: output must be a Uint8Array of K*symbolSize = ${K * S} bytes`);
    }
    if (this.esis.length < K) return null;
    const out = output ?? new Uint8Array(K * S);
    const store = this.store!;
    for (let esi = 0; esi < K; esi++) {
      const at = this.sourceIndex[esi]!;
      if (at >= 0) store.readInto(at, out, esi * S);
    }
    if (this.sourceCount < K) {
      const solved = decodeMissing(this.params, S, this.esis, (t) => store.view(t), out, this.options.kernel);
      if (!solved) {
        this.failedAttempts++;
        return null;
      }
      this.used = this.esis.length;
      this.inactivated = solved.inactivated;
    }
    this.result = out;
    this.dispose(); // the symbols and the working memory are no longer needed
    return out;
  }

  /** Releases the symbols and working memory for reuse (done automatically after a successful decode). */
  dispose(): void {
    if (this.store) releaseArena(this.store);
    this.store = null;
    if (!this.result) {
      this.esis.length = 0;
      this.seen.clear();
      this.sourceIndex.fill(-1);
      this.sourceCount = 0;
    }
  }
}

/**
 * Rebuilds the source symbols of a block that did not arrive, from the encoding symbols that did:
 * symbol t has ESI esis[t] and bytes symbol(t) (symbolSize bytes, read during the call only, so it
 * may live anywhere: no copy is kept). `out` (K * symbolSize bytes) must already hold every
 * received source symbol at its place; only the missing ones are written. Returns null when the
 * symbols do not determine the block (add another and call again). The working memory is pooled.
 */
export function decodeMissing(
  p: RaptorQParams,
  symbolSize: number,
  esis: ArrayLike<number>,
  symbol: (t: number) => Uint8Array,
  out: Uint8Array,
  kernel?: RaptorQOptions['kernel'],
): { inactivated: number } | null {
  const K = p.K;
  const n = esis.length;
  if (n < K) return null;
  const isis = new Int32Array(n + p.Kp - K);
  const received = new Uint8Array(K);
  for (let t = 0; t < n; t++) {
    const esi = esis[t]!;
    isis[t] = isiOf(p, esi);
    if (esi < K) received[esi] = 1;
  }
  for (let t = n; t < isis.length; t++) isis[t] = K + (t - n); // padding ISIs K..K'-1, known zeros
  const rows = p.S + p.H + isis.length;
  const arena = acquireArena(symbolSize, rows + 1, kernel);
  try {
    const solution = solve(p, isis, arena, (t) => (t < n ? symbol(t) : null));
    if (!solution) return null;
    for (let esi = 0; esi < K; esi++) {
      if (received[esi]) continue;
      encodeSymbol(p, arena, solution.slotOfColumn, esi, rows);
      arena.readInto(rows, out, esi * symbolSize);
    }
    return { inactivated: solution.inactivated };
  } finally {
    releaseArena(arena);
  }
}
