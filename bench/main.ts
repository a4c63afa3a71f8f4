#!/usr/bin/env node
// Side-by-side benchmark: the same scenarios on the test LAN for udpcast, uftp, plain HTTP and fleetcast.
//
//   npm run bench -- --quick --tools udpcast,uftp,http
//   npm run bench -- --size 200 --scenarios n3,n8 --out bench/results
//
// Needs root (the test LAN). Writes bench-<stamp>.{json,md,svg} and latest.{json,md,svg} into --out.

import { Command, InvalidArgumentError, Option } from 'commander';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildLan, prerequisiteProblems, type Lan, type LanOptions } from '../src/testlan/lan.js';
import { notAvailable, runOne, type RunRecord } from './harness.js';
import { createImage } from './image.js';
import { TOOL_ENV_DROPPED } from './proc.js';
import { describeMachine } from './machine.js';
import { markdown, writeReports, type BenchResults, type ToolInfo } from './report.js';
import { allScenarios, filterScenarios, quickScenarios, withMtu } from './scenarios.js';
import { fleetcast, fleetcastDgram, fleetcastK255, fleetcastRaptorQ } from './tools/fleetcast.js';
import { http } from './tools/http.js';
import type { Tool } from './tools/types.js';
import { udpcast } from './tools/udpcast.js';
import { uftp } from './tools/uftp.js';

const TOOLS: Tool[] = [udpcast, uftp, http, fleetcast, fleetcastDgram, fleetcastRaptorQ, fleetcastK255];
/** Variants of fleetcast for side-by-side comparisons, run only when named. */
const VARIANTS: Tool[] = [fleetcastDgram, fleetcastRaptorQ, fleetcastK255];

interface Flags {
  quick?: boolean;
  size?: number;
  tools: string;
  scenarios?: string;
  out: string;
  timeout?: number;
  rateFactor: number;
  lossMatch: 'udp' | 'ip';
  mtu: number;
  install: boolean;
  tcpOffload?: boolean;
  repeat: number;
  list?: boolean;
}

const positive = (value: string): number => {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a positive number');
  return n;
};

const count = (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a whole number, 1 or more');
  return n;
};

const program = new Command()
  .name('npm run bench --')
  .description('run the same multicast-delivery scenarios on the test LAN for several tools (needs root)')
  .option('--quick', 'small subset (3 receivers, 0 and 1 % loss, 500mbit, 64 MiB unless --size)')
  .addOption(new Option('--size <MiB>', 'image size in MiB (default 200, quick 64)').argParser(positive))
  .option('--tools <list>', `comma-separated tools (${TOOLS.map((t) => t.name).join(',')}; default all but the variants ${VARIANTS.map((t) => t.name).join(', ')})`, TOOLS.filter((t) => !VARIANTS.includes(t)).map((t) => t.name).join(','))
  .option('--scenarios <filter>', 'comma-separated name filters: substrings, /regex/, !exclude (see --list)')
  .option('--out <dir>', 'output directory', 'bench/results')
  .addOption(new Option('--timeout <seconds>', 'time limit per run (default max(60, 20 + 0.5 s per MiB))').argParser(positive))
  .addOption(new Option('--rate-factor <f>', 'tools are told to send at this fraction of a limited uplink').argParser(positive).default(0.95))
  .addOption(new Option('--loss-match <what>', 'loss applies to udp only, or to every IPv4 packet (so HTTP/TCP sees it too)').choices(['udp', 'ip']).default('ip'))
  .addOption(new Option('--mtu <bytes>', 'link MTU of the scenarios without their own (the *-mtu9000 ones have 9000)').argParser(positive).default(1500))
  .option('--tcp-offload', 'keep TCP segmentation offload on the test LAN (faster HTTP, but loss then hits 64 KiB super-packets and the counters miss per-frame headers)')
  .addOption(
    new Option('--repeat <n>', 'runs of each tool in each scenario, tools in a rotating order; reports give the median and the range (this machine\'s noise is several % per run)')
      .argParser(count)
      .default(1),
  )
  .option('--no-install', 'do not apt-get install missing Debian peers')
  .option('--list', 'list the scenarios that would run, and exit');

