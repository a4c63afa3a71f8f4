// One simulated deployment (a scenario) run with either policy — fleetcast (the real engine) or the
// NACK-and-retransmit baseline (sim/nack.ts) — in the same network, and the figures `npm run sim` reports.
import { SimNetwork, seededRandom, type LinkOptions, type LossModel, type NetworkOptions, type SimCore, type SimHost, type SimReceiverNode } from './network.js';
import { NackNetwork, NackType } from './nack.js';
import { PacketType } from '../src/protocol/wire.js';
import type { FecScheme } from '../src/fec/scheme.js';

export type Policy = 'fleetcast' | 'nack';
export const POLICIES: readonly Policy[] = ['fleetcast', 'nack'];

export interface Scenario {
  /** Label of the row: 'random', 'bursty', 'late joiner', 'slow receiver'. */
  name: string;
  receivers: number;
  /** Mean loss probability on every receiver's link (both directions). */
  loss: number;
  /**
   * Bursty loss: Gilbert-Elliott bursts as long as this many data packets sent back to back at the uplink rate
   * (the chain runs in time, so sparse control packets see independent loss). Undefined: independent loss.
   */
  burstLength?: number;
  /** Per-receiver loss rates: each receiver's rate is loss * (1 ± lossSpread), uniformly (default 0). */
  lossSpread?: number;
  seed: number;
  blocks: number;
  /** Source packets per block (fleetcast's k; the baseline's slice). */
  k: number;
  /** fleetcast's FEC scheme (default the engine's). */
  fec?: FecScheme;
  /** Symbol size actually simulated (small: fast); byte figures are scaled to nominalSymbolSize. */
  simSymbolSize: number;
  nominalSymbolSize: number;
  /** Sender uplink, nominal bits/s (data is paced at this rate too). */
  rateBps: number;
  /** One-way delay of each receiver, spread evenly over [min, max] ms. */
  delayMs: [number, number];
  jitterMs: number;
  /** This many receivers join late: `lateJoinMs` after the first pass started (as expected). */
  lateJoiners?: number;
  lateJoinMs?: number;
  /** This many receivers have a slow downlink of slowRateBps. */
  slowReceivers?: number;
  slowRateBps?: number;
  /** Give up after this much virtual time (ms). */
  limitMs: number;
  /** Keep every receiver's full output (tests) instead of checking it piece by piece as it arrives. */
  keepOutput?: boolean;
  /** The network's windowed scheduler (default true; see NetworkOptions.windowed). */
  windowed?: boolean;
}

export interface RunResult {
  policy: Policy;
  scenario: string;
  receivers: number;
  lossPct: number;
  burstLength: number | null;
  seed: number;
  completed: number;
  /** Receivers whose output is byte-for-byte the image. */
  exact: number;
  imageBytes: number;
  /** Uplink frame bytes (payload + 42 B Ethernet/IP/UDP per datagram), data at the nominal symbol size. */
  wireBytes: number;
  wireOverImage: number;
  /** Data frames only (no join/ack/announce/status traffic) / image bytes. */
  dataOverImage: number;
  dataPackets: number;
  sourcePackets: number;
  /** Data packets beyond one copy of the image: parity or retransmissions. */
  repairPackets: number;
  controlPackets: number;
  /** Every datagram the receivers sent (join, status/complete, NACK). */
  feedbackPackets: number;
  nackPackets: number;
  feedbackPerBlock: number;
  nackPerBlock: number;
  /** ms, from the start of the transfer (the sender's start). */
  p50Ms: number | null;
  lastMs: number | null;
  worst: string;
  /** image bytes * 8 / uplink rate: no framing. */
  physMinMs: number;
  /** The same with fleetcast's framing (20-byte data header + 42 bytes per datagram). */
  physMinFramedMs: number;
  lastOverMin: number | null;
  startedAtMs: number | null;
  virtualEndMs: number;
  wallMs: number;
  deliveries: number;
  /** Engine livelocks the network had to break (see SimCore.spinClamps). */
  spinClamps: number;
  /** Policy-specific counters. */
  detail: Record<string, number>;
}

export interface ScenarioLinks {
  links: LinkOptions[];
  tags: string[];
  lateCount: number;
}

