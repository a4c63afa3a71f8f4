// Runs one tool on one scenario's test LAN and measures it:
//  - time: from the sender's start until the last receiver holds a correct image;
//  - wire: bytes the sender host's interface transmitted (kernel counters) / image bytes, and its frames
//    (the mean frame size shows whether a tool fills the MTU; IP fragments created in any host are counted);
//  - CPU: seconds used by everything started in the sender host, and in the receiver hosts (cgroups,
//    so forked daemons count too);
//  - outcome per receiver: byte-exact (sha256) or how it ended (exit code, truncated, missing, timeout).
// A per-run time limit kills everything still running in the LAN.

import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { CpuUsage, Lan, LanHost } from '../src/testlan/lan.js';
import { parseRate } from '../src/testlan/rate.js';
import { checkFile, type Image } from './image.js';
import { describeExit, pause, startProc, type ExitInfo, type Proc } from './proc.js';
import type { Scenario } from './scenarios.js';
import type { RunContext, Tool, ToolOutcome } from './tools/types.js';

export type RunStatus = 'ok' | 'partial' | 'failed' | 'timeout' | 'not available';

export interface ReceiverRecord {
  host: string;
  address: string;
  /** ok = byte-exact image */
  result: 'ok' | 'corrupt' | 'truncated' | 'oversize' | 'missing';
  /** how the receiver's process ended (or what the tool reported) */
  ended: string;
  /** seconds from the sender's start until this receiver finished */
  doneS: number | null;
  bytes: number;
  /** packets dropped on its ingress by the loss rules during the run */
  droppedPackets: number;
}

export interface RunRecord {
  scenario: string;
  tool: string;
  /** Which of the tool's runs in this scenario, from 0 (with --repeat; absent in older results) */
  repeat?: number;
  status: RunStatus;
  reason?: string;
  /** sender start -> last receiver with a correct image; null unless every receiver got it */
  timeS: number | null;
  /** sender start -> last receiver with a correct image, among those that got it */
  lastCorrectS: number | null;
  /** sender start -> every process of the run ended */
  wallS: number | null;
  /**
   * sender start -> the sender host's first packet on the LAN (polled every millisecond): what the sender
   * process took to start before the protocol did anything. null if it sent nothing.
   */
  firstPacketS: number | null;
  senderTxBytes: number | null;
  /** senderTxBytes / image bytes */
  wireRatio: number | null;
  /** Ethernet frames the sender host's interface transmitted */
  senderTxFrames: number | null;
  /** IPv4 fragments created in any host during the run (0 unless some datagram exceeded the MTU) */
  ipFragments: number | null;
  /** image bytes per data packet the tool was configured for at the scenario's MTU */
  payloadBytes: number | null;
  senderCpuS: number | null;
  /** sum over all receivers */
  receiversCpuS: number | null;
  /** the busiest receiver */
  receiverCpuMaxS: number | null;
  correct: number;
  receivers: number;
  receiverDetails: ReceiverRecord[];
  sender: string;
  timedOut: boolean;
  /** processes still running when the tool's run ended (killed by the harness) */
  stragglersKilled: number;
  notes: string[];
  argv?: { sender: string; receiver: string };
}

export interface HarnessConfig {
  image: Image;
  /** directory for per-run scratch directories */
  workDir: string;
  timeoutS: number;
  /** fraction of the uplink rate the tools are told to send at */
  rateFactor: number;
  /** Where the processes' logs of a run that did not end with every receiver correct are kept (for diagnosis). */
  failedLogsDir?: string;
}

let runCounter = 0;

export function notAvailable(scenario: Scenario, tool: Tool, reason: string): RunRecord {
  return {
    scenario: scenario.name,
    tool: tool.name,
    status: 'not available',
    reason,
    timeS: null,
    lastCorrectS: null,
    wallS: null,
    firstPacketS: null,
    senderTxBytes: null,
    wireRatio: null,
    senderTxFrames: null,
    ipFragments: null,
    payloadBytes: null,
    senderCpuS: null,
    receiversCpuS: null,
    receiverCpuMaxS: null,
    correct: 0,
    receivers: scenario.receivers,
    receiverDetails: [],
    sender: 'not run',
    timedOut: false,
    stragglersKilled: 0,
    notes: [],
  };
}

function cpuDelta(before: CpuUsage | null, after: CpuUsage | null): number | null {
  if (!before || !after) return null;
  return Math.max(0, after.totalS - before.totalS);
}

const round = (x: number | null, digits = 3): number | null => (x === null ? null : Math.round(x * 10 ** digits) / 10 ** digits);

