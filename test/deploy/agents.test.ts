// End to end on loopback (root: loop devices, partitioning, mkfs): a server, a WIM made with wimcapture and a
// zstd-compressed raw image in its library, three `fleetcast agent` processes each with its own disk image
// file. A required deployment partitions (GPT), formats NTFS, applies the WIM to the NTFS partition and the
// raw image to a second partition, writes the hostname, restarts (each agent exits with code 3 and is
// started again, while the server is down: status messages wait on disk) and finishes. Then a second deployment writes the raw image to the three whole disks,
// byte-exact. Checked: one multicast session per image served the three, each disk's content, and the
// server's summary (3 succeeded, steps in order).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { gzipSync } from 'node:zlib';
import { privatePools, run, startServer, until, type Run } from '../server/helpers.js';

const TOOLS = ['losetup', 'partx', 'sfdisk', 'mkfs.ntfs', 'ntfs-3g', 'ntfscat', 'blkid', 'wimcapture', 'wimapply'];
const has = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
const skip =
  process.getuid?.() !== 0
    ? 'needs root (loop devices, partitioning, mkfs) and multicast on lo'
    : TOOLS.filter((t) => !has(t)).length
      ? `missing tools: ${TOOLS.filter((t) => !has(t)).join(', ')} (Debian packages util-linux, fdisk, ntfs-3g, wimtools)`
      : false;
if (skip) console.log(`# deployment end-to-end tests skipped: ${skip}`);

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const AGENTS = [1, 2, 3].map((n) => ({ name: `e2e-pc-${n}`, mac: `52:54:00:12:34:0${n}` }));

function loopsOf(file: string): string[] {
  const out = execFileSync('losetup', ['--associated', file, '--noheadings', '--output', 'NAME'], { encoding: 'utf8' }).trim();
  return out ? out.split('\n').map((l) => l.trim()) : [];
}

/** Attaches a disk image read-only, runs `use` with its partition paths, detaches. */
function inspect<T>(file: string, use: (partition: (n: number) => string) => T): T {
  const loop = execFileSync('losetup', ['--find', '--show', '--read-only', '--partscan', file], { encoding: 'utf8' }).trim();
  try {
    spawnSync('partx', ['--update', loop]);
    return use((n) => `${loop}p${n}`);
  } finally {
    execFileSync('losetup', ['--detach', loop]);
  }
}

function readPrefix(path: string, length: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(length);
    let done = 0;
    while (done < length) {
      const n = readSync(fd, buf, done, length - done, done);
      if (n === 0) break;
      done += n;
    }
    return buf.subarray(0, done);
  } finally {
    closeSync(fd);
  }
}

interface SessionView {
  id: number;
  imageName: string;
  state: string;
  endReason: string;
}

/**
 * The sessions `query` lists once `count` exist and all have ended: an agent reports its step once its disk holds
 * the verified image, and the sender records the session's end a moment later (its closing datagrams out).
 */
function endedSessions(s: { api: (method: string, path: string) => Promise<{ body: unknown }> }, query: string, count: number): Promise<SessionView[]> {
  return until(
    `${count} sessions (${query}) to end`,
    () => s.api('GET', `/api/v1/sessions${query}`).then((r) => r.body as SessionView[]),
    (list) => list.length === count && list.every((x) => x.state !== 'waiting' && x.state !== 'running'),
    30_000,
  );
}

interface StatusView {
  counts: Record<string, number>;
  devices: { deviceName: string; state: string; reason: string | null; message: string | null; restarts: number; steps: { path: string; outcome: string }[] }[];
}

