// fleetcast on a real (namespace) network: a sender and receiver hosts on a bridge, nftables dropping
// packets, a rate-limited uplink. Needs root, ip, tc and nft; skipped with the reason otherwise.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildLan, prerequisiteProblems } from '../../src/testlan/lan.js';
import { transfer } from './helpers/fleetcast.js';

const problems = prerequisiteProblems();
const skip = problems.length > 0 ? `test LAN unavailable: ${problems.join('; ')}` : false;
if (skip) console.log(`# skipping fleetcast namespace tests: ${skip}`);

const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

test('3 receiver hosts, 3 % random loss, 300 Mbit/s uplink: every receiver ends with the exact image', { skip, timeout: 240_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fc-ns-'));
  const lan = await buildLan({ receivers: 3, loss: 0.03, senderRate: '300mbit' });
  try {
    const image = join(dir, 'image.bin');
    writeFileSync(image, randomBytes(24 * 1024 * 1024 + 999));
    const { sender, results, wireBytes } = await transfer(lan, dir, image, { group: '239.255.77.21', senderArgs: ['--rate', '290M'] });
    assert.equal(sender.code, 0, sender.stderr);
    for (const [i, r] of results.entries()) {
      assert.equal(r.code, 0, `receiver ${i}: ${r.stderr}`);
      assert.equal(sha(join(dir, `out${i}.bin`)), sha(image));
    }
    const ratio = wireBytes / (24 * 1024 * 1024 + 999);
    console.log(`# wire/image on the sender's interface: ${ratio.toFixed(3)}`);
    // 3 % loss at each of 3 receivers: repair tracks the worst receiver (a few %), plus ~4 % framing.
    assert.ok(ratio < 1.15, `wire/image ${ratio}`);
    const dropped = await Promise.all(lan.receivers.map((h) => lan.droppedPackets(h)));
    assert.ok(dropped.every((d) => d > 0), 'nft really dropped packets at every receiver');
  } finally {
    await lan.teardown();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('unlimited uplink with 5 % loss, encryption and RaptorQ: exact images, no partial file left', { skip, timeout: 240_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fc-ns-'));
  const lan = await buildLan({ receivers: 3, loss: 0.05 });
  try {
    const image = join(dir, 'image.bin');
    // 2048-symbol blocks (2.9 MB): the first go out before the digest thread has hashed them, their digests after.
    writeFileSync(image, randomBytes(12 * 1024 * 1024 + 4321));
    const { sender, results } = await transfer(lan, dir, image, {
      group: '239.255.77.22',
      senderArgs: ['--fec', 'raptorq', '--block-symbols', '2048'],
      bothArgs: ['--key', 'ns-secret'],
      limitMs: 120_000,
    });
    assert.equal(sender.code, 0, `${sender.stderr}\n${sender.stdout}\n${results.map((r) => r.stdout).join('\n')}`);
    const summary = JSON.parse(sender.stdout);
    assert.equal(summary.fec, 'raptorq');
    assert.ok(summary.packets.parity > 0, 'repairs went out (their parity made on the FEC thread)');
    assert.equal(summary.blocksRead, 5, 'each block read once');
    for (const [i, r] of results.entries()) {
      assert.equal(r.code, 0, `receiver ${i}: ${r.stderr}`);
      assert.equal(sha(join(dir, `out${i}.bin`)), sha(image));
      assert.ok(!existsSync(join(dir, `out${i}.bin.part`)));
    }
  } finally {
    await lan.teardown();
    rmSync(dir, { recursive: true, force: true });
  }
});
