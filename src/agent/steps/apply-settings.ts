// apply-settings: the hostname and configuration files (unattend.xml, cloud-init user-data …) written from
// templates onto a partition of the applied image.
import { chmod, mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, normalize, relative } from 'node:path';
import { assertPartitionNotInUse, filesystemType, withMounted } from '../disk.js';
import { StepFailure } from '../report.js';
import { HOSTNAME_VARIABLE, type ApplySettingsStep } from '../sequence.js';
import { UndefinedVariableError } from '../variables.js';
import type { StepContext } from './context.js';

/** RFC 1123 host name label: letters, digits, hyphens, at most 63, no hyphen at either end. */
const HOSTNAME = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;

/** A path inside the mounted partition; anything that climbs out of it is refused. */
function inside(root: string, path: string, field: string): string {
  const rel = normalize(path.replace(/\\/g, '/').replace(/^\/+/, ''));
  const full = join(root, rel);
  if (rel === '.' || rel.startsWith('..') || isAbsolute(relative(root, full)) || relative(root, full).startsWith('..')) {
    throw new StepFailure('invalid-value', `${field}: "${path}" is not a file path inside the partition`);
  }
  return full;
}

export async function applySettings(step: ApplySettingsStep, ctx: StepContext): Promise<void> {
  const devicePath = ctx.variables.get(step.partition);
  if (devicePath === undefined) throw new UndefinedVariableError(step.partition, `${ctx.path}/partition`);
  const { device } = await ctx.targets.partition(devicePath, 'apply-settings', ctx.signal);
  assertPartitionNotInUse(device, 'apply-settings');

  // Everything is substituted before the partition is touched, so a missing variable changes nothing.
  const files: { path: string; content: string; mode?: string; field: string }[] = [];
  if (step.hostname !== undefined) {
    const hostname = ctx.text(step.hostname, 'hostname').trim();
    if (!HOSTNAME.test(hostname)) throw new StepFailure('invalid-value', `hostname "${hostname}" is not valid: 1-63 letters, digits and hyphens, not starting or ending with a hyphen`);
    if (hostname.length > 15) ctx.note(`hostname "${hostname}" is longer than 15 characters: Windows truncates its NetBIOS name`);
    ctx.variables.set(HOSTNAME_VARIABLE, hostname);
    files.push({ path: step.hostnameFile !== undefined ? ctx.text(step.hostnameFile, 'hostnameFile') : 'etc/hostname', content: `${hostname}\n`, field: 'hostnameFile' });
  }
  (step.files ?? []).forEach((f, i) => {
    files.push({ path: ctx.text(f.path, `files/${i}/path`), content: ctx.text(f.template, `files/${i}/template`), field: `files/${i}/path`, ...(f.mode !== undefined ? { mode: f.mode } : {}) });
  });

  const fsType = await filesystemType(device, ctx.signal);
  if (!fsType) throw new StepFailure('invalid-value', `${device.path} has no filesystem to write settings to`);
  await withMounted(
    device,
    fsType,
    async (root) => {
      for (const f of files) {
        const target = inside(root, f.path, f.field);
        await mkdir(dirname(target), { recursive: true });
        const tmp = `${target}.fleetcast-tmp`;
        await writeFile(tmp, f.content);
        if (f.mode !== undefined) await chmod(tmp, parseInt(f.mode, 8));
        await rename(tmp, target);
        ctx.note(`wrote ${f.path} (${Buffer.byteLength(f.content)} bytes) on ${device.path}`);
      }
    },
    ctx.signal,
  );
}
