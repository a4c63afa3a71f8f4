#!/usr/bin/env node
// fleetcast command line: standalone `send` and `receive` (the server and agent come as further commands).
import { Command, Option } from 'commander';
import { createWriteStream, promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { fecKernelName } from '../fec/index.js';
import { DEFAULT_RAPTORQ_SYMBOLS, DEFAULT_REED_SOLOMON_SYMBOLS, MAX_RAPTORQ_SYMBOLS, maxBlockSymbols, parseFecScheme } from '../fec/scheme.js';
import { sendImage, receiveImage, type ReceiveResult } from '../transport/session.js';
import { PACING_NICE } from '../transport/thread-priority.js';
import type { SenderSummary } from '../protocol/sender.js';
import { formatBytes, formatRate, parseIntOption, parseRate, parseSeconds } from './units.js';
import { Exit, checked, interruptSignal, log, progressBar, receiveExitCode } from './shared.js';
import { packageVersion } from '../version.js';

export { Exit };

/** Commands that need nothing of the server, agent or deployment commands. */
const STANDALONE_COMMANDS = new Set(['send', 'receive']);
const DEFAULT_GROUP = '239.255.77.1';
const DEFAULT_PORT = 7720;
/** Settle time when --min-receivers is not given: receivers started together with the sender all join first. */
const DEFAULT_SETTLE_SECONDS = 0.5;

/**
 * ms to wait after enough receivers joined. Whoever gives --min-receivers N said how many to wait for: the
 * transfer starts as soon as N joined (as udpcast's --min-receivers). --settle overrides either.
 */
function settleMsFor(settleSeconds: number | undefined, minReceiversGiven: boolean): number {
  return (settleSeconds ?? (minReceiversGiven ? 0 : DEFAULT_SETTLE_SECONDS)) * 1000;
}

async function readKey(opts: { key?: string; keyFile?: string }): Promise<string | undefined> {
  if (opts.keyFile) return (await fs.readFile(opts.keyFile, 'utf8')).trim();
  return opts.key ?? process.env.FLEETCAST_KEY ?? undefined;
}

async function spoolStdin(): Promise<string> {
  const path = join(tmpdir(), `fleetcast-stdin-${randomBytes(6).toString('hex')}.img`);
  await pipeline(process.stdin, createWriteStream(path));
  return path;
}

const program = new Command();
program
  .name('fleetcast')
  .description('Send one disk image to many machines at once over IP multicast, with FEC repair and verification.')
  .version(packageVersion());

function endpointOptions(cmd: Command): Command {
  return cmd
    .option('-g, --group <address>', 'multicast group (IPv4 or IPv6)', DEFAULT_GROUP)
    .option('-p, --port <port>', 'UDP port of the group', checked(parseIntOption('port', 1, 65535)), DEFAULT_PORT)
    .option('-i, --interface <name|address>', 'network interface to use (default: the route to the group)')
    .option('--key <secret>', 'pre-shared secret: AES-256-GCM on every datagram (or FLEETCAST_KEY)')
    .option('--key-file <file>', 'read the pre-shared secret from a file')
    .addOption(new Option('--io <backend>', 'UDP I/O: batch (recvmmsg/sendmmsg addon, the default where it is built) or dgram (Node); or FLEETCAST_IO').choices(['batch', 'dgram']))
    .option('--json', 'print a JSON summary on stdout when done')
    .option('-q, --quiet', 'no progress or messages on stderr');
}

endpointOptions(
  program
    .command('send')
    .description('send an image file (or - for stdin) to every receiver that joins')
    .argument('<file>', 'image file, or - to read stdin (spooled to a temporary file first)')
    .option('-r, --rate <bits/s>', 'maximum rate on the link, e.g. 900M or 1G (default: unlimited, adapts to loss)', checked(parseRate))
    .option('--min-rate <bits/s>', 'floor for the adaptive rate', checked(parseRate))
    .option('--no-adaptive-rate', 'keep the rate fixed whatever loss receivers report')
    .option('--drop-slower-than <bits/s>', 'slow-client handling: never slow down below this for one receiver; drop receivers that take in less (they exit with code 2 and can fall back to unicast)', checked(parseRate))
    .option('-n, --min-receivers <n>', 'start as soon as this many receivers have joined', checked(parseIntOption('min-receivers', 0, 1_000_000)), 1)
    .option('--max-wait <seconds>', 'start anyway this long after the first receiver joined', checked(parseSeconds('max-wait')))
    .option('--settle <seconds>', `wait this long after enough receivers joined, for stragglers (default ${DEFAULT_SETTLE_SECONDS} when --min-receivers is not given, else 0)`, checked(parseSeconds('settle')))
    .option('--auto-start', 'start at once; late receivers catch up in later passes')
    .option('--max-receivers <n>', 'refuse receivers beyond this many', checked(parseIntOption('max-receivers', 1, 1_000_000)))
    .option('--receiver-timeout <seconds>', 'drop a receiver silent this long', checked(parseSeconds('receiver-timeout')), 15)
    .addOption(new Option('--fec <scheme>', 'forward error correction: reed-solomon (light on receivers\' CPU) or raptorq (large blocks: least repair traffic under loss, more CPU)').choices(['reed-solomon', 'raptorq']).default('reed-solomon'))
    .option('--block-symbols <k>', `source symbols per FEC block: 1-${MAX_RAPTORQ_SYMBOLS} with raptorq (default ${DEFAULT_RAPTORQ_SYMBOLS}, fewer with jumbo frames), 1-255 with reed-solomon (default ${DEFAULT_REED_SOLOMON_SYMBOLS})`, checked(parseIntOption('block-symbols', 1, MAX_RAPTORQ_SYMBOLS)))
    .option('--proactive-parity <fraction>', 'parity sent with every block up front, as a fraction of it', checked(parseSeconds('proactive-parity')), 0)
    .option('--mtu <bytes>', 'link MTU: sets the symbol size (9000 for jumbo frames)', checked(parseIntOption('mtu', 576, 65535)), 1500)
    .option('--ttl <hops>', 'multicast TTL (IPv6: hop limit)', checked(parseIntOption('ttl', 0, 255)), 1),
).action(async (file: string, o, cmd: Command) => {
  const quiet = Boolean(o.quiet || o.json);
  const key = await readKey(o);
  const controller = interruptSignal();
  const settleMs = settleMsFor(o.settle, cmd.getOptionValueSource('minReceivers') !== 'default');
  const path = file === '-' ? await spoolStdin() : file;
  try {
    await fs.access(path).catch(() => {
      throw new UsageError(`cannot read ${path}: no such file (give an image file, or - for stdin)`);
    });
    const fec = parseFecScheme(o.fec);
    if (o.blockSymbols !== undefined && o.blockSymbols > maxBlockSymbols(fec)) {
      throw new UsageError(`--block-symbols ${o.blockSymbols} is too large for ${o.fec}: at most ${maxBlockSymbols(fec)} (or use --fec raptorq)`);
    }
    // (Naming the FEC kernel loads it: only when the line is shown.)
    if (!quiet) log(quiet, `sending ${path} to ${o.group}:${o.port}${o.interface ? ` on ${o.interface}` : ''}; FEC ${o.fec}${o.blockSymbols ? ` (${o.blockSymbols} symbols per block)` : ''}, kernel ${fecKernelName()}; waiting for ${o.minReceivers} receiver(s)${settleMs > 0 ? ` and ${settleMs / 1000} s more for stragglers` : ''}${key ? '; encrypted' : ''}`);
    const bar = progressBar(!quiet, 'send |{bar}| {percentage}% first pass | {receivers} receivers, {done} done | {rate}');
    let started = false;
    const summary = await sendImage({
      path,
      endpoint: { group: o.group, port: o.port, iface: o.interface, ttl: o.ttl, io: o.io },
      mtu: o.mtu,
      key,
      signal: controller.signal,
      pacingNice: PACING_NICE,
      onWarning: (w) => log(quiet, `warning: ${w}`),
      sender: {
        maxRateBps: o.rate,
        minRateBps: o.minRate,
        minReceiverRateBps: o.dropSlowerThan ?? null,
        adaptiveRate: o.adaptiveRate,
        minReceivers: o.minReceivers,
        maxWaitMs: o.maxWait !== undefined ? o.maxWait * 1000 : null,
        settleMs,
        autoStart: Boolean(o.autoStart),
        maxReceivers: o.maxReceivers,
        receiverTimeoutMs: o.receiverTimeout * 1000,
        fec,
        blockSymbols: o.blockSymbols,
        proactiveParity: o.proactiveParity,
      },
      onProgress: (stats, receivers, size, firstPassBytes) => {
        if (!bar || stats.phase === 'waiting') return;
        const values = {
          receivers: receivers.filter((r) => r.outcome === 'active' || r.outcome === 'completed').length,
          done: receivers.filter((r) => r.outcome === 'completed').length,
          rate: formatRate(stats.rateBps),
        };
        if (!started) {
          started = true;
          bar.start(size, firstPassBytes, values);
        } else bar.update(firstPassBytes, values);
      },
    }).finally(() => bar?.stop());
    report(summary, o.json, quiet);
    const allDone = summary.receivers.length > 0 && summary.receivers.every((r) => r.outcome === 'completed');
    process.exitCode = allDone ? Exit.ok : controller.signal.aborted ? Exit.interrupted : Exit.transferFailed;
  } finally {
    if (file === '-') await fs.rm(path, { force: true });
  }
});

function report(summary: SenderSummary, json: boolean, quiet: boolean): void {
  const s = summary.stats;
  const out = {
    sessionId: summary.sessionId,
    endReason: summary.endReason,
    imageBytes: summary.imageSize,
    fec: summary.fec,
    blockSymbols: summary.blockSymbols,
    durationMs: Math.round(summary.durationMs),
    datagramBytes: s.datagramBytes,
    wireBytes: s.wireBytes,
    wirePerImage: summary.imageSize > 0 ? s.wireBytes / summary.imageSize : null,
    packets: { source: s.sourcePackets, parity: s.parityPackets, control: s.controlPackets, feedback: s.feedbackPackets },
    // Blocks read from the image: once each, more where a block left the cache before its last repair.
    blocksRead: s.blocksRead,
    finalRateBps: s.rateBps,
    rateDecreases: s.rateDecreases,
    queueDrains: s.queueDrains,
    queueRebases: s.queueRebases,
    bottleneckBps: s.bottleneckBps,
    dropped: s.drops,
    receivers: summary.receivers.map((r) => ({
      nodeId: r.nodeId,
      name: r.name,
      address: r.address,
      outcome: r.outcome,
      reason: r.reason,
      completedAfterMs: r.completedAt !== null && s.startedAt !== null ? Math.round(r.completedAt - s.startedAt) : null,
      // How long it waited for the transfer to start (0 for one that joined a running transfer).
      waitedMs: s.startedAt !== null ? Math.round(Math.max(0, s.startedAt - r.joinedAt)) : null,
      rttMs: r.rttMs,
      nacks: r.nacks,
    })),
  };
  if (json) process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  if (!quiet) {
    const done = out.receivers.filter((r) => r.outcome === 'completed').length;
    log(false, `${summary.endReason}: ${done}/${out.receivers.length} receivers completed in ${(out.durationMs / 1000).toFixed(2)} s; wire/image ${out.wirePerImage?.toFixed(3) ?? '-'}; parity ${s.parityPackets} of ${s.sourcePackets} source packets`);
    for (const r of out.receivers) if (r.outcome !== 'completed') log(false, `  ${r.name || r.nodeId} (${r.address}): ${r.outcome}${r.reason ? ` — ${r.reason}` : ''}`);
  }
}

endpointOptions(
  program
    .command('receive')
    .description('receive an image; writes FILE.part and renames it to FILE only once every byte is verified')
    .requiredOption('-o, --output <file>', 'where to write the image: a file (written as FILE.part, renamed once verified), a disk such as /dev/sdb (written in place; refused while in use or when smaller than the image), or - for stdout (verified first, then streamed)')
    .option('--timeout <seconds>', 'give up if no sender is found within this time (default: wait)', checked(parseSeconds('timeout')))
    .option('--idle-timeout <seconds>', 'give up when the sender falls silent this long', checked(parseSeconds('idle-timeout')), 30)
    .option('--name <name>', 'name reported to the sender (default: hostname)'),
).action(async (o) => {
  const quiet = Boolean(o.quiet || o.json);
  const key = await readKey(o);
  const controller = interruptSignal();
  log(quiet, `waiting for a session on ${o.group}:${o.port}${o.interface ? ` on ${o.interface}` : ''}`);
  const bar = progressBar(!quiet, 'receive |{bar}| {percentage}% | {value}/{total} | ETA {eta_formatted}');
  const result: ReceiveResult = await receiveImage({
    output: o.output,
    endpoint: { group: o.group, port: o.port, iface: o.interface, io: o.io },
    key,
    name: o.name,
    startTimeoutMs: o.timeout !== undefined ? o.timeout * 1000 : null,
    idleTimeoutMs: o.idleTimeout * 1000,
    signal: controller.signal,
    onWarning: (w) => log(quiet, `warning: ${w}`),
    onSession: (size, sender) => {
      log(quiet && !bar, `joined a session from ${sender}: ${formatBytes(size)}`);
      bar?.start(size, 0);
    },
    onProgress: (verified) => bar?.update(verified),
  }).finally(() => bar?.stop());
  const code = receiveExitCode(result, controller.signal.aborted);
  if (o.json) {
    process.stdout.write(
      `${JSON.stringify({ ok: result.ok, exitCode: code, reason: result.reason, message: result.message, imageBytes: result.imageSize, sender: result.sender, durationMs: result.durationMs && Math.round(result.durationMs), sha256OfBlockDigests: result.digest, confirmedBySender: result.confirmedBySender, stats: result.stats }, null, 2)}\n`,
    );
  }
  if (result.ok) log(quiet, `image verified and written to ${o.output} (${formatBytes(result.imageSize ?? 0)} in ${((result.durationMs ?? 0) / 1000).toFixed(2)} s)`);
  else process.stderr.write(`fleetcast: receive failed (${result.reason}): ${result.message}\n`);
  process.exitCode = code;
});

class UsageError extends Error {}

// `send` and `receive` start faster without the server's, agent's and deployment commands (and what those
// load): a sender's start-up counts in the time to deliver an image (docs/testlan-and-bench.md, time target).
if (!STANDALONE_COMMANDS.has(process.argv[2] ?? '')) {
  const [server, agent, deploy] = await Promise.all([import('./server-commands.js'), import('./agent-commands.js'), import('./deploy-commands.js')]);
  server.registerServerCommands(program);
  agent.registerAgentCommands(program);
  deploy.registerDeployCommands(program);
}

// `npm start` with no command: show what the tool can do.
program.action(() => program.outputHelp());

program.parseAsync(process.argv).catch((err: Error) => {
  process.stderr.write(`fleetcast: ${err.message}\n`);
  process.exitCode = Exit.usage;
});
