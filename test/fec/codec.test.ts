// The erasure code end to end: known answers, any-k-of-n decoding for both kernels, wasm === js,
// and clear errors on bad input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MAX_SYMBOL_ID, fecKernelName, getCodec, type ErasureCodec } from '../../src/fec/index.js';
import { wasmUnavailableReason } from '../../src/fec/kernel-wasm.js';
import { dependentExtensionPair, slowMul, xorshift } from './reference.js';

const KERNELS = ['wasm', 'js'] as const;

// Independent slow reference: shift-and-add multiply and brute-force inverse, no tables.
function slowInv(a: number): number {
  for (let b = 1; b < 256; b++) if (slowMul(a, b) === 1) return b;
  throw new Error('no inverse');
}
function slowParity(block: Uint8Array, k: number, S: number, sid: number): Uint8Array {
  const p = new Uint8Array(S);
  for (let j = 0; j < k; j++) {
    const c = slowInv(sid ^ j);
    for (let x = 0; x < S; x++) p[x]! ^= slowMul(c, block[j * S + x]!);
  }
  return p;
}

function randomBlock(len: number, seed: number): Uint8Array {
  const next = xorshift(seed);
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = next() & 255;
  return b;
}
function shuffle<T>(a: T[], next: () => number): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = next() % (i + 1);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}
/** A copy of `src` at an odd offset inside a bigger buffer, like a symbol inside a received packet. */
function atOffset(src: Uint8Array, offset: number): Uint8Array {
  const buf = new Uint8Array(src.length + offset + 3).fill(0xa5);
  buf.set(src, offset);
  return buf.subarray(offset, offset + src.length);
}

type Pick = 'random' | 'max-parity' | 'min-parity';
/** Chooses k distinct ids out of 0..n-1 and returns them with their symbols. */
function received(codec: ErasureCodec, block: Uint8Array, n: number, how: Pick, seed: number, offset = 0) {
  const { k, symbolSize: S } = codec;
  const next = xorshift(seed);
  const parityIds = Array.from({ length: n - k }, (_, i) => k + i);
  const sourceIds = Array.from({ length: k }, (_, j) => j);
  let ids: number[];
  if (how === 'random') ids = shuffle([...sourceIds, ...parityIds], next).slice(0, k);
  else if (how === 'max-parity') {
    const par = shuffle(parityIds, next).slice(0, k);
    ids = shuffle([...par, ...shuffle(sourceIds, next).slice(0, k - par.length)], next);
  } else ids = shuffle([...shuffle(sourceIds, next).slice(0, k - 1), ...shuffle(parityIds, next).slice(0, 1)], next);
  const want = ids.filter((id) => id >= k);
  const parity = codec.encode(block, want);
  const symbols = ids.map((id) => {
    const s = id < k ? block.slice(id * S, id * S + S) : parity[want.indexOf(id)]!;
    return offset ? atOffset(s, offset) : s;
  });
  return { ids, symbols };
}

test('the wasm SIMD kernel is built and is the default', () => {
  // Node 20 always has SIMD128 and the build always assembles kernel.wasm, so 'js' here is a bug.
  assert.equal(wasmUnavailableReason(), null);
  assert.equal(fecKernelName(), 'wasm-simd');
  assert.equal(MAX_SYMBOL_ID, 65535);
  assert.equal(getCodec(10, 100), getCodec(10, 100, { kernel: 'wasm' }));
  assert.notEqual(getCodec(10, 100, { kernel: 'js' }), getCodec(10, 100, { kernel: 'wasm' }));
  assert.equal(getCodec(10, 100, { kernel: 'js' }), getCodec(10, 100, { kernel: 'js' }));
  assert.equal(getCodec(10, 100).k, 10);
  assert.equal(getCodec(10, 100).symbolSize, 100);
});

