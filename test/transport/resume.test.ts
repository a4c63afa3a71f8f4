// receiveImage with resume: a part file left by an interrupted transfer is taken up; its blocks that match the
// block hashes are not received again, the others are, and the result is byte-exact. Real sockets on loopback.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { receiveImage, sendImage, symbolSizeFor } from '../../src/transport/session.js';

const BLOCK_SYMBOLS = 128;

function blockHashes(image: Buffer, blockBytes: number): Uint8Array {
  const count = Math.ceil(image.length / blockBytes);
  const out = new Uint8Array(count * 32);
  for (let b = 0; b < count; b++) out.set(createHash('sha256').update(image.subarray(b * blockBytes, (b + 1) * blockBytes)).digest(), b * 32);
  return out;
}

function imageDigest(hashes: Uint8Array): Uint8Array {
  return createHash('sha256').update(hashes).digest();
}

test('resume: held blocks of the part file are adopted, damaged and missing ones received, the image is exact', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fc-resume-'));
  try {
    const blockBytes = symbolSizeFor(1500, 4, false) * BLOCK_SYMBOLS;
    const image = randomBytes(10 * blockBytes + 777);
    const source = join(dir, 'image.bin');
    writeFileSync(source, image);
    const hashes = blockHashes(image, blockBytes);
    const output = join(dir, 'out.bin');
    // An earlier attempt got blocks 0-5 (block 2 damaged since) and nothing after: a sparse tail of zeros.
    const part = Buffer.alloc(image.length);
    image.copy(part, 0, 0, 6 * blockBytes);
    part[2 * blockBytes + 10]! ^= 0xff;
    writeFileSync(`${output}.part`, part);

    const port = 30000 + Math.floor(Math.random() * 20000);
    const endpoint = { group: '239.255.77.31', port, iface: 'lo' };
    const received = receiveImage({ output, endpoint, resume: true, blockHashes: hashes, expectedDigest: imageDigest(hashes), startTimeoutMs: 20_000 });
    // The scan runs alongside the transfer and must reach the held blocks before the network does: a receiver on
    // the batched backend keeps up with 200 Mbit/s and would take them from the network, so send at 20.
    const sent = sendImage({ path: source, endpoint, sender: { blockSymbols: BLOCK_SYMBOLS, autoStart: false, minReceivers: 1, settleMs: 0, maxRateBps: 20e6 } });
    const [result, summary] = await Promise.all([received, sent]);
    assert.equal(result.ok, true, result.message);
    assert.equal(result.resumedBytes, 5 * blockBytes, 'blocks 0, 1, 3, 4, 5 came from the part file');
    assert.equal(result.stats.blocksAdopted, 5);
    assert.ok(readFileSync(output).equals(image), 'byte-exact');
    assert.equal(existsSync(`${output}.part`), false);
    assert.equal(summary.receivers[0]!.outcome, 'completed');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('resume: a failed transfer keeps its part file for the next attempt; without resume it is removed', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fc-resume-'));
  try {
    const blockBytes = symbolSizeFor(1500, 4, false) * BLOCK_SYMBOLS;
    const image = randomBytes(3 * blockBytes);
    const hashes = blockHashes(image, blockBytes);
    const port = 30000 + Math.floor(Math.random() * 20000);
    const endpoint = { group: '239.255.77.32', port, iface: 'lo' };
    const source = join(dir, 'image.bin');
    writeFileSync(source, image);
    for (const resume of [true, false]) {
      const output = join(dir, `out-${resume}.bin`);
      const controller = new AbortController();
      const received = receiveImage({ output, endpoint, resume, blockHashes: hashes, startTimeoutMs: 20_000, signal: controller.signal, onSession: () => controller.abort() });
      const sent = sendImage({ path: source, endpoint, sender: { blockSymbols: BLOCK_SYMBOLS, minReceivers: 1, settleMs: 0, maxRateBps: 20e6, receiverTimeoutMs: 2000 } });
      const result = await received;
      await sent;
      assert.equal(result.ok, false);
      assert.equal(existsSync(`${output}.part`), resume, `part file kept only with resume (resume=${resume})`);
      assert.equal(existsSync(output), false, 'never the final name for an incomplete image');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('resume needs the block hashes in advance and a file to write', async () => {
  const endpoint = { group: '239.255.77.33', port: 40000, iface: 'lo' };
  await assert.rejects(receiveImage({ output: join(tmpdir(), 'x.bin'), endpoint, resume: true }), /block hashes in advance/);
  await assert.rejects(receiveImage({ output: '-', endpoint, resume: true, blockHashes: new Uint8Array(32) }), /output file/);
});
