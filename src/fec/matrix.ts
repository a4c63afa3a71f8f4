// Coefficients of the Cauchy code and of its decoder.
//
// Parity symbol sid (k <= sid <= 255) is sum_j C[sid][j] * source_j with C[sid][j] = 1 / (sid ^ j):
// a Cauchy matrix with x = sid and y = j, all distinct because parity ids are >= k > source ids,
// so every square submatrix is nonsingular and any k of the n symbols determine the block.
//
// A field of 256 elements has no MDS code longer than 257 symbols, so ids 256..65535 (extension symbols)
// are pseudo-random combinations of the sources instead: a block that needs more than its 256 - k parity
// ids (a receiver far behind, a late joiner) still gets a new symbol with every transmission, which k
// symbols decode unless they happen to be dependent (about 1 in 255 per extension symbol; one more fixes it).

import { EXP, INV, LOG, MUL } from './gf256.js';

/** EXP over three periods, so a sum of up to three logs (one subtracted via + 255) needs no mod. */
const EXP3 = new Uint8Array(765);
for (let i = 0; i < 765; i++) EXP3[i] = EXP[i % 255]!;

/** Largest Cauchy (MDS) symbol id; also the largest k. */
export const MAX_CAUCHY_ID = 255;
/** Largest symbol id: ids above MAX_CAUCHY_ID are extension symbols. */
export const MAX_ID = 0xffff;

/** Cauchy coefficient of source j in parity sid. */
export function cauchy(sid: number, j: number): number {
  return INV[sid ^ j]!;
}

/** Row of C for parity `sid`: k coefficients, one per source symbol. */
export function cauchyRow(sid: number, k: number, out: Uint8Array = new Uint8Array(k)): Uint8Array {
  for (let j = 0; j < k; j++) out[j] = INV[sid ^ j]!;
  return out;
}

/**
 * Row of extension symbol `id` (MAX_CAUCHY_ID < id <= MAX_ID): x = id * 2654435761 mod 2^32, then for each
 * source j in turn x = xorshift32(x) (x ^= x << 13; x ^= x >>> 17; x ^= x << 5) and the coefficient is
 * 1 + (x mod 255), never 0, so every source counts. docs/fec.md; the wire specification depends on it.
 */
export function extensionRow(id: number, k: number, out: Uint8Array = new Uint8Array(k)): Uint8Array {
  let x = Math.imul(id, 2654435761) >>> 0;
  for (let j = 0; j < k; j++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[j] = 1 + (x % 255);
  }
  return out;
}

/** Coefficients of repair symbol `id` (>= k) on the k sources: a Cauchy row, or an extension row. */
export function repairRow(id: number, k: number, out: Uint8Array = new Uint8Array(k)): Uint8Array {
  return id <= MAX_CAUCHY_ID ? cauchyRow(id, k, out) : extensionRow(id, k, out);
}

function mul(a: number, b: number): number {
  return MUL[(a << 8) | b]!;
}

/**
 * How decode() rebuilds the missing source symbols. Every missing symbol is one linear combination
 * ("dot product") of all k received symbols, so the kernels make one batched call per missing symbol.
 */
export interface DecodePlan {
  /** Missing source ids, ascending; empty when all sources arrived (decode is then a copy). */
  readonly missing: number[];
  /** Indices into the caller's ids/symbols arrays: the terms of every dot product. */
  readonly terms: number[];
  /** missing.length rows of terms.length coefficients, row-major. */
  readonly coefs: Uint8Array;
}

export function checkEncodeInput(k: number, symbolSize: number, block: Uint8Array, ids: readonly number[]): void {
  if (!(block instanceof Uint8Array)) throw new TypeError('fec encode: block must be a Uint8Array');
  if (block.length !== k * symbolSize) {
    throw new RangeError(`fec encode: block is ${block.length} bytes, expected k*symbolSize = ${k}*${symbolSize} = ${k * symbolSize}`);
  }
  for (const id of ids) {
    if (!Number.isInteger(id) || id < k || id > MAX_ID) {
      throw new RangeError(`fec encode: parity id ${String(id)} out of range (expected an integer ${k}..${MAX_ID} for k=${k})`);
    }
  }
}

export function checkDecodeInput(k: number, symbolSize: number, ids: readonly number[], symbols: readonly Uint8Array[]): void {
  if (ids.length !== symbols.length) {
    throw new RangeError(`fec decode: ${ids.length} ids but ${symbols.length} symbols`);
  }
  if (ids.length < k) {
    throw new RangeError(`fec decode: need at least k=${k} symbols, got ${ids.length}`);
  }
  const seen = new Set<number>();
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (!Number.isInteger(id) || id < 0 || id > MAX_ID) {
      throw new RangeError(`fec decode: symbol id ${String(id)} out of range (expected an integer 0..${MAX_ID})`);
    }
    if (seen.has(id)) throw new RangeError(`fec decode: duplicate symbol id ${id}`);
    seen.add(id);
    const s = symbols[i];
    if (!(s instanceof Uint8Array)) throw new TypeError(`fec decode: symbol ${id} is not a Uint8Array`);
    if (s.length !== symbolSize) {
      throw new RangeError(`fec decode: symbol ${id} is ${s.length} bytes, expected symbolSize=${symbolSize}`);
    }
  }
}

