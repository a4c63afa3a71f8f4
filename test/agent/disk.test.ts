// Real disks (loop devices on disk image files, root only): partition GPT, format FAT32 + NTFS, apply a WIM
// made with wimcapture, write settings, restart and resume with a new runner; raw compressed images written
// byte-exact to whole disks; exact failure reasons. Only loop devices this test creates are touched.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { DirectoryContentProvider, type MediaManifestEntry } from '../../src/agent/content.js';
import type { StatusMessage } from '../../src/agent/report.js';
import { runSequence, type RunOptions } from '../../src/agent/runner.js';
import { parseSequence } from '../../src/agent/sequence.js';

const TOOLS = ['losetup', 'partx', 'sfdisk', 'mkfs.vfat', 'mkfs.ntfs', 'ntfs-3g', 'ntfscat', 'blkid', 'wimcapture', 'wimapply', 'wiminfo'];
const has = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
const skip =
  process.getuid?.() !== 0
    ? 'needs root (loop devices, partitioning, mkfs)'
    : TOOLS.filter((t) => !has(t)).length
      ? `missing tools: ${TOOLS.filter((t) => !has(t)).join(', ')} (Debian packages mount, util-linux, fdisk, dosfstools, ntfs-3g, wimtools)`
      : false;
if (skip) console.log(`# agent disk tests skipped: ${skip}`);

const machine = { deviceName: 'lab-pc', macAddresses: ['52:54:00:AA:BB:CC'], serialNumber: null, uuid: null, architecture: 'x64' };
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** Loop devices attached to a file (there should be none after a run). */
function loopsOf(file: string): string[] {
  const out = execFileSync('losetup', ['--associated', file, '--noheadings', '--output', 'NAME'], { encoding: 'utf8' }).trim();
  return out ? out.split('\n').map((l) => l.trim()) : [];
}

function workspace(t: { after: (fn: () => void) => void }) {
  const dir = mkdtempSync(join(tmpdir(), 'fc-agent-disk-'));
  const files: string[] = [];
  t.after(() => {
    // Detach whatever is still attached to this test's files, even after a failure, then remove them.
    for (const f of files) for (const loop of loopsOf(f)) spawnSync('losetup', ['--detach', loop]);
    rmSync(dir, { recursive: true, force: true });
  });
  const disk = (name: string, mib: number) => {
    const path = join(dir, name);
    writeFileSync(path, '');
    truncateSync(path, mib * 1024 * 1024);
    files.push(path);
    return path;
  };
  const media = join(dir, 'media');
  mkdirSync(media);
  const manifest: MediaManifestEntry[] = [];
  const addImage = (entry: Omit<MediaManifestEntry, 'sha256' | 'size'> & { sha256?: string }) => {
    const bytes = readFileSync(join(media, entry.file));
    manifest.push({ ...entry, sha256: entry.sha256 ?? sha256(bytes), size: bytes.length });
    writeFileSync(join(media, 'manifest.json'), JSON.stringify({ formatVersion: 1, images: manifest }, null, 2));
  };
  const messages: StatusMessage[] = [];
  const options = (doc: unknown, targets: RunOptions['targets']): RunOptions => ({
    sequence: parseSequence(doc),
    statePath: join(dir, 'state.json'),
    logPath: join(dir, 'agent.log'),
    workDir: join(dir, 'work'),
    targets,
    content: new DirectoryContentProvider(media),
    reporter: { report: (m) => void messages.push(m) },
    machine,
    deploymentId: 'DEP-7',
  });
  return { dir, disk, media, addImage, messages, options, files };
}

/** Attaches a disk image read-only for checking, runs `use` with its partition paths, detaches. */
function inspect<T>(file: string, use: (partition: (n: number) => string) => T): T {
  const loop = execFileSync('losetup', ['--find', '--show', '--read-only', '--partscan', file], { encoding: 'utf8' }).trim();
  try {
    spawnSync('partx', ['--update', loop]);
    return use((n) => `${loop}p${n}`);
  } finally {
    execFileSync('losetup', ['--detach', loop]);
  }
}

