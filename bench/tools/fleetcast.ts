// fleetcast itself, through its CLI (dist/src/cli/main.js):
//   send FILE --group G --port P --interface IF --min-receivers N --max-wait S --mtu M [--rate R] --json
//   receive -o FILE --group G --port P --interface IF --json
// --mtu sets the symbol size to fill one frame (receivers learn it from the session).
// Exit code 0 = verified image. When the CLI is missing or does not start, the tool is "not available".
// Four entries: `fleetcast` on its defaults (batch UDP I/O where the addon is built, Reed-Solomon),
// `fleetcast-dgram` (--io dgram) to compare the backends side by side (docs/io.md), `fleetcast-rq`
// (--fec raptorq) to compare the FEC schemes (docs/fec.md), and `fleetcast-k255` (Reed-Solomon blocks of
// 255 symbols instead of 128: less wire with many receivers, more CPU; README, --block-symbols).

import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { batchAddon } from '../../src/transport/native.js';
import { symbolSizeFor } from '../../src/transport/session.js';
import { pause, type Proc } from '../proc.js';
import { commandParams, type CommandParams, type RunContext, type Tool, type ToolOutcome } from './types.js';

const here = dirname(fileURLToPath(import.meta.url));
/** dist/bench/tools -> dist/src/cli/main.js */
export const FLEETCAST_CLI = join(here, '..', '..', 'src', 'cli', 'main.js');

function probe(args: string[]): Promise<{ ok: boolean; out: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [FLEETCAST_CLI, ...args], { timeout: 15_000 }, (error, stdout, stderr) =>
      resolve({ ok: !error, out: `${stdout}${stderr}` }),
    );
  });
}

function rateFlag(bits: number): string {
  return bits >= 1e9 && bits % 1e9 === 0 ? `${bits / 1e9}G` : `${Math.max(1, Math.round(bits / 1e6))}M`;
}

/** The --json summary (one line or pretty-printed), compacted; null when there is none. */
function jsonSummary(stdout: string): string | null {
  const text = stdout.trim();
  for (const candidate of [text, text.slice(text.lastIndexOf('\n{') + 1), text.split('\n').pop() ?? '']) {
    try {
      return JSON.stringify(JSON.parse(candidate));
    } catch {
      // try the next guess
    }
  }
  return null;
}

export function fleetcastCommands(p: CommandParams, io: 'batch' | 'dgram', fec: FecName = 'reed-solomon', senderFlags: readonly string[] = []): { sender: string[]; receiver(out: string): string[] } {
  const net = ['--group', p.groups[0], '--port', String(p.port), '--interface', p.ifname, '--io', io];
  return {
    receiver: (out) => [process.execPath, FLEETCAST_CLI, 'receive', '-o', out, ...net, '--json'],
    sender: [
      process.execPath, FLEETCAST_CLI, 'send', p.imagePath, ...net,
      '--min-receivers', String(p.receivers), '--max-wait', '15',
      '--mtu', String(p.mtu), '--fec', fec, ...senderFlags,
      ...(p.rateBits ? ['--rate', rateFlag(p.rateBits)] : []),
      '--json',
    ],
  };
}

type FecName = 'reed-solomon' | 'raptorq';

/** Whether /proc/net/igmp text lists IPv4 `group` on interface `ifname`. */
export function igmpMember(igmp: string, ifname: string, group: string): boolean {
  // A group is printed as its 32-bit value in host (little-endian) order, in hex, under its device's line.
  const hex = group.split('.').reverse().map((b) => Number(b).toString(16).padStart(2, '0')).join('').toUpperCase();
  let device = '';
  for (const line of igmp.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (/^\d+$/.test(fields[0] ?? '')) device = fields[1] ?? '';
    else if (device === ifname && fields[0] === hex) return true;
  }
  return false;
}

/**
 * Waits until every receiver's network namespace is a member of the IPv4 group on `ifname` (from then on its
 * socket queues the session's datagrams), for at most timeoutMs; false if some was not. A fixed pause was too
 * short for 8 Node receivers starting together on 2 cores: the sender then started among them still loading,
 * and its start-up took twice as long. (An IPv6 group: a fixed second.)
 */
