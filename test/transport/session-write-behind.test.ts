// receiveImage's write-behind: while the image arrives, written data is flushed to disk in the background, one
// flush at a time (the addon's flushRange on what was written since the last one; without the addon, fdatasync),
// and the fsync before the rename comes after every such flush. Real sockets on loopback, real files;
// FileHandle's datasync and sync, and the addon's flushRange, are wrapped to record the order of calls.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, promises as fs, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { receiveImage, sendImage } from '../../src/transport/session.js';
import { batchAddon, type NativeAddon } from '../../src/transport/native.js';
import { tempDir } from '../server/helpers.js';

interface SyncLog {
  calls: string[];
  maxConcurrentDatasyncs: number;
  /** [offset, length] of each flushRange. */
  ranges: [number, number][];
  maxConcurrentRanges: number;
}

const loaded = batchAddon();
const addon: NativeAddon | null = 'addon' in loaded && loaded.addon.flushRange ? loaded.addon : null;
const NO_FLUSH_RANGE = addon ? false : `the addon's flushRange is not available here (${'error' in loaded ? loaded.error : 'an old build'})`;

/**
 * Wraps the addon's flushRange (recording into log; with failAfter, it fails with EIO once a flush reaches that
 * offset), or with `absent` takes it away so that receivers fall back to fdatasync.
 */
