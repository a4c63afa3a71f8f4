// Choosing the UDP backend where the batched addon is missing: a copy of the built CLI without native/build.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const DIST_SRC = fileURLToPath(new URL('../../src', import.meta.url));
const ROOT = resolve(DIST_SRC, '..', '..');

function run(cli: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  return new Promise((done) =>
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code, stderr });
    }),
  );
}

test('without the addon: --io batch is a clear error, the default falls back to dgram with one warning', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fc-noaddon-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(DIST_SRC, join(dir, 'dist', 'src'), { recursive: true, filter: (p) => !p.endsWith('.map') });
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
  const cli = join(dir, 'dist', 'src', 'cli', 'main.js');
  const env = { ...process.env };
  delete env.FLEETCAST_IO;
  const port = String(20000 + Math.floor(Math.random() * 20000));
  const common = ['receive', '-o', join(dir, 'out.bin'), '--group', '239.255.77.41', '--port', port, '--interface', 'lo', '--timeout', '1'];

  const forced = await run(cli, [...common, '--io', 'batch'], env);
  assert.equal(forced.code, 1, forced.stderr);
  assert.match(forced.stderr, /batched UDP I\/O \(--io batch\) is not available: .*(not built|Linux)/);
  assert.match(forced.stderr, /or use --io dgram/);

  const fallback = await run(cli, common, env);
  assert.equal(fallback.code, 3, `no sender: the receive times out (${fallback.stderr})`);
  assert.equal(fallback.stderr.match(/batched UDP I\/O is not available/g)?.length, 1, fallback.stderr);
  assert.match(fallback.stderr, /using Node's dgram/);

  const badEnv = await run(cli, common, { ...env, FLEETCAST_IO: 'fast' });
  assert.equal(badEnv.code, 1);
  assert.match(badEnv.stderr, /FLEETCAST_IO must be dgram or batch, not "fast"/);
});
