// The closed-form decode coefficients against plain Gaussian elimination of the generator rows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { gfMul, INV } from '../../src/fec/gf256.js';
import { cauchy, invertMatrix, planDecode, repairRow } from '../../src/fec/matrix.js';

function matMul(a: Uint8Array, b: Uint8Array, n: number): Uint8Array {
  const r = new Uint8Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let t = 0; t < n; t++) s ^= gfMul(a[i * n + t]!, b[t * n + j]!);
      r[i * n + j] = s;
    }
  return r;
}

/** Generator row of a symbol id: a unit row for a source symbol, else the repair row (Cauchy or extension). */
function generatorRow(id: number, k: number): Uint8Array {
  if (id < k) {
    const r = new Uint8Array(k);
    r[id] = 1;
    return r;
  }
  return repairRow(id, k);
}

/** Seeded Fisher-Yates pick of k distinct ids out of 0..n-1. */
function pick(k: number, n: number, seed: number): number[] {
  const all = Array.from({ length: n }, (_, i) => i);
  let s = seed >>> 0 || 1;
  for (let i = n - 1; i > 0; i--) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    const j = s % (i + 1);
    [all[i], all[j]] = [all[j]!, all[i]!];
  }
  return all.slice(0, k);
}

test('cauchy(sid, j) = 1 / (sid XOR j)', () => {
  for (let sid = 1; sid < 256; sid++)
    for (let j = 0; j < sid; j++) assert.equal(gfMul(cauchy(sid, j), sid ^ j), 1);
});

test('invertMatrix: A * A^-1 = I on Cauchy submatrices; singular matrices throw', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 24 }), fc.integer(), (e, seed) => {
      const ids = pick(2 * e, 256, seed);
      const xs = ids.slice(0, e);
      const ys = ids.slice(e);
      const a = new Uint8Array(e * e);
      for (let i = 0; i < e; i++) for (let j = 0; j < e; j++) a[i * e + j] = INV[xs[i]! ^ ys[j]!]!;
      const id = matMul(a, invertMatrix(a, e), e);
      for (let i = 0; i < e; i++) for (let j = 0; j < e; j++) assert.equal(id[i * e + j], i === j ? 1 : 0);
    }),
    { numRuns: 60 },
  );
  assert.throws(() => invertMatrix(Uint8Array.from([1, 2, 1, 2]), 2), /singular/);
});

test('planDecode equals the rows of G^-1 (Gaussian elimination) for the missing sources', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 0, max: 255 }), fc.integer(), (k, extra, seed) => {
      const n = Math.min(256, k + 1 + (extra % 60));
      const ids = pick(k, n, seed);
      const plan = planDecode(k, ids)!;
      const missing = Array.from({ length: k }, (_, j) => j).filter((j) => !ids.includes(j));
      assert.deepEqual(plan.missing, missing);
      if (missing.length === 0) return;
      // G: row t = generator row of ids[t]; block = G^-1 * received, so source m = sum_t G^-1[m][t] * received_t.
      const g = new Uint8Array(k * k);
      ids.forEach((id, t) => g.set(generatorRow(id, k), t * k));
      const gi = invertMatrix(g, k);
      assert.equal(plan.terms.length, k);
      assert.deepEqual([...plan.terms].sort((a, b) => a - b), Array.from({ length: k }, (_, t) => t));
      missing.forEach((m, r) => {
        plan.terms.forEach((t, col) => {
          assert.equal(plan.coefs[r * k + col], gi[m * k + t], `k=${k} ids=${ids} missing ${m} term ${t}`);
        });
      });
    }),
    { numRuns: 150 },
  );
});

test('with extension ids, planDecode equals G^-1 when the rows are independent, and is null when they are not', () => {
  let singular = 0;
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 0, max: 2 ** 31 - 1 }), (k, seed) => {
      // Some sources, some Cauchy parities and extension ids in place of every other parity: k ids in all.
      const ids = pick(k, Math.min(256, 2 * k + 1), seed).map((id, t) => (id >= k && t % 2 === 0 ? 256 + ((seed + t * 7919) % 65280) : id));
      if (new Set(ids).size !== k || ids.every((id) => id < 256)) return;
      const g = new Uint8Array(k * k);
      ids.forEach((id, t) => g.set(generatorRow(id, k), t * k));
      let gi: Uint8Array | null = null;
      try {
        gi = invertMatrix(g, k);
      } catch {
        gi = null;
      }
      const plan = planDecode(k, ids);
      assert.equal(plan === null, gi === null, `k=${k} ids=${ids}`);
      if (!plan || !gi) {
        singular++;
        return;
      }
      plan.missing.forEach((m, r) => {
        plan.terms.forEach((t, col) => assert.equal(plan.coefs[r * k + col], gi[m * k + t], `k=${k} ids=${ids} missing ${m} term ${t}`));
      });
    }),
    { numRuns: 300 },
  );
  assert.ok(singular < 30, `${singular} of 300 singular`);
});
