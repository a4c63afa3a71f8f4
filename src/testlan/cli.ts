#!/usr/bin/env node
// Command line for the test LAN.
//
//   npm run lan -- up --receivers 3 --loss 0.01 --rate 500mbit   build it, print the hosts as JSON, keep it until Ctrl-C
//   npm run lan -- down [--all] [--prefix P]                       remove leftovers of earlier runs
//   npm run lan -- list                                             show LANs of this tool that exist now

import { Command, InvalidArgumentError, Option } from 'commander';
import { buildLan, listLeftovers, ownerAlive, readStates, removeLeftovers, type LanOptions } from './lan.js';
import { parseRate } from './rate.js';

function number(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < min || n > max) throw new InvalidArgumentError(`must be a number in ${min}..${max}`);
    return n;
  };
}

function integer(min: number, max: number) {
  return (value: string): number => {
    const n = number(min, max)(value);
    if (!Number.isInteger(n)) throw new InvalidArgumentError('must be an integer');
    return n;
  };
}

function rate(value: string): string {
  try {
    parseRate(value);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
  return value;
}

interface UpFlags {
  receivers: number;
  loss?: number;
  lossMatch: 'udp' | 'ip';
  rate?: string;
  burstyLoss?: number;
  burstLength: number;
  maxBurstMs: number;
  slowRate?: string;
  slowIndex?: number;
  mtu: number;
  tcpOffload?: boolean;
  ipv6?: boolean;
  verbose?: boolean;
}

const program = new Command()
  .name('npm run lan --')
  .description('fleetcast test LAN: a sender and N receivers in network namespaces on one bridge (needs root)');

program
  .command('up')
  .description('build a test LAN, print its hosts as JSON and keep it up until Ctrl-C (SIGINT) or SIGTERM')
  .addOption(new Option('-n, --receivers <n>', 'number of receivers').argParser(integer(1, 200)).default(3))
  .addOption(new Option('--loss <fraction>', 'random loss on each receiver ingress, 0..1 (e.g. 0.01)').argParser(number(0, 1)))
  .addOption(new Option('--loss-match <what>', 'which packets loss applies to').choices(['udp', 'ip']).default('udp'))
  .addOption(new Option('--rate <rate>', "sender uplink rate (tc tbf), e.g. 500mbit; default unlimited").argParser(rate))
  .addOption(new Option('--bursty-loss <fraction>', 'bursty (Gilbert-Elliott) average loss, 0..1').argParser(number(0.000001, 0.99)))
  .addOption(new Option('--burst-length <packets>', 'mean burst length for --bursty-loss').argParser(number(1, 100000)).default(10))
  .addOption(new Option('--max-burst-ms <ms>', 'a bad spell of --bursty-loss ends after this long at most').argParser(number(1, 60000)).default(20))
  .addOption(new Option('--slow-rate <rate>', 'make one receiver slow: tbf on its ingress and egress').argParser(rate))
  .addOption(new Option('--slow-index <i>', 'which receiver is slow (1-based; default the last)').argParser(integer(1, 200)))
  .addOption(new Option('--mtu <bytes>', 'link MTU').argParser(integer(576, 9000)).default(1500))
  .option('--tcp-offload', 'keep TCP segmentation offload (64 KiB super-packets) instead of one frame per packet')
  .option('--ipv6', 'IPv6 too: 2001:2::/64 addresses (RFC 5180) and fe80:: ones, no duplicate address detection')
  .option('-v, --verbose', 'print build steps on stderr')
  .action(async (flags: UpFlags) => {
    const options: LanOptions = { receivers: flags.receivers, mtu: flags.mtu, lossMatch: flags.lossMatch, segmentationOffload: Boolean(flags.tcpOffload), ipv6: Boolean(flags.ipv6) };
    if (flags.loss !== undefined) options.loss = flags.loss;
    if (flags.rate) options.senderRate = flags.rate;
    if (flags.burstyLoss !== undefined) options.bursty = { loss: flags.burstyLoss, meanBurst: flags.burstLength, maxBurstMs: flags.maxBurstMs };
    if (flags.slowRate) options.slowReceiver = flags.slowIndex ? { rate: flags.slowRate, index: flags.slowIndex } : { rate: flags.slowRate };
    if (flags.verbose) options.onStep = (step) => void process.stderr.write(`lan: ${step}\n`);
    const lan = await buildLan(options);
    process.stdout.write(`${JSON.stringify(lan.describe(), null, 2)}\n`);
    process.stderr.write(
      `test LAN ${lan.prefix} is up. Run commands in it with: ip netns exec ${lan.sender.ns} <command>\n` +
        'Press Ctrl-C to tear it down.\n',
    );
    const keepAlive = setInterval(() => {}, 1 << 30);
    const stop = (signal: NodeJS.Signals): void => {
      clearInterval(keepAlive);
      void lan.teardown().then(() => {
        process.stderr.write(`test LAN ${lan.prefix} removed (${signal}).\n`);
        process.exit(0);
      });
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    process.once('SIGHUP', stop);
  });

program
  .command('down')
  .description('remove leftovers of this tool: LANs whose creating process is gone (or, with --all, every one)')
  .option('--all', 'also remove LANs whose creating process still runs')
  .option('--prefix <prefix>', 'remove only this LAN (e.g. fctab12c)')
  .action((flags: { all?: boolean; prefix?: string }) => {
    const removed = removeLeftovers(flags);
    const kept = readStates().map((s) => s.prefix);
    process.stdout.write(removed.length ? `removed: ${removed.join(' ')}\n` : 'nothing to remove\n');
    if (kept.length) process.stdout.write(`still up (owner running; use --all to remove): ${kept.join(' ')}\n`);
  });

program
  .command('list')
  .description('list the test LANs that exist now')
  .action(() => {
    const states = readStates();
    const left = listLeftovers();
    const prefixes = new Set([...states.map((s) => s.prefix), ...[...left.namespaces, ...left.links].map((n) => n.slice(0, 8))]);
    const rows = [...prefixes].map((prefix) => {
      const state = states.find((s) => s.prefix === prefix);
      return {
        prefix,
        owner: state ? { pid: state.pid, running: ownerAlive(state), since: state.createdAt } : null,
        namespaces: left.namespaces.filter((n) => n.startsWith(`${prefix}-`)),
      };
    });
    process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
  });

program.parseAsync(process.argv).catch((error: unknown) => {
  process.stderr.write(`lan: ${(error as Error).message}\n`);
  process.exit(1);
});
