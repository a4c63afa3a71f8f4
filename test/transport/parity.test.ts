// ParityMaker: the sender's parity made on a worker thread (asyncParity) is the parity made inline.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomFillSync } from 'node:crypto';
import { FecScheme, blockEncoder } from '../../src/fec/scheme.js';
import { ParityMaker } from '../../src/transport/parity.js';

const S = 512;
const K = 300;

function sharedBlock(seed: number): Uint8Array {
  const block = new Uint8Array(new SharedArrayBuffer(K * S));
  randomFillSync(block);
  block[0] = seed;
  return block;
}

test('parity made on the worker thread equals parity made inline; the block is held until answered; encoders are reused per block', async () => {
  const answers: { block: number; ids: number[]; symbols: Uint8Array[] }[] = [];
  let wake: () => void = () => undefined;
  const errors: Error[] = [];
  const maker = new ParityMaker(FecScheme.RaptorQ, S, 2, (block, ids, symbols) => {
    answers.push({ block, ids, symbols });
    wake();
  }, (err) => errors.push(err));
  const next = () => new Promise<void>((resolve) => (wake = resolve));
  try {
    const blocks = [sharedBlock(1), sharedBlock(2), sharedBlock(3)];
    const requests = [
      { block: 0, ids: [K, K + 1, K + 7] },
      { block: 1, ids: [K + 2] },
      { block: 0, ids: [K + 100, K + 101] }, // a later round of block 0: its kept encoder
      { block: 2, ids: [K + 5, K + 6] },
      { block: 0, ids: [K + 9] }, // block 0's encoder was dropped for block 2's (2 kept): made again, same symbols
    ];
    for (const r of requests) {
      const answered = next();
      maker.make(r.block, K, r.ids, blocks[r.block]!);
      assert.ok(maker.holds(blocks[r.block]!), 'the block is in use until answered');
      assert.ok(!maker.holds(new Uint8Array(new SharedArrayBuffer(8))));
      await answered;
      assert.ok(!maker.holds(blocks[r.block]!), 'released once answered');
    }
    assert.deepEqual(errors, []);
    assert.deepEqual(answers.map((a) => [a.block, a.ids]), requests.map((r) => [r.block, r.ids]));
    for (const a of answers) {
      const inline = blockEncoder(FecScheme.RaptorQ, blocks[a.block]!, K, S).repair(a.ids);
      assert.equal(a.symbols.length, a.ids.length);
      a.symbols.forEach((s, i) => assert.ok(Buffer.from(s).equals(Buffer.from(inline[i]!)), `block ${a.block} symbol ${a.ids[i]}`));
    }
  } finally {
    await maker.close();
  }
});

test('a request the worker cannot serve is an error that names the block; nothing is answered after close()', async () => {
  const errors: Error[] = [];
  let answered = 0;
  let wake: () => void = () => undefined;
  const maker = new ParityMaker(FecScheme.RaptorQ, S, 2, () => answered++, (err) => {
    errors.push(err);
    wake();
  });
  try {
    const failed = new Promise<void>((resolve) => (wake = resolve));
    maker.make(4, K, [K], new Uint8Array(new SharedArrayBuffer(10))); // not K * S bytes
    await failed;
    assert.equal(answered, 0);
    assert.match(errors[0]!.message, /cannot make parity for block 4: .*sourceBlock is 10 bytes/);
    maker.make(5, K, [K + 1], sharedBlock(9));
  } finally {
    await maker.close();
  }
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(answered, 0, 'a closed maker answers nothing');
});
