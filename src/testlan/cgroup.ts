// Per-host CPU accounting for the test LAN through cgroups.
//
// Every process the LAN starts in a host is put into that host's cgroup before it execs, so all of its
// descendants are accounted there too, including daemons that fork away from their parent (uftpd).
// cgroup v2 (cpu.stat is always present there, even without the cpu controller) is preferred; the
// v1 cpuacct controller is the fallback. Without either, CPU figures are reported as unknown.

import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface CgroupRoot {
  kind: 'v2' | 'v1-cpuacct';
  path: string;
}

export interface CpuUsage {
  /** user + system, seconds */
  totalS: number;
  userS: number;
  systemS: number;
}

let cachedRoot: CgroupRoot | null | undefined;

/** Finds a writable cgroup hierarchy that accounts CPU time; null when there is none. */
export function cgroupRoot(): CgroupRoot | null {
  if (cachedRoot !== undefined) return cachedRoot;
  cachedRoot = null;
  let mounts = '';
  try {
    mounts = readFileSync('/proc/mounts', 'utf8');
  } catch {
    return cachedRoot;
  }
  const candidates: CgroupRoot[] = [];
  for (const line of mounts.split('\n')) {
    const [, mountPoint, type, opts] = line.split(' ');
    if (!mountPoint || !type) continue;
    if (type === 'cgroup2') candidates.push({ kind: 'v2', path: mountPoint });
    else if (type === 'cgroup' && (opts ?? '').split(',').includes('cpuacct')) {
      candidates.push({ kind: 'v1-cpuacct', path: mountPoint });
    }
  }
  candidates.sort((a, b) => (a.kind === b.kind ? 0 : a.kind === 'v2' ? -1 : 1));
  for (const candidate of candidates) {
    const probe = join(candidate.path, `fleetcast-probe-${process.pid}`);
    try {
      mkdirSync(probe);
      const ok = existsSync(join(probe, candidate.kind === 'v2' ? 'cpu.stat' : 'cpuacct.usage'));
      rmdirSync(probe);
      if (ok) {
        cachedRoot = candidate;
        break;
      }
    } catch {
      // not writable: try the next one
    }
  }
  return cachedRoot;
}

/** Creates the cgroup directory for name; returns its path, or null when CPU accounting is unavailable. */
export function createCgroup(name: string): string | null {
  const root = cgroupRoot();
  if (!root) return null;
  const path = join(root.path, name);
  mkdirSync(path, { recursive: true });
  return path;
}

export function readCpuUsage(path: string): CpuUsage | null {
  const root = cgroupRoot();
  if (!root) return null;
  try {
    if (root.kind === 'v2') {
      const stat = readFileSync(join(path, 'cpu.stat'), 'utf8');
      const field = (key: string): number => Number(new RegExp(`^${key} (\\d+)$`, 'm').exec(stat)?.[1] ?? NaN);
      const usage = field('usage_usec');
      return { totalS: usage / 1e6, userS: field('user_usec') / 1e6, systemS: field('system_usec') / 1e6 };
    }
    const ns = (file: string): number => Number(readFileSync(join(path, file), 'utf8').trim());
    return { totalS: ns('cpuacct.usage') / 1e9, userS: ns('cpuacct.usage_user') / 1e9, systemS: ns('cpuacct.usage_sys') / 1e9 };
  } catch {
    return null;
  }
}

export function cgroupPids(path: string): number[] {
  try {
    return readFileSync(join(path, 'cgroup.procs'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/** Kills every process in the cgroup (cgroup.kill on v2, else one by one). */
export function killCgroup(path: string): void {
  const killFile = join(path, 'cgroup.kill');
  if (existsSync(killFile)) {
    try {
      writeFileSync(killFile, '1');
      return;
    } catch {
      // fall through to one-by-one
    }
  }
  for (const pid of cgroupPids(path)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Removes an (empty) cgroup; returns false if it is still busy. */
export function removeCgroup(path: string): boolean {
  try {
    rmdirSync(path);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

/** Cgroup directories directly under the root whose names match the pattern. */
export function listCgroups(pattern: RegExp): string[] {
  const root = cgroupRoot();
  if (!root) return [];
  try {
    return readdirSync(root.path)
      .filter((name) => pattern.test(name))
      .map((name) => join(root.path, name));
  } catch {
    return [];
  }
}
