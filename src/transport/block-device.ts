// Block devices as the target of an image (Linux sysfs): whether a path is one, and how many bytes it holds.
// The receiver writes a disk in place; the agent partitions and applies images to them.
import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { basename } from 'node:path';

export interface BlockDevice {
  /** /dev path as given by the kernel's name (e.g. /dev/loop3, /dev/sda2). */
  path: string;
  /** Kernel name (sysfs), e.g. loop3, sda2, nvme0n1p1. */
  name: string;
}

/** The block device at `path` (symlinks such as /dev/disk/by-id/… resolved); null if it is something else or does not exist. */
export function findBlockDevice(path: string): BlockDevice | null {
  let real: string;
  try {
    real = realpathSync(path);
  } catch {
    return null;
  }
  const name = basename(real);
  return statSync(real).isBlockDevice() && existsSync(`/sys/class/block/${name}`) ? { path: `/dev/${name}`, name } : null;
}

/** Capacity in bytes (sysfs counts 512-byte sectors whatever the device's own sector size). */
export function blockDeviceBytes(dev: BlockDevice): number {
  return Number(readFileSync(`/sys/class/block/${dev.name}/size`, 'utf8').trim()) * 512;
}