/** Waits until no process runs in any host (killing them), returns how many had to be killed. */
async function killLeftovers(lan: Lan): Promise<number> {
  // processes told to stop by the tool get a moment to do so
  const grace = performance.now() + 1000;
  while (performance.now() < grace && lan.hosts.some((h) => lan.processes(h).length > 0)) await pause(20);
  let killed = 0;
  for (const host of lan.hosts) {
    const pids = lan.processes(host);
    if (pids.length > 0) {
      killed += pids.length;
      lan.killProcesses(host);
    }
  }
  const deadline = performance.now() + 5000;
  while (performance.now() < deadline && lan.hosts.some((h) => lan.processes(h).length > 0)) await pause(20);
  return killed;
}

async function fragmentsCreated(lan: Lan): Promise<number> {
  const counts = await Promise.all(lan.hosts.map((h) => lan.ipFragmentsCreated(h)));
  return counts.reduce((a, b) => a + b, 0);
}

export async function runOne(lan: Lan, scenario: Scenario, tool: Tool, cfg: HarnessConfig): Promise<RunRecord & { failedToStart?: string }> {
  const index = runCounter++;
  const runDir = mkdtempSync(join(cfg.workDir, `${scenario.name}-${tool.name}-`));
  const receiverDir = (host: LanHost): string => join(runDir, host.name);
  for (const host of lan.receivers) mkdirSync(receiverDir(host));
  const abort = new AbortController();
  const notes: string[] = [];
  const done = new Map<string, number>();
  let t0: number | null = null;
  let timedOut = false;
  const procs: Proc[] = [];

  const uplinkBits = scenario.uplink ? parseRate(scenario.uplink) : null;
  const ctx: RunContext = {
    lan,
    scenario,
    image: cfg.image,
    runDir,
    outputPath: (host) => join(receiverDir(host), 'image.bin'),
    receiverDir,
    logPath: (name) => join(runDir, name),
    port: 20000 + (index % 5000) * 4,
    groups: [`239.255.${(index % 250) + 1}.1`, `239.255.${(index % 250) + 1}.2`],
    rateBits: uplinkBits ? uplinkBits * cfg.rateFactor : null,
    signal: abort.signal,
    start: (host, argv, name, keepStdout) => {
      const proc = startProc(lan, host, argv, join(runDir, `${name}.log`), keepStdout);
      procs.push(proc);
      return proc;
    },
    markStart: () => {
      t0 = performance.now();
      watchFirstPacket();
    },
    receiverDone: (host, at) => {
      if (!done.has(host.name)) done.set(host.name, at ?? performance.now());
    },
    note: (text) => notes.push(text),
  };

  // The sender host's first packet after the start, to tell the sender process's start-up from the transfer.
  let firstPacketAt: number | null = null;
  let firstPacketWatch: NodeJS.Timeout | null = null;
  const stopWatch = (): void => {
    if (firstPacketWatch) clearInterval(firstPacketWatch);
    firstPacketWatch = null;
  };
  function watchFirstPacket(): void {
    stopWatch();
    const sent = (): number | null => {
      try {
        return lan.packetsSent(lan.sender);
      } catch {
        return null; // the counter is gone (the LAN is being torn down): no figure rather than a crash
      }
    };
    const before = sent();
    if (before === null) return;
    firstPacketWatch = setInterval(() => {
      const now = sent();
      if (now === before) return;
      if (now !== null) firstPacketAt = performance.now();
      stopWatch();
    }, 1);
  }

  const cpu0 = lan.hosts.map((h) => lan.cpuUsage(h));
  const drops0 = await Promise.all(lan.receivers.map((h) => lan.droppedPackets(h)));
  const tx0 = await lan.txBytes(lan.sender);
  const frames0 = await lan.txFrames(lan.sender);
  const fragments0 = await fragmentsCreated(lan);

  let outcome: ToolOutcome | null = null;
  let error: string | null = null;
  const timer = setTimeout(() => {
    timedOut = true;
    abort.abort();
    for (const host of lan.hosts) lan.killProcesses(host);
  }, cfg.timeoutS * 1000);
  try {
    // a tool whose run() never returns is cut off shortly after the time limit
    const hardStop = new Promise<never>((_, reject) => {
      abort.signal.addEventListener('abort', () => setTimeout(() => reject(new Error('tool did not return after the time limit')), 15_000).unref(), { once: true });
    });
    outcome = await Promise.race([tool.run(ctx), hardStop]);
  } catch (e) {
    error = (e as Error).message;
  } finally {
    clearTimeout(timer);
    stopWatch();
  }
  const stragglersKilled = await killLeftovers(lan);
  await Promise.all(procs.map((p) => Promise.race([p.exited, pause(2000)])));
  const endAt = Math.max(...procs.map((p) => p.exit?.at ?? performance.now()), t0 ?? 0);

  const cpu1 = lan.hosts.map((h) => lan.cpuUsage(h));
  const tx1 = await lan.txBytes(lan.sender);
  const frames1 = await lan.txFrames(lan.sender);
  const fragments = (await fragmentsCreated(lan)) - fragments0;
  const drops1 = await Promise.all(lan.receivers.map((h) => lan.droppedPackets(h)));

  const start = t0 ?? endAt;
  const details: ReceiverRecord[] = [];
  for (const [i, host] of lan.receivers.entries()) {
    const file = await checkFile(ctx.outputPath(host));
    const result: ReceiverRecord['result'] = !file.exists
      ? 'missing'
      : file.sha256 === cfg.image.sha256
        ? 'ok'
        : file.bytes < cfg.image.bytes
          ? 'truncated'
          : file.bytes > cfg.image.bytes
            ? 'oversize'
            : 'corrupt';
    const reported = outcome?.receivers.get(host.name);
    let ended = typeof reported === 'string' ? reported : describeExit((reported as ExitInfo | undefined) ?? null);
    if (timedOut && !done.has(host.name)) ended = `killed at the ${cfg.timeoutS} s limit (${ended})`;
    const doneAt = done.get(host.name);
    details.push({
      host: host.name,
      address: host.address,
      result,
      ended,
      doneS: round(doneAt !== undefined ? (doneAt - start) / 1000 : null),
      bytes: file.bytes,
      droppedPackets: (drops1[i] ?? 0) - (drops0[i] ?? 0),
    });
  }
  const correct = details.filter((d) => d.result === 'ok');
  if (cfg.failedLogsDir && (correct.length < details.length || details.length === 0)) {
    const keep = join(cfg.failedLogsDir, `${scenario.name}-${tool.name}`);
    mkdirSync(keep, { recursive: true });
    for (const name of readdirSync(runDir)) if (name.endsWith('.log')) copyFileSync(join(runDir, name), join(keep, name));
    notes.push(`process logs kept in ${keep}`);
  }
  rmSync(runDir, { recursive: true, force: true });

  const doneS = correct.map((d) => d.doneS ?? (endAt - start) / 1000);
  const lastCorrectS = correct.length ? Math.max(...doneS) : null;
  const receiverCpu = lan.receivers.map((_, i) => cpuDelta(cpu0[i + 1] ?? null, cpu1[i + 1] ?? null));
  const cpuKnown = receiverCpu.every((c) => c !== null);
  const wire = tx1 - tx0;
  let status: RunStatus;
  if (outcome?.failedToStart) status = 'not available';
  else if (correct.length === details.length && details.length > 0) status = 'ok';
  else if (timedOut) status = 'timeout';
  else if (correct.length > 0) status = 'partial';
  else status = 'failed';
  if (error) notes.push(`harness: ${error}`);
  if (stragglersKilled > 0) notes.push(`${stragglersKilled} process(es) still running after the run were killed`);
  if (fragments > 0) notes.push(`IP fragmentation: ${fragments} fragments created (datagrams larger than the MTU ${lan.mtu})`);

  const record: RunRecord & { failedToStart?: string } = {
    scenario: scenario.name,
    tool: tool.name,
    status,
    ...(outcome?.failedToStart ? { reason: `failed to start: ${outcome.failedToStart}` } : {}),
    timeS: status === 'ok' ? round(lastCorrectS) : null,
    lastCorrectS: round(lastCorrectS),
    wallS: t0 === null ? null : round((endAt - t0) / 1000),
    firstPacketS: t0 === null || firstPacketAt === null ? null : round((firstPacketAt - t0) / 1000),
    senderTxBytes: wire,
    wireRatio: round(wire / cfg.image.bytes),
    senderTxFrames: frames1 - frames0,
    ipFragments: fragments,
    payloadBytes: tool.payloadBytes(lan.mtu),
    senderCpuS: round(cpuDelta(cpu0[0] ?? null, cpu1[0] ?? null)),
    receiversCpuS: cpuKnown ? round(receiverCpu.reduce<number>((a, b) => a + (b ?? 0), 0)) : null,
    receiverCpuMaxS: cpuKnown ? round(Math.max(...receiverCpu.map((c) => c ?? 0))) : null,
    correct: correct.length,
    receivers: details.length,
    receiverDetails: details,
    sender: outcome?.sender ? describeExit(outcome.sender) : error ? `harness error` : 'none',
    timedOut,
    stragglersKilled,
    notes,
    ...(outcome ? { argv: outcome.argv } : {}),
  };
  if (outcome?.failedToStart) record.failedToStart = outcome.failedToStart;
  return record;
}