test('GPT with EFI (FAT32) and NTFS, a WIM applied, settings written, restart with a new runner, files checked', { skip }, async (t) => {
  const w = workspace(t);
  const diskFile = w.disk('disk0.img', 96);
  const source = join(w.dir, 'os');
  mkdirSync(join(source, 'Windows', 'System32'), { recursive: true });
  writeFileSync(join(source, 'Windows', 'win.ini'), '[fonts]\n');
  writeFileSync(join(source, 'Windows', 'System32', 'kernel.bin'), randomBytes(200_000));
  execFileSync('wimcapture', [source, join(w.media, 'os.wim'), 'Test OS'], { stdio: 'ignore' });
  w.addImage({ name: 'testos', version: 2, file: 'os.wim', format: 'wim' });

  const doc = {
    formatVersion: 1,
    name: 'Refresh to Test OS',
    version: 1,
    variables: { Site: 'hq' },
    steps: [
      {
        id: 'partition',
        type: 'partition-disk',
        name: 'Partition disk 0',
        disk: 'disk0',
        layout: 'gpt',
        partitions: [
          { type: 'efi', size: '32MiB', label: 'SYSTEM', variable: 'EFIPART' },
          { type: 'windows', remaining: true, filesystem: 'ntfs', label: 'Windows', variable: 'OSPART' },
        ],
      },
      { id: 'apply', type: 'apply-image', name: 'Apply Test OS', image: 'testos/2', destination: { partition: 'OSPART' } },
      {
        id: 'settings',
        type: 'apply-settings',
        name: 'Apply settings',
        partition: 'OSPART',
        hostname: '%_DeviceName%-%Site%',
        hostnameFile: 'Windows/hostname.txt',
        files: [{ path: 'Windows/Panther/unattend.xml', template: '<ComputerName>%OSDComputerName%</ComputerName><Deployment>%_DeploymentID%</Deployment>' }],
      },
      { id: 'restart', type: 'restart', name: 'Restart computer' },
      { id: 'after', type: 'apply-settings', name: 'After restart', partition: 'OSPART', files: [{ path: 'after-restart.txt', template: 'resumed on %OSPART%' }] },
    ],
  };

  const first = await runSequence(w.options(doc, [{ name: 'disk0', path: diskFile }]));
  assert.equal(first.status, 'restart-requested', JSON.stringify(first.failure));
  assert.deepEqual(loopsOf(diskFile), [], 'the runner detached its loop device');
  const firstOsPart = first.variables.OSPART!;

  // Take the loop device the first run used, so the resumed run gets a different one: the partition variable
  // must follow the disk, not the old device name.
  const blocker = w.disk('blocker.img', 1);
  const held = execFileSync('losetup', ['--find', '--show', blocker], { encoding: 'utf8' }).trim();
  const second = await runSequence(w.options(doc, [{ name: 'disk0', path: diskFile }]));
  execFileSync('losetup', ['--detach', held]);
  assert.equal(second.status, 'succeeded', JSON.stringify(second.failure));
  assert.equal(second.resumed, true);
  assert.deepEqual(loopsOf(diskFile), []);
  assert.notEqual(second.variables.OSPART, firstOsPart);

  const kinds = w.messages.map((m) => `${m.kind}${m.step ? ` ${m.step.id}` : ''}`).filter((k) => !k.startsWith('step-log') && !k.startsWith('step-progress'));
  assert.deepEqual(kinds, [
    'sequence-started',
    'step-started partition',
    'step-succeeded partition',
    'step-started apply',
    'step-succeeded apply',
    'step-started settings',
    'step-succeeded settings',
    'step-started restart',
    'restart-requested restart',
    'sequence-resumed',
    'step-started after',
    'step-succeeded after',
    'sequence-succeeded',
  ]);

  inspect(diskFile, (part) => {
    const fsOf = (n: number) => execFileSync('blkid', ['-p', '-o', 'export', part(n)], { encoding: 'utf8' });
    assert.match(fsOf(1), /TYPE=vfat/);
    assert.match(fsOf(1), /LABEL=SYSTEM/);
    assert.match(fsOf(1), /PART_ENTRY_TYPE=c12a7328-f81f-11d2-ba4b-00a0c93ec93b/);
    assert.match(fsOf(2), /TYPE=ntfs/);
    assert.match(fsOf(2), /LABEL=Windows/);
    const cat = (path: string) => execFileSync('ntfscat', [part(2), path]);
    assert.equal(cat('Windows/win.ini').toString(), '[fonts]\n');
    assert.equal(sha256(cat('Windows/System32/kernel.bin')), sha256(readFileSync(join(source, 'Windows', 'System32', 'kernel.bin'))));
    assert.equal(cat('Windows/hostname.txt').toString(), 'lab-pc-hq\n');
    assert.equal(cat('Windows/Panther/unattend.xml').toString(), '<ComputerName>lab-pc-hq</ComputerName><Deployment>DEP-7</Deployment>');
    assert.equal(cat('after-restart.txt').toString(), `resumed on ${second.variables.OSPART}`);
  });
});

