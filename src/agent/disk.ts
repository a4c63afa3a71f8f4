// Block devices through the real Linux tools: util-linux (losetup, sfdisk, partx, blkid, mount), ntfs-3g,
// dosfstools, e2fsprogs. Device facts come from sysfs, which is what the kernel itself says.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { mkdtemp, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type BlockDevice, findBlockDevice } from '../transport/block-device.js';
import { StepFailure } from './report.js';

/** The Debian package that provides each tool, for "install X" messages. */
const PACKAGE_OF: Record<string, string> = {
  sfdisk: 'fdisk',
  'mkfs.ntfs': 'ntfs-3g',
  'ntfs-3g': 'ntfs-3g',
  'mkfs.vfat': 'dosfstools',
  'mkfs.ext4': 'e2fsprogs',
  wimapply: 'wimtools',
  wiminfo: 'wimtools',
  losetup: 'mount',
  mount: 'mount',
  umount: 'mount',
  partx: 'util-linux',
  blockdev: 'util-linux',
  blkid: 'util-linux',
  mkswap: 'util-linux',
};

export interface ToolResult {
  stdout: string;
  stderr: string;
}

export interface ToolOptions {
  input?: string;
  signal?: AbortSignal;
  /** Called with each chunk of output (e.g. to parse progress). */
  onOutput?: (text: string) => void;
}

/** Runs a tool to completion; a missing tool or a non-zero exit is a StepFailure naming the tool. */
export function runTool(command: string, args: string[], opts: ToolOptions = {}): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
    let stdout = '';
    let stderr = '';
    const onAbort = () => child.kill('SIGTERM');
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout.on('data', (d: Buffer) => {
      stdout += d;
      opts.onOutput?.(d.toString());
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d;
      opts.onOutput?.(d.toString());
    });
    child.stdin.on('error', () => {}); // a tool that exits without reading its input
    child.stdin.end(opts.input ?? '');
    child.on('error', (err: NodeJS.ErrnoException) => {
      opts.signal?.removeEventListener('abort', onAbort);
      if (err.code === 'ENOENT') reject(new StepFailure('tool-missing', `${command} is not installed${PACKAGE_OF[command] ? `: install the Debian package ${PACKAGE_OF[command]}` : ''}`, { tool: command }));
      else reject(new StepFailure('tool-failed', `${command} could not start: ${err.message}`, { tool: command }));
    });
    child.on('close', (code, signal) => {
      opts.signal?.removeEventListener('abort', onAbort);
      if (opts.signal?.aborted) return reject(new StepFailure('interrupted', `${command} stopped: the run was interrupted`));
      if (code === 0) return resolve({ stdout, stderr });
      const detail = (stderr.trim() || stdout.trim()).split('\n').slice(-6).join('\n');
      reject(new StepFailure('tool-failed', `${command} ${args.join(' ')} failed (${signal ? `signal ${signal}` : `exit code ${code}`}): ${detail}`, { tool: command, exitCode: code, output: detail }));
    });
  });
}

export type { BlockDevice } from '../transport/block-device.js';

/** Resolves a device path (symlinks such as /dev/disk/by-id/… included) to its kernel name. */
export function blockDevice(path: string): BlockDevice {
  const device = findBlockDevice(path);
  if (device) return device;
  throw new StepFailure('io', existsSync(path) ? `${path} is not a block device` : `${path} does not exist`);
}

function sysfs(name: string, file: string): string {
  return readFileSync(`/sys/class/block/${name}/${file}`, 'utf8').trim();
}


export function logicalSectorSize(dev: BlockDevice): number {
  const disk = parentDisk(dev) ?? dev;
  try {
    return Number(readFileSync(`/sys/class/block/${disk.name}/queue/logical_block_size`, 'utf8').trim());
  } catch {
    return 512;
  }
}

/** For a partition, the whole disk it is on; null for a whole disk. */
export function parentDisk(dev: BlockDevice): BlockDevice | null {
  if (!existsSync(`/sys/class/block/${dev.name}/partition`)) return null;
  const name = basename(dirname(realpathSync(`/sys/class/block/${dev.name}`)));
  return { path: `/dev/${name}`, name };
}

export interface PartitionInfo extends BlockDevice {
  number: number;
  /** First sector in 512-byte units (sysfs convention). */
  start: number;
  size: number;
}

export function listPartitions(disk: BlockDevice): PartitionInfo[] {
  const dir = `/sys/class/block/${disk.name}`;
  return readdirSync(`/sys/block/${disk.name}`)
    .filter((entry) => existsSync(`${dir}/${entry}/partition`))
    .map((name) => ({
      name,
      path: `/dev/${name}`,
      number: Number(sysfs(name, 'partition')),
      start: Number(sysfs(name, 'start')),
      size: Number(sysfs(name, 'size')) * 512,
    }))
    .sort((a, b) => a.number - b.number);
}

