// Solving A * C = D for the L intermediate symbols C (RFC 6330 section 5.3.3.4 builds A; section
// 5.4 describes inactivation decoding). The encoder solves it once with the K' systematic rows; the
// decoder with the rows of the symbols it received. Both use this one function.
//
// Rows of A, row r living in arena slot r:
//   0 .. S-1          LDPC rows (binary, right-hand side 0)
//   S .. S+H-1        HDPC rows (GF(256), right-hand side 0)
//   S+H+t             the LT row of ISI isis[t] (binary), right-hand side: symbol t (zero for padding)
//
// 1. Peeling with inactivation over the binary rows. The P PI columns start inactive. Repeatedly take
//    a row with the fewest active columns; keep one as its pivot, inactivate the others, and XOR the
//    row into every other row holding the pivot column. A pivot row then holds its pivot plus
//    inactive columns only, so the active part never fills in: fill-in lands in a per-row bitset over
//    the inactive columns, and every step is one symbol XOR.
// 2. The HDPC rows (dense over the first K'+S columns) get the pivots eliminated (for the symbols
//    through the structure G_HDPC = MT * GAMMA: a running sum, about four row operations per
//    column for all H rows together), leaving every remaining row over the u inactive columns only; Gauss-
//    Jordan elimination over GF(256) on that small (u + overhead) x u system gives the inactive symbols.
// 3. Back-substitution in pivot order through the ORIGINAL sparse rows: C[pivot] = D[row] + the other
//    (already known) columns of the row. Using the original rows instead of the filled-in ones keeps
//    this phase at the sparse rows' weight (about 7 XORs per LT row) instead of about u/2.

import { EXP, INV, MUL } from '../gf256.js';
import type { SymbolArena } from './arena.js';
import { encIndices, rand, type RaptorQParams } from './params.js';

export interface Solution {
  /** slotOfColumn[j]: the arena slot that holds intermediate symbol C[j], 0 <= j < L. */
  readonly slotOfColumn: Int32Array;
  /** Columns solved by Gaussian elimination (the P PI columns plus those inactivated while peeling). */
  readonly inactivated: number;
  /** Rows of the dense system (rows left after peeling, HDPC rows included). */
  readonly denseRows: number;
}

interface Hdpc {
  /** G_HDPC = MT * GAMMA: H rows of K'+S coefficients, row-major. */
  readonly g: Uint8Array;
  /** The two rows where MT has a 1 in column j (j < K'+S-1), at 2j and 2j+1. */
  readonly mtRows: Uint8Array;
}
const hdpcCache = new Map<number, Hdpc>();

function hdpc(p: RaptorQParams): Hdpc {
  const cached = hdpcCache.get(p.Kp);
  if (cached) return cached;
  const { H } = p;
  const n = p.Kp + p.S;
  const g = new Uint8Array(H * n);
  const mtRows = new Uint8Array(2 * (n - 1));
  const times2 = MUL.subarray(2 << 8, (2 << 8) + 256); // alpha is the octet 2
  for (let i = 0; i < H; i++) g[i * n + n - 1] = EXP[i]!; // MT's last column: alpha^i
  for (let j = n - 2; j >= 0; j--) {
    for (let i = 0; i < H; i++) g[i * n + j] = times2[g[i * n + j + 1]!]!;
    const r6 = rand(j + 1, 6, H);
    const r7 = (r6 + rand(j + 1, 7, H - 1) + 1) % H;
    g[r6 * n + j]! ^= 1;
    g[r7 * n + j]! ^= 1;
    mtRows[2 * j] = r6;
    mtRows[2 * j + 1] = r7;
  }
  const made = { g, mtRows };
  hdpcCache.set(p.Kp, made);
  return made;
}

/**
 * G_HDPC = MT * GAMMA (section 5.3.3.3): H rows of K'+S coefficients, row-major. Row i, column j is
 * sum_{k >= j} MT[i][k] * alpha^(k-j), computed right to left as G[i][j] = alpha*G[i][j+1] + MT[i][j].
 */
