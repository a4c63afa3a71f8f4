// The disks this machine allows a task sequence to write to. Nothing destructive happens to a disk that is
// not named here: the list comes from the agent's local configuration (or --target), never from the
// sequence or the server. A target may be a disk image file: it is attached to a loop device for the run.
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { attachLoop, blockDevice, detachLoop, existingLoop, listPartitions, parentDisk, syncPartitions, type BlockDevice } from './disk.js';
import { StepFailure } from './report.js';

export interface TargetConfig {
  /** How sequences refer to the disk ("disk0", "osdisk" …). */
  name: string;
  /** A whole-disk block device (/dev/sdb, /dev/disk/by-id/…) or a disk image file. */
  path: string;
}

/** "PATH" or "NAME=PATH" from the command line; unnamed targets are disk0, disk1 … in order. */
export function parseTargetOption(text: string, position: number): TargetConfig {
  const m = /^([A-Za-z][A-Za-z0-9_-]*)=(.+)$/.exec(text);
  if (m) return { name: m[1]!, path: m[2]! };
  if (!text) throw new Error('empty --target: give a block device or a disk image file');
  return { name: `disk${position}`, path: text };
}

export function checkTargetConfigs(targets: TargetConfig[]): void {
  const names = new Set<string>();
  for (const t of targets) {
    if (names.has(t.name.toLowerCase())) throw new Error(`target name "${t.name}" is given twice`);
    names.add(t.name.toLowerCase());
  }
}

export interface AttachedTarget extends TargetConfig {
  device: BlockDevice;
  /** True when this run attached the loop device (and so detaches it). */
  ownsLoop: boolean;
}

export class Targets {
  private attached: AttachedTarget[] | null = null;

  constructor(
    readonly configs: TargetConfig[],
    private readonly log: (line: string) => void = () => {},
  ) {
    checkTargetConfigs(configs);
  }

  private describe(): string {
    return this.configs.map((t) => `${t.name}=${t.path}`).join(', ');
  }

  /** Opens every target: block devices are checked, image files attached to loop devices. */
  async attach(signal?: AbortSignal): Promise<AttachedTarget[]> {
    if (this.attached) return this.attached;
    const attached: AttachedTarget[] = [];
    try {
      for (const t of this.configs) {
        let stat;
        try {
          stat = statSync(t.path);
        } catch {
          throw new StepFailure('target-not-allowed', `target ${t.name}: ${t.path} does not exist`);
        }
        if (stat.isFile()) {
          const file = resolve(t.path);
          const existing = await existingLoop(file);
          const device = existing ?? (await attachLoop(file, signal));
          attached.push({ ...t, device, ownsLoop: !existing });
          this.log(`target ${t.name}: ${existing ? 'using the loop device already attached to' : 'attached'} ${file} as ${device.path}`);
          // --partscan is not honoured everywhere; make the kernel list the image's partitions now.
          await syncPartitions(device, null, signal);
        } else if (stat.isBlockDevice()) {
          const device = blockDevice(t.path);
          if (parentDisk(device)) throw new StepFailure('target-not-allowed', `target ${t.name}: ${t.path} is a partition; configure the whole disk`);
          attached.push({ ...t, device, ownsLoop: false });
        } else throw new StepFailure('target-not-allowed', `target ${t.name}: ${t.path} is neither a block device nor a disk image file`);
      }
    } catch (err) {
      await this.detachAll(attached);
      throw err;
    }
    this.attached = attached;
    return attached;
  }

  /** The configured disk a step names (by target name or path); anything else is refused. */
  async disk(ref: string, what: string, signal?: AbortSignal): Promise<AttachedTarget> {
    this.refuseWithoutTargets(what);
    const attached = await this.attach(signal);
    let real: string | null = null;
    try {
      real = blockDevice(ref).path;
    } catch {
      /* not a device path: a name or a file */
    }
    const found = attached.find((t) => t.name.toLowerCase() === ref.toLowerCase() || t.path === ref || resolve(t.path) === resolve(ref) || t.device.path === real);
    if (!found) throw new StepFailure('target-not-allowed', `${what}: disk "${ref}" is not a target configured on this machine (configured: ${this.describe()})`);
    return found;
  }

  /** A partition device path, accepted only if it lies on a configured disk. */
  async partition(path: string, what: string, signal?: AbortSignal): Promise<{ target: AttachedTarget; device: BlockDevice }> {
    this.refuseWithoutTargets(what);
    const attached = await this.attach(signal);
    const device = blockDevice(path);
    const disk = parentDisk(device);
    if (!disk) throw new StepFailure('invalid-value', `${what}: ${path} is not a partition`);
    const target = attached.find((t) => t.device.name === disk.name);
    if (!target) throw new StepFailure('target-not-allowed', `${what}: ${path} is on ${disk.path}, which is not a target configured on this machine (configured: ${this.describe()})`);
    return { target, device };
  }

  private refuseWithoutTargets(what: string): void {
    if (this.configs.length === 0) {
      throw new StepFailure('target-not-allowed', `${what}: no target disks are configured on this machine, so destructive steps are refused (configure them with --target or the agent's "targets")`);
    }
  }

  /** Device path of partition `number` of a target now (loop device names change between runs). */
  async partitionPath(targetName: string, number: number): Promise<string | null> {
    const target = (await this.attach()).find((t) => t.name === targetName);
    return target ? (listPartitions(target.device).find((p) => p.number === number)?.path ?? null) : null;
  }

  async detach(): Promise<void> {
    if (this.attached) await this.detachAll(this.attached);
    this.attached = null;
  }

  private async detachAll(list: AttachedTarget[]): Promise<void> {
    for (const t of list) {
      if (!t.ownsLoop) continue;
      try {
        await detachLoop(t.device);
        this.log(`target ${t.name}: detached ${t.device.path}`);
      } catch (err) {
        this.log(`target ${t.name}: could not detach ${t.device.path}: ${(err as Error).message}`);
      }
    }
  }
}
