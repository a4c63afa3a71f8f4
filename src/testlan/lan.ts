// The test LAN: one sender and N receivers, each in its own network namespace, joined by a Linux
// bridge, with optional link rate limits (tc tbf) and packet loss (nft) to imitate a real LAN.
//
// Safety: only 198.18.0.0/15 addresses (and, with `ipv6`, 2001:2::/48, RFC 5180's IPv6 counterpart) are
// used, all of them inside the namespaces; the bridge in the root namespace gets no address; nothing touches the machine's own interfaces or routes. Every object
// carries a per-run prefix (fct + 5 random characters) so that parallel runs never collide and leftovers
// can be found (`npm run lan -- down`). Everything is removed by teardown(), which is idempotent and is
// also run from process exit and signal handlers.

import { spawn as spawnChild, type ChildProcess, type StdioOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cgroupPids, createCgroup, killCgroup, listCgroups, readCpuUsage, removeCgroup, type CpuUsage } from './cgroup.js';
import { parseRate, tcRate } from './rate.js';
import { findExecutable, processAlive, processStartTime, run, runSyncQuiet, sleepSync } from './system.js';

export type { CpuUsage } from './cgroup.js';

/**
 * Bursty (Gilbert-Elliott) loss on a receiver's link: the link is either good (nothing lost) or bad
 * (everything lost). Each packet arriving in the good state turns the link bad with probability p (and is
 * lost); each packet arriving in the bad state turns it good again with probability r (and passes).
 * The long-run loss is p / (p + r) and a burst lasts 1 / r packets on average; `loss` and `meanBurst`
 * fix p and r. A bad spell also ends after `maxBurstMs` whatever the packet count, so a slow flow
 * (a TCP connection in back-off) is not trapped in a burst for seconds: the bursts are about packet
 * trains, not a dead link.
 */
export interface BurstyLoss {
  /** Long-run fraction of packets lost, 0..1 (exclusive). */
  loss: number;
  /** Mean number of consecutive packets lost in one burst (>= 1). */
  meanBurst: number;
  /** Longest time a bad spell lasts, in ms (default 20). */
  maxBurstMs?: number;
}

export interface LanOptions {
  /** Number of receiver hosts (1..200). */
  receivers: number;
  /** tbf rate on the sender's uplink egress, e.g. '500mbit'. Unlimited when omitted. */
  senderRate?: string;
  /** Random drop probability (0..1) on each receiver's ingress, via nft `numgen random`. */
  loss?: number;
  /** Which packets the loss applies to: 'udp' (default) or every IPv4 packet ('ip', so TCP suffers too). */
  lossMatch?: 'udp' | 'ip';
  /** Bursty loss on each receiver's ingress (may be combined with `loss`). */
  bursty?: BurstyLoss;
  /** One receiver with its own (slower) link: tbf on its ingress and its egress. */
  slowReceiver?: { rate: string; /** 1-based receiver index; default: the last receiver */ index?: number };
  /** Link MTU, default 1500 (up to 9000). */
  mtu?: number;
  /**
   * Keep TCP segmentation offload on the namespace interfaces (default false). Off, every TCP segment is
   * its own packet, as on a real wire: loss hits single frames and the byte counters include every
   * frame's headers. On, TCP hands 64 KiB super-packets to the veth (faster, but unlike a real LAN).
   */
  segmentationOffload?: boolean;
  /** Queue size of every tbf, in milliseconds at its rate (default 20). */
  queueMs?: number;
  /**
   * IPv6 on the namespace interfaces too (default false: IPv6 off, so byte counters carry no router
   * solicitations or MLD reports): each host gets a 2001:2::/64 address (RFC 5180 benchmarking prefix) and its
   * fe80:: link-local one, both usable at once (duplicate address detection off), and the kernel's
   * `multicast ff00::/8 dev lan0` route. Router advertisements and solicitations are off.
   */
  ipv6?: boolean;
  /** Use this prefix instead of a random one (must match fct[0-9a-z]{5}). */
  prefix?: string;
  /** Called after each build step ('preflight', 'bridge', 'host:s', 'host:r1', ..., 'ready'). Throwing aborts the build (and cleans up). */
  onStep?: (step: string) => void | Promise<void>;
}

export interface LanHost {
  /** 's' for the sender, 'r1'..'rN' for receivers. */
  name: string;
  role: 'sender' | 'receiver';
  /** Network namespace name. */
  ns: string;
  /** Interface name inside the namespace. */
  ifname: string;
  /** IPv4 address (no prefix length). */
  address: string;
  /** Address with prefix length, e.g. 198.18.0.1/16. */
  cidr: string;
  broadcast: string;
  /** IPv6 address in 2001:2::/64 (no prefix length), when the LAN was built with `ipv6`; else null. */
  address6: string | null;
  /** The veth end in the root namespace, enslaved to the bridge. */
  rootIfname: string;
}