async function main(): Promise<void> {
  program.parse(process.argv);
  const flags = program.opts<Flags>();
  const quick = Boolean(flags.quick);
  const sizeMiB = flags.size ?? (quick ? 64 : 200);
  const scenarios = withMtu(filterScenarios(quick ? quickScenarios() : allScenarios(), flags.scenarios), flags.mtu);
  if (flags.list) {
    for (const s of scenarios) process.stdout.write(`${s.name}\t${s.description}\n`);
    return;
  }
  if (scenarios.length === 0) throw new Error(`no scenario matches ${JSON.stringify(flags.scenarios)} (see --list)`);
  const names = flags.tools.split(',').map((t) => t.trim()).filter(Boolean);
  const unknown = names.filter((n) => !TOOLS.some((t) => t.name === n));
  if (unknown.length) throw new Error(`unknown tool(s): ${unknown.join(', ')} (known: ${TOOLS.map((t) => t.name).join(', ')})`);
  const tools = TOOLS.filter((t) => names.includes(t.name));
  const problems = prerequisiteProblems();
  if (problems.length) throw new Error(`the benchmark runs on the test LAN, which is unavailable here: ${problems.join('; ')}`);

  const timeoutS = flags.timeout ?? Math.max(60, Math.round(20 + 0.5 * sizeMiB));
  const outDir = resolve(flags.out);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').replace(/-\d+Z$/, 'Z');

  const infos: ToolInfo[] = [];
  for (const tool of tools) {
    const reason = await tool.check({ install: flags.install });
    infos.push({ name: tool.name, description: tool.description, available: reason === null, reason, version: reason === null ? await tool.version() : null });
    process.stderr.write(`bench: ${tool.name}: ${reason === null ? `available (${infos.at(-1)?.version})` : `not available: ${reason}`}\n`);
  }

  const workDir = mkdtempSync(join(tmpdir(), 'fleetcast-bench-'));
  const results: BenchResults = {
    version: 1,
    startedAt: new Date().toISOString(),
    finishedAt: null,
    loadAverageAtEnd: null,
    complete: false,
    machine: describeMachine(),
    config: {
      quick,
      sizeMiB,
      imageBytes: Math.round(sizeMiB * 2 ** 20),
      timeoutS,
      rateFactor: flags.rateFactor,
      lossMatch: flags.lossMatch,
      mtu: flags.mtu,
      tcpOffload: Boolean(flags.tcpOffload),
      repeat: flags.repeat,
      envDropped: TOOL_ENV_DROPPED.filter((name) => process.env[name] !== undefined),
    },
    tools: infos,
    scenarios,
    runs: [],
  };
  const cleanup = (): void => rmSync(workDir, { recursive: true, force: true });
  process.on('exit', cleanup);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      process.stderr.write(`\nbench: ${signal}: stopping, partial results in ${outDir}\n`);
      try {
        writeReports(outDir, stamp, results);
      } finally {
        process.exit(signal === 'SIGINT' ? 130 : 143);
      }
    });
  }

  process.stderr.write(`bench: writing a ${sizeMiB} MiB image ...\n`);
  const image = createImage(join(workDir, 'image.bin'), results.config.imageBytes);
  const cfg = { image, workDir, timeoutS, rateFactor: flags.rateFactor, failedLogsDir: join(outDir, `logs-${stamp}`) };
  const total = scenarios.length * tools.length * flags.repeat;
  let n = 0;
  const t0 = performance.now();
  for (const scenario of scenarios) {
    const options: LanOptions = {
      receivers: scenario.receivers,
      loss: scenario.loss,
      lossMatch: flags.lossMatch,
      mtu: scenario.mtu ?? flags.mtu,
      segmentationOffload: Boolean(flags.tcpOffload),
    };
    if (scenario.uplink) options.senderRate = scenario.uplink;
    if (scenario.bursty) options.bursty = scenario.bursty;
    if (scenario.slow) options.slowReceiver = { rate: scenario.slow.rate };
    let lan: Lan;
    try {
      lan = await buildLan(options);
    } catch (error) {
      // record the scenario as failed for every tool and go on with the next one
      for (let repeat = 0; repeat < flags.repeat; repeat++) {
        for (const tool of tools) {
          n++;
          const record = notAvailable(scenario, tool, `test LAN could not be built: ${(error as Error).message}`);
          record.status = 'failed';
          if (flags.repeat > 1) record.repeat = repeat;
          results.runs.push(record);
          process.stderr.write(`[${n}/${total}] ${progressLine(record)}\n`);
        }
      }
      writeReports(outDir, stamp, results);
      continue;
    }
    try {
      for (let repeat = 0; repeat < flags.repeat; repeat++) {
        // Rotated each round: no tool always runs first on a fresh LAN, or right after the same other tool.
        for (const tool of [...tools.slice(repeat % tools.length), ...tools.slice(0, repeat % tools.length)]) {
          n++;
          const info = infos.find((i) => i.name === tool.name) as ToolInfo;
          let record: RunRecord;
          if (!info.available) {
            record = notAvailable(scenario, tool, info.reason ?? 'not available');
          } else {
            const run = await runOne(lan, scenario, tool, cfg);
            if (run.failedToStart) {
              info.available = false;
              info.reason = `failed to start: ${run.failedToStart}`;
              delete run.failedToStart;
            }
            record = run;
            await new Promise((r) => setTimeout(r, 300)); // let queues drain between tools
          }
          if (flags.repeat > 1) record.repeat = repeat;
          results.runs.push(record);
          process.stderr.write(`[${n}/${total}] ${progressLine(record)}\n`);
        }
      }
    } finally {
      await lan.teardown();
    }
    writeReports(outDir, stamp, results);
  }
  results.finishedAt = new Date().toISOString();
  results.loadAverageAtEnd = Math.round(loadavg()[0]! * 100) / 100;
  results.complete = true;
  const written = writeReports(outDir, stamp, results);
  const summary = markdown(results);
  process.stdout.write(`${summary.slice(summary.indexOf('## Summary'), summary.indexOf('## All runs')).trim()}\n\n`);
  process.stdout.write(`bench: ${total} runs in ${((performance.now() - t0) / 1000).toFixed(0)} s; wrote ${written.join(', ')} (and latest.*)\n`);
}

function progressLine(r: RunRecord): string {
  const head = `${r.scenario} ${r.tool}: ${r.status}`;
  if (r.status === 'not available' || r.reason) return `${head} (${r.reason ?? ''})`;
  const f = (x: number | null, d = 2): string => (x === null ? '–' : x.toFixed(d));
  return `${head}, time ${f(r.timeS)} s, wire/image ${f(r.wireRatio)}, cpu sender ${f(r.senderCpuS)} s receivers ${f(r.receiversCpuS)} s, ${r.correct}/${r.receivers} correct`;
}

main().catch((error: unknown) => {
  process.stderr.write(`bench: ${(error as Error).message}\n`);
  process.exit(1);
});
