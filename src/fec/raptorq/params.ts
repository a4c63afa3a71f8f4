// RFC 6330 code parameters and the deterministic pieces every encoder and decoder must agree on
// bit for bit: the source block's parameters (section 5.3.3.3 with Table 2 of section 5.6), the
// pseudo-random generator Rand (5.3.5.1), the degree generator Deg (5.3.5.2), the tuple generator
// (5.3.5.4) and the intermediate symbols an encoding symbol sums (Enc, 5.3.5.3).

import { DEGREE_F, SYSTEMATIC_COLUMNS, SYSTEMATIC_TABLE, V0, V1, V2, V3 } from './tables.js';

/** Largest K' of Table 2: the most source symbols one RaptorQ source block can have. */
export const MAX_SOURCE_SYMBOLS = SYSTEMATIC_TABLE[SYSTEMATIC_TABLE.length - SYSTEMATIC_COLUMNS]!;
/** Encoding symbol ids are 24-bit in RaptorQ (the FEC Payload ID's ESI field). */
export const MAX_ESI = 0xffffff;

export interface RaptorQParams {
  /** Source symbols of the block. */
  readonly K: number;
  /** K': the smallest Table 2 entry >= K; the block is padded with K' - K zero symbols. */
  readonly Kp: number;
  /** J(K'): the systematic index. */
  readonly J: number;
  /** LDPC symbols. */
  readonly S: number;
  /** HDPC symbols. */
  readonly H: number;
  /** LT symbols. */
  readonly W: number;
  /** Intermediate symbols: K' + S + H. */
  readonly L: number;
  /** Permanently inactivated (PI) symbols: L - W. */
  readonly P: number;
  /** The smallest prime >= P. */
  readonly P1: number;
  /** W - S: the LT symbols that are not LDPC symbols. */
  readonly B: number;
}

function isPrime(n: number): boolean {
  if (n < 2) return false;
  for (let f = 2; f * f <= n; f++) if (n % f === 0) return false;
  return true;
}

const paramsCache = new Map<number, RaptorQParams>();

/** Parameters of a source block of K symbols, 1 <= K <= MAX_SOURCE_SYMBOLS. Cached per K. */
export function raptorqParams(K: number): RaptorQParams {
  const cached = paramsCache.get(K);
  if (cached) return cached;
  if (!Number.isInteger(K) || K < 1 || K > MAX_SOURCE_SYMBOLS) {
    throw new RangeError(`raptorq: K=${String(K)} source symbols out of range (expected an integer 1..${MAX_SOURCE_SYMBOLS})`);
  }
  // Binary search for the first row with K' >= K.
  const rows = SYSTEMATIC_TABLE.length / SYSTEMATIC_COLUMNS;
  let lo = 0;
  let hi = rows - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (SYSTEMATIC_TABLE[mid * SYSTEMATIC_COLUMNS]! >= K) hi = mid;
    else lo = mid + 1;
  }
  const at = lo * SYSTEMATIC_COLUMNS;
  const Kp = SYSTEMATIC_TABLE[at]!;
  const J = SYSTEMATIC_TABLE[at + 1]!;
  const S = SYSTEMATIC_TABLE[at + 2]!;
  const H = SYSTEMATIC_TABLE[at + 3]!;
  const W = SYSTEMATIC_TABLE[at + 4]!;
  const L = Kp + S + H;
  const P = L - W;
  let P1 = P;
  while (!isPrime(P1)) P1++;
  const params: RaptorQParams = { K, Kp, J, S, H, W, L, P, P1, B: W - S };
  paramsCache.set(K, params);
  return params;
}

/**
 * Rand[y, i, m] (section 5.3.5.1): one byte of y (plus i) indexes each of V0..V3; the XOR of the
 * four words, mod m. y is a non-negative integer below 2^32.
 */
export function rand(y: number, i: number, m: number): number {
  const x0 = (y + i) & 255;
  const x1 = (Math.floor(y / 0x100) + i) & 255;
  const x2 = (Math.floor(y / 0x10000) + i) & 255;
  const x3 = (Math.floor(y / 0x1000000) + i) & 255;
  return ((V0[x0]! ^ V1[x1]! ^ V2[x2]! ^ V3[x3]!) >>> 0) % m;
}

