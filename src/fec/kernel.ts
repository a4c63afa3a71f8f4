// The kernels' common contract. A kernel only does the byte work; the codec (index.ts) checks
// input and works out the coefficients, so both kernels share every line of the math.

export interface Kernel {
  readonly name: 'wasm-simd' | 'js';
  /** Parity symbols: out[i] = sum_j rows[i*k + j] * source_j, source_j = block[j*S, (j+1)*S). */
  encode(k: number, symbolSize: number, block: Uint8Array, rows: Uint8Array, count: number): Uint8Array[];
  /**
   * For each missing index m: out[missing[m]*S ..+S) = sum_t coefs[m*n + t] * inputs[t],
   * n = inputs.length. `out` is the caller's fresh block; only the missing slots are written.
   */
  combine(symbolSize: number, inputs: readonly Uint8Array[], coefs: Uint8Array, missing: readonly number[], out: Uint8Array): void;
}
