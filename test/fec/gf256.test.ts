// GF(2^8) field laws, checked against a slow bitwise multiply that shares no table with the code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { EXP, GF_POLY, INV, LOG, MUL, gfDiv, gfInv, gfMul, nibbleTables } from '../../src/fec/gf256.js';
import { slowMul } from './reference.js';


const byte = fc.integer({ min: 0, max: 255 });
const nonzero = fc.integer({ min: 1, max: 255 });

test('polynomial is 0x11D and known products hold', () => {
  assert.equal(GF_POLY, 0x11d);
  assert.equal(gfMul(0x80, 2), 0x1d); // x^7 * x = x^8 = x^4 + x^3 + x^2 + 1
  assert.equal(gfMul(0x53, 0xca), 143);
  assert.equal(gfInv(2), 0x8e);
});

test('MUL table equals the bitwise multiply on all 65536 pairs', () => {
  for (let a = 0; a < 256; a++) {
    for (let b = 0; b < 256; b++) {
      if (MUL[(a << 8) | b] !== slowMul(a, b)) assert.fail(`MUL[${a}][${b}] = ${MUL[(a << 8) | b]}, expected ${slowMul(a, b)}`);
    }
  }
});

test('2 generates the multiplicative group; EXP/LOG are inverse', () => {
  const seen = new Set<number>();
  for (let i = 0; i < 255; i++) {
    seen.add(EXP[i]!);
    assert.equal(EXP[i + 255], EXP[i]);
    assert.equal(LOG[EXP[i]!], i);
  }
  assert.equal(seen.size, 255);
  assert.ok(!seen.has(0));
});

test('inverses: a * inv(a) = 1 for every nonzero a (brute force), zero has none', () => {
  for (let a = 1; a < 256; a++) {
    let brute = 0;
    for (let b = 1; b < 256; b++) if (slowMul(a, b) === 1) brute = b;
    assert.equal(INV[a], brute, `INV[${a}]`);
    assert.equal(gfInv(a), brute);
  }
  assert.throws(() => gfInv(0), /zero has no inverse/);
  assert.throws(() => gfDiv(5, 0), /zero has no inverse/);
});

test('field laws (property)', () => {
  fc.assert(
    fc.property(byte, byte, byte, (a, b, c) => {
      assert.equal(gfMul(a, b), slowMul(a, b));
      assert.equal(gfMul(a, b), gfMul(b, a)); // commutative
      assert.equal(gfMul(gfMul(a, b), c), gfMul(a, gfMul(b, c))); // associative
      assert.equal(gfMul(a, b ^ c), gfMul(a, b) ^ gfMul(a, c)); // distributive over + (XOR)
      assert.equal(gfMul(a, 1), a);
      assert.equal(gfMul(a, 0), 0);
      assert.equal(slowMul(slowMul(a, b), c), slowMul(a, slowMul(b, c)));
    }),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(byte, nonzero, (a, b) => {
      assert.equal(slowMul(gfDiv(a, b), b), a);
      assert.equal(slowMul(b, gfInv(b)), 1);
    }),
    { numRuns: 1000 },
  );
});

test('split-nibble tables: lo[b & 15] ^ hi[b >> 4] = c * b for all c, b', () => {
  const t = nibbleTables();
  assert.equal(t.length, 256 * 32);
  for (let c = 0; c < 256; c++) {
    for (let b = 0; b < 256; b++) {
      const got = t[c * 32 + (b & 15)]! ^ t[c * 32 + 16 + (b >> 4)]!;
      if (got !== slowMul(c, b)) assert.fail(`nibble tables wrong for c=${c} b=${b}`);
    }
  }
});
