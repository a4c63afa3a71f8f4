// RaptorQ building blocks against RFC 6330's definitions: the tables' invariants, Rand, Deg, the
// tuple generator and Enc's index walk, each for inputs worked out from the RFC's formulas
// (an independent transcription, not this code), and G_HDPC against MT * GAMMA multiplied out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encIndices, deg, isiOf, MAX_SOURCE_SYMBOLS, rand, raptorqParams, tuple } from '../../src/fec/raptorq/params.js';
import { hdpcMatrix } from '../../src/fec/raptorq/solver.js';
import { DEGREE_F, SYSTEMATIC_COLUMNS, SYSTEMATIC_TABLE, V0, V1, V2, V3 } from '../../src/fec/raptorq/tables.js';
import { RaptorQEncoder } from '../../src/fec/raptorq/index.js';
import { slowMul } from './reference.js';

function isPrime(n: number): boolean {
  if (n < 2) return false;
  for (let f = 2; f * f <= n; f++) if (n % f === 0) return false;
  return true;
}

test('tables: sizes and the invariants section 5.6 states (S and W prime, K\' ascending 10..56403)', () => {
  for (const v of [V0, V1, V2, V3]) assert.equal(v.length, 256);
  assert.equal(DEGREE_F.length, 31);
  assert.equal(DEGREE_F[0], 0);
  assert.equal(DEGREE_F[30], 1 << 20);
  for (let d = 1; d < 31; d++) assert.ok(DEGREE_F[d]! > DEGREE_F[d - 1]!);
  const rows = SYSTEMATIC_TABLE.length / SYSTEMATIC_COLUMNS;
  assert.equal(rows, 477);
  assert.equal(SYSTEMATIC_TABLE[0], 10);
  assert.equal(MAX_SOURCE_SYMBOLS, 56403);
  let last = 0;
  for (let r = 0; r < rows; r++) {
    const [Kp, J, S, H, W] = Array.from(SYSTEMATIC_TABLE.subarray(r * 5, r * 5 + 5));
    assert.ok(Kp! > last, `K' ascending at row ${r}`);
    last = Kp!;
    assert.ok(J! <= 1000 && isPrime(S!) && isPrime(W!) && H! >= 10 && H! <= 16, `row ${r}: K'=${Kp}`);
    // P = L - W must leave room for the H HDPC symbols among the PI symbols.
    assert.ok(Kp! + S! + H! - W! >= H!, `row ${r}: P >= H`);
  }
  // Spot checks against the RFC's printed values.
  assert.equal(V0[0], 251291136);
  assert.equal(V0[35], 3535520147);
  assert.equal(V3[255], 3432275192);
  assert.deepEqual(Array.from(SYSTEMATIC_TABLE.subarray(0, 5)), [10, 254, 7, 10, 17]);
  assert.deepEqual(Array.from(SYSTEMATIC_TABLE.subarray(476 * 5)), [56403, 471, 907, 16, 56951]);
});

test('Rand (5.3.5.1): one byte of y per table, plus i, mod 256', () => {
  // Rand[0, 0, m]: every index is 0, so V0[0] ^ V1[0] ^ V2[0] ^ V3[0] = 415381529.
  assert.equal((V0[0]! ^ V1[0]! ^ V2[0]! ^ V3[0]!) >>> 0, 415381529);
  assert.equal(rand(0, 0, 2 ** 32), 415381529);
  assert.equal(rand(0, 0, 1000), 529);
  // y = 0x01020304, i = 5: indices 4+5, 3+5, 2+5, 1+5 -> V0[9] ^ V1[8] ^ V2[7] ^ V3[6] = 955053776.
  assert.equal(rand(0x01020304, 5, 2 ** 32), 955053776);
  assert.equal(rand(0x01020304, 5, 97), 955053776 % 97);
  // Index wrap-around: (255 + 255) mod 256 in every byte.
  assert.equal(rand(0xffffffff, 255, 1 << 20), 421840);
});

test('Deg (5.3.5.2): f[d-1] <= v < f[d], capped at W - 2', () => {
  assert.equal(deg(0, 1000), 1);
  assert.equal(deg(5242, 1000), 1);
  assert.equal(deg(5243, 1000), 2);
  assert.equal(deg(529530, 1000), 2);
  assert.equal(deg(529531, 1000), 3);
  assert.equal(deg(1017661, 1000), 29);
  assert.equal(deg(1017662, 1000), 30);
  assert.equal(deg((1 << 20) - 1, 1000), 30);
  assert.equal(deg((1 << 20) - 1, 17), 15); // W - 2
});

test('parameters (5.3.3.3): K\' is the first table entry >= K; P1 is the smallest prime >= P', () => {
  const p = raptorqParams(11);
  assert.deepEqual({ ...p }, { K: 11, Kp: 12, J: 630, S: 7, H: 10, W: 19, L: 29, P: 10, P1: 11, B: 12 });
  assert.equal(raptorqParams(1).Kp, 10);
  assert.equal(raptorqParams(10).Kp, 10);
  assert.deepEqual([raptorqParams(8192).Kp, raptorqParams(8192).P, raptorqParams(8192).P1], [8194, 143, 149]);
  assert.equal(raptorqParams(56403).Kp, 56403);
  assert.equal(isiOf(p, 10), 10); // source
  assert.equal(isiOf(p, 11), 12); // first repair symbol skips the padding ISI 11
  for (const bad of [0, -1, 1.5, 56404, Number.NaN]) {
    assert.throws(() => raptorqParams(bad), /K=.* out of range \(expected an integer 1\.\.56403\)/);
  }
});

