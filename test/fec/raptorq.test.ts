// RaptorQ end to end: known answers from an independent RFC 6330 implementation, the systematic
// property, decoding from random loss patterns (fast-check), the decoding failure rates the RFC
// promises, both symbol kernels, and clear errors on bad input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MAX_ESI, RaptorQDecoder, RaptorQEncoder } from '../../src/fec/raptorq/index.js';
import { SymbolArena } from '../../src/fec/raptorq/arena.js';
import { wasmUnavailableReason } from '../../src/fec/kernel-wasm.js';
import { sha256 } from '../../src/protocol/common.js';
import { xorshift } from './reference.js';

const KERNELS = wasmUnavailableReason() === null ? (['wasm', 'js'] as const) : (['js'] as const);
if (wasmUnavailableReason() !== null) console.log(`# wasm kernel unavailable (${wasmUnavailableReason()}): testing the JS kernel only`);

/** Deterministic test data: a 32-bit LCG, top byte per octet. */
function lcgBlock(K: number, T: number): Uint8Array {
  const data = new Uint8Array(K * T);
  let s = (K * 7919 + T) >>> 0;
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    data[i] = s >>> 24;
  }
  return data;
}

/** `count` distinct ESIs drawn from 0..span-1. */
function pickEsis(span: number, count: number, next: () => number): number[] {
  const all = Array.from({ length: span }, (_, i) => i);
  for (let i = 0; i < count; i++) {
    const j = i + (next() % (span - i));
    [all[i], all[j]] = [all[j]!, all[i]!];
  }
  return all.slice(0, count);
}

// Repair symbols ESI K..K+19 of lcgBlock(K, T) as made by the `raptorq` npm package 1.7.24 (a Rust
// RFC 6330 implementation compiled to wasm), which labels repair symbols with their ISI instead of
// their ESI (its issue #164); the mapping back to ESIs was applied. [K, T, first 8 bytes of ESI K,
// SHA-256 of the 20 symbols concatenated].
const KNOWN_ANSWERS: [number, number, string, string][] = [
  [10, 64, '050c60433aa4c102', '6e9da3d8586e00f49bdcfbe6053926025aad6f3c8fcd04001b8de888e9814794'],
  [11, 64, '467df879dec8a130', '137b71eade77ea11e4ff792ed2fd6b6e02ccca771cd180dde7219ed047f98b88'],
  [100, 64, '6fee9dacd4ee01ab', 'f811f5fa2b5cea312ab3c135f6562b5916ee5865ee0a89930f7a6426aeb562b4'],
  [523, 64, 'e9b8b1d1b2c21b71', '1d99f423e6fc76bbb25531b2f0a8881d0f880b878d5a0003acf08dca905dae28'],
  [1000, 128, '8fada92e4803c8d8', '35ea3d50b7d8a1d269a376989d7bcf813b18487a90cf80e02d613cbb0f5b9375'],
  [4200, 64, '0768ae402b3366bb', '9cf15a12139c64a193ad5a0621aef4e4c50031bff0983764afbf19d4ac701ee7'],
  [8192, 64, '18eadc7d3e6a10f7', 'b434310ea4ce030a08de1fec52c5812f0fe59e1a0f9f441a267e3f00a9e79d15'],
];

test('repair symbols match an independent RFC 6330 implementation byte for byte', () => {
  for (const [K, T, head, digest] of KNOWN_ANSWERS) {
    const enc = new RaptorQEncoder(lcgBlock(K, T), T, K);
    const repair = new Uint8Array(20 * T);
    for (let i = 0; i < 20; i++) repair.set(enc.symbol(K + i), i * T);
    assert.equal(Buffer.from(repair.subarray(0, 8)).toString('hex'), head, `K=${K}: first bytes of ESI ${K}`);
    assert.equal(sha256(repair).toString('hex'), digest, `K=${K}: repair symbols ${K}..${K + 19}`);
  }
});