/**
 * Decode coefficients for the missing sources of a block from the symbols `ids` (at least k, distinct), or
 * null when they do not determine it (possible only with extension symbols among them).
 *
 * Only Cauchy symbols, k of them: in closed form, O(e*k) scalar work for e missing sources.
 *
 * With parity ids x_i (the received parities), missing source ids y_m and present ones y_j, each
 * received parity is p_i = sum_m s_m / (x_i + y_m) + sum_j s_j / (x_i + y_j). The unknown part
 * g(z) = sum_m s_m / (z + y_m) = N(z) / Q(z) with deg N < e is known at the e points x_i, so
 * Lagrange interpolation fixes N and each unknown is a residue, s_m = N(y_m) / Q'(y_m). Expanded
 * (char 2, so + is - is XOR):
 *   s_m = w_m * ( sum_i u_i / (y_m + x_i) * p_i  +  sum_j v_j / (y_m + y_j) * s_j )
 *   w_m = R(y_m) / Q'(y_m),  u_i = Q(x_i) / R'(x_i),  v_j = Q(y_j) / R(y_j)
 * where Q(z) = prod_m (z + y_m), R(z) = prod_i (z + x_i), Q'(y_m) = prod_{m' != m} (y_m + y_m'),
 * R'(x_i) = prod_{i' != i} (x_i + x_i'). This equals the textbook route (syndromes s = p - C_P s_P,
 * invert the e x e Cauchy submatrix by Gaussian elimination, multiply) folded into one dot product
 * per missing symbol, so the byte work is the same e*k multiply-adds per symbol byte, but the scalar
 * set-up is O(e*k) instead of O(e^3 + e^2*k) and needs no syndrome buffers. The tests check it
 * against Gaussian elimination.
 */
export function planDecode(k: number, ids: readonly number[]): DecodePlan | null {
  if (ids.length === k && ids.every((id) => id <= MAX_CAUCHY_ID)) return planCauchyDecode(k, ids);
  return planGeneralDecode(k, ids);
}

/** Where each symbol of `ids` goes: indices of the repair symbols and of the present sources, missing source ids. */
function sortIds(k: number, ids: readonly number[]): { repairs: number[]; presentIdx: number[]; missing: number[] } {
  const present = new Uint8Array(k);
  const repairs: number[] = [];
  const presentIdx: number[] = [];
  for (let t = 0; t < ids.length; t++) {
    const id = ids[t]!;
    if (id < k) {
      present[id] = 1;
      presentIdx.push(t);
    } else repairs.push(t);
  }
  const missing: number[] = [];
  for (let j = 0; j < k; j++) if (!present[j]) missing.push(j);
  return { repairs, presentIdx, missing };
}

function planCauchyDecode(k: number, ids: readonly number[]): DecodePlan {
  const { repairs: parities, presentIdx, missing } = sortIds(k, ids);
  const e = missing.length;
  if (e === 0) return { missing, terms: [], coefs: new Uint8Array(0) };

  const terms = parities.concat(presentIdx);
  const termIds = new Uint8Array(k);
  for (let t = 0; t < k; t++) termIds[t] = ids[terms[t]!]!;
  // Work with logarithms: every factor is nonzero (ids are distinct), products become sums and
  // the inner loops are table lookups and adds. Logs of products of up to 255 factors stay far
  // below 2^31; one % 255 per product.
  const logQ = (z: number): number => {
    let s = 0;
    for (let m = 0; m < e; m++) s += LOG[z ^ missing[m]!]!;
    return s % 255;
  };
  const logR = (z: number): number => {
    let s = 0;
    for (let i = 0; i < e; i++) s += LOG[z ^ termIds[i]!]!;
    return s % 255;
  };
  // log z_t: u_i for the e parity terms, v_j for the k-e present source terms.
  const lz = new Uint16Array(k);
  for (let t = 0; t < e; t++) {
    const x = termIds[t]!;
    let d = 0;
    for (let i = 0; i < e; i++) if (i !== t) d += LOG[x ^ termIds[i]!]!;
    lz[t] = (logQ(x) + 255 - (d % 255)) % 255;
  }
  for (let t = e; t < k; t++) {
    const y = termIds[t]!;
    lz[t] = (logQ(y) + 255 - logR(y)) % 255;
  }
  const coefs = new Uint8Array(e * k);
  for (let m = 0; m < e; m++) {
    const y = missing[m]!;
    let d = 0;
    for (let m2 = 0; m2 < e; m2++) if (m2 !== m) d += LOG[y ^ missing[m2]!]!;
    const lw = (logR(y) + 255 - (d % 255)) % 255;
    const row = m * k;
    // lw + lz + 255 - LOG[..] < 765 = EXP3.length
    for (let t = 0; t < k; t++) coefs[row + t] = EXP3[lw + lz[t]! + 255 - LOG[y ^ termIds[t]!]!]!;
  }
  return { missing, terms, coefs };
}

