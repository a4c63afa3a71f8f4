// uftp (Debian package uftp): uftp sender, uftpd client daemon.
//
// Each receiver runs `uftpd` (it daemonises: -P pidfile, killed by that pid afterwards) listening on the
// run's announce group (-M) and port (-p), writing into its own directory (-D), with an explicit client ID
// (-U) so that the sender can name its closed group (-H) and wait for exactly these receivers. Completion
// time of a receiver is when its status file (-F) gets the RESULT line for the image. The sender's rate is
// fixed (-R in kbit/s, -1 = as fast as the interface allows when the uplink is unlimited); no encryption.
// Socket buffers are raised to 8 MiB on both sides (-B).

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { debianVersion, ensureCommands } from '../deps.js';
import { pause } from '../proc.js';
import type { RunContext, Tool, ToolOutcome } from './types.js';

const BUFFER = String(8 * 1024 * 1024);
const DEST_NAME = 'image.bin';

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

export const uftp: Tool = {
  name: 'uftp',
  description: 'uftp 4.10 (uftp/uftpd), NAK-based multicast, fixed rate, no encryption',
  check: ({ install }) => ensureCommands(['uftp', 'uftpd'], 'uftp', install),
  version: () => debianVersion('uftp'),
  async run(ctx: RunContext): Promise<ToolOutcome> {
    const { lan } = ctx;
    const [announce, data] = ctx.groups;
    const id = (i: number): string => `0x${(i + 1).toString(16).padStart(8, '0')}`;
    const files = lan.receivers.map((host) => {
      const dir = ctx.receiverDir(host);
      return { host, dir, pid: join(dir, '..', `${host.name}.uftpd.pid`), status: join(dir, '..', `${host.name}.uftpd.status`), log: ctx.logPath(`uftpd-${host.name}.log`) };
    });
    const receiverArgv = (i: number): string[] => {
      const f = files[i]!;
      return [
        'uftpd', '-I', f.host.ifname, '-M', announce, '-p', String(ctx.port), '-D', f.dir, '-U', id(i),
        '-P', f.pid, '-L', f.log, '-F', f.status, '-q', '-B', BUFFER, '-x', '1',
      ];
    };
    // uftpd forks into the background and its first process exits 0 once the daemon is set up.
    const starters = files.map((_, i) => ctx.start(lan.receivers[i]!, receiverArgv(i), `uftpd-start-${lan.receivers[i]!.name}`));
    const startExits = await Promise.all(starters.map((p) => p.exited));
    const receivers = new Map<string, string>();
    const pids = new Map<string, number>();
    const deadline = performance.now() + 5000;
    for (const [i, f] of files.entries()) {
      const exit = startExits[i]!;
      if (exit.code !== 0) {
        receivers.set(f.host.name, `uftpd failed to start (exit ${exit.code}): ${starters[i]!.tail().trim().slice(-300)}`);
        continue;
      }
      while (!pids.has(f.host.name) && performance.now() < deadline && !ctx.signal.aborted) {
        const pid = Number(readText(f.pid).trim());
        if (pid > 0) pids.set(f.host.name, pid);
        else await pause(20, ctx.signal);
      }
    }
    await pause(200, ctx.signal);

    const senderArgv = [
      'uftp', '-I', lan.sender.ifname, '-M', announce, '-P', data, '-p', String(ctx.port),
      '-R', ctx.rateBits ? String(Math.max(1, Math.round(ctx.rateBits / 1000))) : '-1',
      '-H', lan.receivers.map((_, i) => id(i)).join(','), '-D', DEST_NAME, '-B', BUFFER, '-x', '1',
      ctx.image.path,
    ];
    ctx.markStart();
    const sender = ctx.start(lan.sender, senderArgv, 'uftp');

    // Watch the status files for the RESULT line of each receiver.
    const done = new Set<string>();
    const poll = (): void => {
      for (const f of files) {
        if (done.has(f.host.name)) continue;
        const m = /^RESULT;[^;]*;[^;]*;[^;]*;[^;]*;[^;]*;(\S+)/m.exec(readText(f.status));
        if (m) {
          done.add(f.host.name);
          ctx.receiverDone(f.host);
          receivers.set(f.host.name, `uftpd reported ${m[1]}`);
        }
      }
    };
    while (!sender.exit && !ctx.signal.aborted && done.size < files.length) {
      poll();
      await pause(10, ctx.signal);
    }
    const senderExit = await sender.exited;
    // the sender is done: late status lines (if any) arrive within a moment
    const graceEnd = performance.now() + 2000;
    while (done.size < files.length && performance.now() < graceEnd && !ctx.signal.aborted) {
      poll();
      await pause(20, ctx.signal);
    }
    poll();

    for (const f of files) {
      if (!receivers.has(f.host.name)) receivers.set(f.host.name, 'uftpd reported no result');
      const pid = pids.get(f.host.name);
      if (pid) {
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          // gone already
        }
      }
    }
    const outcome: ToolOutcome = {
      sender: senderExit,
      receivers,
      argv: { sender: senderArgv.join(' '), receiver: receiverArgv(0).join(' ') },
    };
    if (senderExit.error) outcome.failedToStart = senderExit.error;
    if (senderExit.code !== 0 && senderExit.code !== null) ctx.note(`uftp exit ${senderExit.code}: ${sender.tail().trim().split('\n').slice(-2).join(' | ')}`);
    return outcome;
  },
};