test('three agents: a required deployment end to end, then a raw image byte-exact to three disks', { skip }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fc-deploy-e2e-'));
  const disks = AGENTS.map((a) => join(dir, `${a.name}.img`));
  const procs: ReturnType<typeof run>[] = [];
  // In this order, even after a failure: agents stopped, their loop devices detached, then the files removed.
  t.after(async () => {
    for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL');
    await Promise.race([Promise.all(procs.map((p) => p.done)), sleep(10_000)]);
    for (const f of disks) for (const loop of loopsOf(f)) spawnSync('losetup', ['--detach', loop]);
    rmSync(dir, { recursive: true, force: true });
  });
  for (const f of disks) {
    writeFileSync(f, '');
    truncateSync(f, 72 * 1024 * 1024);
  }
  let s = await startServer(t, join(dir, 'data'), ['--agent-poll-interval', '1']);
  const dp = await s.api('PATCH', '/api/v1/dp', { ...privatePools(), scheduledMulticast: true, minimumSessionSize: 3, sessionStartDelaySeconds: 120, autoCast: false, maxClients: 10 });
  assert.equal(dp.status, 200, JSON.stringify(dp.body));

  // The content: a WIM of a small "OS" tree, and a raw image compressed with zstd (gzip without the CLI).
  const os = join(dir, 'os');
  mkdirSync(join(os, 'Windows', 'System32'), { recursive: true });
  writeFileSync(join(os, 'Windows', 'win.ini'), '[fonts]\n');
  const kernel = randomBytes(300_000);
  writeFileSync(join(os, 'Windows', 'System32', 'kernel.bin'), kernel);
  execFileSync('wimcapture', [os, join(dir, 'os.wim'), 'E2E OS'], { stdio: 'ignore' });
  const raw = randomBytes(3 * 1024 * 1024 + 123);
  writeFileSync(join(dir, 'data.raw'), raw);
  let rawFile = join(dir, 'data.raw.gz');
  if (has('zstd')) {
    rawFile = join(dir, 'data.raw.zst');
    execFileSync('zstd', ['-q', '-3', join(dir, 'data.raw'), '-o', rawFile]);
  } else writeFileSync(rawFile, gzipSync(raw));
  for (const [file, name] of [
    [join(dir, 'os.wim'), 'e2eos'],
    [rawFile, 'e2edata'],
  ] as const) {
    const r = await s.cli(['image', 'import', file, '--name', name, '--version', '1']);
    assert.equal(r.code, 0, r.stderr);
  }

  // Three agents, as real processes; each gets its own data folder and disk image file.
  const agentArgs = (i: number) => ['agent', '--server', s.url, '--target', `disk0=${disks[i]}`, '--data', join(dir, `agent-${i + 1}`), '--name', AGENTS[i]!.name, '--mac', AGENTS[i]!.mac, '--interface', 'lo'];
  const start = (i: number) => {
    const p = run(agentArgs(i), { timeoutMs: 240_000 });
    procs[i] = p;
    return p;
  };
  AGENTS.forEach((_, i) => start(i));
  await until('three registered devices', () => s.api('GET', '/api/v1/devices'), (r) => r.body.length === 3, 60_000);

  const collection = await s.cli(['collection', 'create', 'e2e-lab', '--name-glob', 'e2e-pc-*', '--var', 'Site=hq', '--json']);
  assert.equal(collection.code, 0, collection.stderr);
  assert.equal(JSON.parse(collection.stdout).memberCount, 3);

  const refresh = {
    formatVersion: 1,
    name: 'E2E refresh',
    version: 1,
    parameters: ['Site'],
    steps: [
      {
        id: 'partition',
        type: 'partition-disk',
        name: 'Partition disk 0',
        disk: 'disk0',
        layout: 'gpt',
        partitions: [
          { type: 'windows', size: '40MiB', filesystem: 'ntfs', label: 'Windows', variable: 'OSPART' },
          { type: 'linux', remaining: true, filesystem: 'none', variable: 'DATAPART' },
        ],
      },
      { id: 'apply-os', type: 'apply-image', name: 'Apply E2E OS', image: 'e2eos/1', destination: { partition: 'OSPART' } },
      { id: 'apply-data', type: 'apply-image', name: 'Apply data image', image: 'e2edata', destination: { partition: 'DATAPART' } },
      { id: 'settings', type: 'apply-settings', name: 'Apply settings', partition: 'OSPART', hostname: '%_DeviceName%-%Site%', hostnameFile: 'Windows/hostname.txt' },
      { id: 'restart', type: 'restart', name: 'Restart computer' },
      { id: 'after', type: 'apply-settings', name: 'After restart', partition: 'OSPART', files: [{ path: 'after-restart.txt', template: 'resumed %_DeviceName% for %_DeploymentID%' }] },
    ],
  };
  writeFileSync(join(dir, 'refresh.json'), JSON.stringify(refresh));
  const upload = await s.cli(['task-sequence', 'upload', join(dir, 'refresh.json'), '--json']);
  assert.equal(upload.code, 0, upload.stderr);
  const created = await s.cli(['deployment', 'create', '--sequence', 'E2E refresh', '--collection', 'e2e-lab', '--purpose', 'required', '--deadline', 'now', '--json']);
  assert.equal(created.code, 0, created.stderr);
  const deployment = JSON.parse(created.stdout) as { id: number };
  const status = () => s.api<StatusView>('GET', `/api/v1/deployments/${deployment.id}/status`).then((r) => r.body);

  // Each agent reports the restart, then exits with 3 (the documented "restart me" code); it is started again.
  const pending = await until('three restarts requested', status, (v) => v.counts['restart-pending'] === 3 || v.counts.failed > 0, 120_000);
  assert.equal(pending.counts['restart-pending'], 3, JSON.stringify(pending.devices.map((d) => [d.deviceName, d.state, d.reason, d.message])));
  const exits: Run[] = await Promise.all(procs.map((p) => p.done));
  for (const [i, r] of exits.entries()) assert.equal(r.code, 3, `agent ${i + 1} exits for the restart:\n${r.stderr}`);
  // The server goes away while the machines "reboot": the agents continue from their state files without it,
  // queue their status messages on disk, and deliver them when the server is back.
  assert.equal(await s.stop(), 0);
  AGENTS.forEach((_, i) => start(i));
  const localState = (i: number) => {
    try {
      return (JSON.parse(readFileSync(join(dir, `agent-${i + 1}`, 'deployments', String(deployment.id), 'state.json'), 'utf8')) as { status: string }).status;
    } catch {
      return null;
    }
  };
  const queued = (i: number) => readFileSync(join(dir, `agent-${i + 1}`, 'outbox.jsonl'), 'utf8');
  const finished = await until('the agents finish without the server, their messages queued on disk', async () => AGENTS.map((_, i) => [localState(i), queued(i).includes('"sequence-succeeded"')]), (v) => v.every(([state, q]) => q || state === 'failed'), 60_000);
  assert.deepEqual(finished.map(([state]) => state), ['succeeded', 'succeeded', 'succeeded']);
  s = await startServer(t, join(dir, 'data'), ['--agent-poll-interval', '1', '--listen', new URL(s.url).host]);
  const done = await until('all three succeeded', status, (v) => v.counts.succeeded === 3 || v.counts.failed > 0, 90_000);
  assert.equal(done.counts.succeeded, 3, JSON.stringify(done.devices.map((d) => [d.deviceName, d.state, d.reason, d.message])));
  for (const d of done.devices) {
    assert.deepEqual(
      d.steps.map((x) => `${x.path} ${x.outcome}`),
      ['/steps/0 succeeded', '/steps/1 succeeded', '/steps/2 succeeded', '/steps/3 succeeded', '/steps/4 succeeded', '/steps/5 succeeded'],
      d.deviceName,
    );
    assert.equal(d.restarts, 1);
  }
  const watched = await s.cli(['deployment', 'status', String(deployment.id), '--watch', '--json']);
  assert.equal(watched.code, 0, watched.stderr);
  assert.equal(JSON.parse(watched.stdout).counts.succeeded, 3);

  // One multicast session per image, each serving the three agents.
  const sessions = await endedSessions(s, '', 2);
  for (const image of ['e2eos', 'e2edata']) {
    const of = sessions.filter((x) => x.imageName === image);
    assert.equal(of.length, 1, `${image}: ${JSON.stringify(of)}`);
    assert.equal(of[0]!.state, 'completed');
    assert.equal(of[0]!.endReason, '3 of 3 clients completed');
    const clients = (await s.api('GET', `/api/v1/clients?session=${of[0]!.id}`)).body as { clientName: string; outcome: string; transport: string }[];
    assert.deepEqual(clients.map((c) => c.clientName).sort(), AGENTS.map((a) => a.name));
    assert.ok(clients.every((c) => c.outcome === 'completed' && c.transport === 'multicast'), JSON.stringify(clients));
  }
  // Every disk: NTFS with the WIM's files, the hostname, the file written after the restart, the raw partition.
  for (const [i, file] of disks.entries()) {
    assert.deepEqual(loopsOf(file), [], 'the agents detached their loop devices');
    inspect(file, (part) => {
      assert.match(execFileSync('blkid', ['-p', '-o', 'export', part(1)], { encoding: 'utf8' }), /TYPE=ntfs/);
      const cat = (path: string) => execFileSync('ntfscat', [part(1), path]);
      assert.equal(cat('Windows/win.ini').toString(), '[fonts]\n');
      assert.equal(sha256(cat('Windows/System32/kernel.bin')), sha256(kernel));
      assert.equal(cat('Windows/hostname.txt').toString(), `${AGENTS[i]!.name}-hq\n`);
      assert.equal(cat('after-restart.txt').toString(), `resumed ${AGENTS[i]!.name} for ${deployment.id}`);
      assert.ok(readPrefix(part(2), raw.length).equals(raw), `${AGENTS[i]!.name}: the raw image on partition 2`);
    });
  }

  await t.test('a raw image to the three whole disks, byte-exact', async () => {
    const wipe = { formatVersion: 1, name: 'E2E raw disk', version: 1, steps: [{ id: 'raw', type: 'apply-image', name: 'Write the disk image', image: 'e2edata', destination: { disk: 'disk0' } }] };
    const up = await s.api('POST', '/api/v1/task-sequences', wipe);
    assert.equal(up.status, 201, JSON.stringify(up.body));
    const d = await s.api('POST', '/api/v1/deployments', { sequence: up.body.sequence.id, collection: 'e2e-lab', purpose: 'required', deadline: new Date().toISOString() });
    assert.equal(d.status, 201, JSON.stringify(d.body));
    const v = await until('the raw deployment to finish', () => s.api<StatusView>('GET', `/api/v1/deployments/${d.body.id}/status`).then((r) => r.body), (x) => x.counts.succeeded === 3 || x.counts.failed > 0, 90_000);
    assert.equal(v.counts.succeeded, 3, JSON.stringify(v.devices));
    const rawSessions = await endedSessions(s, '?image=e2edata', 2);
    assert.deepEqual(rawSessions.map((x) => x.state), ['completed', 'completed'], `one more session, for the three: ${JSON.stringify(rawSessions)}`);
    for (const file of disks) {
      await until(`${file} released`, async () => loopsOf(file), (l) => l.length === 0, 30_000);
      assert.ok(readPrefix(file, raw.length).equals(raw), `${file} starts with the exact image`);
    }
  });

  for (const p of procs) p.child.kill('SIGTERM');
  const stopped = await Promise.all(procs.map((p) => p.done));
  for (const r of stopped) assert.equal(r.code, 0, `a stopped idle agent exits 0:\n${r.stderr}`);
});
