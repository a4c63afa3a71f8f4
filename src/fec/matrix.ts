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
  return planExtendedDecode(k, ids);
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
 * With extension symbols (or more than k symbols). Of the e missing sources, as many as there are Cauchy
 * parities (c, if fewer than e) are solved in closed form in terms of the rest (M2, e - c of them) as if those
 * were present; substituted into the extension symbols' equations, that leaves a small system in M2 alone (the
 * Schur complement: with the Cauchy rows on M1 a Cauchy matrix, it is singular exactly when the whole is),
 * solved by Gauss-Jordan (no independent rows left: null); then M1 follows from M2. A late joiner's block (about
 * 120 Cauchy parities and a few extension symbols) plans in under a millisecond; a block of extension symbols
 * only (k = 255) is one Gauss-Jordan of e rows, e * e * (k + e) table steps (docs/fec.md).
 * The result is one dot product per missing source over the symbols received, like the closed form.
 */
function planExtendedDecode(k: number, ids: readonly number[]): DecodePlan | null {
  const { repairs, presentIdx, missing } = sortIds(k, ids);
  const e = missing.length;
  if (e === 0) return { missing, terms: [], coefs: new Uint8Array(0) };
  if (repairs.length < e) return null;
  const cauchyIdx = repairs.filter((t) => ids[t]! <= MAX_CAUCHY_ID);
  const extIdx = repairs.filter((t) => ids[t]! > MAX_CAUCHY_ID);
  if (cauchyIdx.length >= e) {
    // Enough Cauchy parities: the closed form on e of them and the present sources.
    const subset = cauchyIdx.slice(0, e).concat(presentIdx);
    const plan = planCauchyDecode(k, subset.map((t) => ids[t]!));
    return { missing: plan.missing, terms: plan.terms.map((t) => subset[t]!), coefs: plan.coefs };
  }
  const c = cauchyIdx.length;
  const x = extIdx.length;
  const m2 = missing.slice(c); // solved from the extension symbols
  const x2 = m2.length;
  // The result's terms: extension symbols, Cauchy parities, present sources.
  const terms = extIdx.concat(cauchyIdx, presentIdx);
  const n = terms.length;
  const posOf = new Map<number, number>(); // symbol id -> column in terms (for the closed form's terms)
  terms.forEach((t, col) => posOf.set(ids[t]!, col));
  // M1 in terms of (Cauchy parities, present sources, M2): rows a1 (n columns) and g1 (x2 columns on M2).
  const ids1 = cauchyIdx.map((t) => ids[t]!).concat(presentIdx.map((t) => ids[t]!), m2);
  const plan1 = c > 0 ? planCauchyDecode(k, ids1) : { missing: [], terms: [], coefs: new Uint8Array(0) };
  const m1 = plan1.missing; // = missing.slice(0, c): M2 counts as present there
  const m2Col = new Map(m2.map((j, i) => [j, i]));
  const a1 = m1.map(() => new Uint8Array(n));
  const g1 = m1.map(() => new Uint8Array(x2));
  for (let r = 0; r < m1.length; r++) {
    for (let t = 0; t < k; t++) {
      const id = ids1[plan1.terms[t]!]!;
      const coef = plan1.coefs[r * k + t]!;
      const col = m2Col.get(id);
      if (col !== undefined) g1[r]![col] = coef;
      else a1[r]![posOf.get(id)!] = coef;
    }
  }
  // Each extension symbol: sum over all sources of row_j * s_j = its value. Substitute M1. Equation q is one
  // row: its coefficients on M2, then on the terms.
  const eq = extIdx.map(() => new Uint8Array(x2 + n));
  const row = new Uint8Array(k);
  for (let q = 0; q < x; q++) {
    const u = eq[q]!.subarray(0, x2);
    const v = eq[q]!.subarray(x2);
    repairRow(ids[extIdx[q]!]!, k, row);
    v[q] = 1;
    for (let col = 0; col < x2; col++) u[col] = row[m2[col]!]!;
    for (const t of presentIdx) v[posOf.get(ids[t]!)!] = row[ids[t]!]!;
    for (let r = 0; r < m1.length; r++) {
      addScaled(u, g1[r]!, row[m1[r]!]!);
      addScaled(v, a1[r]!, row[m1[r]!]!);
    }
  }
  const s2 = gaussJordan(eq, x2);
  if (!s2) return null;
  // Back to M1: s_m1 = a1 + g1 * s2.
  for (let r = 0; r < m1.length; r++) for (let col = 0; col < x2; col++) addScaled(a1[r]!, s2[col]!, g1[r]![col]!);
  // missing = M1 (the closed form's, ascending) then M2: the rows in that order.
  const coefs = new Uint8Array(e * n);
  [...a1, ...s2].forEach((row, r) => coefs.set(row, r * n));
  return { missing, terms, coefs };
}

/** dst += f * src over GF(2^8), element by element from `from` on (a walk over one product-table row). */
function addScaled(dst: Uint8Array, src: Uint8Array, f: number, from = 0): void {
  if (f === 0) return;
  const product = f << 8;
  const table = MUL;
  for (let i = from; i < dst.length; i++) dst[i] ^= table[product | src[i]!]!;
}

/**
 * Solves equations for e unknowns, each a row of e coefficients on the unknowns then coefficients on the terms
 * (sum of the first = sum of the second), choosing e independent ones: for each unknown, its coefficients on the
 * terms (views of the rows); null when the equations do not determine the unknowns.
 */
function gaussJordan(rows: Uint8Array[], e: number): Uint8Array[] | null {
  const r = rows.length;
  for (let c = 0; c < e; c++) {
    let p = c;
    while (p < r && rows[p]![c] === 0) p++;
    if (p === r) return null;
    [rows[c], rows[p]] = [rows[p]!, rows[c]!];
    const pivot = rows[c]!;
    // Entries before column c are zero in the pivot row (eliminated): every walk starts at c.
    const f = INV[pivot[c]!]!;
    for (let col = c; col < pivot.length; col++) pivot[col] = mul(pivot[col]!, f);
    for (let i = 0; i < r; i++) if (i !== c) addScaled(rows[i]!, pivot, rows[i]![c]!, c);
  }
  return rows.slice(0, e).map((row) => row.subarray(e));
}

/**
 * Inverse of an n x n row-major matrix over GF(2^8) by Gauss-Jordan elimination. Not used on the decode
 * path; kept as the straightforward reference the tests check both plans against.
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
