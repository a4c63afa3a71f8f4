#!/usr/bin/env node
// CPU of one sender and one receiver for the same transfer on loopback, per UDP backend (docs/io.md), runs of
// the two backends interleaved so machine noise hits both alike; medians.
//
//   npm run build && node dist/bench/io-cpu.js --size 200 --rate 500M --reps 5
//
// Needs a writable cgroup hierarchy (root) for CPU accounting: every process is put in a cgroup of its own.
import { Command, Option } from 'commander';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseRate } from '../src/cli/units.js';
import { cgroupRoot, createCgroup, readCpuUsage, removeCgroup } from '../src/testlan/cgroup.js';
import { IO_BACKENDS, type IoBackend } from '../src/transport/udp.js';
import { createImage } from './image.js';
import { FLEETCAST_CLI } from './tools/fleetcast.js';

interface Sample {
  io: IoBackend;
  senderCpuS: number;
  receiverCpuS: number;
  timeS: number;
}

/** Runs argv in a cgroup of its own; resolves with its exit code and CPU seconds (user + system). */
function runAccounted(argv: string[], name: string): { done: Promise<{ code: number | null; cpuS: number; output: string }> } {
  const cgroup = createCgroup(name);
  if (!cgroup) throw new Error('no writable cgroup hierarchy for CPU accounting (run as root)');
  const child = spawn('sh', ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', cgroup, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const done = new Promise<{ code: number | null; cpuS: number; output: string }>((resolve) =>
    child.on('close', (code) => {
      const cpuS = readCpuUsage(cgroup)?.totalS ?? NaN;
      removeCgroup(cgroup);
      resolve({ code, cpuS, output });
    }),
  );
  return { done };
}

async function transfer(io: IoBackend, image: string, dir: string, rate: string, n: number): Promise<Sample> {
  const group = `239.255.${100 + (n % 50)}.${1 + Math.floor(Math.random() * 250)}`;
  const port = String(30000 + Math.floor(Math.random() * 20000));
  const common = ['--group', group, '--port', port, '--interface', 'lo', '--io', io, '--json'];
  const receiver = runAccounted([process.execPath, FLEETCAST_CLI, 'receive', '-o', join(dir, 'out.bin'), '--timeout', '30', ...common], `fleetcast-iocpu-r-${process.pid}-${n}`);
  await new Promise((r) => setTimeout(r, 700)); // node start-up
  const sender = runAccounted([process.execPath, FLEETCAST_CLI, 'send', image, '--min-receivers', '1', '--rate', rate, ...common], `fleetcast-iocpu-s-${process.pid}-${n}`);
  const [s, r] = await Promise.all([sender.done, receiver.done]);
  rmSync(join(dir, 'out.bin'), { force: true });
  if (s.code !== 0 || r.code !== 0) throw new Error(`${io} run ${n} failed: sender ${s.code}, receiver ${r.code}\n${s.output.slice(-500)}\n${r.output.slice(-500)}`);
  const summary = JSON.parse(s.output.slice(s.output.indexOf('{'))) as { durationMs: number };
  return { io, senderCpuS: s.cpuS, receiverCpuS: r.cpuS, timeS: summary.durationMs / 1000 };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main(): Promise<void> {
  const o = new Command()
    .name('node dist/bench/io-cpu.js')
    .description('CPU seconds of a fleetcast sender and receiver on loopback, dgram vs batch UDP I/O')
    .addOption(new Option('--size <MiB>', 'image size').default('200'))
    .addOption(new Option('--rate <bits/s>', 'sender rate').default('500M'))
    .addOption(new Option('--reps <n>', 'transfers per backend').default('5'))
    .parse(process.argv)
    .opts<{ size: string; rate: string; reps: string }>();
  parseRate(o.rate);
  if (!cgroupRoot()) throw new Error('no writable cgroup hierarchy for CPU accounting (run as root)');
  const dir = mkdtempSync(join(tmpdir(), 'fleetcast-iocpu-'));
  try {
    const image = createImage(join(dir, 'image.bin'), Math.round(Number(o.size) * 2 ** 20));
    const loadStart = loadavg()[0]!;
    const samples: Sample[] = [];
    for (let rep = 0; rep < Number(o.reps); rep++) {
      for (const io of IO_BACKENDS) {
        const sample = await transfer(io, image.path, dir, o.rate, samples.length);
        samples.push(sample);
        process.stderr.write(`io-cpu: ${io} #${rep + 1}: sender ${sample.senderCpuS.toFixed(2)} s, receiver ${sample.receiverCpuS.toFixed(2)} s CPU, ${sample.timeS.toFixed(2)} s\n`);
      }
    }
    const loadEnd = loadavg()[0]!;
    const lines = [
      `${o.size} MiB at ${o.rate}bit/s on loopback, 1 receiver, ${o.reps} transfers per backend (interleaved), medians; load average (1 min) ${loadStart.toFixed(2)} at start, ${loadEnd.toFixed(2)} at end`,
      '',
      '| UDP I/O | sender CPU s | receiver CPU s | transfer s |',
      '| --- | ---: | ---: | ---: |',
    ];
    for (const io of IO_BACKENDS) {
      const mine = samples.filter((s) => s.io === io);
      lines.push(`| ${io} | ${median(mine.map((s) => s.senderCpuS)).toFixed(2)} | ${median(mine.map((s) => s.receiverCpuS)).toFixed(2)} | ${median(mine.map((s) => s.timeS)).toFixed(2)} |`);
    }
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: Error) => {
  process.stderr.write(`io-cpu: ${err.message}\n`);
  process.exit(1);
});