/**
 * Makes the kernel's partition list match the table on disk and waits for the /dev nodes. BLKRRPART (what
 * sfdisk and blockdev use) is refused or ignored for some devices, so partx adds/removes entries one by one.
 */
export async function syncPartitions(disk: BlockDevice, expected: number | null, signal?: AbortSignal): Promise<PartitionInfo[]> {
  await runTool('blockdev', ['--rereadpt', disk.path], { signal }).catch(() => undefined);
  // partx --update fails on a disk with no partition table at all, which is a valid state for a raw image.
  await runTool('partx', ['--update', disk.path], { signal }).catch(() => undefined);
  for (let waited = 0; ; waited += 50) {
    const parts = listPartitions(disk);
    if ((expected === null || parts.length === expected) && parts.every((p) => existsSync(p.path))) return parts;
    if (waited >= 10_000) {
      throw new StepFailure('tool-failed', `the kernel shows ${parts.length} partition(s) on ${disk.path}${expected !== null ? `, the new table has ${expected}` : ''}${parts.some((p) => !existsSync(p.path)) ? ' (device nodes missing)' : ''}; is the disk in use?`);
    }
    await sleep(50, undefined, { signal });
  }
}

/** Kernel names of devices that are mounted or used as swap, and of devices held by others (LVM, RAID). */
export function busyDevices(): Set<string> {
  const busy = new Set<string>();
  const add = (path: string) => {
    if (!path.startsWith('/dev/')) return;
    try {
      busy.add(basename(realpathSync(path)));
    } catch {
      /* a mount source that no longer exists */
    }
  };
  for (const line of readFileSync('/proc/self/mounts', 'utf8').split('\n')) add(line.split(' ')[0] ?? '');
  for (const line of readFileSync('/proc/swaps', 'utf8').split('\n').slice(1)) add(line.split(/\s+/)[0] ?? '');
  return busy;
}

/** Refuses a disk that is, or has a partition that is, mounted, swap, or held by device-mapper/RAID. */
export function assertDiskNotInUse(disk: BlockDevice, what: string): void {
  const busy = busyDevices();
  for (const dev of [disk, ...listPartitions(disk)]) {
    const holders = existsSync(`/sys/class/block/${dev.name}/holders`) ? readdirSync(`/sys/class/block/${dev.name}/holders`) : [];
    if (busy.has(dev.name) || holders.length > 0) {
      throw new StepFailure('target-in-use', `${what}: ${dev.path} is in use (${busy.has(dev.name) ? 'mounted or swap' : `held by ${holders.join(', ')}`}); unmount it first — the agent never writes to a disk in use`);
    }
  }
}

export function assertPartitionNotInUse(part: BlockDevice, what: string): void {
  if (busyDevices().has(part.name)) throw new StepFailure('target-in-use', `${what}: ${part.path} is mounted; unmount it first`);
}

/** The filesystem type blkid finds on a device ("ntfs", "vfat", "ext4" …), or null when there is none. */
export async function filesystemType(dev: BlockDevice, signal?: AbortSignal): Promise<string | null> {
  try {
    const { stdout } = await runTool('blkid', ['-p', '-o', 'value', '-s', 'TYPE', dev.path], { signal });
    return stdout.trim() || null;
  } catch (err) {
    // blkid exits 2 when it finds nothing: an unformatted partition.
    if (err instanceof StepFailure && err.details.exitCode === 2) return null;
    throw err;
  }
}

/** Attaches a disk image file to a free loop device, partitions scanned. */
export async function attachLoop(file: string, signal?: AbortSignal): Promise<BlockDevice> {
  const { stdout } = await runTool('losetup', ['--find', '--show', '--partscan', file], { signal });
  return blockDevice(stdout.trim());
}

/** The loop device a file is already attached to, if any. */
export async function existingLoop(file: string): Promise<BlockDevice | null> {
  const { stdout } = await runTool('losetup', ['--associated', file, '--noheadings', '--output', 'NAME']);
  const first = stdout.trim().split('\n')[0]?.trim();
  return first ? blockDevice(first) : null;
}

export async function detachLoop(dev: BlockDevice): Promise<void> {
  await runTool('losetup', ['--detach', dev.path]);
}

/** Mounts a partition in a fresh temporary directory for the duration of `use`, then unmounts. */
export async function withMounted<T>(part: BlockDevice, fsType: string, use: (dir: string) => Promise<T>, signal?: AbortSignal): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'fleetcast-mnt-'));
  try {
    // The kernel has no read-write NTFS on many systems; ntfs-3g (FUSE) does.
    if (fsType === 'ntfs') await runTool('ntfs-3g', [part.path, dir], { signal });
    else await runTool('mount', ['-t', fsType, part.path, dir], { signal });
    try {
      return await use(dir);
    } finally {
      await runTool('umount', [dir]);
    }
  } finally {
    await rmdir(dir).catch(() => undefined);
  }
}