export interface ExecOptions {
  /** Kill the command after this many milliseconds (result has timedOut: true). */
  timeoutMs?: number;
  /** Data for stdin. */
  input?: string | Buffer;
  /** Resolve instead of rejecting when the command exits non-zero. */
  allowFailure?: boolean;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface ExecResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export interface SpawnOptions {
  stdio?: StdioOptions;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface Lan {
  readonly prefix: string;
  readonly bridge: string;
  readonly sender: LanHost;
  readonly receivers: readonly LanHost[];
  /** Sender first, then receivers. */
  readonly hosts: readonly LanHost[];
  readonly mtu: number;
  /** Run a command inside a host's namespace and collect its output. */
  exec(host: LanHost, argv: readonly string[], opts?: ExecOptions): Promise<ExecResult>;
  /** Start a command inside a host's namespace (accounted in the host's cgroup). */
  spawn(host: LanHost, argv: readonly string[], opts?: SpawnOptions): ChildProcess;
  /** Interface byte counters inside the namespace. */
  txBytes(host: LanHost): Promise<number>;
  rxBytes(host: LanHost): Promise<number>;
  /** Frames the host's interface transmitted (with txBytes: the mean frame size on the wire). */
  txFrames(host: LanHost): Promise<number>;
  /** IPv4 (or IPv6) fragments the host's stack has created so far (a datagram larger than the MTU was split). */
  ipFragmentsCreated(host: LanHost, family?: 4 | 6): Promise<number>;
  /** CPU time used so far by every process started in the host (null when cgroups are unavailable). */
  cpuUsage(host: LanHost): CpuUsage | null;
  /**
   * Packets the host has sent onto the LAN so far, read synchronously from its veth end in the root namespace
   * (cheap enough to poll every millisecond).
   */
  packetsSent(host: LanHost): number;
  /** SIGKILL every process running in the host's namespace or cgroup (daemons included). */
  killProcesses(host: LanHost): void;
  /** Pids of the processes running in the host's namespace or cgroup now. */
  processes(host: LanHost): number[];
  /** Packets dropped so far by the loss rules on a receiver (nft counters). */
  droppedPackets(host: LanHost): Promise<number>;
  /** Plain description (what `lan up` prints). */
  describe(): LanDescription;
  /** Removes everything; safe to call more than once. */
  teardown(): Promise<void>;
}

export interface LanDescription {
  prefix: string;
  bridge: string;
  mtu: number;
  senderRate: string | null;
  loss: number;
  lossMatch: 'udp' | 'ip';
  bursty: BurstyLoss | null;
  slowReceiver: { rate: string; index: number } | null;
  sender: LanHost;
  receivers: LanHost[];
}

// ---------------------------------------------------------------------------------------------
// Names and constants

export const PREFIX_PATTERN = /^fct[0-9a-z]{5}$/;
/** Matches every namespace, link and cgroup this tool creates. */
export const OBJECT_PATTERN = /^fct[0-9a-z]{5}-/;
const IFNAME = 'lan0';
const NFT_TABLE = 'fleetcast_lan';
const NET = { prefixLength: 16, base: [198, 18], broadcast: '198.18.255.255' };
/** RFC 5180 benchmarking prefix (2001:2::/48); one /64 of it is the LAN. */
const NET6 = { prefixLength: 64, base: '2001:2::' };
const MAX_RECEIVERS = 200;
const SOCKET_BUFFER_MAX = 64 * 1024 * 1024;
const NUMGEN_MOD = 1_000_000;

function newPrefix(): string {
  const alphabet = '0123456789abcdefghijklmnopqrstuvwxyz';
  const bytes = randomBytes(5);
  let out = 'fct';
  for (const b of bytes) out += alphabet[b % alphabet.length];
  return out;
}

function hostAddress(index: number): string {
  // sender (index 0): 198.18.0.1; receiver i: 198.18.(1 + (i-1) div 250).(1 + (i-1) mod 250)
  if (index === 0) return `${NET.base[0]}.${NET.base[1]}.0.1`;
  const i = index - 1;
  return `${NET.base[0]}.${NET.base[1]}.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`;
}

/** The host's IPv6 address: the last two octets of its IPv4 address as the last two groups (2001:2::1, 2001:2::1:1). */
export function hostAddress6(index: number): string {
  const [, , third, fourth] = hostAddress(index).split('.').map(Number) as [number, number, number, number];
  return `${NET6.base}${third === 0 ? '' : `${third}:`}${fourth}`;
}

export function stateDir(): string {
  return existsSync('/run') ? '/run/fleetcast-testlan' : join(tmpdir(), 'fleetcast-testlan');
}

// ---------------------------------------------------------------------------------------------
// Preflight

interface Tools {
  ip: string;
  nft: string;
  tc: string;
  sh: string;
}

/**
 * What stops the test LAN from being built here: not root, or missing commands. Empty when all is well.
 * `find` resolves a command name to a path (injectable for tests).
 */
export function prerequisiteProblems(
  uid: number | undefined = process.getuid?.(),
  find: (name: string) => string | undefined = findExecutable,
): string[] {
  const problems: string[] = [];
  if (uid !== 0) {
    problems.push(
      `the test LAN needs root (network namespaces, veth, bridge, nft, tc), but this process runs as uid ${uid ?? 'unknown'}: run it as root (e.g. sudo)`,
    );
  }
  const missing = ['ip', 'tc', 'nft', 'sh'].filter((name) => !find(name));
  if (missing.length > 0) {
    problems.push(
      `missing command${missing.length > 1 ? 's' : ''}: ${missing.join(', ')}: install them with \`apt-get install iproute2 nftables\` (ip and tc come with iproute2, nft with nftables)`,
    );
  }
  return problems;
}

/** Checks root and the needed commands; throws an Error telling what is missing and how to fix it. */
export function preflight(): Tools {
  const problems = prerequisiteProblems();
  if (problems.length > 0) throw new Error(`fleetcast test LAN: ${problems.join('; ')}`);
  return {
    ip: findExecutable('ip') as string,
    nft: findExecutable('nft') as string,
    tc: findExecutable('tc') as string,
    sh: findExecutable('sh') as string,
  };
}

// ---------------------------------------------------------------------------------------------
// Registry of live LANs, state files and emergency cleanup

interface LanState {
  prefix: string;
  pid: number;
  pidStart: number | null;
  createdAt: string;
  bridge: string;
  namespaces: string[];
  links: string[];
  cgroups: string[];
}

const live = new Map<string, LanImpl>();
let handlersInstalled = false;
const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

function onExit(): void {
  for (const lan of [...live.values()]) lan.teardownSync();
}

function onSignal(signal: NodeJS.Signals): void {
  onExit();
  uninstallHandlers();
  // If nobody else handles this signal, die of it as we would have without our handler.
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

const signalHandlers = new Map<NodeJS.Signals, () => void>();

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', onExit);
  for (const signal of SIGNALS) {
    const handler = (): void => onSignal(signal);
    signalHandlers.set(signal, handler);
    process.on(signal, handler);
  }
}

function uninstallHandlers(): void {
  if (!handlersInstalled) return;
  handlersInstalled = false;
  process.removeListener('exit', onExit);
  for (const [signal, handler] of signalHandlers) process.removeListener(signal, handler);
  signalHandlers.clear();
}

function writeState(state: LanState): void {
  const dir = stateDir();
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${state.prefix}.json`), `${JSON.stringify(state, null, 2)}\n`);
}

function removeState(prefix: string): void {
  rmSync(join(stateDir(), `${prefix}.json`), { force: true });
}

export function readStates(): LanState[] {
  const dir = stateDir();
  if (!existsSync(dir)) return [];
  const out: LanState[] = [];
  for (const name of readdirSync(dir)) {
    if (!name.endsWith('.json')) continue;
    try {
      const state = JSON.parse(readFileSync(join(dir, name), 'utf8')) as LanState;
      if (PREFIX_PATTERN.test(state.prefix)) out.push(state);
    } catch {
      // unreadable state file: ignore (cleanup by pattern still finds the objects)
    }
  }
  return out;
}

/** True when the process that created the LAN still runs. */
export function ownerAlive(state: { pid: number; pidStart: number | null }): boolean {
  if (!processAlive(state.pid)) return false;
  return state.pidStart === null || processStartTime(state.pid) === state.pidStart;
}

/** Synchronously removes every object of one prefix (namespaces, links, cgroups, state file). */
export function removePrefixSync(prefix: string, tools?: Partial<Tools>, childPids: readonly number[] = []): void {
  const ip = tools?.ip ?? findExecutable('ip');
  const match = (name: string): boolean => name.startsWith(`${prefix}-`);
  const namespaces = ip ? listNamespacesSync(ip).filter(match) : [];
  const cgroups = listCgroups(OBJECT_PATTERN).filter((path) => match(path.slice(path.lastIndexOf('/') + 1)));

  // 1. Stop every process in the namespaces and cgroups, so the namespaces can go away.
  const pids = new Set<number>(childPids);
  if (ip) for (const ns of namespaces) for (const pid of nsPidsSync(ip, ns)) pids.add(pid);
  for (const cg of cgroups) for (const pid of cgroupPids(cg)) pids.add(pid);
  pids.delete(process.pid);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  for (const cg of cgroups) killCgroup(cg);

  // 2. Links first (deleting one end of a veth deletes both at once), then the namespaces.
  if (ip) {
    for (const link of listLinksSync(ip).filter(match)) runSyncQuiet(ip, ['link', 'del', link]);
    for (const ns of namespaces) runSyncQuiet(ip, ['netns', 'del', ns]);
  }

  // 3. cgroups can be removed once their processes have exited.
  const deadline = Date.now() + 3000;
  for (const pid of pids) {
    while (processAlive(pid) && Date.now() < deadline) sleepSync(10);
  }
  for (const cg of cgroups) {
    while (!removeCgroup(cg) && Date.now() < deadline) sleepSync(10);
  }
  removeState(prefix);
}

function listNamespacesSync(ip: string): string[] {
  return runSyncQuiet(ip, ['netns', 'list'])
    .split('\n')
    .map((line) => line.trim().split(/\s+/)[0] ?? '')
    .filter((name) => OBJECT_PATTERN.test(name));
}

function listLinksSync(ip: string): string[] {
  const out = runSyncQuiet(ip, ['-o', 'link', 'show']);
  const names: string[] = [];
  for (const line of out.split('\n')) {
    const m = /^\d+:\s+([^:@\s]+)/.exec(line);
    if (m?.[1] && OBJECT_PATTERN.test(m[1])) names.push(m[1]);
  }
  return names;
}

function nsPidsSync(ip: string, ns: string): number[] {
  return runSyncQuiet(ip, ['netns', 'pids', ns])
    .split('\n')
    .filter(Boolean)
    .map(Number)
    .filter((n) => Number.isInteger(n) && n > 0);
}

export interface Leftovers {
  namespaces: string[];
  links: string[];
  cgroups: string[];
  states: string[];
}

/** Objects of this tool that exist now (optionally only those of one prefix). */
export function listLeftovers(prefix?: string): Leftovers {
  const ip = findExecutable('ip');
  const match = (name: string): boolean => (prefix ? name.startsWith(`${prefix}-`) : OBJECT_PATTERN.test(name));
  return {
    namespaces: ip ? listNamespacesSync(ip).filter(match) : [],
    links: ip ? listLinksSync(ip).filter(match) : [],
    cgroups: listCgroups(OBJECT_PATTERN)
      .map((p) => p.slice(p.lastIndexOf('/') + 1))
      .filter(match),
    states: readStates()
      .map((s) => s.prefix)
      .filter((p) => !prefix || p === prefix),
  };
}

/**
 * Removes leftovers of earlier runs. Without `all`, only LANs whose creating process is gone (and
 * objects no state file claims); with `all`, every object of this tool, including live LANs.
 * Returns the prefixes removed.
 */
export function removeLeftovers(options: { all?: boolean; prefix?: string } = {}): string[] {
  const states = readStates();
  const claimed = new Map(states.map((s) => [s.prefix, s]));
  const left = listLeftovers(options.prefix);
  const prefixes = new Set<string>(states.map((s) => s.prefix));
  for (const name of [...left.namespaces, ...left.links, ...left.cgroups]) prefixes.add(name.slice(0, 8));
  const removed: string[] = [];
  for (const prefix of prefixes) {
    if (options.prefix && prefix !== options.prefix) continue;
    const state = claimed.get(prefix);
    if (!options.all && !options.prefix && state && ownerAlive(state)) continue;
    if (live.has(prefix)) {
      live.get(prefix)?.teardownSync();
    } else {
      removePrefixSync(prefix);
    }
    removed.push(prefix);
  }
  return removed;
}

// ---------------------------------------------------------------------------------------------
// nft rules

/** The nft ruleset for a receiver's ingress loss; null when no loss is configured. */
export function lossRuleset(options: { loss?: number; lossMatch?: 'udp' | 'ip'; bursty?: BurstyLoss }): string | null {
  const loss = options.loss ?? 0;
  const bursty = options.bursty;
  if (loss <= 0 && !bursty) return null;
  const match = options.lossMatch === 'ip' ? 'meta nfproto ipv4' : 'meta l4proto udp';
  const rules: string[] = [];
  if (loss > 0) {
    const k = Math.round(loss * NUMGEN_MOD);
    rules.push(`${match} numgen random mod ${NUMGEN_MOD} < ${k} counter name lost drop`);
  }
  if (bursty) {
    // Gilbert-Elliott (see BurstyLoss). The bad state is the receiver interface's entry in the set
    // ge_bad: added when a burst starts, deleted when it ends (or expired by the set's timeout).
    const { p, r } = gilbertElliott(bursty);
    const pk = Math.max(1, Math.round(p * NUMGEN_MOD));
    const rk = Math.max(1, Math.round(r * NUMGEN_MOD));
    rules.push(`${match} meta iif @ge_bad numgen random mod ${NUMGEN_MOD} < ${rk} delete @ge_bad { meta iif } accept`);
    rules.push(`${match} meta iif @ge_bad counter name lost drop`);
    rules.push(`${match} numgen random mod ${NUMGEN_MOD} < ${pk} add @ge_bad { meta iif } counter name lost drop`);
  }
  const maxBurstMs = Math.max(1, Math.round(bursty?.maxBurstMs ?? 20));
  return [
    `table inet ${NFT_TABLE} {`,
    '  counter lost { }',
    ...(bursty ? [`  set ge_bad { type iface_index; flags dynamic,timeout; timeout ${maxBurstMs}ms; }`] : []),
    '  chain ingress_loss {',
    '    type filter hook prerouting priority 0; policy accept;',
    ...rules.map((r) => `    ${r}`),
    '  }',
    '}',
    '',
  ].join('\n');
}

/** Transition probabilities for the bursty loss model (see lossRuleset). */
export function gilbertElliott(bursty: BurstyLoss): { p: number; r: number } {
  if (!(bursty.loss > 0 && bursty.loss < 1)) throw new Error(`bursty.loss must be in (0, 1), got ${bursty.loss}`);
  if (!(bursty.meanBurst >= 1)) throw new Error(`bursty.meanBurst must be >= 1, got ${bursty.meanBurst}`);
  if (bursty.maxBurstMs !== undefined && !(bursty.maxBurstMs >= 1)) throw new Error(`bursty.maxBurstMs must be >= 1, got ${bursty.maxBurstMs}`);
  const r = 1 / bursty.meanBurst;
  const p = (bursty.loss * r) / (1 - bursty.loss);
  if (p > 1) throw new Error(`bursty loss ${bursty.loss} with mean burst ${bursty.meanBurst} is not reachable`);
  return { p, r };
}

// ---------------------------------------------------------------------------------------------
// The LAN

class LanImpl implements Lan {
  readonly prefix: string;
  readonly bridge: string;
  readonly sender: LanHost;
  readonly receivers: LanHost[];
  readonly hosts: LanHost[];
  readonly mtu: number;
  private readonly tools: Tools;
  private readonly options: LanOptions;
  private readonly cgroups = new Map<string, string | null>();
  private readonly children = new Set<ChildProcess>();
  private torn = false;
  private readonly state: LanState;

  constructor(tools: Tools, options: LanOptions, prefix: string) {
    this.tools = tools;
    this.options = options;
    this.prefix = prefix;
    this.bridge = `${prefix}-br`;
    this.mtu = options.mtu ?? 1500;
    const makeHost = (index: number): LanHost => {
      const name = index === 0 ? 's' : `r${index}`;
      const address = hostAddress(index);
      return {
        name,
        role: index === 0 ? 'sender' : 'receiver',
        ns: `${prefix}-${name}`,
        ifname: IFNAME,
        address,
        cidr: `${address}/${NET.prefixLength}`,
        broadcast: NET.broadcast,
        address6: options.ipv6 ? hostAddress6(index) : null,
        rootIfname: `${prefix}-${name}`,
      };
    };
    this.sender = makeHost(0);
    this.receivers = Array.from({ length: options.receivers }, (_, i) => makeHost(i + 1));
    this.hosts = [this.sender, ...this.receivers];
    this.state = {
      prefix,
      pid: process.pid,
      pidStart: processStartTime(process.pid) ?? null,
      createdAt: new Date().toISOString(),
      bridge: this.bridge,
      namespaces: this.hosts.map((h) => h.ns),
      links: [this.bridge, ...this.hosts.map((h) => h.rootIfname)],
      cgroups: [],
    };
  }

  // -- build --------------------------------------------------------------------------------

  async build(): Promise<void> {
    const { ip } = this.tools;
    const o = this.options;
    writeState(this.state);
    await this.step('preflight');
    await raiseSocketBuffers();

    await run(ip, ['link', 'add', this.bridge, 'mtu', String(this.mtu), 'type', 'bridge', 'stp_state', '0', 'mcast_snooping', '0']);
    disableIpv6InRoot(this.bridge);
    await run(ip, ['link', 'set', this.bridge, 'up']);
    await this.step('bridge');

    for (const host of this.hosts) {
      await this.buildHost(host);
      await this.step(`host:${host.name}`);
    }

    const queueMs = o.queueMs ?? 20;
    if (o.senderRate) await this.tbf(['-n', this.sender.ns], this.sender.ifname, parseRate(o.senderRate), queueMs);
    const rules = lossRuleset(o);
    if (rules) {
      for (const host of this.receivers) await this.execChecked(host, [this.tools.nft, '-f', '-'], rules);
    }
    if (o.slowReceiver) {
      const host = this.receivers[(o.slowReceiver.index ?? this.receivers.length) - 1] as LanHost;
      const bits = parseRate(o.slowReceiver.rate);
      await this.tbf(['-n', host.ns], host.ifname, bits, queueMs); // its egress
      await this.tbf([], host.rootIfname, bits, queueMs); // its ingress: the bridge port's egress
    }
    await this.step('shaping');
    await this.waitLinksUp();
    await this.step('ready');
  }

  private async step(name: string): Promise<void> {
    if (this.options.onStep) await this.options.onStep(name);
  }

  private async buildHost(host: LanHost): Promise<void> {
    const { ip } = this.tools;
    await run(ip, ['netns', 'add', host.ns]);
    // No IPv6 inside unless asked (keeps the byte counters free of router solicitations and MLD noise). With
    // IPv6, the defaults are set before lan0 arrives, so it is made with them: no duplicate address detection
    // (addresses usable at once), no router solicitations or advertisements, no autoconfiguration.
    const v6 = this.options.ipv6
      ? ['accept_dad=0', 'dad_transmits=0', 'router_solicitations=0', 'accept_ra=0', 'autoconf=0', 'disable_ipv6=0']
      : ['disable_ipv6=1'];
    const writes = ['all', 'default'].flatMap((conf) => v6.map((kv) => {
      const [key, value] = kv.split('=');
      return `echo ${value} > /proc/sys/net/ipv6/conf/${conf}/${key}`;
    }));
    await this.execChecked(host, [this.tools.sh, '-c', `${writes.join('; ')}; true`]);
    await run(ip, ['-n', host.ns, 'link', 'set', 'lo', 'up']);
    await run(ip, [
      'link', 'add', host.rootIfname, 'mtu', String(this.mtu), 'type', 'veth',
      'peer', 'name', host.ifname, 'mtu', String(this.mtu), 'netns', host.ns,
    ]);
    disableIpv6InRoot(host.rootIfname);
    await run(ip, ['link', 'set', host.rootIfname, 'master', this.bridge, 'up']);
    if (!this.options.segmentationOffload) {
      // one frame per packet, as on a real wire (no ethtool needed: the stack asks the device's limit)
      await run(ip, ['-n', host.ns, 'link', 'set', 'dev', host.ifname, 'gso_max_segs', '1']);
    }
    await run(ip, ['-n', host.ns, 'addr', 'add', host.cidr, 'brd', '+', 'dev', host.ifname]);
    if (host.address6) await run(ip, ['-n', host.ns, '-6', 'addr', 'add', `${host.address6}/${NET6.prefixLength}`, 'dev', host.ifname, 'nodad']);
    await run(ip, ['-n', host.ns, 'link', 'set', host.ifname, 'up']);
    await run(ip, ['-n', host.ns, 'route', 'add', '224.0.0.0/4', 'dev', host.ifname]);
    const cgroup = createCgroup(host.ns);
    this.cgroups.set(host.ns, cgroup);
    if (cgroup) {
      this.state.cgroups.push(cgroup);
      writeState(this.state);
    }
  }

  private async tbf(nsArgs: string[], dev: string, bitsPerSecond: number, queueMs: number): Promise<void> {
    const bytesPerSecond = bitsPerSecond / 8;
    // burst: enough for 4 ms at the rate (kernel timer granularity) and a few full frames.
    const burst = Math.max(Math.round(bytesPerSecond * 0.004), 8 * (this.mtu + 14), 32 * 1024);
    await run(this.tools.tc, [
      ...nsArgs, 'qdisc', 'replace', 'dev', dev, 'root', 'tbf',
      'rate', tcRate(bitsPerSecond), 'burst', String(burst), 'latency', `${queueMs}ms`,
    ]);
  }

  private async waitLinksUp(): Promise<void> {
    const deadline = Date.now() + 5000;
    for (const host of this.hosts) {
      for (;;) {
        const out = await run(this.tools.ip, ['-n', host.ns, '-o', 'link', 'show', 'dev', host.ifname]);
        // With IPv6, also its fe80:: address: the kernel adds it once the link is up (the source of link-scope multicast).
        const ready = /LOWER_UP/.test(out.stdout) && (!host.address6 || (await this.hasLinkLocal(host)));
        if (ready) break;
        if (Date.now() > deadline) throw new Error(`link ${host.ifname} in ${host.ns} did not come up`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
  }

  private async hasLinkLocal(host: LanHost): Promise<boolean> {
    const out = await run(this.tools.ip, ['-n', host.ns, '-6', '-o', 'addr', 'show', 'dev', host.ifname, 'scope', 'link']);
    return /inet6 fe80::/.test(out.stdout) && !/tentative/.test(out.stdout);
  }

  private async execChecked(host: LanHost, argv: readonly string[], input?: string): Promise<void> {
    const result = await this.exec(host, argv, input === undefined ? {} : { input });
    if (result.code !== 0) throw new Error(`${argv.join(' ')} in ${host.ns} failed: ${result.stderr.trim()}`);
  }

  // -- running things -------------------------------------------------------------------------

  private checkHost(host: LanHost): void {
    if (this.torn) throw new Error(`test LAN ${this.prefix} has been torn down`);
    if (!this.hosts.some((h) => h.ns === host.ns)) throw new Error(`host ${host.ns} is not part of test LAN ${this.prefix}`);
  }

  spawn(host: LanHost, argv: readonly string[], opts: SpawnOptions = {}): ChildProcess {
    this.checkHost(host);
    if (argv.length === 0) throw new Error('spawn: empty argv');
    const inNs = [this.tools.ip, 'netns', 'exec', host.ns, ...argv];
    const cgroup = this.cgroups.get(host.ns);
    // Join the host's cgroup before exec, so the command and all its descendants are accounted there.
    const [bin, args] = cgroup
      ? [this.tools.sh, ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', cgroup, ...inNs]]
      : [inNs[0] as string, inNs.slice(1)];
    const child = spawnChild(bin, args, {
      stdio: opts.stdio ?? ['ignore', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
      ...(opts.cwd ? { cwd: opts.cwd } : {}),
    });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    child.once('error', () => this.children.delete(child));
    return child;
  }

  exec(host: LanHost, argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    return new Promise((resolve, reject) => {
      let child: ChildProcess;
      try {
        child = this.spawn(host, argv, {
          stdio: ['pipe', 'pipe', 'pipe'],
          ...(opts.env ? { env: opts.env } : {}),
          ...(opts.cwd ? { cwd: opts.cwd } : {}),
        });
      } catch (error) {
        reject(error);
        return;
      }
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout?.on('data', (d: Buffer) => out.push(d));
      child.stderr?.on('data', (d: Buffer) => err.push(d));
      child.stdin?.on('error', () => {});
      child.stdin?.end(opts.input ?? '');
      let timedOut = false;
      const timer =
        opts.timeoutMs !== undefined
          ? setTimeout(() => {
              timedOut = true;
              child.kill('SIGKILL');
            }, opts.timeoutMs)
          : undefined;
      child.once('error', (error) => {
        if (timer) clearTimeout(timer);
        reject(error);
      });
      child.once('close', (code, signal) => {
        if (timer) clearTimeout(timer);
        const result: ExecResult = {
          code,
          signal,
          stdout: Buffer.concat(out).toString('utf8'),
          stderr: Buffer.concat(err).toString('utf8'),
          timedOut,
        };
        if (code !== 0 && !opts.allowFailure) {
          const why = timedOut ? `timed out after ${opts.timeoutMs} ms` : `exit ${code ?? signal}`;
          reject(new Error(`${argv.join(' ')} in ${host.ns}: ${why}: ${result.stderr.trim().slice(-2000)}`));
          return;
        }
        resolve(result);
      });
    });
  }

  private async counters(host: LanHost): Promise<{ rx: number; tx: number; txFrames: number }> {
    this.checkHost(host);
    const out = await run(this.tools.ip, ['-n', host.ns, '-j', '-s', 'link', 'show', 'dev', host.ifname]);
    const parsed = JSON.parse(out.stdout) as Array<{ stats64?: { rx: { bytes: number }; tx: { bytes: number; packets: number } } }>;
    const stats = parsed[0]?.stats64;
    if (!stats) throw new Error(`no counters for ${host.ifname} in ${host.ns}`);
    return { rx: Number(stats.rx.bytes), tx: Number(stats.tx.bytes), txFrames: Number(stats.tx.packets) };
  }

  async txBytes(host: LanHost): Promise<number> {
    return (await this.counters(host)).tx;
  }

  async rxBytes(host: LanHost): Promise<number> {
    return (await this.counters(host)).rx;
  }

  async txFrames(host: LanHost): Promise<number> {
    return (await this.counters(host)).txFrames;
  }

  async ipFragmentsCreated(host: LanHost, family: 4 | 6 = 4): Promise<number> {
    this.checkHost(host);
    // /proc/net/snmp(6) is per network namespace; read it from inside (not through this.exec: no cgroup accounting)
    const file = family === 4 ? '/proc/net/snmp' : '/proc/net/snmp6';
    const { stdout } = await run(this.tools.ip, ['netns', 'exec', host.ns, 'cat', file]);
    if (family === 6) {
      const m = /^Ip6FragCreates\s+(\d+)$/m.exec(stdout);
      if (!m) throw new Error(`no IPv6 fragmentation counter in ${host.ns}'s ${file}`);
      return Number(m[1]);
    }
    const [names, values] = stdout.split('\n').filter((line) => line.startsWith('Ip:')).map((line) => line.split(/\s+/));
    const index = names?.indexOf('FragCreates') ?? -1;
    if (!values || index < 0) throw new Error(`no IP fragmentation counter in ${host.ns}'s ${file}`);
    return Number(values[index]);
  }

  packetsSent(host: LanHost): number {
    this.checkHost(host);
    // What the namespace transmits, its veth's root end receives.
    return Number(readFileSync(`/sys/class/net/${host.rootIfname}/statistics/rx_packets`, 'utf8'));
  }

  cpuUsage(host: LanHost): CpuUsage | null {
    this.checkHost(host);
    const cgroup = this.cgroups.get(host.ns);
    return cgroup ? readCpuUsage(cgroup) : null;
  }

  killProcesses(host: LanHost): void {
    this.checkHost(host);
    const cgroup = this.cgroups.get(host.ns);
    if (cgroup) killCgroup(cgroup);
    for (const pid of nsPidsSync(this.tools.ip, host.ns)) {
      if (pid === process.pid) continue;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }

  processes(host: LanHost): number[] {
    this.checkHost(host);
    const cgroup = this.cgroups.get(host.ns);
    const pids = new Set<number>(nsPidsSync(this.tools.ip, host.ns));
    if (cgroup) for (const pid of cgroupPids(cgroup)) pids.add(pid);
    pids.delete(process.pid);
    return [...pids].filter(processAlive);
  }

  async droppedPackets(host: LanHost): Promise<number> {
    this.checkHost(host);
    // not through this.exec: that would account the nft process to the host's cgroup
    let stdout: string;
    try {
      ({ stdout } = await run(this.tools.ip, ['netns', 'exec', host.ns, this.tools.nft, '-j', 'list', 'counter', 'inet', NFT_TABLE, 'lost']));
    } catch {
      return 0; // no loss table on this host
    }
    const parsed = JSON.parse(stdout) as { nftables: Array<{ counter?: { packets: number } }> };
    return parsed.nftables.find((e) => e.counter)?.counter?.packets ?? 0;
  }

  describe(): LanDescription {
    const o = this.options;
    return {
      prefix: this.prefix,
      bridge: this.bridge,
      mtu: this.mtu,
      senderRate: o.senderRate ?? null,
      loss: o.loss ?? 0,
      lossMatch: o.lossMatch ?? 'udp',
      bursty: o.bursty ?? null,
      slowReceiver: o.slowReceiver ? { rate: o.slowReceiver.rate, index: o.slowReceiver.index ?? this.receivers.length } : null,
      sender: { ...this.sender },
      receivers: this.receivers.map((h) => ({ ...h })),
    };
  }

  async teardown(): Promise<void> {
    this.teardownSync();
  }

  teardownSync(): void {
    if (this.torn) return;
    this.torn = true;
    const childPids = [...this.children].map((c) => c.pid).filter((p): p is number => p !== undefined);
    removePrefixSync(this.prefix, this.tools, childPids);
    live.delete(this.prefix);
    if (live.size === 0) uninstallHandlers();
  }
}

function disableIpv6InRoot(ifname: string): void {
  const path = `/proc/sys/net/ipv6/conf/${ifname}/disable_ipv6`;
  try {
    if (existsSync(path)) writeFileSync(path, '1');
  } catch {
    // IPv6 absent or not writable: harmless
  }
}

async function raiseSocketBuffers(): Promise<void> {
  for (const key of ['rmem_max', 'wmem_max']) {
    const path = `/proc/sys/net/core/${key}`;
    try {
      const current = Number(readFileSync(path, 'utf8').trim());
      if (current < SOCKET_BUFFER_MAX) writeFileSync(path, String(SOCKET_BUFFER_MAX));
    } catch {
      // not fatal: tools just get smaller socket buffers
    }
  }
}

function validate(options: LanOptions): void {
  const { receivers, loss, mtu, bursty, slowReceiver, senderRate, prefix } = options;
  if (!Number.isInteger(receivers) || receivers < 1 || receivers > MAX_RECEIVERS) {
    throw new Error(`receivers must be an integer in 1..${MAX_RECEIVERS}, got ${receivers}`);
  }
  if (loss !== undefined && !(loss >= 0 && loss <= 1)) throw new Error(`loss must be in 0..1, got ${loss}`);
  if (mtu !== undefined && !(Number.isInteger(mtu) && mtu >= 576 && mtu <= 9000)) throw new Error(`mtu must be an integer in 576..9000, got ${mtu}`);
  if (bursty) gilbertElliott(bursty);
  if (senderRate !== undefined) parseRate(senderRate);
  if (slowReceiver) {
    parseRate(slowReceiver.rate);
    const index = slowReceiver.index ?? receivers;
    if (!Number.isInteger(index) || index < 1 || index > receivers) throw new Error(`slowReceiver.index must be in 1..${receivers}, got ${index}`);
  }
  if (prefix !== undefined && !PREFIX_PATTERN.test(prefix)) throw new Error(`prefix must match ${PREFIX_PATTERN}, got ${prefix}`);
}

/** Builds a test LAN. On any failure everything created so far is removed before the error is thrown. */
export async function buildLan(options: LanOptions): Promise<Lan> {
  validate(options);
  const tools = preflight();
  const prefix = options.prefix ?? newPrefix();
  if (live.has(prefix) || listLeftovers(prefix).namespaces.length > 0) throw new Error(`test LAN prefix ${prefix} is in use`);
  const lan = new LanImpl(tools, options, prefix);
  live.set(prefix, lan);
  installHandlers();
  try {
    await lan.build();
  } catch (error) {
    lan.teardownSync();
    throw error;
  }
  return lan;
}