export function hdpcMatrix(p: RaptorQParams): Uint8Array {
  return hdpc(p).g;
}

/** Per K': the LDPC rows' columns (CSR), and the LT rows' columns of ISIs met so far (encIndices is the costly part). */
interface RowCache {
  readonly ldpcStart: Int32Array;
  readonly ldpcCols: Int32Array;
  /** ISI -> its LT row's columns; ISIs below ltLimit only (the systematic ones and the first repair ones). */
  readonly lt: (Int32Array | undefined)[];
  readonly ltLimit: number;
}
const rowCaches = new Map<number, RowCache>();

function rowCache(p: RaptorQParams): RowCache {
  const cached = rowCaches.get(p.Kp);
  if (cached) return cached;
  const { S, B, W, P } = p;
  const ldpc: number[][] = Array.from({ length: S }, () => []);
  for (let i = 0; i < B; i++) {
    const a = 1 + Math.floor(i / S);
    let b = i % S;
    ldpc[b]!.push(i);
    b = (b + a) % S;
    ldpc[b]!.push(i);
    b = (b + a) % S;
    ldpc[b]!.push(i);
  }
  for (let i = 0; i < S; i++) ldpc[i]!.push(B + i, W + (i % P), W + ((i + 1) % P));
  const ldpcStart = new Int32Array(S + 1);
  for (let r = 0; r < S; r++) ldpcStart[r + 1] = ldpcStart[r]! + ldpc[r]!.length;
  const ldpcCols = new Int32Array(ldpcStart[S]!);
  for (let r = 0; r < S; r++) ldpcCols.set(ldpc[r]!, ldpcStart[r]!);
  // Every systematic ISI and as many repair ISIs again: an encoder's rows and a decoder's, at any loss rate
  // a block survives, are then built once per K'.
  const made: RowCache = { ldpcStart, ldpcCols, lt: [], ltLimit: 2 * p.Kp };
  rowCaches.set(p.Kp, made);
  return made;
}

function ltRow(p: RaptorQParams, cache: RowCache, isi: number): Int32Array | number[] {
  if (isi >= cache.ltLimit) return encIndices(p, isi);
  return (cache.lt[isi] ??= Int32Array.from(encIndices(p, isi)));
}

/** Column lists of the binary rows (LDPC and LT) in CSR form; HDPC rows are empty here. */
function sparseRows(p: RaptorQParams, isis: ArrayLike<number>): { start: Int32Array; cols: Int32Array } {
  const { S, H } = p;
  const cache = rowCache(p);
  const lt: (Int32Array | number[])[] = [];
  for (let t = 0; t < isis.length; t++) lt.push(ltRow(p, cache, isis[t]!));
  const M = S + H + isis.length;
  const start = new Int32Array(M + 1);
  start.set(cache.ldpcStart, 0);
  let nnz = cache.ldpcStart[S]!;
  for (let r = S; r < S + H; r++) start[r + 1] = nnz;
  for (let t = 0; t < lt.length; t++) {
    nnz += lt[t]!.length;
    start[S + H + t + 1] = nnz;
  }
  const cols = new Int32Array(nnz);
  cols.set(cache.ldpcCols, 0);
  for (let t = 0; t < lt.length; t++) cols.set(lt[t]!, start[S + H + t]!);
  return { start, cols };
}

// Column states while peeling.
const ACTIVE = 0;
const DECIDED = 1;
const INACTIVE = 2;

/**
 * Phase 1: peeling with inactivation over the binary rows (see the top of this file). A class with its state in
 * fields rather than closures over local variables: V8 keeps variables that closures capture in context slots (a
 * load and a hole check per access); the HDPC coefficient loop ran 4-6x faster once moved out of such a scope.
 */