/** The per-receiver links of a scenario (deterministic for its seed). */
export function scenarioLinks(s: Scenario): ScenarioLinks {
  const rnd = seededRandom(s.seed * 31 + 17);
  const links: LinkOptions[] = [];
  const tags: string[] = [];
  const late = Math.min(s.lateJoiners ?? 0, s.receivers);
  const slow = Math.min(s.slowReceivers ?? 0, s.receivers - late);
  for (let i = 0; i < s.receivers; i++) {
    // Delays spread evenly over [min, max], growing with the receiver's number: arrival order is then the
    // receivers' order, which keeps the simulator's fan-out walking memory in order (it is faster).
    const [dMin, dMax] = s.delayMs;
    const delayMs = s.receivers > 1 ? dMin + ((dMax - dMin) * i) / (s.receivers - 1) : dMin;
    const spread = s.lossSpread ?? 0;
    const rate = Math.min(0.99, Math.max(0, s.loss * (1 + spread * (2 * rnd() - 1))));
    // Bursts are as long as burstLength data packets back to back at the uplink's rate (Gilbert-Elliott in time).
    const burstMs = s.burstLength ? (s.burstLength * (s.nominalSymbolSize + 20 + 42) * 8 * 1000) / s.rateBps : 0;
    const loss: LossModel | undefined = rate > 0 ? { rate, ...(burstMs > 0 ? { burstMs } : {}) } : undefined;
    const link: LinkOptions = { delayMs, ...(loss ? { loss } : {}), ...(s.jitterMs > 0 ? { jitterMs: s.jitterMs } : {}) };
    let tag = '';
    // The special receivers are the last ones (their index does not matter: loss and delay are per link).
    if (i >= s.receivers - late) {
      tag = 'late'; // joins lateJoinMs after the sender started (see runScenario)
    } else if (i >= s.receivers - late - slow) {
      link.rateBps = s.slowRateBps ?? s.rateBps / 4;
      tag = 'slow';
    }
    links.push(link);
    tags.push(tag);
  }
  return { links, tags, lateCount: late };
}

/** The image of a scenario: blocks * k simulated symbols of seeded random bytes. */
export function scenarioImage(s: Scenario): Uint8Array {
  const bytes = s.blocks * s.k * s.simSymbolSize;
  const out = new Uint8Array(bytes);
  const rnd = seededRandom(s.seed ^ 0x5eed);
  for (let i = 0; i < bytes; i += 4) {
    const v = (rnd() * 4294967296) >>> 0;
    out[i] = v;
    out[i + 1] = v >>> 8;
    out[i + 2] = v >>> 16;
    out[i + 3] = v >>> 24;
  }
  return out;
}

const SETTLE_MS = 500;
/** The sender paces at this share of the uplink. */
export const PACING_SHARE = 0.95;
/** Start anyway this long after the first join (a receiver whose joins all get lost must not stall the run). */
const MAX_WAIT_MS = 5000;

/** Frames are simulated small but charged (time and bytes) at the nominal symbol size: the pacing rate is scaled. */
function rateScale(s: Scenario): number {
  return (s.simSymbolSize + 20 + 42) / (s.nominalSymbolSize + 20 + 42);
}

function networkOptions(s: Scenario): NetworkOptions {
  return {
    seed: s.seed,
    uplinkBps: s.rateBps,
    symbolScale: { simSymbolSize: s.simSymbolSize, nominalSymbolSize: s.nominalSymbolSize },
    keepOutput: s.keepOutput ?? false,
    keepEvents: false,
    windowed: s.windowed ?? true,
  };
}

export interface RunHandle {
  result: RunResult;
  /** The network after the run, to inspect (tests). */
  net: SimNetwork | NackNetwork;
  image: Uint8Array;
}

export function runScenario(s: Scenario, policy: Policy): RunHandle {
  const wallStart = performance.now();
  const image = scenarioImage(s);
  const { links, tags, lateCount } = scenarioLinks(s);
  const scale = rateScale(s);
  const minReceivers = s.receivers - lateCount;
  const rttMs = 2 * (s.delayMs[1] + s.jitterMs);
  let net: SimNetwork | NackNetwork;
  let startedAt: () => number | null;
  let detail: () => Record<string, number>;
  let addReceivers: (from: number, to: number, joinAtMs?: number) => void;
  if (policy === 'fleetcast') {
    const f = new SimNetwork(
      image,
      {
        sessionId: 0x51a,
        symbolSize: s.simSymbolSize,
        ...(s.fec !== undefined ? { fec: s.fec } : {}),
        blockSymbols: s.k,
        // 95 % of the uplink, as the benchmark and a careful administrator do: at 100 % any burst (the first
        // pass's, unpaced control packets) stays queued for the whole transfer and delays every repair behind it.
        maxRateBps: PACING_SHARE * s.rateBps * scale,
        minRateBps: Math.min(s.rateBps, 1e6) * scale,
        minReceivers,
        settleMs: SETTLE_MS,
        maxWaitMs: MAX_WAIT_MS,
      },
      networkOptions(s),
    );
    addReceivers = (from, to, joinAtMs) => {
      for (let i = from; i < to; i++) f.addReceiver({ nodeId: 1000 + i }, joinAtMs === undefined ? links[i]! : { ...links[i]!, joinAtMs });
    };
    net = f;
    startedAt = () => f.sender.getStats().startedAt;
    detail = () => {
      const st = f.sender.getStats();
      return {
        parityPackets: st.parityPackets,
        nackEntries: st.nackEntries,
        rateDecreases: st.rateDecreases,
        finalRateMbps: st.rateBps / scale / 1e6,
        statusPackets: f.feedbackByType.get(PacketType.Status) ?? 0,
        joinPackets: f.feedbackByType.get(PacketType.Join) ?? 0,
      };
    };
  } else {
    const b = new NackNetwork(
      image,
      {
        sessionId: 0x51a,
        symbolSize: s.simSymbolSize,
        blockSymbols: s.k,
        maxRateBps: PACING_SHARE * s.rateBps * scale,
        minReceivers,
        settleMs: SETTLE_MS,
        maxWaitMs: MAX_WAIT_MS,
        rttMs,
      },
      networkOptions(s),
    );
    addReceivers = (from, to, joinAtMs) => {
      for (let i = from; i < to; i++) b.addReceiver(1000 + i, joinAtMs === undefined ? links[i]! : { ...links[i]!, joinAtMs });
    };
    net = b;
    startedAt = () => b.sender.stats.startedAt;
    detail = () => ({
      retransmissions: b.sender.stats.retransmissions,
      nackRequests: b.sender.stats.nackRequests,
      mergedRequests: b.sender.stats.merged,
      coveredRequests: b.sender.stats.covered,
      completePackets: b.feedbackByType.get(NackType.Complete) ?? 0,
      joinPackets: b.feedbackByType.get(NackType.Join) ?? 0,
    });
  }
  addReceivers(0, s.receivers - lateCount);
  if (lateCount > 0) {
    // Late joiners start lateJoinMs after the transfer did (the start time depends on lost joins).
    let t = 0;
    while (startedAt() === null && t < s.limitMs) net.run((t += 1));
    addReceivers(s.receivers - lateCount, s.receivers, (startedAt() ?? t) + (s.lateJoinMs ?? 0));
  }
  const end = net.run(s.limitMs);
  const wallMs = performance.now() - wallStart;
  return { result: summarize(s, policy, net as unknown as SimCore<SimReceiverNode, SimHost<SimReceiverNode>>, tags, startedAt(), end, wallMs, detail()), net, image };
}

