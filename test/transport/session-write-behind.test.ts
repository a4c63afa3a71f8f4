// receiveImage's write-behind: while the image arrives, written data is flushed to disk in the background
// (fdatasync, one at a time), and the fsync before the rename comes after every such flush. Real sockets on
// loopback, real files; FileHandle's datasync and sync are wrapped to record the order of calls.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, promises as fs, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { receiveImage, sendImage } from '../../src/transport/session.js';
import { tempDir } from '../server/helpers.js';

interface SyncLog {
  calls: string[];
  maxConcurrentDatasyncs: number;
}

/**
 * Wraps datasync and sync of every FileHandle (they share one prototype) until the test ends. With failAfter,
 * datasync fails with EIO once that many bytes were written (the kernel reports a failed writeback once).
 */
async function recordSyncs(t: TestContext, dir: string, failAfter?: number): Promise<SyncLog> {
  const probe = await fs.open(join(dir, 'probe'), 'w');
  type Proto = { datasync: () => Promise<void>; sync: () => Promise<void>; write: (b: Uint8Array, ...rest: unknown[]) => Promise<unknown> };
  const proto = Object.getPrototypeOf(probe) as Proto;
  await probe.close();
  const { datasync, sync, write } = proto;
  const log: SyncLog = { calls: [], maxConcurrentDatasyncs: 0 };
  let running = 0;
  let written = 0;
  let wake = () => {};
  proto.write = async function (this: unknown, b: Uint8Array, ...rest: unknown[]) {
    const r = await write.call(this, b, ...rest);
    written += b.length;
    wake();
    return r;
  };
  proto.datasync = async function (this: unknown) {
    log.calls.push('datasync');
    log.maxConcurrentDatasyncs = Math.max(log.maxConcurrentDatasyncs, ++running);
    try {
      if (failAfter === undefined) return await datasync.call(this);
      while (written < failAfter) await new Promise<void>((resolve) => (wake = resolve));
      throw Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
    } finally {
      running--;
    }
  };
  proto.sync = function (this: unknown) {
    log.calls.push('sync');
    return sync.call(this);
  };
  t.after(() => Object.assign(proto, { datasync, sync, write }));
  return log;
}

async function transfer(dir: string, image: Buffer, writeBehindBytes: number): Promise<string> {
  const source = join(dir, `image-${writeBehindBytes}.bin`);
  writeFileSync(source, image);
  const output = join(dir, `out-${writeBehindBytes}.bin`);
  const endpoint = { group: `239.255.79.${1 + Math.floor(Math.random() * 250)}`, port: 20000 + Math.floor(Math.random() * 20000), iface: 'lo' };
  const [result, summary] = await Promise.all([
    receiveImage({ output, endpoint, writeBehindBytes, startTimeoutMs: 20_000 }),
    sendImage({ path: source, endpoint, sender: { minReceivers: 1, settleMs: 0, maxRateBps: 400e6 } }),
  ]);
  assert.equal(result.ok, true, result.message);
  assert.equal(summary.receivers[0]?.outcome, 'completed');
  assert.ok(readFileSync(output).equals(image), 'byte-exact');
  assert.equal(existsSync(`${output}.part`), false);
  return output;
}

test('write-behind: flushes during the transfer, one at a time, all before the final fsync', async (t) => {
  const dir = tempDir(t, 'fc-wb-');
  const log = await recordSyncs(t, dir);
  await transfer(dir, randomBytes(6 * 1024 * 1024), 1024 * 1024);
  const datasyncs = log.calls.filter((c) => c === 'datasync').length;
  assert.ok(datasyncs >= 1, `flushed while receiving: ${log.calls.join(' ')}`);
  assert.equal(log.maxConcurrentDatasyncs, 1, 'never two flushes at once');
  assert.deepEqual(log.calls.slice(datasyncs), ['sync'], `one fsync, after every flush: ${log.calls.join(' ')}`);
});

test('write-behind off (0): only the final fsync', async (t) => {
  const dir = tempDir(t, 'fc-wb-');
  const log = await recordSyncs(t, dir);
  await transfer(dir, randomBytes(2 * 1024 * 1024), 0);
  assert.deepEqual(log.calls, ['sync']);
});

test('write-behind: a background flush that fails once the image is written fails the receive; nothing is left', async (t) => {
  const dir = tempDir(t, 'fc-wb-');
  const size = 4 * 1024 * 1024;
  // Fails when every block is written, after the image verified: the final fsync alone would then succeed.
  const log = await recordSyncs(t, dir, size);
  const source = join(dir, 'image.bin');
  writeFileSync(source, randomBytes(size));
  const output = join(dir, 'out.bin');
  const endpoint = { group: `239.255.79.${1 + Math.floor(Math.random() * 250)}`, port: 20000 + Math.floor(Math.random() * 20000), iface: 'lo' };
  const [result] = await Promise.all([
    receiveImage({ output, endpoint, writeBehindBytes: 1024 * 1024, startTimeoutMs: 20_000 }),
    sendImage({ path: source, endpoint, sender: { minReceivers: 1, settleMs: 0, maxRateBps: 400e6, receiverTimeoutMs: 2000 } }),
  ]);
  assert.equal(result.ok, false);
  assert.match(result.message, /cannot (write|finish) the output: EIO/);
  assert.ok(log.calls.includes('datasync'));
  assert.equal(existsSync(output), false);
  assert.equal(existsSync(`${output}.part`), false);
});