// Worked from the RFC's formulas by an independent transcription: [K, X, tuple, Enc indices].
const TUPLES: [number, number, number[], number[]][] = [
  [10, 0, [2, 4, 9, 2, 5, 1], [9, 13, 18, 23]],
  [10, 1, [7, 6, 12, 2, 1, 3], [12, 1, 7, 13, 2, 8, 14, 20, 21]],
  [10, 15, [2, 7, 7, 3, 2, 8], [7, 14, 25, 18, 20]],
  [10, 16777215, [10, 4, 3, 2, 2, 5], [3, 7, 11, 15, 2, 6, 10, 14, 1, 5, 22, 24]],
  [11, 16777216, [3, 2, 16, 3, 8, 9], [16, 18, 1, 28, 25, 22]],
  [100, 106, [1, 42, 44, 3, 12, 13], [44, 126, 121, 116]],
  [1000, 1007, [8, 275, 366, 2, 8, 36], [366, 641, 916, 170, 445, 720, 995, 249, 1057, 1065]],
  [8192, 1, [2, 6477, 1252, 3, 17, 7], [1252, 7729, 8280, 8297, 8314]],
  [8192, 8199, [2, 8229, 6207, 2, 89, 50], [6207, 6163, 8323, 8412]],
  [8192, 16777217, [4, 5432, 4648, 2, 104, 81], [4648, 1807, 7239, 4398, 8354, 8309]],
];

test('Tuple (5.3.5.4) and Enc\'s walk over the LT and PI symbols (5.3.5.3)', () => {
  for (const [K, X, want, indices] of TUPLES) {
    const p = raptorqParams(K);
    const t = tuple(p, X);
    assert.deepEqual([t.d, t.a, t.b, t.d1, t.a1, t.b1], want, `tuple K=${K} X=${X}`);
    assert.deepEqual(encIndices(p, X), indices, `Enc indices K=${K} X=${X}`);
  }
  // d = 30 (the largest degree) walks 30 LT symbols; all indices distinct and in range.
  const p = raptorqParams(8192);
  const idx = encIndices(p, 8192);
  assert.equal(idx.length, 32);
  assert.equal(new Set(idx).size, 32);
  assert.ok(idx.slice(0, 30).every((j) => j < p.W) && idx.slice(30).every((j) => j >= p.W && j < p.L));
});

test('G_HDPC equals MT * GAMMA multiplied out (5.3.3.3), alpha powers taken mod 255', () => {
  for (const K of [10, 300]) {
    const p = raptorqParams(K);
    const n = p.Kp + p.S;
    const alphaPow = (e: number): number => {
      let r = 1;
      for (let i = 0; i < e % 255; i++) r = slowMul(r, 2);
      return r;
    };
    const mt = Array.from({ length: p.H }, () => new Uint8Array(n));
    for (let j = 0; j < n - 1; j++) {
      const r6 = rand(j + 1, 6, p.H);
      mt[r6]![j] = 1;
      mt[(r6 + rand(j + 1, 7, p.H - 1) + 1) % p.H]![j] = 1;
    }
    for (let i = 0; i < p.H; i++) mt[i]![n - 1] = alphaPow(i);
    const g = hdpcMatrix(p);
    for (let i = 0; i < p.H; i++) {
      for (let j = 0; j < n; j++) {
        let v = 0;
        for (let k = j; k < n; k++) if (mt[i]![k]) v ^= slowMul(mt[i]![k]!, alphaPow(k - j));
        assert.equal(g[i * n + j], v, `K'=${p.Kp} row ${i} column ${j}`);
      }
    }
  }
});

test('J(K\') makes the systematic constraint matrix invertible: a sample of Table 2 encodes', () => {
  // Every 12th K' up to 8192, the largest <= 8192, and 1698 / 8837 (where alpha^(i-j) needs the
  // exponent taken mod 255). The encoder throws if the K' systematic rows are singular.
  const rows = SYSTEMATIC_TABLE.length / SYSTEMATIC_COLUMNS;
  const sample = new Set<number>([1698, 8837]);
  for (let r = 0; r < rows; r += 12) if (SYSTEMATIC_TABLE[r * 5]! <= 8192) sample.add(SYSTEMATIC_TABLE[r * 5]!);
  sample.add(8111);
  for (const Kp of sample) {
    const block = new Uint8Array(Kp * 4).map((_, i) => (i * 7 + 1) & 255);
    const enc = new RaptorQEncoder(block, 4, Kp);
    assert.equal(enc.params.Kp, Kp);
    assert.ok(enc.inactivated >= enc.params.P);
  }
});
