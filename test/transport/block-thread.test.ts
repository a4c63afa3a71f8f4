// BlockThread: block digests, RaptorQ parity and solves done on a worker thread equal the same work done inline.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomFillSync } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { FecScheme, blockDecoder, blockEncoder } from '../../src/fec/scheme.js';
import type { Worker } from 'node:worker_threads';
import { BlockThread, MAX_QUEUED_SET_UPS } from '../../src/transport/block-thread.js';

const S = 512;
const K = 300;

function sharedBlock(seed: number): Uint8Array {
  const block = new Uint8Array(new SharedArrayBuffer(K * S));
  randomFillSync(block);
  block[0] = seed;
  return block;
}

test('parity made on the thread equals parity made inline, from a kept encoder or a new one; the block is held until answered', async () => {
  const errors: Error[] = [];
  const thread = new BlockThread(2, (err) => errors.push(err));
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
      const answered = new Promise<Uint8Array[] | null>((resolve) => thread.parity(FecScheme.RaptorQ, r.block, K, S, r.ids, blocks[r.block]!, resolve));
      assert.ok(thread.holds(blocks[r.block]!), 'the block is in use until answered');
      assert.ok(!thread.holds(new Uint8Array(new SharedArrayBuffer(8))));
      const symbols = await answered;
      assert.ok(symbols);
      assert.ok(!thread.holds(blocks[r.block]!), 'released once answered');
      const inline = blockEncoder(FecScheme.RaptorQ, blocks[r.block]!, K, S).repair(r.ids);
      assert.equal(symbols.length, r.ids.length);
      symbols.forEach((s, i) => assert.ok(Buffer.from(s).equals(Buffer.from(inline[i]!)), `block ${r.block} symbol ${r.ids[i]}`));
    }
    // Asked without the block: from the encoder kept for it (block 0, used last), or null when none is (block 1's
    // was dropped): the sender then reads the block again.
    const kept = await new Promise<Uint8Array[] | null>((resolve) => thread.parity(FecScheme.RaptorQ, 0, K, S, [K + 20], null, resolve));
    assert.ok(kept && Buffer.from(kept[0]!).equals(Buffer.from(blockEncoder(FecScheme.RaptorQ, blocks[0]!, K, S).repair([K + 20])[0]!)));
    assert.equal(await new Promise<Uint8Array[] | null>((resolve) => thread.parity(FecScheme.RaptorQ, 1, K, S, [K + 20], null, resolve)), null);
    assert.deepEqual(errors, []);
  } finally {
    await thread.close();
  }
});

test('a solve on the thread rebuilds the lost source symbols in the shared block; one that falls short says so', async () => {
  const source = sharedBlock(7);
  const lost = new Set([3, 40, 41, 299]);
  const repairIds = [K + 1, K + 2, K + 3, K + 4];
  const repairs = blockEncoder(FecScheme.RaptorQ, source, K, S).repair(repairIds);
  const thread = new BlockThread(0, (err) => assert.fail(err));
  try {
    const decoderWith = (repairCount: number) => {
      const decoder = blockDecoder(FecScheme.RaptorQ, K, S, new Uint8Array(new SharedArrayBuffer(K * S)));
      for (let id = 0; id < K; id++) if (!lost.has(id)) decoder.add(id, source.subarray(id * S, (id + 1) * S));
      for (let i = 0; i < repairCount; i++) decoder.add(repairIds[i]!, repairs[i]!);
      return decoder;
    };
    const enough = decoderWith(4);
    assert.ok(enough.needsSolve);
    const job = enough.solveJob();
    const ok = await new Promise<boolean>((resolve) => thread.solve(job, resolve));
    assert.equal(ok, true);
    const block = enough.solved(ok)!;
    assert.ok(Buffer.from(block).equals(Buffer.from(source)), 'the lost symbols were written into the shared block');
    assert.equal(enough.repaired, true);

    const short = decoderWith(3);
    assert.equal(short.missing, 1);
    assert.equal(short.needsSolve, false, 'not enough symbols: nothing to solve yet');
    short.add(K + 50, blockEncoder(FecScheme.RaptorQ, source, K, S).repair([K + 50])[0]!);
    // A job that takes one symbol fewer than k cannot be solved: the thread answers false.
    const partial = short.solveJob();
    const failing = { ...partial, ids: partial.ids.slice(1), repairIds: partial.repairIds, repairs: partial.repairs };
    assert.equal(await new Promise<boolean>((resolve) => thread.solve(failing, resolve)), false);
    assert.equal(short.solved(false), null);
    assert.equal(short.missing, 1, 'a failed solve asks for one more symbol');
  } finally {
    await thread.close();
  }
});