class Peeling {
  /** Per-row bitsets over the inactive columns, `words` 32-bit words a row; widened (doubled) as needed. */
  words: number;
  bits: Uint32Array;
  readonly rowDeg: Int32Array;
  readonly done: Uint8Array;
  readonly colState: Uint8Array;
  /** Inactive columns in inactivation order (bit q of a row's bitset is column inactiveCol[q]). */
  readonly inactiveCol: number[] = [];
  readonly pivotRows: number[] = [];
  readonly pivotCols: number[] = [];
  /** Rows by active degree; entries go stale when a row's degree drops and are skipped on pop. */
  private readonly buckets: number[][] = [];
  private minBucket = Infinity;

  constructor(
    private readonly p: RaptorQParams,
    private readonly M: number,
    private readonly rowStart: Int32Array,
    private readonly rowCols: Int32Array,
    private readonly colStart: Int32Array,
    private readonly colRows: Int32Array,
  ) {
    const { S, H, W, L, P } = p;
    const firstLt = S + H;
    this.colState = new Uint8Array(L);
    for (let q = 0; q < P; q++) {
      this.colState[W + q] = INACTIVE;
      this.inactiveCol.push(W + q);
    }
    const words = (this.words = Math.max(1, Math.ceil((P + 32) / 32)));
    const bits = (this.bits = new Uint32Array(M * words));
    const rowDeg = (this.rowDeg = new Int32Array(M));
    this.done = new Uint8Array(M);
    for (let r = 0; r < M; r++) {
      if (r >= S && r < firstLt) continue;
      let d = 0;
      for (let i = rowStart[r]!; i < rowStart[r + 1]!; i++) {
        const c = rowCols[i]!;
        if (c >= W) bits[r * words + ((c - W) >>> 5)]! |= 1 << ((c - W) & 31);
        else d++;
      }
      rowDeg[r] = d;
    }
    for (let r = 0; r < M; r++) if (r < S || r >= firstLt) this.push(r);
  }

  private push(r: number): void {
    const d = this.rowDeg[r]!;
    if (d <= 0) return;
    (this.buckets[d] ??= []).push(r);
    if (d < this.minBucket) this.minBucket = d;
  }

  private popMin(): number {
    const { buckets, done, rowDeg } = this;
    while (this.minBucket < buckets.length) {
      const bucket = buckets[this.minBucket];
      if (bucket) {
        while (bucket.length > 0) {
          const r = bucket.pop()!;
          if (!done[r] && rowDeg[r] === this.minBucket) return r;
        }
      }
      this.minBucket++;
    }
    return -1;
  }

  private inactivate(c: number): void {
    const q = this.inactiveCol.length;
    this.inactiveCol.push(c);
    this.colState[c] = INACTIVE;
    if (q >= this.words * 32) {
      const { M, words } = this;
      const wider = words * 2;
      const grown = new Uint32Array(M * wider);
      for (let r = 0; r < M; r++) grown.set(this.bits.subarray(r * words, r * words + words), r * wider);
      this.bits = grown;
      this.words = wider;
    }
    const { bits, words, colStart, colRows, done, rowDeg } = this;
    const w = q >>> 5;
    const bit = 1 << (q & 31);
    for (let i = colStart[c]!; i < colStart[c + 1]!; i++) {
      const x = colRows[i]!;
      if (done[x]) continue;
      bits[x * words + w]! |= bit;
      rowDeg[x]!--;
      this.push(x);
    }
  }