test('systematic: ESI < K is the source symbol; the same repair symbols on both kernels', () => {
  for (const K of [1, 10, 11, 57, 300]) {
    const S = 13; // odd: slot padding
    const block = lcgBlock(K, S);
    const encoders = KERNELS.map((kernel) => new RaptorQEncoder(block, S, K, { kernel }));
    for (const enc of encoders) {
      for (let esi = 0; esi < K; esi++) assert.deepEqual(enc.symbol(esi), block.subarray(esi * S, esi * S + S));
    }
    for (const esi of [K, K + 1, K + 77, MAX_ESI]) {
      const ref = encoders[0]!.symbol(esi);
      assert.equal(ref.length, S);
      for (const enc of encoders.slice(1)) assert.deepEqual(enc.symbol(esi), ref, `K=${K} ESI ${esi}`);
    }
  }
});

test('decodes from any K+2 symbols of random loss patterns (property)', () => {
  const arb = fc.record({
    K: fc.integer({ min: 1, max: 400 }),
    S: fc.integer({ min: 1, max: 70 }),
    span: fc.integer({ min: 0, max: 300 }), // repair ESIs available beyond K
    kernel: fc.constantFrom(...KERNELS),
    seed: fc.integer(),
  });
  fc.assert(
    fc.property(arb, ({ K, S, span, kernel, seed }) => {
      const next = xorshift(seed);
      const block = new Uint8Array(K * S).map(() => next() & 255);
      const enc = new RaptorQEncoder(block, S, K, { kernel });
      const dec = new RaptorQDecoder(K, S, { kernel });
      for (const esi of pickEsis(K + 2 + span, K + 2, next)) dec.add(esi, enc.symbol(esi));
      const out = dec.tryDecode();
      assert.ok(out, `K=${K} S=${S}: K+2 symbols did not decode`);
      assert.deepEqual(out, block);
    }),
    { numRuns: 40 },
  );
});

test('decoding failure rates: well under 5% with exactly K symbols, none with K+2 (K=100, 200 trials)', (t) => {
  const K = 100;
  const S = 8;
  const block = lcgBlock(K, S);
  const enc = new RaptorQEncoder(block, S, K);
  const next = xorshift(12345);
  let failuresAtK = 0;
  let failuresAtK2 = 0;
  for (let trial = 0; trial < 200; trial++) {
    const dec = new RaptorQDecoder(K, S);
    // Heavy, random loss over source and repair symbols alike: K of the first 3K ESIs.
    const esis = pickEsis(3 * K, K + 2, next);
    for (const esi of esis.slice(0, K)) dec.add(esi, enc.symbol(esi));
    let out = dec.tryDecode();
    if (!out) {
      failuresAtK++;
      for (const esi of esis.slice(K)) dec.add(esi, enc.symbol(esi));
      out = dec.tryDecode();
      if (!out) failuresAtK2++;
    }
    if (out) assert.deepEqual(out, block);
  }
  t.diagnostic(`failures with K symbols: ${failuresAtK}/200, with K+2: ${failuresAtK2}/200`);
  assert.ok(failuresAtK < 10, `${failuresAtK}/200 failures with K symbols`);
  assert.equal(failuresAtK2, 0);
});

test('large block: K=8192 with 5% loss decodes from K+1 symbols, stats reported', () => {
  const K = 8192;
  const S = 16;
  const block = lcgBlock(K, S);
  const enc = new RaptorQEncoder(block, S, K);
  const dec = new RaptorQDecoder(K, S);
  const next = xorshift(99);
  let esi = 0;
  while (dec.received < K + 1) {
    if (next() % 100 >= 5) dec.add(esi, enc.symbol(esi));
    esi++;
  }
  const out = dec.tryDecode();
  assert.ok(out);
  assert.deepEqual(out, block);
  const { received, used, inactivated, failedAttempts } = dec.stats;
  assert.equal(received, K + 1);
  assert.equal(used, K + 1);
  assert.equal(failedAttempts, 0);
  assert.ok(inactivated >= dec.params.P && inactivated < 2 * dec.params.P, `inactivated ${inactivated}, P=${dec.params.P}`);
});

