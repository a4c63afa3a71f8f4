// partition-disk: writes a new GPT or MBR table with sfdisk, then formats each partition.
import { blockDeviceBytes } from '../../transport/block-device.js';
import { assertDiskNotInUse, listPartitions, runTool, syncPartitions, type BlockDevice } from '../disk.js';
import { StepFailure } from '../report.js';
import { LABEL_LIMITS, type Filesystem, type PartitionDiskStep, type PartitionSpec, type PartitionType } from '../sequence.js';
import type { StepContext } from './context.js';

const MiB = 1024 * 1024;

const GPT_TYPES: Record<PartitionType, string> = {
  efi: 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B',
  msr: 'E3C9E316-0B5C-4DB8-817D-F92DF00215AE',
  'basic-data': 'EBD0A0A2-B9E5-4433-87C0-68B6B72699C7',
  windows: 'EBD0A0A2-B9E5-4433-87C0-68B6B72699C7',
  recovery: 'DE94BBA4-06D1-4D40-A16A-BFD50179D6AC',
  linux: '0FC63DAF-8483-4772-8E79-3D69D8477DE4',
  swap: '0657FD6D-A4AB-43C4-84E5-0933C84B4F4F',
};

function mbrType(type: PartitionType, fs: Filesystem): string {
  if (type === 'efi') return 'ef';
  if (type === 'recovery') return '27';
  if (type === 'swap') return '82';
  if (type === 'linux') return '83';
  return fs === 'fat32' ? '0c' : fs === 'ext4' ? '83' : '07';
}

export interface PlannedPartition {
  spec: PartitionSpec;
  /** MiB; every partition starts on a MiB boundary, as Windows and Linux tools align them. */
  sizeMiB: number;
  /** The last partition with `remaining`: sfdisk gives it the rest exactly. */
  toEnd: boolean;
}

/**
 * Sizes every partition: fixed sizes rounded up to whole MiB, percentages of the free space left at that
 * point, the rest for `remaining`. Fails with disk-too-small when the layout does not fit.
 */
export function planPartitions(layout: 'gpt' | 'mbr', partitions: PartitionSpec[], diskBytes: number, diskName: string): PlannedPartition[] {
  // 1 MiB before the first partition; GPT keeps its backup table in the last 33 sectors, so leave the last MiB.
  const usableMiB = Math.floor(diskBytes / MiB) - 1 - (layout === 'gpt' ? 1 : 0);
  let used = 0;
  const plan: PlannedPartition[] = [];
  for (const spec of partitions) {
    const free = usableMiB - used;
    let sizeMiB: number;
    if (spec.size !== undefined) sizeMiB = Math.ceil(spec.size / MiB);
    else if (spec.percent !== undefined) sizeMiB = Math.floor((free * spec.percent) / 100);
    else sizeMiB = free;
    if (sizeMiB < 1 || sizeMiB > free) {
      const need = partitions.reduce((sum, p) => sum + (p.size !== undefined ? Math.ceil(p.size / MiB) : 1), 0);
      throw new StepFailure('disk-too-small', `disk too small for the partition layout: ${diskName} has ${usableMiB} MiB usable, the partitions need at least ${need} MiB`, { diskBytes, neededMiB: need });
    }
    plan.push({ spec, sizeMiB, toEnd: spec.remaining === true });
    used += sizeMiB;
  }
  return plan;
}

/** The sfdisk script for a plan; `labels` are the substituted labels (GPT partition names). */
export function sfdiskScript(layout: 'gpt' | 'mbr', plan: PlannedPartition[], labels: (string | undefined)[]): string {
  const lines = [`label: ${layout === 'gpt' ? 'gpt' : 'dos'}`, ''];
  plan.forEach((p, i) => {
    const fields = [...(p.toEnd ? [] : [`size=${p.sizeMiB}MiB`]), `type=${layout === 'gpt' ? GPT_TYPES[p.spec.type] : mbrType(p.spec.type, p.spec.filesystem)}`];
    if (layout === 'gpt' && labels[i]) fields.push(`name="${labels[i]!.replaceAll('"', '')}"`);
    if (layout === 'mbr' && p.spec.bootable) fields.push('bootable');
    lines.push(fields.join(', '));
  });
  return `${lines.join('\n')}\n`;
}

async function format(part: { path: string; start: number }, fs: Filesystem, label: string | undefined, ctx: StepContext): Promise<void> {
  const labelArgs = (flag: string) => (label ? [flag, label] : []);
  const opts = { signal: ctx.signal };
  switch (fs) {
    case 'fat32':
      await runTool('mkfs.vfat', ['-F', '32', ...labelArgs('-n'), part.path], opts);
      break;
    case 'ntfs':
      // Quick format; the start sector and geometry go into the boot sector so Windows can boot from it.
      await runTool('mkfs.ntfs', ['--quick', ...labelArgs('--label'), '--partition-start', String(part.start), '--heads', '255', '--sectors-per-track', '63', part.path], opts);
      break;
    case 'ext4':
      await runTool('mkfs.ext4', ['-F', '-q', ...labelArgs('-L'), part.path], opts);
      break;
    case 'swap':
      await runTool('mkswap', [...labelArgs('-L'), part.path], opts);
      break;
    case 'none':
      return;
  }
}

export async function partitionDisk(step: PartitionDiskStep, ctx: StepContext): Promise<void> {
  const ref = ctx.text(step.disk, 'disk');
  const target = await ctx.targets.disk(ref, 'partition-disk', ctx.signal);
  const disk: BlockDevice = target.device;
  assertDiskNotInUse(disk, 'partition-disk');
  const labels = step.partitions.map((p, i) => (p.label !== undefined ? ctx.text(p.label, `partitions/${i}/label`) : undefined));
  labels.forEach((label, i) => {
    const limit = LABEL_LIMITS[step.partitions[i]!.filesystem];
    if (label !== undefined && limit !== undefined && label.length > limit) throw new StepFailure('invalid-value', `partition ${i + 1}: a ${step.partitions[i]!.filesystem} label has at most ${limit} characters, "${label}" has ${label.length}`);
  });
  const plan = planPartitions(step.layout, step.partitions, blockDeviceBytes(disk), `${target.name} (${disk.path})`);
  const script = sfdiskScript(step.layout, plan, labels);
  ctx.log(`sfdisk script for ${disk.path}:\n${script}`);
  // --wipe removes old filesystem/RAID signatures from the disk and from the new partitions' areas, so a stale
  // NTFS or ext4 header is never mistaken for the new partition's filesystem.
  await runTool('sfdisk', ['--wipe', 'always', '--wipe-partitions', 'always', disk.path], { input: script, signal: ctx.signal });
  const parts = await syncPartitions(disk, plan.length, ctx.signal);
  for (const [i, p] of plan.entries()) {
    const part = parts.find((x) => x.number === i + 1)!;
    await format(part, p.spec.filesystem, labels[i], ctx);
    ctx.note(`partition ${i + 1}: ${part.path}, ${p.spec.type}, ${part.size / MiB} MiB, ${p.spec.filesystem}${labels[i] ? ` "${labels[i]}"` : ''}${p.spec.variable ? ` → %${p.spec.variable}%` : ''}`);
    if (p.spec.variable) {
      ctx.variables.set(p.spec.variable, part.path);
      ctx.recordPartition(p.spec.variable, target.name, part.number);
    }
  }
  if (listPartitions(disk).length !== plan.length) throw new StepFailure('tool-failed', `after partitioning, ${disk.path} does not show ${plan.length} partitions`);
}