function recordRangeFlushes(t: TestContext, log: SyncLog, mode: { absent: true } | { failAfter?: number }): void {
  if (!addon) return;
  const original = addon.flushRange;
  if ('absent' in mode) addon.flushRange = undefined;
  else {
    let running = 0;
    addon.flushRange = async (fd, offset, length) => {
      log.calls.push('range');
      log.ranges.push([offset, length]);
      log.maxConcurrentRanges = Math.max(log.maxConcurrentRanges, ++running);
      try {
        if (mode.failAfter !== undefined && offset + length >= mode.failAfter) {
          throw Object.assign(new Error('sync_file_range: Input/output error'), { code: 'EIO' });
        }
        return await original!(fd, offset, length);
      } finally {
        running--;
      }
    };
  }
  t.after(() => {
    addon.flushRange = original;
  });
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
  const log: SyncLog = { calls: [], maxConcurrentDatasyncs: 0, ranges: [], maxConcurrentRanges: 0 };
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

test('write-behind: flushes the written ranges during the transfer, one at a time, all before the final fsync', { skip: NO_FLUSH_RANGE }, async (t) => {
  const dir = tempDir(t, 'fc-wb-');
  const log = await recordSyncs(t, dir);
  recordRangeFlushes(t, log, {});
  const size = 6 * 1024 * 1024 + 12345;
  await transfer(dir, randomBytes(size), 1024 * 1024);
  const flushes = log.calls.filter((c) => c === 'range').length;
  assert.ok(flushes >= 2, `flushed while receiving: ${log.calls.join(' ')}`);
  assert.equal(log.maxConcurrentRanges, 1, 'never two flushes at once');
  assert.deepEqual(log.calls.slice(flushes), ['sync'], `no fdatasync, and one fsync after every flush: ${log.calls.join(' ')}`);
  // Each flush spans what was written since the one before: they reach the image's end, all of it but the
  // writes after the last flush (under a MiB: the fsync's share).
  let covered = 0;
  for (const [offset, length] of [...log.ranges].sort((a, b) => a[0] - b[0])) {
    assert.ok(offset <= covered, `a gap before ${offset}: ${JSON.stringify(log.ranges)}`);
    covered = Math.max(covered, offset + length);
  }
  assert.ok(covered > size - 1024 * 1024 && covered <= size, `flushed up to ${covered} of ${size}`);
});

test('write-behind without the addon: flushes during the transfer, one at a time, all before the final fsync', async (t) => {
  const dir = tempDir(t, 'fc-wb-');
  const log = await recordSyncs(t, dir);
  recordRangeFlushes(t, log, { absent: true });
  await transfer(dir, randomBytes(6 * 1024 * 1024), 1024 * 1024);
  const datasyncs = log.calls.filter((c) => c === 'datasync').length;
  assert.ok(datasyncs >= 1, `flushed while receiving: ${log.calls.join(' ')}`);
  assert.equal(log.maxConcurrentDatasyncs, 1, 'never two flushes at once');
  assert.deepEqual(log.calls.slice(datasyncs), ['sync'], `one fsync, after every flush: ${log.calls.join(' ')}`);
});

test('write-behind off (0): only the final fsync', async (t) => {
  const dir = tempDir(t, 'fc-wb-');
  const log = await recordSyncs(t, dir);
  recordRangeFlushes(t, log, {});
  await transfer(dir, randomBytes(2 * 1024 * 1024), 0);
  assert.deepEqual(log.calls, ['sync']);
});

for (const withAddon of [true, false]) {
  const what = withAddon ? 'a background flush' : 'without the addon, a background flush';
  test(`write-behind: ${what} that fails once the image is written fails the receive; nothing is left`, { skip: withAddon && NO_FLUSH_RANGE }, async (t) => {
    const dir = tempDir(t, 'fc-wb-');
    const size = 4 * 1024 * 1024;
    // Fails when every block is written, after the image verified: the final fsync alone would then succeed.
    const log = await recordSyncs(t, dir, withAddon ? undefined : size);
    // (flushRange: the flushes that reach past the middle; the bytes after the last flush are the final fsync's.)
    recordRangeFlushes(t, log, withAddon ? { failAfter: size / 2 } : { absent: true });
    const source = join(dir, 'image.bin');
    writeFileSync(source, randomBytes(size));
    const output = join(dir, 'out.bin');
    const endpoint = { group: `239.255.79.${1 + Math.floor(Math.random() * 250)}`, port: 20000 + Math.floor(Math.random() * 20000), iface: 'lo' };
    const [result] = await Promise.all([
      receiveImage({ output, endpoint, writeBehindBytes: 1024 * 1024, startTimeoutMs: 20_000 }),
      sendImage({ path: source, endpoint, sender: { minReceivers: 1, settleMs: 0, maxRateBps: 400e6, receiverTimeoutMs: 2000 } }),
    ]);
    assert.equal(result.ok, false);
    assert.match(result.message, /cannot (write|finish) the output: .*(EIO|Input\/output error)/);
    assert.ok(log.calls.includes(withAddon ? 'range' : 'datasync'), log.calls.join(' '));
    assert.equal(existsSync(output), false);
    assert.equal(existsSync(`${output}.part`), false);
  });
}

test('flushRange: resolves for a written file, and rejects with the errno for a closed descriptor', { skip: NO_FLUSH_RANGE }, async (t) => {
  const dir = tempDir(t, 'fc-wb-');
  const file = await fs.open(join(dir, 'f'), 'w');
  await file.write(randomBytes(1024 * 1024));
  await addon!.flushRange!(file.fd, 0, 1024 * 1024);
  const fd = file.fd;
  await file.close();
  await assert.rejects(addon!.flushRange!(fd, 0, 1024 * 1024), { code: 'EBADF', message: /sync_file_range: Bad file descriptor/ });
  assert.throws(() => addon!.flushRange!(fd, -1, 1), TypeError);
});

/** Bytes of `path` in the page cache (util-linux fincore), or null where fincore is missing. */
function cachedBytes(path: string): number | null {
  const out = spawnSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', path], { encoding: 'utf8' });
  return out.status === 0 ? Number(out.stdout.trim()) : null;
}

test('flushRange: drops the range it wrote out from the page cache, and only that range', { skip: NO_FLUSH_RANGE }, async (t) => {
  const dir = tempDir(t, 'fc-wb-');
  // tmpfs keeps files only in the page cache: nothing to drop there.
  if ((await fs.statfs(dir)).type === 0x01021994) return t.skip(`${dir} is on tmpfs`);
  const path = join(dir, 'f');
  const file = await fs.open(path, 'w');
  t.after(() => file.close());
  await file.write(randomBytes(8 * 1024 * 1024));
  const before = cachedBytes(path);
  if (before === null) return t.skip('fincore (util-linux) is not available');
  assert.ok(before >= 7 * 1024 * 1024, `${before} bytes cached after the write`);
  await addon!.flushRange!(file.fd, 0, 4 * 1024 * 1024);
  const after = cachedBytes(path)!;
  assert.ok(after <= 4.5 * 1024 * 1024 && after >= 3.5 * 1024 * 1024, `${after} bytes cached after flushing the first half`);
});