test('known answers: parity bytes from an independent slow reference', () => {
  const k = 4;
  const S = 5;
  const block = Uint8Array.from({ length: k * S }, (_, i) => (i * 29 + 7) & 255);
  // Hard-coded: computed once by a separate bitwise implementation, so a wrong table cannot make
  // both kernels (and this file's reference) agree on a wrong answer.
  const expected: Record<number, number[]> = {
    4: [10, 240, 110, 22, 188],
    5: [105, 39, 222, 144, 3],
    77: [11, 202, 44, 159, 151],
    255: [54, 170, 97, 39, 162],
  };
  const ids = Object.keys(expected).map(Number);
  for (const sid of ids) assert.deepEqual([...slowParity(block, k, S, sid)], expected[sid]);
  for (const kernel of KERNELS) {
    const parity = getCodec(k, S, { kernel }).encode(block, ids);
    ids.forEach((sid, i) => assert.deepEqual([...parity[i]!], expected[sid], `${kernel} parity ${sid}`));
  }
  // A bigger block against the slow reference, with odd and 16-unaligned sizes and all ids.
  for (const [k2, S2] of [[7, 33], [1, 17], [20, 16]] as const) {
    const b = randomBlock(k2 * S2, k2 * 1000 + S2);
    const sids = Array.from({ length: 256 - k2 }, (_, i) => k2 + i);
    const ref = sids.map((sid) => slowParity(b, k2, S2, sid));
    for (const kernel of KERNELS) assert.deepEqual(getCodec(k2, S2, { kernel }).encode(b, sids), ref, `${kernel} k=${k2} S=${S2}`);
  }
});

test('property: any k of n symbols rebuild the block, both kernels; wasm encode === js encode', () => {
  const BUDGET = 48_000; // k * symbolSize, keeps the JS kernel's runs short
  const arb = fc.integer({ min: 1, max: 255 }).chain((k) =>
    fc.record({
      k: fc.constant(k),
      S: fc.integer({ min: 1, max: Math.max(1, Math.min(1500, Math.floor(BUDGET / k))) }),
      n: fc.integer({ min: k, max: 256 }),
      how: fc.constantFrom<Pick>('random', 'max-parity', 'min-parity'),
      offset: fc.constantFrom(0, 1, 3),
      seed: fc.integer(),
    }),
  );
  fc.assert(
    fc.property(arb, ({ k, S, n, how, offset, seed }) => {
      if (n === k && how === 'min-parity') how = 'random'; // no parity to pick
      const block = randomBlock(k * S, seed);
      const allParity = Array.from({ length: n - k }, (_, i) => k + i);
      const w = getCodec(k, S, { kernel: 'wasm' }).encode(block, allParity);
      const j = getCodec(k, S, { kernel: 'js' }).encode(block, allParity);
      assert.deepEqual(w, j);
      for (const kernel of KERNELS) {
        const codec = getCodec(k, S, { kernel });
        const { ids, symbols } = received(codec, block, n, how, seed ^ 0x5bd1e995, offset);
        const before = symbols.map((s) => s.slice());
        const got = codec.decode(ids, symbols)!;
        assert.equal(got.length, k * S);
        assert.ok(Buffer.from(got).equals(Buffer.from(block)), `${kernel} k=${k} S=${S} ids=${ids.join(',')}`);
        symbols.forEach((s, i) => assert.deepEqual(s, before[i]!, 'decode must not modify its input'));
      }
    }),
    { numRuns: 60 },
  );
});

test('extremes: k=1, k=255, all-parity decode, jumbo symbols (wasm memory growth)', () => {
  const cases: [number, number, Pick][] = [
    [1, 1, 'max-parity'],
    [1, 1500, 'max-parity'],
    [255, 64, 'min-parity'],
    [128, 100, 'max-parity'], // all 128 sources missing: rebuilt from parities 128..255 only
    [200, 1452, 'max-parity'],
    [16, 9000, 'random'],
    [100, 5001, 'max-parity'], // (100 + 100) * 5008 bytes: well past the wasm memory's first pages
  ];
  for (const [k, S, how] of cases) {
    const block = randomBlock(k * S, k * 7919 + S);
    const n = 256;
    const sids = Array.from({ length: Math.min(8, n - k) }, (_, i) => n - 1 - i);
    assert.deepEqual(getCodec(k, S, { kernel: 'wasm' }).encode(block, sids), getCodec(k, S, { kernel: 'js' }).encode(block, sids));
    for (const kernel of KERNELS) {
      const codec = getCodec(k, S, { kernel });
      const { ids, symbols } = received(codec, block, n, how, k + S);
      assert.ok(Buffer.from(codec.decode(ids, symbols)!).equals(Buffer.from(block)), `${kernel} k=${k} S=${S} ${how}`);
    }
  }
});

/** Extension symbol `id` as docs/fec.md words it, with BigInt arithmetic and the slow multiply. */
function slowExtension(block: Uint8Array, k: number, S: number, id: number): Uint8Array {
  let x = (BigInt(id) * 2654435761n) % 2n ** 32n;
  const p = new Uint8Array(S);
  for (let j = 0; j < k; j++) {
    x = (x ^ (x << 13n)) % 2n ** 32n;
    x = x ^ (x >> 17n);
    x = (x ^ (x << 5n)) % 2n ** 32n;
    const c = 1 + Number(x % 255n);
    for (let b = 0; b < S; b++) p[b]! ^= slowMul(c, block[j * S + b]!);
  }
  return p;
}

