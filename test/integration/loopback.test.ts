// Real processes on loopback multicast: one `fleetcast send`, several `fleetcast receive`, hashes compared.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, spawnCli } from '../server/helpers.js';

const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');
let portSeed = 20000 + Math.floor(Math.random() * 20000);
const nextPort = () => String(portSeed++);

test('one sender, three receivers on loopback: every image byte-exact', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fc-loop-'));
  try {
    const image = join(dir, 'image.bin');
    writeFileSync(image, randomBytes(12 * 1024 * 1024 + 12345));
    const port = nextPort();
    const common = ['--group', '239.255.77.11', '--port', port, '--interface', 'lo', '--json'];
    const receivers = [1, 2, 3].map((i) => run(['receive', '-o', join(dir, `out${i}.bin`), '--timeout', '30', ...common]));
    await new Promise((r) => setTimeout(r, 300));
    const sender = run(['send', image, '--min-receivers', '3', '--rate', '400M', ...common]);
    const s = await sender.done;
    const rs = await Promise.all(receivers.map((r) => r.done));
    assert.equal(s.code, 0, s.stderr);
    const summary = JSON.parse(s.stdout);
    assert.equal(summary.receivers.length, 3);
    assert.ok(summary.receivers.every((r: { outcome: string }) => r.outcome === 'completed'));
    assert.equal(summary.imageBytes, 12 * 1024 * 1024 + 12345);
    for (const [i, r] of rs.entries()) {
      assert.equal(r.code, 0, r.stderr);
      assert.equal(JSON.parse(r.stdout).ok, true);
      assert.equal(sha(join(dir, `out${i + 1}.bin`)), sha(image));
      assert.ok(!existsSync(join(dir, `out${i + 1}.bin.part`)));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('encrypted session: keyed receivers get the image; a receiver with the wrong key times out and writes nothing', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fc-key-'));
  try {
    const image = join(dir, 'image.bin');
    writeFileSync(image, randomBytes(3 * 1024 * 1024));
    const port = nextPort();
    const common = ['--group', '239.255.77.12', '--port', port, '--interface', 'lo', '--json'];
    const good = [1, 2, 3].map((i) => run(['receive', '-o', join(dir, `out${i}.bin`), '--key', 's3cret', '--timeout', '30', ...common]));
    const wrong = run(['receive', '-o', join(dir, 'wrong.bin'), '--key', 'guess', '--timeout', '4', ...common]);
    await new Promise((r) => setTimeout(r, 300));
    const s = await run(['send', image, '--min-receivers', '3', '--key', 's3cret', '--rate', '300M', ...common]).done;
    assert.equal(s.code, 0, s.stderr);
    for (const [i, r] of (await Promise.all(good.map((g) => g.done))).entries()) {
      assert.equal(r.code, 0, r.stderr);
      assert.equal(sha(join(dir, `out${i + 1}.bin`)), sha(image));
    }
    const w = await wrong.done;
    assert.equal(w.code, 3, `wrong key exits with the timeout code: ${w.stderr}`);
    const result = JSON.parse(w.stdout);
    assert.equal(result.ok, false);
    assert.ok(result.stats.drops.malformed > 0, 'unauthenticated datagrams were counted');
    assert.match(result.message, /failed authentication/);
    assert.ok(!existsSync(join(dir, 'wrong.bin')) && !existsSync(join(dir, 'wrong.bin.part')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a sender interrupted mid-transfer: receivers fail with exit 2 and leave no file behind', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fc-int-'));
  try {
    const image = join(dir, 'image.bin');
    writeFileSync(image, randomBytes(8 * 1024 * 1024));
    const port = nextPort();
    const common = ['--group', '239.255.77.13', '--port', port, '--interface', 'lo', '--json'];
    const receivers = [1, 2, 3].map((i) => run(['receive', '-o', join(dir, `out${i}.bin`), '--timeout', '30', ...common]));
    await new Promise((r) => setTimeout(r, 300));
    // 8 MiB at 10 Mbit/s takes ~7 s: interrupt 1 s into the transfer. The receivers create their part files
    // when the session is announced, after the sender has set up its interrupt handling (a loaded machine can
    // take seconds to start a process, so a fixed delay would interrupt it before).
    const sender = run(['send', image, '--min-receivers', '3', '--rate', '10M', '--no-adaptive-rate', ...common]);
    for (let waited = 0; !existsSync(join(dir, 'out1.bin.part')) && waited < 30_000; waited += 50) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 1000));
    sender.child.kill('SIGINT');
    const s = await sender.done;
    assert.equal(s.code, 130, s.stderr);
    for (const [i, r] of (await Promise.all(receivers.map((x) => x.done))).entries()) {
      assert.equal(r.code, 2, r.stderr);
      assert.match(JSON.parse(r.stdout).message, /ended the session before/);
      assert.ok(!existsSync(join(dir, `out${i + 1}.bin`)));
      assert.ok(!existsSync(join(dir, `out${i + 1}.bin.part`)));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('stdin to stdout: send - and receive -o -', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fc-pipe-'));
  try {
    const data = randomBytes(2 * 1024 * 1024 + 7);
    const port = nextPort();
    const common = ['--group', '239.255.77.14', '--port', port, '--interface', 'lo', '--quiet'];
    const receiver = spawnCli(['receive', '-o', '-', '--timeout', '30', ...common], { stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    receiver.stdout!.on('data', (d: Buffer) => chunks.push(d));
    const received = new Promise<number | null>((resolve) => receiver.on('close', resolve));
    await new Promise((r) => setTimeout(r, 300));
    const sender = spawnCli(['send', '-', '--min-receivers', '1', ...common], { stdio: ['pipe', 'ignore', 'pipe'] });
    sender.stdin!.end(data);
    const senderCode = await new Promise<number | null>((resolve) => sender.on('close', resolve));
    assert.equal(senderCode, 0);
    assert.equal(await received, 0);
    assert.ok(Buffer.concat(chunks).equals(data));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bad input gets a clear error and exit 1', async () => {
  const missing = await run(['send', '/nonexistent/image.img', '--interface', 'lo']).done;
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /no such file/);
  const badGroup = await run(['receive', '-o', '/tmp/x', '--group', '10.0.0.1', '--interface', 'lo']).done;
  assert.equal(badGroup.code, 1);
  assert.match(badGroup.stderr, /not a multicast address/);
  const badRate = await run(['send', '/etc/hostname', '--rate', 'fast']).done;
  assert.equal(badRate.code, 1);
  assert.match(badRate.stderr, /bad rate/);
});
