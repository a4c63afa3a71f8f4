// The block-level FEC interface the engine uses, for both schemes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  FecScheme,
  blockDecoder,
  blockEncoder,
  defaultBlockSymbols,
  maxBlockSymbols,
  parseFecScheme,
} from '../../src/fec/scheme.js';
import { dependentExtensionPair } from './reference.js';

const SCHEMES = [FecScheme.ReedSolomon, FecScheme.RaptorQ] as const;

test('block sizes: at most 255 symbols with Reed-Solomon, 8192 with RaptorQ', () => {
  assert.equal(maxBlockSymbols(FecScheme.ReedSolomon), 255);
  assert.equal(maxBlockSymbols(FecScheme.RaptorQ), 8192);
});

test('default block sizes: RaptorQ 4096 symbols, halved while a block would exceed 20 MiB', () => {
  assert.equal(defaultBlockSymbols(FecScheme.ReedSolomon, 1452), 128);
  assert.equal(defaultBlockSymbols(FecScheme.RaptorQ, 1452), 4096);
  assert.equal(defaultBlockSymbols(FecScheme.RaptorQ, 8952), 2048);
  assert.equal(defaultBlockSymbols(FecScheme.RaptorQ, 5120), 4096);
  assert.equal(defaultBlockSymbols(FecScheme.RaptorQ, 5121), 2048);
  assert.equal(defaultBlockSymbols(FecScheme.RaptorQ, 65535), 256);
});

test('scheme names parse; others are refused with the choices', () => {
  assert.equal(parseFecScheme('raptorq'), FecScheme.RaptorQ);
  assert.equal(parseFecScheme('reed-solomon'), FecScheme.ReedSolomon);
  assert.throws(() => parseFecScheme('ldpc'), /unknown FEC scheme 'ldpc' \(expected reed-solomon or raptorq\)/);
});

test('any scheme: a block survives random losses with as many repair symbols as were lost (plus one for RaptorQ if needed)', () => {
  fc.assert(
    fc.property(
      fc.constantFrom(...SCHEMES),
      fc.integer({ min: 1, max: 60 }),
      fc.integer({ min: 1, max: 40 }),
      fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      (scheme, k, symbolSize, seed) => {
        const block = new Uint8Array(k * symbolSize);
        let x = seed | 1;
        for (let i = 0; i < block.length; i++) block[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
        const lost = new Set<number>();
        for (let i = 0; i < k; i++) if (((x = (x * 1103515245 + 12345) >>> 0) >>> 16) % 3 === 0) lost.add(i);
        const encoder = blockEncoder(scheme, block, k, symbolSize);
        // The working block starts as garbage (a recycled buffer), and every symbol's memory is overwritten
        // once add() returns (a reused receive ring): the decoder must copy what it keeps.
        const decoder = blockDecoder(scheme, k, symbolSize, new Uint8Array(k * symbolSize).fill(0x5a));
        const ring = new Uint8Array(symbolSize);
        const give = (id: number, symbol: Uint8Array): boolean => {
          ring.set(symbol);
          const added = decoder.add(id, ring);
          ring.fill(0xa5);
          return added;
        };
        for (let i = 0; i < k; i++) if (!lost.has(i)) assert.equal(give(i, block.subarray(i * symbolSize, (i + 1) * symbolSize)), true);
        assert.equal(decoder.missing, lost.size);
        let next = k;
        let out = decoder.missing === 0 ? decoder.decode() : null;
        while (!out) {
          const needed = decoder.missing;
          assert.ok(needed >= 1);
          const ids = Array.from({ length: needed }, () => next++);
          encoder.repair(ids).forEach((symbol, i) => give(ids[i]!, symbol));
          out = decoder.decode();
          assert.ok(next - k <= lost.size + 3, 'decodes with at most a few symbols beyond k');
        }
        encoder.dispose();
        assert.ok(Buffer.from(out).equals(Buffer.from(block)));
        assert.equal(decoder.repaired, lost.size > 0);
      },
    ),
    { numRuns: 150 },
  );
});

test('Reed-Solomon: a block whose extension symbols turn out dependent asks for one more, then decodes', () => {
  const [a, b] = dependentExtensionPair();
  const S = 8;
  const block = Uint8Array.from({ length: 2 * S }, (_, i) => (i * 37 + 11) & 255);
  const [sa, sb, sc] = blockEncoder(FecScheme.ReedSolomon, block, 2, S).repair([a, b, 300]);
  const decoder = blockDecoder(FecScheme.ReedSolomon, 2, S);
  assert.equal(decoder.add(a, sa!), true);
  assert.equal(decoder.add(b, sb!), true);
  assert.equal(decoder.missing, 0);
  assert.equal(decoder.decode(), null);
  assert.equal(decoder.missing, 1);
  assert.equal(decoder.add(b, sb!), false, 'a duplicate still brings nothing');
  assert.equal(decoder.add(300, sc!), true);
  assert.equal(decoder.add(301, sc!), false, 'nothing beyond what decoding needs');
  assert.deepEqual(decoder.decode(), block);
  assert.equal(decoder.repaired, true);
});

test('any scheme: duplicates bring nothing; bad ids and lengths are refused clearly', () => {
  for (const scheme of SCHEMES) {
    const decoder = blockDecoder(scheme, 4, 8);
    assert.equal(decoder.add(1, new Uint8Array(8)), true);
    assert.equal(decoder.add(1, new Uint8Array(8)), false);
    assert.equal(decoder.received, 1);
    assert.equal(decoder.missing, 3);
    assert.equal(decoder.decode(), null);
    assert.throws(() => decoder.add(4, new Uint8Array(7)), /symbol 4 is 7 bytes, expected 8/);
    assert.throws(() => decoder.add(2, new Uint8Array(9)), /symbol 2 is 9 bytes, expected 8/);
    assert.throws(() => decoder.add(2, new Uint8Array(0)), /symbol 2 is 0 bytes, expected 8/);
    assert.throws(() => decoder.add(-1, new Uint8Array(8)), /symbol id -1 out of range/);
    decoder.dispose();
  }
  assert.throws(() => blockDecoder(FecScheme.ReedSolomon, 4, 8).add(65536, new Uint8Array(8)), /out of range 0..65535/);
  assert.throws(() => blockDecoder(FecScheme.ReedSolomon, 4, 8, new Uint8Array(31)), /working block is 31 bytes, expected 32/);
});

test('any scheme: a short source symbol (the image\'s last) is zero-padded in a recycled working block, and decodes through repair', () => {
  const k = 6;
  const L = 16;
  const block = new Uint8Array(k * L);
  for (let i = 0; i < 5 * L + 3; i++) block[i] = (i * 37 + 11) & 0xff; // the last symbol holds 3 bytes, then zeros
  for (const scheme of SCHEMES) {
    const encoder = blockEncoder(scheme, block, k, L);
    for (const lose of [0, 5]) {
      const decoder = blockDecoder(scheme, k, L, new Uint8Array(k * L).fill(0xff));
      for (let i = 0; i < k; i++) {
        if (i === lose) continue;
        decoder.add(i, i === k - 1 ? block.subarray(i * L, i * L + 3) : block.subarray(i * L, (i + 1) * L));
      }
      let next = k;
      let out = decoder.decode();
      while (!out) {
        decoder.add(next, encoder.repair([next])[0]!);
        next++;
        out = decoder.decode();
      }
      assert.ok(Buffer.from(out).equals(Buffer.from(block)), `${FecScheme[scheme]}, symbol ${lose} lost`);
    }
    encoder.dispose();
  }
});