test('extension symbols (ids 256..65535): bytes from the slow reference, both kernels', () => {
  for (const [k, S] of [[1, 5], [7, 33], [128, 64], [255, 17]] as const) {
    const block = randomBlock(k * S, k * 31 + S);
    const ids = [256, 257, 1000, 40000, 65535];
    const want = ids.map((id) => slowExtension(block, k, S, id));
    for (const kernel of KERNELS) assert.deepEqual(getCodec(k, S, { kernel }).encode(block, ids), want, `${kernel} k=${k}`);
  }
});

test('property: k symbols with extension ids among them decode, or say they do not and decode with one more', () => {
  let undetermined = 0;
  let runs = 0;
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 24 }), fc.integer({ min: 0, max: 2 ** 31 - 1 }), (k, S, seed) => {
      runs++;
      const next = xorshift(seed);
      const block = randomBlock(k * S, seed);
      // Keep a random part of the sources, fill up with Cauchy parity and extension symbols (at least one).
      const kept = shuffle(Array.from({ length: k }, (_, j) => j), next).slice(0, next() % k);
      const cauchy = shuffle(Array.from({ length: 256 - k }, (_, i) => k + i), next).slice(0, next() % (k - kept.length));
      const ext = new Set<number>();
      while (kept.length + cauchy.length + ext.size < k + 3) ext.add(256 + (next() % 65280));
      const extIds = [...ext];
      for (const kernel of KERNELS) {
        const codec = getCodec(k, S, { kernel });
        const repairIds = [...cauchy, ...extIds];
        const repair = codec.encode(block, repairIds);
        const symbolOf = new Map(repairIds.map((id, i) => [id, repair[i]!]));
        for (const j of kept) symbolOf.set(j, block.subarray(j * S, (j + 1) * S));
        const ids = [...kept, ...cauchy, ...extIds.slice(0, k - kept.length - cauchy.length)];
        let extra = k - kept.length - cauchy.length;
        for (;;) {
          const into = new Uint8Array(k * S).fill(0x5a);
          for (const j of kept) into.set(symbolOf.get(j)!, j * S);
          const before = into.slice();
          const ok = codec.decodeInto(ids, ids.map((id) => symbolOf.get(id)!), into);
          const got = codec.decode(ids, ids.map((id) => symbolOf.get(id)!));
          assert.equal(ok, got !== null);
          if (got) {
            assert.ok(Buffer.from(got).equals(Buffer.from(block)), `${kernel} k=${k} ids=${ids.join(',')}`);
            assert.ok(Buffer.from(into).equals(Buffer.from(block)));
            break;
          }
          assert.deepEqual(into, before, 'an undetermined decode writes nothing');
          if (kernel === 'js') undetermined++;
          assert.ok(extra < extIds.length, `k=${k}: still undetermined with ${extra - (k - kept.length - cauchy.length)} extra symbols`);
          ids.push(extIds[extra++]!);
        }
      }
    }),
    { numRuns: 200 },
  );
  // About 1 in 255 per extension symbol: a few in 200 runs, and never a habit.
  assert.ok(undetermined <= runs / 10, `${undetermined} of ${runs} undetermined`);
});

test('more than k symbols: enough Cauchy parities decode in closed form, the extension symbols left out', () => {
  const k = 8;
  const S = 16;
  const block = randomBlock(k * S, 5);
  for (const kernel of KERNELS) {
    const codec = getCodec(k, S, { kernel });
    const ids = [0, 1, 2, 3, 4, 5, 300, 8, 9];
    const repair = codec.encode(block, [300, 8, 9]);
    const symbols = ids.map((id) => (id < k ? block.subarray(id * S, (id + 1) * S) : repair[[300, 8, 9].indexOf(id)]!));
    assert.ok(Buffer.from(codec.decode(ids, symbols)!).equals(Buffer.from(block)), kernel);
    // And with one Cauchy parity: the extension symbol carries the other missing source.
    assert.ok(Buffer.from(codec.decode(ids.slice(0, 8), symbols.slice(0, 8))!).equals(Buffer.from(block)), kernel);
  }
});