  /** Peels every binary row it can, XORing symbols in the arena; leaves the rest to the dense phase. */
  run(arena: SymbolArena): void {
    const { rowStart, rowCols, colStart, colRows, colState, done, rowDeg, pivotRows, pivotCols } = this;
    const rowsToXor = new Int32Array(this.M);
    for (let r = this.popMin(); r >= 0; r = this.popMin()) {
      let pivot = -1;
      for (let i = rowStart[r]!; i < rowStart[r + 1]!; i++) {
        const c = rowCols[i]!;
        if (colState[c] !== ACTIVE) continue;
        if (pivot < 0) pivot = c;
        else this.inactivate(c);
      }
      colState[pivot] = DECIDED;
      done[r] = 1;
      pivotRows.push(r);
      pivotCols.push(pivot);
      const { bits, words } = this; // after inactivations, which may widen them
      const rb = r * words;
      let touched = 0;
      for (let i = colStart[pivot]!; i < colStart[pivot + 1]!; i++) {
        const x = colRows[i]!;
        if (done[x]) continue;
        const xb = x * words;
        for (let k = 0; k < words; k++) bits[xb + k]! ^= bits[rb + k]!;
        rowsToXor[touched++] = x;
        rowDeg[x]!--;
        this.push(x);
      }
      arena.xorToMany(r, rowsToXor, touched);
    }
    // Columns no binary row could take (only the HDPC rows hold them) are solved densely too.
    for (let c = 0; c < this.p.W; c++) if (colState[c] === ACTIVE) this.inactivate(c);
  }
}

/**
 * Solves for the intermediate symbols. The caller provides an arena with at least S+H+isis.length+1
 * slots (the last one is scratch); `original(t)` is the right-hand side of LT row t (null: zero). Returns null when the rows
 * do not determine C (the decoder then needs more symbols); on success C[j] is in slot
 * slotOfColumn[j]. The arena's contents are overwritten.
 */
