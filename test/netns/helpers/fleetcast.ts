// `fleetcast send` and `fleetcast receive` as real processes on the test LAN (src/testlan): the namespace
// tests' counterpart of test/server/helpers.ts's run(), which runs the CLI on this host.
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Lan, LanHost } from '../../../src/testlan/lan.js';

export const CLI = fileURLToPath(new URL('../../../src/cli/main.js', import.meta.url));

export interface Exited {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Waits for a process and collects its output; past `timeoutMs` it is interrupted, then killed. */
export function collect(child: ChildProcess, timeoutMs: number): Promise<Exited> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d) => (stdout += d));
  child.stderr?.on('data', (d) => (stderr += d));
  // Interrupt first so a stuck fleetcast still prints its summary (shown in the failure), then kill.
  const timer = setTimeout(() => {
    child.kill('SIGINT');
    setTimeout(() => child.kill('SIGKILL'), 5000).unref();
  }, timeoutMs);
  return new Promise((resolve) =>
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
}

export interface TransferOptions {
  group: string;
  port?: number;
  /** Options for `send` only. */
  senderArgs?: string[];
  /** Options for `send` and every `receive`. */
  bothArgs?: string[];
  /** Receiving hosts (default: every receiver of the LAN); the sender waits for all of them. */
  receivers?: readonly LanHost[];
  /** --interface of a host (default: its interface name). */
  iface?: (host: LanHost) => string;
  /** Receiver i writes `${dir}/${name}${i}.bin` (default name "out"). */
  name?: string;
  /** Receivers are stopped after this long (the sender after 120 s). */
  limitMs?: number;
}

/**
 * One image from the LAN's sender to receivers: the receivers start first, the sender half a second later.
 * wireBytes: what the sender's interface sent meanwhile.
 */
export async function transfer(lan: Lan, dir: string, image: string, opts: TransferOptions): Promise<{ sender: Exited; results: Exited[]; wireBytes: number }> {
  const hosts = opts.receivers ?? lan.receivers;
  const iface = opts.iface ?? ((host: LanHost) => host.ifname);
  const common = ['--group', opts.group, '--port', String(opts.port ?? 7720), '--json', ...(opts.bothArgs ?? [])];
  const receivers = hosts.map((host, i) =>
    collect(
      lan.spawn(host, [process.execPath, CLI, 'receive', '-o', join(dir, `${opts.name ?? 'out'}${i}.bin`), '--interface', iface(host), '--timeout', '60', ...common], { stdio: ['ignore', 'pipe', 'pipe'] }),
      opts.limitMs ?? 180_000,
    ),
  );
  await new Promise((r) => setTimeout(r, 500));
  const txBefore = await lan.txBytes(lan.sender);
  const sender = await collect(
    lan.spawn(lan.sender, [process.execPath, CLI, 'send', image, '--interface', iface(lan.sender), '--min-receivers', String(hosts.length), ...(opts.senderArgs ?? []), ...common], { stdio: ['ignore', 'pipe', 'pipe'] }),
    120_000,
  );
  const txAfter = await lan.txBytes(lan.sender);
  const results = await Promise.all(receivers);
  return { sender, results, wireBytes: txAfter - txBefore };
}
