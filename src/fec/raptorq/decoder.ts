// RaptorQ decoder for one source block: collects encoding symbols by ESI and, once at least K have
// arrived, solves for the intermediate symbols and rebuilds the missing source symbols. With K
// symbols decoding fails rarely (RFC 6330 targets under 1% at K received, about 1e-4 at K+1 and
// 1e-6 at K+2 for the RFC's decoder); tryDecode() then returns null and the caller adds more.

import { SymbolArena } from './arena.js';
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
  private readonly data: Uint8Array[] = [];
  private readonly seen = new Set<number>();
  private readonly sourceIndex: Int32Array;
  private sourceCount = 0;
  private arena: SymbolArena | null = null;
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
    this.esis.push(esi);
    this.data.push(symbol.slice());
    return true;
  }

  get received(): number {
    return this.esis.length;
  }

  get stats(): RaptorQDecodeStats {
    return { received: this.esis.length, used: this.used, inactivated: this.inactivated, failedAttempts: this.failedAttempts };
  }

  get kernelName(): 'wasm-simd' | 'js' {
    return (this.arena ??= new SymbolArena(this.symbolSize, 1, this.options.kernel)).kernelName;
  }

  /**
   * The K * symbolSize-byte source block once the symbols added so far determine it, else null
   * (fewer than K symbols, or a rare rank-deficient set: add another symbol and try again).
   * Returns the same buffer on every call after success.
   */
  tryDecode(): Uint8Array | null {
    if (this.result) return this.result;
    const { K, symbolSize: S } = this;
    if (this.esis.length < K) return null;
    const out = new Uint8Array(K * S);
    for (let esi = 0; esi < K; esi++) {
      const at = this.sourceIndex[esi]!;
      if (at >= 0) out.set(this.data[at]!, esi * S);
    }
    if (this.sourceCount < K) {
      const p = this.params;
      const n = this.esis.length;
      const isis = new Int32Array(n + p.Kp - K);
      for (let t = 0; t < n; t++) isis[t] = isiOf(p, this.esis[t]!);
      for (let t = n; t < isis.length; t++) isis[t] = K + (t - n); // padding ISIs K..K'-1, known zeros
      const rows = p.S + p.H + isis.length;
      const arena = (this.arena ??= new SymbolArena(S, rows + 1, this.options.kernel));
      arena.reserve(rows + 1);
      const solution = solve(p, isis, arena, (t) => (t < n ? this.data[t]! : null));
      if (!solution) {
        this.failedAttempts++;
        return null;
      }
      this.used = n;
      this.inactivated = solution.inactivated;
      for (let esi = 0; esi < K; esi++) {
        if (this.sourceIndex[esi]! >= 0) continue;
        encodeSymbol(p, arena, solution.slotOfColumn, esi, rows);
        arena.readInto(rows, out, esi * S);
      }
    }
    this.result = out;
    // The symbols are no longer needed; let them go.
    this.data.length = 0;
    return out;
  }
}
