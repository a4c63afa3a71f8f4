// RaptorQ encoder for one source block: solves for the intermediate symbols once, then makes any
// encoding symbol on demand. ESIs below K are the source symbols themselves (the code is
// systematic); ESIs K .. 2^24-1 are repair symbols.

import { SymbolArena, type ArenaKernel } from './arena.js';
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
  private readonly source: Uint8Array;
  private readonly arena: SymbolArena;
  private readonly slotOfColumn: Int32Array;
  private readonly scratch: number;

  /** sourceBlock: exactly K * symbolSize bytes (pad the last symbol of a short block yourself). Copied. */
  constructor(sourceBlock: Uint8Array, readonly symbolSize: number, readonly K: number, options: RaptorQOptions = {}) {
    checkBlockShape('raptorq encoder', K, symbolSize);
    if (!(sourceBlock instanceof Uint8Array)) throw new TypeError('raptorq encoder: sourceBlock must be a Uint8Array');
    if (sourceBlock.length !== K * symbolSize) {
      throw new RangeError(
        `raptorq encoder: sourceBlock is ${sourceBlock.length} bytes, expected K*symbolSize = ${K}*${symbolSize} = ${K * symbolSize} (pad the last symbol with zeros)`,
      );
    }
    const p = (this.params = raptorqParams(K));
    this.source = sourceBlock.slice();
    const isis = Int32Array.from({ length: p.Kp }, (_, i) => i);
    const rows = p.S + p.H + p.Kp;
    this.arena = new SymbolArena(symbolSize, rows + 1, options.kernel);
    this.scratch = rows;
    const S = symbolSize;
    const solution = solve(p, isis, this.arena, (t) => (t < K ? this.source.subarray(t * S, t * S + S) : null));
    // J(K') is chosen so that the K' systematic rows always determine C: failing here means broken tables.
    if (!solution) throw new Error(`raptorq encoder: constraint matrix for K'=${p.Kp} is singular (internal error)`);
    this.slotOfColumn = solution.slotOfColumn;
    this.inactivated = solution.inactivated;
  }

  get kernelName(): 'wasm-simd' | 'js' {
    return this.arena.kernelName;
  }

  /** Encoding symbol `esi` (0 <= esi < 2^24) as a fresh buffer of symbolSize bytes. */
  symbol(esi: number): Uint8Array {
    checkEsi('raptorq encoder', esi);
    const S = this.symbolSize;
    if (esi < this.K) return this.source.slice(esi * S, esi * S + S);
    encodeSymbol(this.params, this.arena, this.slotOfColumn, isiOf(this.params, esi), this.scratch);
    return this.arena.read(this.scratch);
  }
}
