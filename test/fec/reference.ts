// An independent slow reference for GF(2^8) with 0x11D: shift-and-add, no tables (shared by the FEC tests).
import { extensionRow } from '../../src/fec/matrix.js';

export function slowMul(a: number, b: number): number {
  let r = 0;
  while (b) {
    if (b & 1) r ^= a;
    b >>= 1;
    a <<= 1;
    if (a & 0x100) a ^= 0x11d;
  }
  return r;
}

/** Deterministic pseudo-random 32-bit integers (xorshift32) for reproducible test data. */
export function xorshift(seed: number): () => number {
  let s = seed >>> 0 || 0x9e3779b9;
  return () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s;
  };
}

/** Two extension ids whose rows for k = 2 are multiples of each other: together one equation, not two. */
export function dependentExtensionPair(): [number, number] {
  for (let a = 256; a < 2000; a++) {
    const ra = extensionRow(a, 2);
    for (let b = a + 1; b < 2000; b++) {
      const rb = extensionRow(b, 2);
      if (slowMul(ra[0]!, rb[1]!) === slowMul(ra[1]!, rb[0]!)) return [a, b];
    }
  }
  throw new Error('no dependent pair among the first extension ids');
}
