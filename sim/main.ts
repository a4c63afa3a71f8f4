#!/usr/bin/env node
// Simulator: one sender, 10 … 10,000 receivers, the real fleetcast engine against a NACK-and-retransmit
// baseline in the same deterministic network.
//
//   npm run sim                      the default table (receivers 10,100,1000,10000 × loss 1,5 % + 3 special rows)
//   npm run sim -- --quick           a small subset
//   npm run sim -- --receivers 10,300 --loss 2 --seed 7 --blocks 32 --k 64 --json
//   npm run sim -- --out sim-results.md
import { Command, InvalidArgumentError, Option } from 'commander';
import { writeFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { POLICIES, runScenario, type Policy, type RunResult, type Scenario } from './scenario.js';
import { markdownTable, type ReportConfig } from './report.js';

interface Flags {
  quick?: boolean;
  receivers?: number[];
  loss?: number[];
  seed: number;
  blocks?: number;
  k: number;
  symbol: number;
  nominalSymbol: number;
  rate: number;
  delay: [number, number];
  jitter: number;
  extras: boolean;
  extraReceivers?: number;
  policy: Policy[];
  json?: boolean;
  out?: string;
  limit: number;
  jobs: number;
}

const positive = (value: string): number => {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a positive number');
  return n;
};
const positiveInt = (value: string): number => {
  const n = positive(value);
  if (!Number.isInteger(n)) throw new InvalidArgumentError('must be a positive integer');
  return n;
};
const list =
  (parse: (v: string) => number) =>
  (value: string): number[] =>
    value.split(',').map((v) => parse(v.trim()));
const percent = (value: string): number => {
  const n = Number(value.replace(/%$/, ''));
  if (!Number.isFinite(n) || n < 0 || n >= 100) throw new InvalidArgumentError('loss must be a percentage in [0, 100)');
  return n;
};
const range = (value: string): [number, number] => {
  const parts = value.split(/[-,]/).map(Number);
  const [a, b] = parts.length === 1 ? [parts[0]!, parts[0]!] : [parts[0]!, parts[1]!];
  if (!Number.isFinite(a) || !Number.isFinite(b) || a <= 0 || b < a) throw new InvalidArgumentError('expected MIN-MAX in ms with 0 < MIN <= MAX, e.g. 0.1-0.5');
  return [a, b];
};

const program = new Command()
  .name('npm run sim --')
  .description('simulate fleetcast (the real engine) and a NACK-and-retransmit baseline for one sender and many receivers')
  .option('--quick', 'small subset: 10 and 300 receivers, the special rows with 100 (late joiner 30); well under a minute')
  .addOption(new Option('--receivers <list>', 'receiver counts (default 10,100,1000,10000)').argParser(list(positiveInt)))
  .addOption(new Option('--loss <list>', 'loss rates in percent (default 1,5)').argParser(list(percent)))
  .addOption(new Option('--seed <n>', 'random seed (same seed, same figures)').argParser(positiveInt).default(1))
  .addOption(new Option('--blocks <n>', 'image size in blocks (default 20)').argParser(positiveInt))
  .addOption(new Option('--k <n>', 'source symbols per block (1..255)').argParser(positiveInt).default(32))
  .addOption(new Option('--symbol <bytes>', 'symbol size actually simulated (small is fast)').argParser(positiveInt).default(64))
  .addOption(new Option('--nominal-symbol <bytes>', 'symbol size the byte and time figures are scaled to').argParser(positiveInt).default(1452))
  .addOption(new Option('--rate <Mbit/s>', 'sender uplink and sending rate').argParser(positive).default(1000))
  .addOption(new Option('--delay <min-max>', 'one-way delays of the receivers, spread over this range (ms)').argParser(range).default([0.1, 0.5], '0.1-0.5'))
  .addOption(
    new Option('--jitter <ms>', 'random extra delay per datagram (reorders)')
      .argParser((v) => {
        const n = Number(v);
        if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('must be a number >= 0');
        return n;
      })
      .default(0),
  )
  .option('--no-extras', 'leave out the bursty, late-joiner and slow-receiver rows')
  .addOption(new Option('--extra-receivers <n>', 'receivers in the special rows (default 1000, quick 100; the late-joiner row, with its larger image, at most 100)').argParser(positiveInt))
  .addOption(
    new Option('--policy <list>', 'policies to run: fleetcast, nack')
      .argParser((v) => {
        const ps = v.split(',').map((p) => p.trim());
        for (const p of ps) if (!POLICIES.includes(p as Policy)) throw new InvalidArgumentError(`unknown policy ${p}`);
        return ps as Policy[];
      })
      .default([...POLICIES], 'fleetcast,nack'),
  )
  .option('--json', 'print JSON (config and one record per run) instead of the markdown table')
  .option('--out <file>', 'also write the report to FILE (.json: JSON, otherwise markdown)')
  .addOption(new Option('--limit <s>', 'virtual time limit per run, seconds').argParser(positive).default(120))
  .addOption(new Option('--jobs <n>', 'runs in parallel (worker threads); mind the other users of the CPU').argParser(positiveInt).default(1));

function buildScenarios(f: Flags): { scenarios: Scenario[]; config: ReportConfig } {
  const quick = f.quick ?? false;
  const config: ReportConfig = {
    seed: f.seed,
    blocks: f.blocks ?? 20,
    k: f.k,
    simSymbolSize: f.symbol,
    nominalSymbolSize: f.nominalSymbol,
    rateBps: f.rate * 1e6,
    delayMs: f.delay,
    jitterMs: f.jitter,
  };
  if (config.k >= 256) throw new InvalidArgumentError('--k must be 1..255');
  const base = {
    seed: config.seed,
    blocks: config.blocks,
    k: config.k,
    simSymbolSize: config.simSymbolSize,
    nominalSymbolSize: config.nominalSymbolSize,
    rateBps: config.rateBps,
    delayMs: config.delayMs,
    jitterMs: config.jitterMs,
    limitMs: f.limit * 1000,
  };
  const receivers = f.receivers ?? (quick ? [10, 300] : [10, 100, 1000, 10000]);
  const losses = f.loss ?? [1, 5];
  const scenarios: Scenario[] = [];
  for (const n of receivers) for (const loss of losses) scenarios.push({ ...base, name: 'random', receivers: n, loss: loss / 100 });
  if (f.extras) {
    const n = f.extraReceivers ?? (quick ? 100 : 1000);
    const physMinMs = ((config.blocks * config.k * config.nominalSymbolSize * 8) / config.rateBps) * 1000;
    scenarios.push({ ...base, name: 'bursty', receivers: n, loss: 0.05, burstLength: 10, jitterMs: Math.max(config.jitterMs, 0.05) });
    // A late joiner learns of the session from the sender's announcements (every 100 ms while transferring), so
    // this row uses an image that takes at least 300 ms to send, and fewer receivers to keep it quick; the
    // late joiner starts a third of the way into the first pass.
    const lateBlocks = Math.max(config.blocks, Math.ceil((0.3 * config.rateBps) / (config.k * config.nominalSymbolSize * 8)));
    const latePhysMinMs = physMinMs * (lateBlocks / config.blocks);
    scenarios.push({
      ...base,
      name: 'late joiner',
      blocks: lateBlocks,
      receivers: Math.min(n, quick ? 30 : 100),
      loss: 0.01,
      lateJoiners: 1,
      lateJoinMs: latePhysMinMs / 3,
    });
    scenarios.push({ ...base, name: 'slow receiver', receivers: n, loss: 0.01, slowReceivers: 1, slowRateBps: config.rateBps / 4 });
  }
  return { scenarios, config };
}

function describe(s: Scenario, policy: Policy): string {
  return `${policy} ${s.name} N=${s.receivers} loss=${(s.loss * 100).toFixed(0)}%`;
}

async function runAll(jobs: { scenario: Scenario; policy: Policy }[], parallel: number): Promise<RunResult[]> {
  const results: RunResult[] = new Array(jobs.length);
  let done = 0;
  const report = (i: number, r: RunResult) => {
    results[i] = r;
    done++;
    process.stderr.write(
      `[${done}/${jobs.length}] ${describe(jobs[i]!.scenario, jobs[i]!.policy)}: ${r.completed}/${r.receivers} done, ` +
        `last ${r.lastMs === null ? '-' : r.lastMs.toFixed(1)} ms, ${(r.wallMs / 1000).toFixed(1)} s\n`,
    );
  };
  if (parallel <= 1) {
    jobs.forEach((j, i) => report(i, runScenario(j.scenario, j.policy).result));
    return results;
  }
  let next = 0;
  const workers = Array.from({ length: Math.min(parallel, jobs.length) }, () => new Worker(new URL('./worker.js', import.meta.url)));
  await Promise.all(
    workers.map(
      (w) =>
        new Promise<void>((resolve, reject) => {
          const feed = () => {
            if (next >= jobs.length) {
              void w.terminate().then(() => resolve());
              return;
            }
            const id = next++;
            w.postMessage({ id, scenario: jobs[id]!.scenario, policy: jobs[id]!.policy });
          };
          w.on('message', (m: { id: number; result: RunResult }) => {
            report(m.id, m.result);
            feed();
          });
          w.on('error', reject);
          feed();
        }),
    ),
  );
  return results;
}

async function main(): Promise<void> {
  program.parse();
  const flags = program.opts<Flags>();
  const { scenarios, config } = buildScenarios(flags);
  const jobs = scenarios.flatMap((scenario) => flags.policy.map((policy) => ({ scenario, policy })));
  const started = performance.now();
  const results = await runAll(jobs, flags.jobs);
  const seconds = (performance.now() - started) / 1000;
  process.stderr.write(`${jobs.length} runs in ${seconds.toFixed(1)} s\n`);
  const json = JSON.stringify({ config, totalSeconds: seconds, results }, null, 2) + '\n';
  const md = markdownTable(results, scenarios, config) + `\n${jobs.length} runs in ${seconds.toFixed(1)} s of wall-clock time.\n`;
  process.stdout.write(flags.json ? json : md);
  if (flags.out) writeFileSync(flags.out, flags.out.endsWith('.json') ? json : md);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
