// The benchmark scenarios: receivers x random loss x uplink rate, plus bursty loss, a slow receiver, and
// jumbo frames (MTU 9000: the per-packet framing drops under 1 %, as on imaging LANs that use them).

import type { BurstyLoss } from '../src/testlan/lan.js';
import { parseRate } from '../src/testlan/rate.js';

export interface Scenario {
  /** Stable name used by --scenarios filters and in the reports, e.g. n3-loss1-500mbit. */
  name: string;
  receivers: number;
  /** Random loss on each receiver's ingress, 0..1. */
  loss: number;
  /** Sender uplink rate (tc tbf), or null for unlimited. */
  uplink: string | null;
  bursty: BurstyLoss | null;
  /** One receiver behind a slower link (tbf on its ingress and egress). */
  slow: { rate: string } | null;
  /** Link MTU of the test LAN; null = the run's --mtu (resolved by withMtu before the run). */
  mtu: number | null;
  description: string;
}

const RECEIVERS = [1, 3, 8];
const LOSSES = [0, 0.01, 0.05];
const UPLINKS: Array<string | null> = ['500mbit', null];

function pct(loss: number): string {
  return String(Math.round(loss * 1000) / 10);
}

function make(receivers: number, loss: number, uplink: string | null): Scenario {
  return {
    name: `n${receivers}-loss${pct(loss)}-${uplink ?? 'unlimited'}`,
    receivers,
    loss,
    uplink,
    bursty: null,
    slow: null,
    mtu: null,
    description: `${receivers} receiver${receivers > 1 ? 's' : ''}, ${pct(loss)} % random loss, uplink ${uplink ?? 'unlimited'}`,
  };
}

/** Bursty loss used by the benchmark: 1 % on average, in bursts of 10 packets on average. */
export const BENCH_BURSTY: BurstyLoss = { loss: 0.01, meanBurst: 10 };
export const BENCH_SLOW_RATE = '100mbit';
export const JUMBO_MTU = 9000;

export function allScenarios(): Scenario[] {
  const out: Scenario[] = [];
  for (const uplink of UPLINKS) for (const receivers of RECEIVERS) for (const loss of LOSSES) out.push(make(receivers, loss, uplink));
  out.push({
    ...make(3, 0, '500mbit'),
    name: 'n3-bursty-500mbit',
    bursty: BENCH_BURSTY,
    description: `3 receivers, bursty loss (Gilbert-Elliott: ${pct(BENCH_BURSTY.loss)} % average, mean burst ${BENCH_BURSTY.meanBurst} packets), uplink 500mbit`,
  });
  out.push({
    ...make(3, 0, '500mbit'),
    name: `n3-slow${BENCH_SLOW_RATE}-500mbit`,
    slow: { rate: BENCH_SLOW_RATE },
    description: `3 receivers, one of them behind a ${BENCH_SLOW_RATE} link, uplink 500mbit`,
  });
  for (const receivers of [3, 8]) {
    for (const loss of LOSSES) {
      const base = make(receivers, loss, '500mbit');
      out.push({ ...base, name: `${base.name}-mtu${JUMBO_MTU}`, mtu: JUMBO_MTU, description: `${base.description}, MTU ${JUMBO_MTU} (jumbo frames)` });
    }
  }
  return out;
}

/** The scenarios with their MTU settled: those without one of their own get the run's --mtu. */
export function withMtu(scenarios: readonly Scenario[], runMtu: number): Scenario[] {
  return scenarios.map((s) => ({ ...s, mtu: s.mtu ?? runMtu }));
}

/**
 * The engine's target for bytes on the wire (issue 2): wire/image <= 1 + p + 0.02 under random loss p.
 * Null for bursty loss and the slow receiver, which the target does not cover.
 */
export function wireTarget(scenario: Scenario): number | null {
  if (scenario.bursty || scenario.slow) return null;
  return Math.round((1 + scenario.loss + 0.02) * 1000) / 1000;
}

/** Issue 2's time target: the last receiver done within 1.08x the link's physical minimum. */
export const TIME_TARGET = 1.08;

/**
 * The link's physical minimum for a scenario with a limited uplink: the image's bits at the uplink rate, in seconds
 * (no headers, no repair: the least any tool could take); null when the uplink is unlimited or a receiver is slower.
 */
export function linkMinimumS(scenario: Scenario, imageBytes: number): number | null {
  if (!scenario.uplink || scenario.slow) return null;
  return (imageBytes * 8) / parseRate(scenario.uplink);
}

/** The --quick subset: 3 receivers, 0 and 1 % loss, 500mbit. */
export function quickScenarios(): Scenario[] {
  return allScenarios().filter((s) => s.name === 'n3-loss0-500mbit' || s.name === 'n3-loss1-500mbit');
}

/**
 * Keeps the scenarios matching a filter: comma-separated terms, each a whole scenario name (just that one:
 * n3-loss1-500mbit, not also n3-loss1-500mbit-mtu9000), else a substring of names, or a /regular expression/;
 * a term starting with '!' excludes. Empty filter: everything.
 */
export function filterScenarios(scenarios: readonly Scenario[], filter: string | undefined): Scenario[] {
  const terms = (filter ?? '')
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  const names = new Set(scenarios.map((s) => s.name));
  const matcher = (term: string): ((name: string) => boolean) => {
    const m = /^\/(.*)\/$/.exec(term);
    if (m) {
      const re = new RegExp(m[1] as string);
      return (name) => re.test(name);
    }
    if (names.has(term)) return (name) => name === term;
    return (name) => name.includes(term);
  };
  const include = terms.filter((t) => !t.startsWith('!')).map(matcher);
  const exclude = terms.filter((t) => t.startsWith('!')).map((t) => matcher(t.slice(1)));
  return scenarios.filter(
    (s) => (include.length === 0 || include.some((f) => f(s.name))) && !exclude.some((f) => f(s.name)),
  );
}