test('raw images, gzip and zstd, written byte-exact to whole disks; exact failure reasons', { skip }, async (t) => {
  const w = workspace(t);
  const MiB = 1024 * 1024;
  const image = randomBytes(6 * MiB + 4321);
  writeFileSync(join(w.media, 'disk.raw.gz'), gzipSync(image));
  w.addImage({ name: 'gz', version: 1, file: 'disk.raw.gz', format: 'gzip', uncompressedSize: image.length });
  const zstd = has('zstd');
  if (zstd) {
    writeFileSync(join(w.media, 'disk.raw'), image);
    execFileSync('zstd', ['-q', '-3', join(w.media, 'disk.raw'), '-o', join(w.media, 'disk.raw.zst')]);
    rmSync(join(w.media, 'disk.raw'));
    w.addImage({ name: 'zst', version: 1, file: 'disk.raw.zst', format: 'zstd' });
  } else console.log('# zstd CLI not installed (Debian package zstd): the zstd image is not tested');
  // 20 MiB that compress to almost nothing, no uncompressedSize in the manifest: found out while writing.
  writeFileSync(join(w.media, 'big.raw.gz'), gzipSync(Buffer.alloc(20 * MiB, 7)));
  w.addImage({ name: 'big', version: 1, file: 'big.raw.gz', format: 'gzip' });
  writeFileSync(join(w.media, 'truncated.raw.gz'), gzipSync(image).subarray(0, 100_000));
  w.addImage({ name: 'truncated', version: 1, file: 'truncated.raw.gz', format: 'gzip' });
  writeFileSync(join(w.media, 'tampered.raw'), randomBytes(MiB));
  w.addImage({ name: 'tampered', version: 1, file: 'tampered.raw', format: 'raw', sha256: '0'.repeat(64) });
  mkdirSync(join(w.dir, 'wimsrc'));
  writeFileSync(join(w.dir, 'wimsrc', 'a.txt'), 'a');
  execFileSync('wimcapture', [join(w.dir, 'wimsrc'), join(w.media, 'files.wim')], { stdio: 'ignore' });
  w.addImage({ name: 'files', version: 1, file: 'files.wim', format: 'wim' });

  const disk0 = w.disk('a.img', 16);
  const disk1 = w.disk('b.img', 16);
  const small = w.disk('small.img', 8);
  const apply = (id: string, img: string, disk: string) => ({ id, type: 'apply-image', image: img, destination: { disk }, continueOnError: true });
  const doc = {
    formatVersion: 1,
    name: 'Raw images',
    version: 1,
    steps: [
      apply('gz', 'gz', 'disk0'),
      ...(zstd ? [apply('zst', 'zst', disk1)] : []),
      apply('big', 'big', 'small'),
      apply('truncated', 'truncated', 'small'),
      apply('missing', 'nothing/3', 'disk0'),
      apply('tampered', 'tampered', 'disk0'),
      apply('unlisted', 'gz', 'disk9'),
      apply('wim-to-disk', 'files', 'small'),
    ],
  };
  const result = await runSequence(w.options(doc, [{ name: 'disk0', path: disk0 }, { name: 'disk1', path: disk1 }, { name: 'small', path: small }]));
  assert.equal(result.status, 'succeeded', 'every failing step has continueOnError');
  for (const f of w.files) assert.deepEqual(loopsOf(f), []);
  const step = (id: string) => result.steps.find((s) => s.id === id)!;
  assert.equal(step('gz').outcome, 'succeeded', step('gz').message);
  const written0 = readFileSync(disk0);
  assert.ok(written0.subarray(0, image.length).equals(image), 'gzip image byte-exact');
  assert.ok(written0.subarray(image.length).every((b) => b === 0), 'nothing written past the image');
  if (zstd) {
    assert.equal(step('zst').outcome, 'succeeded', step('zst').message);
    assert.ok(readFileSync(disk1).subarray(0, image.length).equals(image), 'zstd image byte-exact');
  }
  assert.equal(step('big').reason, 'disk-too-small');
  assert.match(step('big').message!, /disk too small for the image: it decompresses to more than \/dev\/loop\d+'s 8388608 bytes/);
  assert.equal(step('truncated').reason, 'corrupt-image');
  assert.match(step('truncated').message!, /the gzip image data is corrupt: unexpected end of file/);
  assert.equal(step('missing').reason, 'content-not-found');
  assert.match(step('missing').message!, /image nothing\/3 is not in the content folder .* \(it has: gz\/1, .*files\/1\)/);
  assert.equal(step('tampered').reason, 'hash-mismatch');
  assert.match(step('tampered').message!, /SHA-256 of .*tampered.raw is [0-9a-f]{64}, the manifest says 0{64}/);
  assert.equal(step('unlisted').reason, 'target-not-allowed');
  assert.match(step('unlisted').message!, /disk "disk9" is not a target configured on this machine \(configured: disk0=.*a\.img, disk1=.*b\.img, small=.*small\.img\)/);
  assert.equal(step('wim-to-disk').reason, 'unsupported-image');
  assert.ok(statSync(disk0).size === 16 * MiB);
  const failed = w.messages.filter((m) => m.kind === 'step-failed').map((m) => m.reason);
  assert.deepEqual(failed, ['disk-too-small', 'corrupt-image', 'content-not-found', 'hash-mismatch', 'target-not-allowed', 'unsupported-image']);
  assert.ok(w.messages.some((m) => m.kind === 'step-progress' && m.progress?.phase === 'write'), 'progress reported while writing');
});

test('MBR with percent sizing, swap and ext4: a WIM applied through a mount, hostname in etc/hostname', { skip: skip || (!has('mkfs.ext4') || !has('debugfs') ? 'needs e2fsprogs' : false) }, async (t) => {
  const w = workspace(t);
  const diskFile = w.disk('linux.img', 64);
  mkdirSync(join(w.dir, 'root', 'etc'), { recursive: true });
  writeFileSync(join(w.dir, 'root', 'etc', 'os-release'), 'NAME=Test\n');
  execFileSync('wimcapture', [join(w.dir, 'root'), join(w.media, 'root.wim'), 'root'], { stdio: 'ignore' });
  w.addImage({ name: 'linux', version: 1, file: 'root.wim', format: 'wim' });
  const doc = {
    formatVersion: 1,
    name: 'Linux',
    version: 1,
    steps: [
      {
        type: 'partition-disk',
        disk: 'disk0',
        layout: 'mbr',
        partitions: [
          { type: 'swap', percent: 25, label: 'swap' },
          { type: 'linux', remaining: true, filesystem: 'ext4', label: 'root-%_DeviceName%', variable: 'ROOT', bootable: true },
        ],
      },
      { type: 'apply-image', image: 'linux', destination: { partition: 'ROOT' } },
      { type: 'apply-settings', partition: 'ROOT', hostname: '%_DeviceName%', files: [{ path: '/etc/fleetcast/deployment', template: '%_DeploymentID%\n', mode: '0600' }] },
      { id: 'escape', type: 'apply-settings', partition: 'ROOT', files: [{ path: '../../outside', template: 'x' }], continueOnError: true },
    ],
  };
  const result = await runSequence(w.options(doc, [{ name: 'disk0', path: diskFile }]));
  assert.equal(result.status, 'succeeded', JSON.stringify(result.failure));
  assert.equal(result.steps.find((s) => s.id === 'escape')!.reason, 'invalid-value');
  assert.deepEqual(loopsOf(diskFile), []);
  inspect(diskFile, (part) => {
    const table = execFileSync('sfdisk', ['--dump', diskFile], { encoding: 'utf8' });
    assert.match(table, /label: dos/);
    assert.match(table, /size=\s*30720, type=82/, '25 % of the 62 MiB left after the 1 MiB lead-in, in MiB: 15 MiB');
    assert.match(table, /type=83, bootable/);
    assert.match(execFileSync('blkid', ['-p', '-o', 'export', part(1)], { encoding: 'utf8' }), /TYPE=swap/);
    assert.match(execFileSync('blkid', ['-p', '-o', 'export', part(2)], { encoding: 'utf8' }), /LABEL=root-lab-pc/);
    const cat = (path: string) => execFileSync('debugfs', ['-R', `cat ${path}`, part(2)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    assert.equal(cat('/etc/os-release'), 'NAME=Test\n');
    assert.equal(cat('/etc/hostname'), 'lab-pc\n');
    assert.equal(cat('/etc/fleetcast/deployment'), 'DEP-7\n');
    assert.match(execFileSync('debugfs', ['-R', 'stat /etc/fleetcast/deployment', part(2)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }), /Mode:\s+0600/);
  });
});
