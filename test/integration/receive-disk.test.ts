// `fleetcast receive -o /dev/…` writes a disk in place (real processes on loopback multicast, loop devices as
// disks): the image lands byte-exact with the rest of the disk untouched and the device node intact; a disk
// smaller than the image is refused at the announcement; a disk in use is refused before anything is written.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, constants, openSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, tempDir } from '../server/helpers.js';

const skip = process.getuid?.() !== 0 ? 'needs root (loop devices)' : spawnSync('losetup', ['--version']).status !== 0 ? 'needs losetup (util-linux)' : false;
if (skip) console.log(`# receive-to-disk tests skipped: ${skip}`);

let port = 20000 + Math.floor(Math.random() * 20000);
const group = `239.255.79.${1 + Math.floor(Math.random() * 250)}`;

/** A loop device over a file of `bytes` filled with 0xee, detached after the test. */
function loopDisk(t: { after(fn: () => void): void }, dir: string, name: string, bytes: number): { device: string; file: string } {
  const file = join(dir, name);
  writeFileSync(file, Buffer.alloc(bytes, 0xee));
  const device = execFileSync('losetup', ['--find', '--show', file], { encoding: 'utf8' }).trim();
  t.after(() => void spawnSync('losetup', ['--detach', device]));
  return { device, file };
}

function transfer(image: string, device: string) {
  const common = ['--group', group, '--port', String(port++), '--interface', 'lo'];
  const receiver = run(['receive', '-o', device, '--timeout', '20', '--json', ...common]);
  const sender = run(['send', image, '-n', '1', '--rate', '200M', ...common]);
  return { receiver: receiver.done, sender };
}

test('receive -o DISK: written in place, byte-exact, the rest of the disk untouched, the device node kept', { skip }, async (t) => {
  const dir = tempDir(t, 'fc-disk-');
  const image = join(dir, 'image.bin');
  const content = randomBytes(3 * 1024 * 1024 + 1234);
  writeFileSync(image, content);
  const { device, file } = loopDisk(t, dir, 'disk', 4 * 1024 * 1024);
  const { receiver, sender } = transfer(image, device);
  const [r, s] = await Promise.all([receiver, sender.done]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(s.code, 0, s.stderr);
  assert.equal(JSON.parse(r.stdout).ok, true);
  assert.ok(statSync(device).isBlockDevice(), 'the device node is still a device');
  const disk = readFileSync(file);
  assert.ok(disk.subarray(0, content.length).equals(content), 'the image is on the disk');
  assert.ok(disk.subarray(content.length).every((b) => b === 0xee), 'past the image the disk is untouched');
});

test('receive -o DISK: a disk smaller than the image is refused when the session is announced, and left as it was', { skip }, async (t) => {
  const dir = tempDir(t, 'fc-disk-');
  const image = join(dir, 'image.bin');
  writeFileSync(image, randomBytes(2 * 1024 * 1024));
  const { device, file } = loopDisk(t, dir, 'small', 1024 * 1024);
  const { receiver, sender } = transfer(image, device);
  const r = await receiver;
  sender.child.kill('SIGINT'); // nobody joined: it would wait on
  await sender.done;
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /larger than the target \(1048576 bytes\)/);
  assert.ok(readFileSync(file).every((b) => b === 0xee));
});

test('receive -o DISK: a disk in use (held exclusively) is refused at start, before anything is written', { skip }, async (t) => {
  const dir = tempDir(t, 'fc-disk-');
  const image = join(dir, 'image.bin');
  writeFileSync(image, randomBytes(256 * 1024));
  const { device, file } = loopDisk(t, dir, 'busy', 1024 * 1024);
  const held = openSync(device, constants.O_RDONLY | constants.O_EXCL); // as a mount holds it
  t.after(() => closeSync(held));
  const { receiver, sender } = transfer(image, device);
  const r = await receiver;
  sender.child.kill('SIGINT');
  await sender.done;
  assert.equal(r.code, 1, r.stderr); // refused at start, before waiting for a session
  assert.match(r.stderr, /is in use \(mounted, or held by another program\): unmount it first/);
  assert.ok(readFileSync(file).every((b) => b === 0xee));
});