test('decoder: only repair symbols, retry after a shortfall, duplicates, all-source shortcut', () => {
  const K = 50;
  const S = 32;
  const block = lcgBlock(K, S);
  const enc = new RaptorQEncoder(block, S, K);
  const dec = new RaptorQDecoder(K, S);
  for (let i = 0; i < K - 1; i++) assert.equal(dec.add(1000 + i, enc.symbol(1000 + i)), true);
  assert.equal(dec.add(1000, enc.symbol(1000)), false, 'duplicate ESI');
  assert.equal(dec.tryDecode(), null, 'K-1 symbols cannot decode');
  let esi = 2000;
  let out = null;
  while (!out) {
    dec.add(esi, enc.symbol(esi));
    esi++;
    out = dec.tryDecode();
  }
  assert.deepEqual(out, block);
  assert.equal(dec.tryDecode(), out, 'same buffer once decoded');
  assert.equal(dec.add(5, enc.symbol(5)), false, 'nothing to add after decoding');

  const all = new RaptorQDecoder(K, S);
  for (let i = K - 1; i >= 0; i--) all.add(i, enc.symbol(i));
  assert.deepEqual(all.tryDecode(), block);
  assert.equal(all.stats.used, 0, 'all source symbols: no solve');
});

test('dispose(): pooled memory is reused across sizes; a disposed coder fails clearly or starts empty', () => {
  const sizes: [number, number][] = [[300, 64], [20, 7], [1000, 16], [5, 1452], [300, 64]];
  for (const [K, S] of sizes) {
    const block = lcgBlock(K, S);
    const enc = new RaptorQEncoder(block, S, K);
    const dec = new RaptorQDecoder(K, S);
    for (let esi = Math.ceil(K / 3); dec.received < K + 2; esi++) dec.add(esi, enc.symbol(esi));
    enc.dispose();
    assert.deepEqual(dec.tryDecode(), block, `K=${K} S=${S}`);
    assert.deepEqual(enc.symbol(0), block.subarray(0, S), 'source symbols need no intermediate symbols');
    assert.throws(() => enc.symbol(K), /raptorq encoder: symbol\(\) after dispose\(\)/);
  }
  const K = 30;
  const enc = new RaptorQEncoder(lcgBlock(K, 8), 8, K);
  const dec = new RaptorQDecoder(K, 8);
  for (let esi = 0; esi < K - 1; esi++) dec.add(esi, enc.symbol(esi));
  dec.dispose();
  assert.equal(dec.received, 0);
  for (let esi = 5; esi < K + 7; esi++) dec.add(esi, enc.symbol(esi));
  const out = new Uint8Array(K * 8);
  assert.equal(dec.tryDecode(out), out, 'decodes into the given buffer');
  assert.deepEqual(out, lcgBlock(K, 8));
  assert.throws(() => new RaptorQDecoder(K, 8).tryDecode(new Uint8Array(5)), /output must be a Uint8Array of K\*symbolSize = 240 bytes/);
  enc.dispose();
});

test('symbol arena: wasm and JS row operations agree (xor, multiply-add, scale, copy, xorMany, xorToMany, alphaStep)', (t) => {
  if (KERNELS.length < 2) {
    t.skip(`wasm kernel unavailable: ${wasmUnavailableReason()}`);
    return;
  }
  // 37: one 16-byte-padded slot shorter than the kernels' 64-byte pass; 1452 and 8952: the wire's sizes,
  // with a 16-byte tail after the 64-byte passes. 300 slots: xorMany / xorToMany over more than the
  // kernel's 256 offsets per call.
  for (const S of [37, 1452, 8952]) {
    const slots = S === 37 ? 300 : 40;
    const arenas = [new SymbolArena(S, slots, 'wasm'), new SymbolArena(S, slots, 'js')];
    const next = xorshift(S);
    for (let slot = 0; slot < slots; slot++) {
      const sym = new Uint8Array(S).map(() => next() & 255);
      for (const a of arenas) a.load(slot, sym);
    }
    /** count distinct slots other than `not`, in random order */
    const others = (not: number, count: number): number[] => {
      const pool = Array.from({ length: slots }, (_, i) => i).filter((i) => i !== not);
      for (let i = pool.length - 1; i > 0; i--) {
        const j = next() % (i + 1);
        [pool[i], pool[j]] = [pool[j]!, pool[i]!];
      }
      return pool.slice(0, count);
    };
    const ops = S === 37 ? 2000 : 300;
    for (let op = 0; op < ops; op++) {
      const dst = next() % slots;
      const src = (dst + 1 + (next() % (slots - 1))) % slots;
      const c = next() & 255;
      const kind = next() % 7;
      const many = kind === 4 || kind === 5 ? others(dst, 1 + (next() % (next() % 8 === 0 ? slots - 1 : 12))) : [];
      const [y, a2, b2] = others(dst, 3).map((v) => (next() % 4 === 0 ? -1 : v));
      for (const a of arenas) {
        if (kind === 0) a.xor(dst, src);
        else if (kind === 1) a.mulXor(dst, src, c);
        else if (kind === 2) a.scale(dst, c | 1);
        else if (kind === 3) a.copy(dst, src);
        else if (kind === 4) a.xorMany(dst, Int32Array.from(many), many.length);
        else if (kind === 5) a.xorToMany(dst, many, many.length);
        else a.alphaStep(dst, y!, a2!, b2!);
      }
    }
    for (let slot = 0; slot < slots; slot++) assert.deepEqual(arenas[0]!.read(slot), arenas[1]!.read(slot), `S=${S} slot ${slot}`);
    assert.equal(arenas[0]!.kernelName, 'wasm-simd');
    assert.equal(arenas[1]!.kernelName, 'js');
  }
});

