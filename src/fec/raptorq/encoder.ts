// RaptorQ encoder for one source block: solves for the intermediate symbols once, then makes any
// encoding symbol on demand. ESIs below K are the source symbols themselves (the code is
// systematic); ESIs K .. 2^24-1 are repair symbols. dispose() hands the encoder's symbol memory
// (about L symbols) to the next coder.

import { acquireArena, releaseArena, type ArenaKernel, type SymbolArena } from './arena.js';
import { checkBlockShape, checkEsi, isiOf, raptorqParams, type RaptorQParams } from './params.js';
import { encodeSymbol, solve } from './solver.js';

export interface RaptorQOptions {
  /** Symbol arithmetic: the wasm SIMD kernel (default when available) or the JS fallback. */
  kernel?: ArenaKernel;
}

export class RaptorQEncoder {
  readonly params: RaptorQParams;
  /** Columns solved by Gaussian elimination while computing the intermediate symbols. */
  readonly inactivated: number;
  /** The symbol arithmetic in use. */
  readonly kernelName: 'wasm-simd' | 'js';
  private readonly source: Uint8Array;
  private arena: SymbolArena | null;
  private readonly slotOfColumn: Int32Array;
  private readonly scratch: number;

  /**
   * sourceBlock: exactly K * symbolSize bytes (pad the last symbol of a short block yourself). The
   * encoder keeps a reference (no copy of a possibly 12 MB block): do not modify it while encoding.
   */
  constructor(sourceBlock: Uint8Array, readonly symbolSize: number, readonly K: number, options: RaptorQOptions = {}) {
    checkBlockShape('raptorq encoder', K, symbolSize);
    if (!(sourceBlock instanceof Uint8Array)) throw new TypeError('raptorq encoder: sourceBlock must be a Uint8Array');
    if (sourceBlock.length !== K * symbolSize) {
      throw new RangeError(
        `raptorq encoder: sourceBlock is ${sourceBlock.length} bytes, expected K*symbolSize = ${K}*${symbolSize} = ${K * symbolSize} (pad the last symbol with zeros)`,
      );
    }
    const p = (this.params = raptorqParams(K));
    this.source = sourceBlock;
    const isis = Int32Array.from({ length: p.Kp }, (_, i) => i);
    const rows = p.S + p.H + p.Kp;
    const arena = (this.arena = acquireArena(symbolSize, rows + 1, options.kernel));
    this.kernelName = arena.kernelName;
    this.scratch = rows;
    const S = symbolSize;
    const solution = solve(p, isis, arena, (t) => (t < K ? sourceBlock.subarray(t * S, t * S + S) : null));
    // J(K') is chosen so that the K' systematic rows always determine C: failing here means broken tables.
    if (!solution) {
      this.dispose();
      throw new Error(`raptorq encoder: constraint matrix for K'=${p.Kp} is singular (internal error)`);
    }
    this.slotOfColumn = solution.slotOfColumn;
    this.inactivated = solution.inactivated;
  }

  /** Encoding symbol `esi` (0 <= esi < 2^24) as a fresh buffer of symbolSize bytes. */
  symbol(esi: number): Uint8Array {
    checkEsi('raptorq encoder', esi);
    const S = this.symbolSize;
    if (esi < this.K) return this.source.slice(esi * S, esi * S + S);
    const arena = this.arena;
    if (!arena) throw new Error('raptorq encoder: symbol() after dispose()');
    encodeSymbol(this.params, arena, this.slotOfColumn, isiOf(this.params, esi), this.scratch);
    return arena.read(this.scratch);
  }

  /** Releases the intermediate symbols' memory for reuse; repair symbols are unavailable afterwards. */
  dispose(): void {
    if (this.arena) releaseArena(this.arena);
    this.arena = null;
  }
}