function summarize(
  s: Scenario,
  policy: Policy,
  net: SimCore<SimReceiverNode, SimHost<SimReceiverNode>>,
  tags: string[],
  start: number | null,
  end: number,
  wallMs: number,
  detail: Record<string, number>,
): RunResult {
  const imageBytes = s.blocks * s.k * s.nominalSymbolSize;
  const sourcePackets = s.blocks * s.k;
  const physMinMs = ((imageBytes * 8) / s.rateBps) * 1000;
  const physMinFramedMs = ((sourcePackets * (s.nominalSymbolSize + 20 + 42) * 8) / s.rateBps) * 1000;
  const times: number[] = [];
  let exact = 0;
  let worstIndex = -1;
  let worstTime = -Infinity;
  for (const r of net.receivers) {
    if (r.outcome === 'complete' && r.completedAt !== null && start !== null) {
      const t = r.completedAt - start;
      times.push(t);
      if (t > worstTime) {
        worstTime = t;
        worstIndex = r.index;
      }
    }
    if (net.isExact(r)) exact++;
  }
  times.sort((a, b) => a - b);
  const completed = times.length;
  const lastMs = completed > 0 ? times[completed - 1]! : null;
  const p50Ms = completed > 0 ? times[Math.floor((completed - 1) / 2)]! : null;
  let worst: string;
  if (completed < s.receivers) {
    const missing = net.receivers.filter((r) => r.outcome !== 'complete');
    const labels = missing.slice(0, 3).map((r) => label(r.index, tags));
    worst = `${missing.length} not done (${labels.join(', ')}${missing.length > 3 ? ', …' : ''})`;
  } else worst = worstIndex > 0 ? `${label(worstIndex, tags)} ${worstTime.toFixed(1)} ms` : '-';
  const nackPackets = net.feedbackByType.get(PacketType.Nack) ?? 0; // both protocols use type 6 for NACKs
  return {
    policy,
    scenario: s.name,
    receivers: s.receivers,
    lossPct: s.loss * 100,
    burstLength: s.burstLength ?? null,
    seed: s.seed,
    completed,
    exact,
    imageBytes,
    wireBytes: net.uplinkBytes,
    wireOverImage: net.uplinkBytes / imageBytes,
    dataOverImage: net.uplinkDataBytes / imageBytes,
    dataPackets: net.uplinkDataPackets,
    sourcePackets,
    repairPackets: net.uplinkDataPackets - sourcePackets,
    controlPackets: net.uplinkPackets - net.uplinkDataPackets,
    feedbackPackets: net.feedbackPackets,
    nackPackets,
    feedbackPerBlock: net.feedbackPackets / s.blocks,
    nackPerBlock: nackPackets / s.blocks,
    p50Ms,
    lastMs,
    worst,
    physMinMs,
    physMinFramedMs,
    lastOverMin: lastMs !== null ? lastMs / physMinMs : null,
    startedAtMs: start,
    virtualEndMs: end,
    wallMs,
    deliveries: net.deliveries,
    spinClamps: net.spinClamps,
    detail,
  };
}

function label(index: number, tags: string[]): string {
  const tag = tags[index - 1];
  return tag ? `r${index} (${tag})` : `r${index}`;
}