/** Deg[v] (section 5.3.5.2) for 0 <= v < 2^20: the d with f[d-1] <= v < f[d], at most W - 2. */
export function deg(v: number, W: number): number {
  let d = 1;
  while (v >= DEGREE_F[d]!) d++;
  return Math.min(d, W - 2);
}

/** The tuple (d, a, b, d1, a1, b1) of section 5.3.5.4. */
export interface Tuple {
  readonly d: number;
  readonly a: number;
  readonly b: number;
  readonly d1: number;
  readonly a1: number;
  readonly b1: number;
}

/** Tuple[K', X] for the internal symbol id X (ISI). */
export function tuple(p: RaptorQParams, X: number): Tuple {
  let A = 53591 + p.J * 997;
  if (A % 2 === 0) A++;
  const B = 10267 * (p.J + 1);
  // X < 2^25 and A < 2^21, so B + X*A is an exact double; % 2^32 is the RFC's wrap.
  const y = (B + X * A) % 0x100000000;
  const v = rand(y, 0, 1 << 20);
  const d = deg(v, p.W);
  const a = 1 + rand(y, 1, p.W - 1);
  const b = rand(y, 2, p.W);
  const d1 = d < 4 ? 2 + rand(X, 3, 2) : 2;
  const a1 = 1 + rand(X, 4, p.P1 - 1);
  const b1 = rand(X, 5, p.P1);
  return { d, a, b, d1, a1, b1 };
}

/**
 * The intermediate symbols Enc[K', C, Tuple[K', X]] (section 5.3.5.3) adds up for ISI X: d of the
 * W LT symbols, then d1 of the P PI symbols (as indices W + j). Appended to `out`, which is returned.
 */
export function encIndices(p: RaptorQParams, X: number, out: number[] = []): number[] {
  const { W, P, P1 } = p;
  const t = tuple(p, X);
  let b = t.b;
  out.push(b);
  for (let j = 1; j < t.d; j++) {
    b = (b + t.a) % W;
    out.push(b);
  }
  let b1 = t.b1;
  while (b1 >= P) b1 = (b1 + t.a1) % P1;
  out.push(W + b1);
  for (let j = 1; j < t.d1; j++) {
    b1 = (b1 + t.a1) % P1;
    while (b1 >= P) b1 = (b1 + t.a1) % P1;
    out.push(W + b1);
  }
  return out;
}

/** ISI of encoding symbol ESI: source ESIs are their own ISIs; repair ESIs skip the K' - K padding ISIs. */
export function isiOf(p: RaptorQParams, esi: number): number {
  return esi < p.K ? esi : esi + (p.Kp - p.K);
}

/** The RFC's symbol size T is a 16-bit field. */
export const MAX_SYMBOL_SIZE = 65535;

/** Throws a RangeError naming the bad value unless K and symbolSize describe a valid source block. */
export function checkBlockShape(what: string, K: number, symbolSize: number): void {
  if (!Number.isInteger(K) || K < 1 || K > MAX_SOURCE_SYMBOLS) {
    throw new RangeError(`${what}: K=${String(K)} source symbols out of range (expected an integer 1..${MAX_SOURCE_SYMBOLS})`);
  }
  if (!Number.isInteger(symbolSize) || symbolSize < 1 || symbolSize > MAX_SYMBOL_SIZE) {
    throw new RangeError(`${what}: symbolSize=${String(symbolSize)} out of range (expected an integer 1..${MAX_SYMBOL_SIZE})`);
  }
}

/** Throws a RangeError unless esi is a valid encoding symbol id (an integer 0..2^24-1). */
export function checkEsi(what: string, esi: number): void {
  if (!Number.isInteger(esi) || esi < 0 || esi > MAX_ESI) {
    throw new RangeError(`${what}: ESI ${String(esi)} out of range (expected an integer 0..${MAX_ESI})`);
  }
}
