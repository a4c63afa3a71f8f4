// An independent slow reference for GF(2^8) with 0x11D: shift-and-add, no tables (shared by the FEC tests).
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
