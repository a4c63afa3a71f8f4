// fleetcast on a real (namespace) network: a sender and receiver hosts on a bridge, nftables dropping
// packets, a rate-limited uplink. Needs root, ip, tc and nft; skipped with the reason otherwise.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { buildLan, prerequisiteProblems, type Lan, type LanHost } from '../../src/testlan/lan.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const problems = prerequisiteProblems();
const skip = problems.length > 0 ? `test LAN unavailable: ${problems.join('; ')}` : false;
if (skip) console.log(`# skipping fleetcast namespace tests: ${skip}`);

const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

function collect(child: ChildProcess, timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d) => (stdout += d));
  child.stderr?.on('data', (d) => (stderr += d));
  // Interrupt first so a stuck fleetcast still prints its summary (shown in the failure), then kill.
  const timer = setTimeout(() => {
    child.kill('SIGINT');
    setTimeout(() => child.kill('SIGKILL'), 5000).unref();
  }, timeoutMs);
  return new Promise((resolve) =>
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
}

async function transfer(lan: Lan, dir: string, image: string, extra: string[], group: string, limitMs = 180_000, both: string[] = []) {
  const common = ['--group', group, '--port', '7720', '--json', ...both];
  const receivers = lan.receivers.map((host: LanHost, i) =>
    collect(lan.spawn(host, [process.execPath, CLI, 'receive', '-o', join(dir, `out${i}.bin`), '--interface', host.ifname, '--timeout', '60', ...common], { stdio: ['ignore', 'pipe', 'pipe'] }), limitMs),
  );
  await new Promise((r) => setTimeout(r, 500));
  const txBefore = await lan.txBytes(lan.sender);
  const sender = await collect(
    lan.spawn(lan.sender, [process.execPath, CLI, 'send', image, '--interface', lan.sender.ifname, '--min-receivers', String(lan.receivers.length), ...extra, ...common], { stdio: ['ignore', 'pipe', 'pipe'] }),
    120_000,
  );
  const txAfter = await lan.txBytes(lan.sender);
  const results = await Promise.all(receivers);
  return { sender, results, wireBytes: txAfter - txBefore };
}

test('3 receiver hosts, 3 % random loss, 300 Mbit/s uplink: every receiver ends with the exact image', { skip, timeout: 240_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fc-ns-'));
  const lan = await buildLan({ receivers: 3, loss: 0.03, senderRate: '300mbit' });
  try {
    const image = join(dir, 'image.bin');
    writeFileSync(image, randomBytes(24 * 1024 * 1024 + 999));
    const { sender, results, wireBytes } = await transfer(lan, dir, image, ['--rate', '290M'], '239.255.77.21');
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
    writeFileSync(image, randomBytes(6 * 1024 * 1024));
    const { sender, results } = await transfer(lan, dir, image, ['--fec', 'raptorq', '--block-symbols', '1024'], '239.255.77.22', 120_000, ['--key', 'ns-secret']);
    assert.equal(sender.code, 0, `${sender.stderr}\n${sender.stdout}\n${results.map((r) => r.stdout).join('\n')}`);
    assert.equal(JSON.parse(sender.stdout).fec, 'raptorq');
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