/**
 * With extension symbols (or more than k symbols): Gaussian elimination. The repair symbols' coefficients on
 * the e missing sources form an r x e matrix (r >= e); forward elimination finds e independent rows (none: null),
 * and with B the inverse of those rows, s_m = sum_i B[m][i] * (p_i + sum_j a_ij * s_j) over present sources j.
 * Folded into one dot product per missing source like the closed form, so the kernels' byte work is the same;
 * the scalar work is O(r*e^2 + e^3 + e^2*k): 0.1-0.2 ms with 10 missing at k = 128, 12 ms with all 128
 * rebuilt (then the byte work, 147 MB of multiply-adds at 9 KB symbols, costs more).
 */
function planGeneralDecode(k: number, ids: readonly number[]): DecodePlan | null {
  const { repairs, presentIdx, missing } = sortIds(k, ids);
  const e = missing.length;
  if (e === 0) return { missing, terms: [], coefs: new Uint8Array(0) };
  const r = repairs.length;
  if (r < e) return null;
  const rows = repairs.map((t) => repairRow(ids[t]!, k));
  // Forward elimination on the missing columns, remembering which repair symbol each row came from.
  const a = rows.map((row) => Uint8Array.from(missing, (j) => row[j]!));
  const order = repairs.map((_, i) => i);
  for (let c = 0; c < e; c++) {
    let p = c;
    while (p < r && a[p]![c] === 0) p++;
    if (p === r) return null;
    [a[c], a[p]] = [a[p]!, a[c]!];
    [order[c], order[p]] = [order[p]!, order[c]!];
    const pivot = a[c]!;
    const f = INV[pivot[c]!]!;
    for (let i = c + 1; i < r; i++) {
      const row = a[i]!;
      if (row[c] === 0) continue;
      const m = mul(row[c]!, f);
      for (let col = c; col < e; col++) row[col] ^= mul(m, pivot[col]!);
    }
  }
  const chosen = order.slice(0, e);
  const square = new Uint8Array(e * e);
  for (let i = 0; i < e; i++) for (let m = 0; m < e; m++) square[i * e + m] = rows[chosen[i]!]![missing[m]!]!;
  const inv = invertMatrix(square, e);
  const terms = chosen.map((i) => repairs[i]!).concat(presentIdx);
  const n = terms.length;
  const coefs = new Uint8Array(e * n);
  for (let m = 0; m < e; m++) {
    for (let i = 0; i < e; i++) coefs[m * n + i] = inv[m * e + i]!;
    for (let t = e; t < n; t++) {
      const j = ids[terms[t]!]!;
      let c = 0;
      for (let i = 0; i < e; i++) c ^= mul(inv[m * e + i]!, rows[chosen[i]!]![j]!);
      coefs[m * n + t] = c;
    }
  }
  return { missing, terms, coefs };
}

/**
 * Inverse of an n x n row-major matrix over GF(2^8) by Gauss-Jordan elimination: the general decode's
 * inverse, and the reference the tests check the closed form against.
 */
export function invertMatrix(a: Uint8Array, n: number): Uint8Array {
  const m = Uint8Array.from(a);
  const inv = new Uint8Array(n * n);
  for (let i = 0; i < n; i++) inv[i * n + i] = 1;
  for (let col = 0; col < n; col++) {
    let piv = col;
    while (piv < n && m[piv * n + col] === 0) piv++;
    if (piv === n) throw new RangeError('GF(2^8) matrix is singular');
    if (piv !== col) {
      for (let c = 0; c < n; c++) {
        let t = m[col * n + c]!; m[col * n + c] = m[piv * n + c]!; m[piv * n + c] = t;
        t = inv[col * n + c]!; inv[col * n + c] = inv[piv * n + c]!; inv[piv * n + c] = t;
      }
    }
    const f = INV[m[col * n + col]!]!;
    for (let c = 0; c < n; c++) {
      m[col * n + c] = mul(m[col * n + c]!, f);
      inv[col * n + c] = mul(inv[col * n + c]!, f);
    }
    for (let r = 0; r < n; r++) {
      const g = m[r * n + col]!;
      if (r === col || g === 0) continue;
      for (let c = 0; c < n; c++) {
        m[r * n + c] ^= mul(g, m[col * n + c]!);
        inv[r * n + c] ^= mul(g, inv[col * n + c]!);
      }
    }
  }
  return inv;
}