export function solve(
  p: RaptorQParams,
  isis: ArrayLike<number>,
  arena: SymbolArena,
  original: (t: number) => Uint8Array | null,
): Solution | null {
  const { S, H, L } = p;
  const n = p.Kp + S;
  const firstLt = S + H;
  const M = firstLt + isis.length;
  if (M < L) return null;

  for (let r = 0; r < firstLt; r++) arena.zero(r);
  for (let t = 0; t < isis.length; t++) {
    const data = original(t);
    if (data) arena.load(firstLt + t, data);
    else arena.zero(firstLt + t);
  }

  const { start: rowStart, cols: rowCols } = sparseRows(p, isis);
  // Rows of each column (binary rows only).
  const colStart = new Int32Array(L + 1);
  for (let i = 0; i < rowCols.length; i++) colStart[rowCols[i]! + 1]!++;
  for (let j = 0; j < L; j++) colStart[j + 1]! += colStart[j]!;
  const colRows = new Int32Array(rowCols.length);
  const fill = colStart.slice(0, L);
  for (let r = 0; r < M; r++) {
    for (let i = rowStart[r]!; i < rowStart[r + 1]!; i++) colRows[fill[rowCols[i]!]!++] = r;
  }

  const peeling = new Peeling(p, M, rowStart, rowCols, colStart, colRows);
  peeling.run(arena);
  const { pivotRows, pivotCols, inactiveCol, done, bits, words } = peeling;

  // Dense phase: the rows peeling left (all-inactive now) plus the HDPC rows, over u columns.
  const u = inactiveCol.length;
  const denseSlots: number[] = [];
  for (let r = 0; r < M; r++) if ((r < S || r >= firstLt) && !done[r]) denseSlots.push(r);
  const sparseLeft = denseSlots.length;
  for (let h = 0; h < H; h++) denseSlots.push(S + h);
  const R = denseSlots.length;
  if (R < u) return null;
  // Rows padded to whole 32-bit words, so binary row operations XOR four columns at a time.
  const rowBytes = (u + 3) & ~3;
  const dense = new Uint8Array(R * rowBytes);
  const dense32 = new Uint32Array(dense.buffer);
  const rowWords = rowBytes >>> 2;
  for (let d = 0; d < sparseLeft; d++) {
    const rb = denseSlots[d]! * words;
    for (let q = 0; q < u; q++) if ((bits[rb + (q >>> 5)]! >>> (q & 31)) & 1) dense[d * rowBytes + q] = 1;
  }
  // HDPC row h loses every pivot column c_k with coefficient beta = G_HDPC[h][c_k]: its inactive part
  // gains beta * (pivot row's bits) and its symbol beta * (pivot row's symbol).
  const { g, mtRows } = hdpc(p);
  hdpcInactiveRows(g, n, H, pivotRows, pivotCols, bits, words, inactiveCol, dense, sparseLeft * rowBytes, rowBytes);
  // The symbols, all H rows at once through G_HDPC = MT * GAMMA instead of H multiply-adds per pivot:
  // with Y_j the pivot row's symbol for a pivot column j (else 0), GAMMA * Y is the running sum
  // z_j = alpha * z_{j-1} + Y_j, and MT adds z_j to the two rows it marks in column j (and
  // alpha^h * z_{n-1} to row h). One fused pass per column (alphaStep), from the first pivot on.
  const z = M; // scratch slot
  const rowOfPivot = new Int32Array(n).fill(-1);
  for (let k = 0; k < pivotRows.length; k++) rowOfPivot[pivotCols[k]!] = pivotRows[k]!;
  let zLive = false;
  for (let j = 0; j < n; j++) {
    const r = rowOfPivot[j]!;
    if (!zLive) {
      if (r < 0) continue; // z is still zero
      arena.zero(z);
      zLive = true;
    }
    if (j < n - 1) arena.alphaStep(z, r, S + mtRows[2 * j]!, S + mtRows[2 * j + 1]!);
    else {
      arena.alphaStep(z, r, -1, -1);
      for (let h = 0; h < H; h++) arena.mulXor(S + h, z, EXP[h]!);
    }
  }

  // Gauss-Jordan over GF(256); order[q] is the dense row that becomes column q's pivot.
  const order = Int32Array.from({ length: R }, (_, d) => d);
  for (let q = 0; q < u; q++) {
    let at = q;
    while (at < R && dense[order[at]! * rowBytes + q] === 0) at++;
    if (at === R) return null; // rank deficient: more symbols needed
    const pr = order[at]!;
    order[at] = order[q]!;
    order[q] = pr;
    const pb = pr * rowBytes;
    const v = dense[pb + q]!;
    if (v !== 1) {
      const inv = INV[v]!;
      const mul = MUL.subarray(inv << 8, (inv << 8) + 256);
      for (let j = q; j < u; j++) dense[pb + j] = mul[dense[pb + j]!]!;
      arena.scale(denseSlots[pr]!, inv);
    }
    for (let e = 0; e < R; e++) {
      if (e === q) continue;
      const x = order[e]!;
      const xb = x * rowBytes;
      const f = dense[xb + q]!;
      if (f === 0) continue;
      if (f === 1) {
        // Columns before q are zero in the pivot row (eliminated already): XOR from q's word on.
        const xw = x * rowWords;
        const pw = pr * rowWords;
        for (let w = q >>> 2; w < rowWords; w++) dense32[xw + w]! ^= dense32[pw + w]!;
      } else {
        const mul = MUL.subarray(f << 8, (f << 8) + 256);
        for (let j = q; j < u; j++) dense[xb + j]! ^= mul[dense[pb + j]!]!;
      }
      arena.mulXor(denseSlots[x]!, denseSlots[pr]!, f);
    }
  }

  const slotOfColumn = new Int32Array(L).fill(-1);
  for (let q = 0; q < u; q++) slotOfColumn[inactiveCol[q]!] = denseSlots[order[q]!]!;

  // Back-substitution through the original rows, in pivot order: one pass over each row for all its
  // known columns.
  let widest = 0;
  for (let r = 0; r < M; r++) widest = Math.max(widest, rowStart[r + 1]! - rowStart[r]!);
  const knownSlots = new Int32Array(widest);
  for (let k = 0; k < pivotRows.length; k++) {
    const r = pivotRows[k]!;
    const c = pivotCols[k]!;
    const data = r >= firstLt ? original(r - firstLt) : null;
    if (data) arena.load(r, data);
    else arena.zero(r);
    let known = 0;
    for (let i = rowStart[r]!; i < rowStart[r + 1]!; i++) {
      const j = rowCols[i]!;
      if (j !== c) knownSlots[known++] = slotOfColumn[j]!;
    }
    arena.xorMany(r, knownSlots, known);
    slotOfColumn[c] = r;
  }
  return { slotOfColumn, inactivated: u, denseRows: R };
}

