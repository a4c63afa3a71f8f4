// When `fleetcast send` starts: an explicit --min-receivers N starts as soon as N joined; without it the sender
// settles 0.5 s for stragglers; --settle overrides both. Real processes on loopback. The sender's JSON says how
// long each receiver waited for the start; the engine starts in the very step that sees the last join it needs
// (waitedMs exactly 0) and never before the settle deadline (at least the settle time): no clock is raced.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { statSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { run, tempDir } from '../server/helpers.js';

let portSeed = 20000 + Math.floor(Math.random() * 20000);
const group = `239.255.78.${1 + Math.floor(Math.random() * 250)}`;

async function waitedMs(dir: string, name: string, sendArgs: string[]): Promise<number> {
  const image = join(dir, `${name}.img`);
  writeFileSync(image, randomBytes(256 * 1024));
  const common = ['--group', group, '--port', String(portSeed++), '--interface', 'lo', '--json'];
  const receiver = run(['receive', '-o', join(dir, `${name}.out`), '--timeout', '30', ...common]);
  const s = await run(['send', image, '--rate', '200M', ...sendArgs, ...common]).done;
  const r = await receiver.done;
  assert.equal(s.code, 0, s.stderr);
  assert.equal(r.code, 0, r.stderr);
  const summary = JSON.parse(s.stdout) as { receivers: { outcome: string; waitedMs: number | null }[] };
  assert.equal(summary.receivers.length, 1);
  assert.equal(summary.receivers[0]!.outcome, 'completed');
  return summary.receivers[0]!.waitedMs!;
}

test('send: explicit --min-receivers starts at once; the default waits 0.5 s; --settle overrides', async (t) => {
  const dir = tempDir(t, 'fc-start-');
  const [explicit, byDefault, settled] = await Promise.all([
    waitedMs(dir, 'explicit', ['--min-receivers', '1']),
    waitedMs(dir, 'default', []),
    waitedMs(dir, 'settle', ['-n', '1', '--settle', '0.3']),
  ]);
  assert.equal(explicit, 0, 'started in the step that saw the join');
  assert.ok(byDefault >= 500, `default settle: waited ${byDefault} ms`);
  assert.ok(settled >= 300, `--settle 0.3: waited ${settled} ms`);
});

test('receive: an output that exists and is neither a regular file nor a block device is refused before anything is written', async () => {
  const r = await run(['receive', '-o', '/dev/null', '--group', group, '--port', String(portSeed++), '--interface', 'lo', '--timeout', '5']).done;
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /\/dev\/null exists and is neither a regular file nor a block device: give a file or a disk, or -o -/);
  assert.ok(statSync('/dev/null').isCharacterDevice());
  assert.equal(existsSync('/dev/null.part'), false);
});
