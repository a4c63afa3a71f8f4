// GF(2^8) arithmetic with the primitive polynomial x^8 + x^4 + x^3 + x^2 + 1 (0x11D), the field
// RFC 5510 uses for m = 8. Everything here is table-driven: the tables are built once at module
// load (about 66 KiB) and are shared by the JS kernel, the matrix code and the wasm table setup.

export const GF_POLY = 0x11d;

/** EXP[i] = g^i for the generator g = 2; doubled to 510 entries so EXP[LOG[a] + LOG[b]] needs no mod. */
export const EXP = new Uint8Array(510);
/** LOG[a] for a != 0 (LOG[0] is meaningless and left 0). */
export const LOG = new Uint8Array(256);
/** Full product table: MUL[(a << 8) | b] = a * b. Row a is the 256-entry table the JS kernel uses. */
export const MUL = new Uint8Array(65536);
/** INV[a] = 1 / a for a != 0; INV[0] = 0 (callers never divide by zero: ids are distinct). */
export const INV = new Uint8Array(256);

{
  let x = 1;
  for (let i = 0; i < 255; i++) {
    EXP[i] = x;
    EXP[i + 255] = x;
    LOG[x] = i;
    x <<= 1;
    if (x & 0x100) x ^= GF_POLY;
  }
  for (let a = 1; a < 256; a++) {
    const la = LOG[a]!;
    for (let b = 1; b < 256; b++) MUL[(a << 8) | b] = EXP[la + LOG[b]!]!;
    INV[a] = EXP[255 - la]!;
  }
}

export function gfMul(a: number, b: number): number {
  return MUL[(a << 8) | b]!;
}

export function gfInv(a: number): number {
  if (a === 0) throw new RangeError('GF(2^8): zero has no inverse');
  return INV[a]!;
}

export function gfDiv(a: number, b: number): number {
  return gfMul(a, gfInv(b));
}

/**
 * Split-nibble tables for the SIMD kernel: for each coefficient c, 32 bytes at offset 32*c:
 * lo[x] = c * x and hi[x] = c * (x << 4) for x in 0..15, so c * b = lo[b & 15] ^ hi[b >> 4]
 * (multiplication distributes over the XOR that splits b into its nibbles).
 */
export function nibbleTables(): Uint8Array {
  const t = new Uint8Array(256 * 32);
  for (let c = 0; c < 256; c++) {
    for (let x = 0; x < 16; x++) {
      t[c * 32 + x] = gfMul(c, x);
      t[c * 32 + 16 + x] = gfMul(c, x << 4);
    }
  }
  return t;
}