/**
 * The HDPC rows' coefficients over the u inactive columns (dense rows from rowBase, rowBytes apart): G_HDPC's own
 * (plus the identity part at column n + h), and for every pivot column c_k eliminated with coefficient
 * beta = G_HDPC[h][c_k], beta times that pivot row's inactive part. A function of its own (no captured variables:
 * V8 keeps its typed arrays and counters in registers), grouping the pivot rows' bitsets per coefficient and
 * then per bit of it (eight bit planes) instead of per column.
 */
function hdpcInactiveRows(
  g: Uint8Array,
  n: number,
  H: number,
  pivotRows: readonly number[],
  pivotCols: readonly number[],
  bits: Uint32Array,
  words: number,
  inactiveCol: readonly number[],
  dense: Uint8Array,
  rowBase: number,
  rowBytes: number,
): void {
  const u = inactiveCol.length;
  const acc = new Uint32Array(256 * words); // XOR of the pivot rows' bitsets, grouped by coefficient
  const planes = new Uint32Array(8 * words); // bit plane b: XOR of acc[beta] over the betas with bit b set
  const pivots = pivotRows.length;
  for (let h = 0; h < H; h++) {
    const row = rowBase + h * rowBytes;
    const gh = h * n;
    for (let q = 0; q < u; q++) {
      const c = inactiveCol[q]!;
      dense[row + q] = c < n ? g[gh + c]! : c === n + h ? 1 : 0;
    }
    acc.fill(0);
    for (let k = 0; k < pivots; k++) {
      const beta = g[gh + pivotCols[k]!]!;
      if (beta === 0) continue;
      const rb = pivotRows[k]! * words;
      const ab = beta * words;
      for (let w = 0; w < words; w++) acc[ab + w]! ^= bits[rb + w]!;
    }
    // Column q gains sum_beta beta * [bit q of acc[beta]]: bit b of that sum is bit q of planes[b].
    planes.fill(0);
    for (let beta = 1; beta < 256; beta++) {
      const ab = beta * words;
      for (let b = 0; b < 8; b++) {
        if (!((beta >>> b) & 1)) continue;
        const pb = b * words;
        for (let w = 0; w < words; w++) planes[pb + w]! ^= acc[ab + w]!;
      }
    }
    for (let q = 0; q < u; q++) {
      const w = q >>> 5;
      const shift = q & 31;
      let v = 0;
      for (let b = 0; b < 8; b++) v |= ((planes[b * words + w]! >>> shift) & 1) << b;
      dense[row + q]! ^= v;
    }
  }
}

/**
 * Enc (section 5.3.5.3): encoding symbol ISI `isi` as the XOR of its intermediate symbols, built in
 * arena slot `scratch` (which must not hold an intermediate symbol).
 */
export function encodeSymbol(p: RaptorQParams, arena: SymbolArena, slotOfColumn: Int32Array, isi: number, scratch: number): void {
  const idx = encIndices(p, isi);
  arena.copy(scratch, slotOfColumn[idx[0]!]!);
  const rest = new Int32Array(idx.length - 1);
  for (let i = 1; i < idx.length; i++) rest[i - 1] = slotOfColumn[idx[i]!]!;
  arena.xorMany(scratch, rest, rest.length);
}