test('dependent extension symbols: decode says so, one more symbol decodes', () => {
  // k = 2: two extension rows that are multiples of each other carry one equation, not two.
  const k = 2;
  const S = 8;
  const pair = dependentExtensionPair();
  const block = randomBlock(k * S, 99);
  for (const kernel of KERNELS) {
    const codec = getCodec(k, S, { kernel });
    const [a, b] = pair;
    const [sa, sb] = codec.encode(block, [a, b]);
    assert.equal(codec.decode([a, b], [sa!, sb!]), null);
    assert.ok(Buffer.from(codec.decode([a, b, 0], [sa!, sb!, block.subarray(0, S)])!).equals(Buffer.from(block)));
  }
});

test('outputs are fresh buffers; no-loss decode is a copy; empty encode', () => {
  for (const kernel of KERNELS) {
    const k = 5;
    const S = 8;
    const codec = getCodec(k, S, { kernel });
    const block = randomBlock(k * S, 42);
    const [p1, p2] = codec.encode(block, [9, 9]);
    assert.deepEqual(p1, p2);
    p1![0]! ^= 1;
    assert.notDeepEqual(p1, p2);
    assert.deepEqual(codec.encode(block, [9])[0], p2);
    assert.deepEqual(codec.encode(block, []), []);
    const ids = [3, 1, 4, 0, 2];
    const symbols = ids.map((id) => block.subarray(id * S, id * S + S));
    const out = codec.decode(ids, symbols);
    assert.deepEqual(out, block);
    assert.notEqual(out.buffer, block.buffer);
    out[0]! ^= 1;
    assert.notEqual(block[0], out[0]);
  }
});

test('bad input gives clear errors', () => {
  for (const kernel of KERNELS) {
    const k = 4;
    const S = 6;
    const codec = getCodec(k, S, { kernel });
    const block = randomBlock(k * S, 7);
    const sym = (id: number) => (id < k ? block.subarray(id * S, id * S + S) : codec.encode(block, [id])[0]!);
    const dec = (ids: number[], syms = ids.map((id) => sym(Math.min(id, 255)))) => () => codec.decode(ids, syms);
    assert.throws(dec([0, 1, 1, 2]), /duplicate symbol id 1/);
    assert.throws(dec([0, 1, 2]), /need at least k=4 symbols, got 3/);
    assert.throws(dec([0, 1, 2, 65536]), /symbol id 65536 out of range \(expected an integer 0\.\.65535\)/);
    assert.throws(dec([0, 1, 2, -1], [sym(0), sym(1), sym(2), sym(3)]), /symbol id -1 out of range/);
    assert.throws(dec([0, 1, 2, 1.5], [sym(0), sym(1), sym(2), sym(3)]), /symbol id 1.5 out of range/);
    assert.throws(() => codec.decode([0, 1, 2, 3], [sym(0), sym(1), sym(2)]), /4 ids but 3 symbols/);
    assert.throws(() => codec.decode([0, 1, 2, 9], [sym(0), sym(1), sym(2), new Uint8Array(S + 1)]), /symbol 9 is 7 bytes, expected symbolSize=6/);
    assert.throws(() => codec.decode([0, 1, 2, 9], [sym(0), sym(1), sym(2), new Uint8Array(0)]), /symbol 9 is 0 bytes/);
    assert.throws(
      () => codec.decode([0, 1, 2, 9], [sym(0), sym(1), sym(2), [1, 2, 3, 4, 5, 6] as unknown as Uint8Array]),
      /not a Uint8Array/,
    );
    assert.throws(() => codec.encode(block.subarray(1), [4]), /block is 23 bytes, expected k\*symbolSize = 4\*6 = 24/);
    assert.throws(() => codec.encode(block, [3]), /parity id 3 out of range \(expected an integer 4\.\.65535/);
    assert.throws(() => codec.encode(block, [65536]), /parity id 65536 out of range/);
    assert.throws(() => codec.encode(block, [4.5]), /parity id 4.5 out of range/);
  }
  assert.throws(() => getCodec(0, 10), /k=0 out of range/);
  assert.throws(() => getCodec(256, 10), /k=256 out of range/);
  assert.throws(() => getCodec(2.5, 10), /k=2.5 out of range/);
  assert.throws(() => getCodec(10, 0), /symbolSize=0 must be a positive integer/);
  assert.throws(() => getCodec(10, 1.5), /symbolSize=1.5/);
  assert.throws(() => getCodec(10, 10, { kernel: 'gpu' as 'js' }), /unknown kernel gpu/);
});