async function groupJoined(receivers: readonly Proc[], group: string, ifname: string, timeoutMs: number, signal: AbortSignal): Promise<boolean> {
  if (!isIPv4(group)) {
    await pause(1000, signal);
    return true;
  }
  const joined = (pid: number | undefined): boolean => {
    try {
      return igmpMember(readFileSync(`/proc/${pid}/net/igmp`, 'utf8'), ifname, group);
    } catch {
      return false; // not started yet, or gone
    }
  };
  const deadline = performance.now() + timeoutMs;
  while (!signal.aborted) {
    if (receivers.every((p) => p.exit === null && joined(p.child.pid))) return true;
    if (performance.now() > deadline || receivers.some((p) => p.exit !== null)) return false;
    await pause(20, signal);
  }
  return false;
}

function fleetcastTool(name: string, io: 'batch' | 'dgram', fec: FecName = 'reed-solomon', senderFlags: readonly string[] = []): Tool {
  return {
    name,
    description: `fleetcast (this project), node CLI, --io ${io} --fec ${fec}${senderFlags.map((f) => ` ${f}`).join('')}`,
    async check() {
      if (!existsSync(FLEETCAST_CLI)) return `CLI not built (${FLEETCAST_CLI} missing)`;
      if (io === 'batch') {
        const loaded = batchAddon();
        if ('error' in loaded) return `batched UDP I/O unavailable: ${loaded.error}`;
      }
      for (const sub of ['send', 'receive']) {
        const result = await probe([sub, '--help']);
        if (!result.ok) return `\`fleetcast ${sub} --help\` failed: ${result.out.trim().split('\n').slice(-2).join(' ')}`;
        for (const flag of ['--group', '--port', '--interface', '--io']) {
          if (!result.out.includes(flag)) return `\`fleetcast ${sub}\` has no ${flag} option`;
        }
      }
      return null;
    },
    async version() {
      const result = await probe(['--version']);
      return result.ok ? `fleetcast ${result.out.trim()}` : 'fleetcast (version unknown)';
    },
    payloadBytes: (mtu) => symbolSizeFor(mtu, 4, false),
    async run(ctx: RunContext): Promise<ToolOutcome> {
      const { lan } = ctx;
      const params = commandParams(ctx);
      const { sender: senderArgv, receiver: receiverArgv } = fleetcastCommands(params, io, fec, senderFlags);
      const receivers = lan.receivers.map((host) => ctx.start(host, receiverArgv(ctx.outputPath(host)), `fleetcast-receive-${host.name}`, true));
      const ready = await groupJoined(receivers, params.groups[0]!, params.ifname, 10_000, ctx.signal);
      if (!ready) ctx.note('not every receiver had joined the group after 10 s; the sender was started anyway');
      await pause(200, ctx.signal); // as uftp's daemons get once they are up
      ctx.markStart();
      const sender = ctx.start(lan.sender, senderArgv, 'fleetcast-send', true);
      for (const proc of receivers) void proc.exited.then((exit) => ctx.receiverDone(proc.host, exit.at));
      const senderExit = await sender.exited;
      await Promise.race([Promise.all(receivers.map((p) => p.exited)), pause(10_000, ctx.signal)]);
      const outcome: ToolOutcome = {
        sender: senderExit,
        receivers: new Map(receivers.map((p) => [p.host.name, p.exit ?? 'still running'])),
        argv: { sender: senderArgv.join(' '), receiver: receiverArgv('OUT').join(' ') },
      };
      const startedFor = senderExit.at - (sender.startedAt ?? senderExit.at);
      if (senderExit.error) outcome.failedToStart = senderExit.error;
      else if (senderExit.code !== 0 && startedFor < 2000 && !receivers.some((p) => p.exit?.code === 0)) {
        outcome.failedToStart = `sender exited ${senderExit.code} after ${Math.round(startedFor)} ms: ${sender.tail().trim().split('\n').slice(-2).join(' | ')}`;
      }
      const summary = jsonSummary(sender.stdout());
      if (summary) ctx.note(`sender: ${summary.slice(0, 400)}`);
      return outcome;
    },
  };
}

export const fleetcast = fleetcastTool('fleetcast', 'batch');
export const fleetcastDgram = fleetcastTool('fleetcast-dgram', 'dgram');
export const fleetcastRaptorQ = fleetcastTool('fleetcast-rq', 'batch', 'raptorq');
export const fleetcastK255 = fleetcastTool('fleetcast-k255', 'batch', 'reed-solomon', ['--block-symbols', '255']);
