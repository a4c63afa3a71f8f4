// Installing the Debian peers (udpcast, uftp, curl) when they are missing.

import { execFile } from 'node:child_process';
import { findExecutable } from '../src/testlan/system.js';

let updated: Promise<void> | null = null;
let queue: Promise<unknown> = Promise.resolve();

function sh(bin: string, args: string[], timeoutMs: number): Promise<{ ok: boolean; out: string }> {
  return new Promise((resolve) => {
    execFile(
      bin,
      args,
      { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } },
      (error, stdout, stderr) => resolve({ ok: !error, out: `${stdout}${stderr}`.trim() }),
    );
  });
}

/**
 * Makes sure the commands exist, installing Debian package `pkg` if allowed (apt-get update runs once per
 * process, before the first install). Returns null when the commands are there, else the reason.
 */
export function ensureCommands(commands: readonly string[], pkg: string, install: boolean): Promise<string | null> {
  const task = queue.then(async () => {
    const missing = (): string[] => commands.filter((c) => !findExecutable(c));
    if (missing().length === 0) return null;
    const hint = `missing ${missing().join(', ')} (Debian package ${pkg}: apt-get install ${pkg})`;
    if (!install) return hint;
    const aptGet = findExecutable('apt-get');
    if (!aptGet || process.getuid?.() !== 0) return `${hint}; cannot install it here (needs root and apt-get)`;
    process.stderr.write(`bench: installing ${pkg} with apt-get ...\n`);
    updated ??= sh(aptGet, ['update'], 300_000).then(() => undefined);
    await updated;
    const result = await sh(aptGet, ['install', '-y', '--no-install-recommends', pkg], 600_000);
    if (missing().length === 0) return null;
    return `${hint}; apt-get install failed: ${result.out.split('\n').slice(-3).join(' ')}`;
  });
  queue = task.catch(() => undefined);
  return task;
}

export async function debianVersion(pkg: string): Promise<string> {
  const result = await sh('dpkg-query', ['-W', '-f', '${Version}', pkg], 10_000);
  return result.ok && result.out ? `${pkg} ${result.out}` : `${pkg} (version unknown)`;
}
