// uftp (Debian package uftp): uftp sender, uftpd client daemon.
//
// Each receiver runs `uftpd` (it daemonises: -P pidfile, killed by that pid afterwards) listening on the
// run's announce group (-M) and port (-p), writing into its own directory (-D), with an explicit client ID
// (-U) so that the sender can name its closed group (-H) and wait for exactly these receivers. Completion
// time of a receiver is when its status file (-F) gets the RESULT line for the image. The sender's rate is
// fixed (-R in kbit/s, -1 = as fast as the interface allows when the uplink is unlimited); no encryption.
// Socket buffers are raised to 8 MiB on both sides (-B). The block size (-b, default 1300) fills one frame of
// the link: without encryption and TFMCC congestion control a data packet (FILESEG) carries 24 bytes of uftp
// headers (protocol.txt: 16-byte UFTP header, 8-byte FILESEG header), and a client's STATUS is no larger (its
// NAK bitmap is one block); uftp refuses blocks above 8800 bytes.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { debianVersion, ensureCommands } from '../deps.js';
import { pause } from '../proc.js';
import { IPV4_UDP_HEADER_BYTES, commandParams, type CommandParams, type RunContext, type Tool, type ToolOutcome } from './types.js';

const BUFFER = String(8 * 1024 * 1024);
const DEST_NAME = 'image.bin';
const UFTP_HEADER_BYTES = 16 + 8;
/** uftp 4.10 answers "Invalid blocksize" above this. */
export const UFTP_MAX_BLOCK_BYTES = 8800;

export function uftpBlockSize(mtu: number): number {
  return Math.min(UFTP_MAX_BLOCK_BYTES, mtu - IPV4_UDP_HEADER_BYTES - UFTP_HEADER_BYTES);
}

/** Files of one receiver's uftpd: its destination directory, pid file, status file and log. */
export interface UftpdFiles {
  dir: string;
  pid: string;
  status: string;
  log: string;
}

/** Client ID of receiver i (0-based), named by the sender's closed group (-H). */
const clientId = (i: number): string => `0x${(i + 1).toString(16).padStart(8, '0')}`;

export function uftpCommands(p: CommandParams): { sender: string[]; receiver(i: number, files: UftpdFiles): string[] } {
  const [announce, data] = p.groups;
  return {
    receiver: (i, f) => [
      'uftpd', '-I', p.ifname, '-M', announce, '-p', String(p.port), '-D', f.dir, '-U', clientId(i),
      '-P', f.pid, '-L', f.log, '-F', f.status, '-q', '-B', BUFFER, '-x', '1',
    ],
    sender: [
      'uftp', '-I', p.ifname, '-M', announce, '-P', data, '-p', String(p.port),
      '-R', p.rateBits ? String(Math.max(1, Math.round(p.rateBits / 1000))) : '-1',
      '-H', Array.from({ length: p.receivers }, (_, i) => clientId(i)).join(','),
      '-b', String(uftpBlockSize(p.mtu)),
      '-D', DEST_NAME, '-B', BUFFER, '-x', '1',
      p.imagePath,
    ],
  };
}

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
  payloadBytes: uftpBlockSize,
  async run(ctx: RunContext): Promise<ToolOutcome> {
    const { lan } = ctx;
    const commands = uftpCommands(commandParams(ctx));
    const files = lan.receivers.map((host) => {
      const dir = ctx.receiverDir(host);
      return { host, dir, pid: join(dir, '..', `${host.name}.uftpd.pid`), status: join(dir, '..', `${host.name}.uftpd.status`), log: ctx.logPath(`uftpd-${host.name}.log`) };
    });
    const receiverArgv = (i: number): string[] => commands.receiver(i, files[i]!);
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

    const senderArgv = commands.sender;
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