test('symbol arena: alphaStep, xorMany and xorToMany compute what they say (JS kernel against plain loops)', () => {
  const S = 20;
  const arena = new SymbolArena(S, 6, 'js');
  const next = xorshift(99);
  const v = Array.from({ length: 6 }, () => new Uint8Array(S).map(() => next() & 255));
  v.forEach((sym, i) => arena.load(i, sym));
  const xor = (a: Uint8Array, b: Uint8Array): Uint8Array => a.map((x, i) => x ^ b[i]!);
  // times 2 in GF(2^8) with polynomial 0x11D
  const double = (a: Uint8Array): Uint8Array => a.map((x) => ((x << 1) ^ (x & 0x80 ? 0x1d : 0)) & 255);
  arena.alphaStep(0, 1, 2, 3);
  const z = xor(double(v[0]!), v[1]!);
  assert.deepEqual(arena.read(0), z);
  assert.deepEqual(arena.read(2), xor(v[2]!, z));
  assert.deepEqual(arena.read(3), xor(v[3]!, z));
  assert.deepEqual(arena.read(1), v[1], 'y is only read');
  arena.xorMany(4, [1, 5], 2);
  assert.deepEqual(arena.read(4), xor(xor(v[4]!, v[1]!), v[5]!));
  arena.xorToMany(1, [4, 5], 2);
  assert.deepEqual(arena.read(5), xor(v[5]!, v[1]!));
  assert.deepEqual(arena.read(4), xor(v[4]!, v[5]!));
});

test('bad input gets a clear error', () => {
  const block = lcgBlock(10, 8);
  assert.throws(() => new RaptorQEncoder(block.subarray(1), 8, 10), /sourceBlock is 79 bytes, expected K\*symbolSize = 10\*8 = 80/);
  assert.throws(() => new RaptorQEncoder([1, 2] as unknown as Uint8Array, 1, 2), /sourceBlock must be a Uint8Array/);
  assert.throws(() => new RaptorQEncoder(block, 8, 0), /K=0 source symbols out of range \(expected an integer 1\.\.56403\)/);
  assert.throws(() => new RaptorQEncoder(block, 0, 10), /symbolSize=0 out of range/);
  assert.throws(() => new RaptorQDecoder(56404, 8), /K=56404 source symbols out of range/);
  assert.throws(() => new RaptorQDecoder(10, 65536), /symbolSize=65536 out of range \(expected an integer 1\.\.65535\)/);
  const enc = new RaptorQEncoder(block, 8, 10);
  for (const esi of [-1, 2 ** 24, 1.5, Number.NaN]) {
    assert.throws(() => enc.symbol(esi), /ESI .* out of range \(expected an integer 0\.\.16777215\)/);
  }
  const dec = new RaptorQDecoder(10, 8);
  assert.throws(() => dec.add(2 ** 24, new Uint8Array(8)), /raptorq decoder: ESI 16777216 out of range/);
  assert.throws(() => dec.add(3, new Uint8Array(7)), /symbol 3 is 7 bytes, expected symbolSize=8/);
  assert.throws(() => dec.add(3, 'abc' as unknown as Uint8Array), /symbol 3 is not a Uint8Array/);
  assert.equal(dec.received, 0, 'rejected symbols are not kept');
});
