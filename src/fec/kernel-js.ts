// Pure TypeScript kernel: the fallback when WebAssembly SIMD is unavailable, and the reference the
// tests compare the wasm kernel against. Product rows of 256 entries (MUL), applied four bytes at a
// time through 32-bit words where the buffers allow it (about 1.6x the byte loop in V8).

import { MUL } from './gf256.js';
import type { Kernel } from './kernel.js';

/** dst[dOff ..+len) ^= c * src[sOff ..+len). */
export function mulXor(dst: Uint8Array, dOff: number, src: Uint8Array, sOff: number, len: number, c: number): void {
  if (c === 0) return;
  const row = MUL.subarray(c << 8, (c << 8) + 256);
  let i = 0;
  const da = dst.byteOffset + dOff;
  const sa = src.byteOffset + sOff;
  if (len >= 32 && ((da ^ sa) & 3) === 0) {
    const head = (4 - (da & 3)) & 3;
    for (; i < head; i++) dst[dOff + i] ^= row[src[sOff + i]!]!;
    const n = (len - head) >>> 2;
    const d32 = new Uint32Array(dst.buffer, da + head, n);
    const s32 = new Uint32Array(src.buffer, sa + head, n);
    // Byte b of the word maps to byte b of the result whatever the host's endianness.
    for (let w = 0; w < n; w++) {
      const x = s32[w]!;
      d32[w] ^= row[x & 255]! | (row[(x >>> 8) & 255]! << 8) | (row[(x >>> 16) & 255]! << 16) | (row[x >>> 24]! << 24);
    }
    i = head + 4 * n;
  }
  for (; i < len; i++) dst[dOff + i] ^= row[src[sOff + i]!]!;
}

/** Word loops need dst and src equally aligned mod 4; `out` slots are, so realign odd inputs once. */
function aligned(src: Uint8Array, dstAlign: number): Uint8Array {
  return ((src.byteOffset ^ dstAlign) & 3) === 0 ? src : src.slice();
}

export const jsKernel: Kernel = {
  name: 'js',
  encode(k, S, block, rows, count) {
    const out: Uint8Array[] = [];
    for (let i = 0; i < count; i++) {
      const p = new Uint8Array(S);
      for (let j = 0; j < k; j++) mulXor(p, 0, block, j * S, S, rows[i * k + j]!);
      out.push(p);
    }
    return out;
  },
  combine(S, inputs, coefs, missing, out) {
    const n = inputs.length;
    const srcs = (S & 3) === 0 ? inputs.map((s) => aligned(s, out.byteOffset)) : inputs;
    for (let m = 0; m < missing.length; m++) {
      const off = missing[m]! * S;
      out.fill(0, off, off + S);
      for (let t = 0; t < n; t++) mulXor(out, off, srcs[t]!, 0, S, coefs[m * n + t]!);
    }
  },
};
