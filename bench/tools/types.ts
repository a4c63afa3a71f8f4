// What every benchmarked tool provides, and what the harness gives it for one run.

import type { Lan, LanHost } from '../../src/testlan/lan.js';
import type { Image } from '../image.js';
import type { ExitInfo, Proc } from '../proc.js';
import type { Scenario } from '../scenarios.js';

/**
 * What a tool's command lines are made of. Building them is a pure function of this (unit-tested
 * without a LAN); the harness fills it from the run (commandParams).
 */
export interface CommandParams {
  /** The interface inside every host of the test LAN (the same name in each). */
  ifname: string;
  /** Even UDP/TCP port base, unique per run (the tool may use port .. port+3). */
  port: number;
  /** Two multicast groups (239.255.0.0/16), unique per run. */
  groups: [string, string];
  /** Rate the tool is told to send at (bits/s), null = unlimited. */
  rateBits: number | null;
  /** Link MTU: every tool gets the largest payload per packet its flags allow without IP fragmentation. */
  mtu: number;
  receivers: number;
  imagePath: string;
}

export function commandParams(ctx: RunContext): CommandParams {
  return {
    ifname: ctx.lan.sender.ifname,
    port: ctx.port,
    groups: ctx.groups,
    rateBits: ctx.rateBits,
    mtu: ctx.lan.mtu,
    receivers: ctx.lan.receivers.length,
    imagePath: ctx.image.path,
  };
}

/** Bytes of IPv4 and UDP header in every datagram (no options). */
export const IPV4_UDP_HEADER_BYTES = 20 + 8;

export interface RunContext {
  lan: Lan;
  scenario: Scenario;
  image: Image;
  /** Scratch directory of this run (deleted afterwards). */
  runDir: string;
  /** Where receiver `host` must leave the image. */
  outputPath(host: LanHost): string;
  /** A directory for receiver `host` (the output file lives in it). */
  receiverDir(host: LanHost): string;
  /** Path for a log file of this run. */
  logPath(name: string): string;
  /** Even UDP/TCP port base, unique per run (the tool may use port .. port+3). */
  port: number;
  /** Two multicast groups (239.255.0.0/16), unique per run. */
  groups: [string, string];
  /** Rate the tool is told to send at (bits/s): the uplink rate times the rate factor; null = unlimited. */
  rateBits: number | null;
  /** Aborted when the run's time limit is reached (the harness then kills everything in the LAN). */
  signal: AbortSignal;
  /** Start a process in a host (logged, exit recorded). */
  start(host: LanHost, argv: readonly string[], name: string, keepStdout?: boolean): Proc;
  /** The clock starts: call right before starting the sender (or, for pull tools, the downloads). */
  markStart(): void;
  /** Receiver `host` has finished (at performance.now(), or `at`). */
  receiverDone(host: LanHost, at?: number): void;
  /** Free text for the report (flags used, oddities seen). */
  note(text: string): void;
}

export interface ToolOutcome {
  /** How the sender ended (null for none). */
  sender: ExitInfo | null;
  /** How each receiver's process ended, by host name (absent: not a process that exits, e.g. a daemon). */
  receivers: Map<string, ExitInfo | string>;
  /** The sender failed before anything was transferred: the tool is considered unusable here. */
  failedToStart?: string;
  /** Command lines used (for the report). */
  argv: { sender: string; receiver: string };
}

export interface Tool {
  name: string;
  description: string;
  /** Null when usable, else why not (a missing command, a failed probe). May install Debian packages. */
  check(opts: { install: boolean }): Promise<string | null>;
  /** Version string for the report. */
  version(): Promise<string>;
  /** Image bytes per data packet the tool is configured for on a link with this MTU (for the report). */
  payloadBytes(mtu: number): number;
  run(ctx: RunContext): Promise<ToolOutcome>;
}