test('a digest made on the thread is the block\'s SHA-256; ready once the thread has loaded, and a job sent before waits for it', async () => {
  const thread = BlockThread.forDigests((err) => assert.fail(err));
  try {
    assert.equal(thread.ready, false, 'not started yet');
    const block = sharedBlock(5);
    const early = new Promise<Uint8Array>((resolve) => thread.digest(block, resolve)); // starts the thread
    assert.ok(thread.holds(block));
    const digest = await early;
    assert.ok(Buffer.from(digest).equals(createHash('sha256').update(block).digest()));
    assert.ok(!thread.holds(block));
    for (let i = 0; i < 100 && !thread.ready; i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(thread.ready);
    const short = block.subarray(0, 1000); // a last, shorter block
    const again = await new Promise<Uint8Array>((resolve) => thread.digest(short, resolve));
    assert.ok(Buffer.from(again).equals(createHash('sha256').update(short).digest()));
  } finally {
    await thread.close();
  }
  assert.equal(thread.ready, false, 'closed');
  // It does digests only (its worker loads none of the FEC code): other jobs are errors that say so.
  const errors: Error[] = [];
  const digestsOnly = BlockThread.forDigests((err) => errors.push(err));
  try {
    digestsOnly.parity(FecScheme.RaptorQ, 3, K, S, [K], sharedBlock(6), () => assert.fail('answered'));
    for (let i = 0; i < 200 && errors.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.match(errors[0]?.message ?? '', /cannot make parity for block 3: a digest thread does not do parity jobs/);
  } finally {
    await digestsOnly.close();
  }
});

test('a job the thread cannot do is an error that names it; nothing is answered after close()', async () => {
  const errors: Error[] = [];
  let answered = 0;
  let wake: () => void = () => undefined;
  const thread = new BlockThread(2, (err) => {
    errors.push(err);
    wake();
  });
  try {
    const failed = new Promise<void>((resolve) => (wake = resolve));
    thread.parity(FecScheme.RaptorQ, 4, K, S, [K], new Uint8Array(new SharedArrayBuffer(10)), () => answered++); // not K * S bytes
    await failed;
    assert.equal(answered, 0);
    assert.match(errors[0]!.message, /cannot make parity for block 4: .*sourceBlock is 10 bytes/);
    thread.parity(FecScheme.RaptorQ, 5, K, S, [K + 1], sharedBlock(9), () => answered++);
  } finally {
    await thread.close();
  }
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(answered, 0, 'a closed thread answers nothing');
});

test('a thread that dies costs speed, not the transfer: its unanswered job and later ones are done on this thread', { timeout: 30_000 }, async () => {
  const errors: Error[] = [];
  const thread = new BlockThread(2, (err) => errors.push(err));
  try {
    const block = sharedBlock(11);
    const inline = blockEncoder(FecScheme.RaptorQ, block, K, S).repair([K + 3, K + 4]);
    const first = new Promise<Uint8Array[] | null>((resolve) => thread.parity(FecScheme.RaptorQ, 0, K, S, [K + 3], block, resolve));
    // (Reaching in: nothing outside kills the thread.)
    await (thread as unknown as { worker: Worker }).worker.terminate();
    const second = new Promise<Uint8Array[] | null>((resolve) => thread.parity(FecScheme.RaptorQ, 0, K, S, [K + 4], block, resolve));
    const [a, b] = await Promise.all([first, second]);
    assert.ok(a && b);
    assert.ok(Buffer.from(a[0]!).equals(Buffer.from(inline[0]!)));
    assert.ok(Buffer.from(b[0]!).equals(Buffer.from(inline[1]!)));
    assert.deepEqual(errors, []);
  } finally {
    await thread.close();
  }
});

test('an encoder set up ahead (prepare) waits for the jobs that are waited for, and parity asked later without the block comes from it', async () => {
  const thread = new BlockThread(4, (err) => assert.fail(err));
  try {
    const blocks = [sharedBlock(21), sharedBlock(22), sharedBlock(23)];
    // Posted together while the thread loads: the digest is chosen first, the set-ups after it. The third is
    // skipped: MAX_QUEUED_SET_UPS (2) wait already.
    assert.equal(MAX_QUEUED_SET_UPS, 2);
    for (const [b, data] of blocks.entries()) thread.prepare(FecScheme.RaptorQ, b, K, S, data);
    const digestBlock = sharedBlock(24);
    const heldAtDigest = await new Promise<boolean[]>((resolve) => thread.digest(digestBlock, () => resolve(blocks.map((d) => thread.holds(d)))));
    assert.deepEqual(heldAtDigest, [true, true, false], 'no set-up ran before the digest; the third was not queued');
    for (const [b, data] of blocks.slice(0, 2).entries()) {
      const symbols = await new Promise<Uint8Array[] | null>((resolve) => thread.parity(FecScheme.RaptorQ, b, K, S, [K + 3], null, resolve));
      assert.ok(symbols, `block ${b}'s encoder was kept`);
      const inline = blockEncoder(FecScheme.RaptorQ, data, K, S).repair([K + 3]);
      assert.ok(Buffer.from(symbols[0]!).equals(Buffer.from(inline[0]!)), `block ${b}`);
    }
    for (const data of blocks) assert.ok(!thread.holds(data), 'released');
    assert.equal(await new Promise<Uint8Array[] | null>((resolve) => thread.parity(FecScheme.RaptorQ, 2, K, S, [K + 3], null, resolve)), null, 'block 2 was never set up');
    // Answered set-ups no longer count: a new one is queued.
    thread.prepare(FecScheme.RaptorQ, 2, K, S, blocks[2]!);
    assert.ok(thread.holds(blocks[2]!));
  } finally {
    await thread.close();
  }
});

/** Nice values of this process's threads (Linux), by thread id. */
function threadNices(): Map<number, number> {
  const nices = new Map<number, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      nices.set(Number(tid), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]));
    } catch {
      // the thread ended meanwhile
    }
  }
  return nices;
}

test('a thread runs at the nice value it was started with (the sender picks the parity thread\'s from its pacer\'s)', { skip: process.platform !== 'linux' && 'thread priorities are set on Linux only' }, async () => {
  const before = new Set(threadNices().keys());
  const thread = new BlockThread(1, (err) => assert.fail(err), 7);
  try {
    const symbols = await new Promise<Uint8Array[] | null>((resolve) => thread.parity(FecScheme.RaptorQ, 0, K, S, [K], sharedBlock(8), resolve));
    assert.ok(symbols, 'the job was done');
    const started = [...threadNices()].filter(([tid]) => !before.has(tid)).map(([, nice]) => nice);
    assert.ok(started.includes(7), `a new thread at nice 7 (new threads' nice values: ${started.join(', ')})`);
  } finally {
    await thread.close();
  }
});
