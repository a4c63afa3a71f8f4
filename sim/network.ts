// A deterministic discrete-event network with virtual time that runs the real Sender and Receiver state
// machines: one sender, many receivers, per-link loss (independent or Gilbert-Elliott bursts), delay, jitter,
// link rates with drop-tail queues. Used by the protocol tests and by `npm run sim`.
import { Receiver, type ReceiverEvent, type ReceiverOptions } from '../src/protocol/receiver.js';
import { Sender, type SenderEvent, type SenderOptions, type SenderSummary } from '../src/protocol/sender.js';
import type { Transmit } from '../src/protocol/common.js';
import { blockLength } from '../src/protocol/geometry.js';

/** Mulberry32: small, fast, seedable. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface LossModel {
  /** Independent loss probability, or the average for bursty loss. */
  rate: number;
  /** Gilbert-Elliott: mean burst length in packets (> 1 makes losses come in bursts). */
  burstLength?: number;
}

export interface LinkOptions {
  loss?: LossModel;
  delayMs?: number;
  jitterMs?: number;
  /** Downlink rate of this receiver in bits/s (a slow receiver); default unlimited. */
  rateBps?: number;
  /** Join this late (ms of virtual time). */
  joinAtMs?: number;
  /** Stop answering at this time (the host vanished). */
  dieAtMs?: number;
}

export interface NetworkOptions {
  seed: number;
  /** Sender uplink in bits/s (frame bytes); default unlimited. */
  uplinkBps?: number;
  /** Drop-tail queue of the uplink, in ms of traffic (like tbf latency). */
  queueMs?: number;
  /** Bytes each datagram costs on the link beyond its payload. */
  frameOverhead?: number;
  /** Hook to tamper with traffic: return null to drop, or a replacement datagram. */
  tamper?: (datagram: Uint8Array, fromSender: boolean) => Uint8Array | null;
  /** Duplicate this fraction of delivered datagrams. */
  duplicate?: number;
}

class LossState {
  private bad = false;
  constructor(
    private readonly model: LossModel | undefined,
    private readonly random: () => number,
  ) {}

  lost(): boolean {
    const m = this.model;
    if (!m || m.rate <= 0) return false;
    if (!m.burstLength || m.burstLength <= 1) return this.random() < m.rate;
    // Two-state chain: losses happen in the bad state, whose mean stay is burstLength packets; the
    // good-to-bad probability is set so the long-run loss equals m.rate.
    const pBG = 1 / m.burstLength;
    const pGB = (m.rate * pBG) / (1 - m.rate);
    if (this.bad) {
      if (this.random() < pBG) this.bad = false;
    } else if (this.random() < pGB) this.bad = true;
    return this.bad;
  }
}

interface Node {
  handleDatagram(now: number, d: Uint8Array, from: string): void;
  handleTimeout(now: number): void;
  nextTimeout(now: number): number | null;
  poll(now: number): Transmit | undefined;
}

export interface SimReceiver {
  index: number;
  address: string;
  engine: Receiver | null;
  options: ReceiverOptions;
  link: LinkOptions;
  output: Uint8Array;
  events: ReceiverEvent[];
  outcome: 'pending' | 'complete' | 'failed';
  completedAt: number | null;
  failure: string | null;
  linkFreeAt: number;
  dataPacketsDelivered: number;
}

// Event kinds in the queue.
const WAKE = 0;
const DELIVER = 1;
const JOIN = 2;

export class SimNetwork {
  now = 0;
  readonly sender: Sender;
  readonly receivers: SimReceiver[] = [];
  readonly senderEvents: SenderEvent[] = [];
  summary: SenderSummary | null = null;
  /** Datagrams and frame bytes the sender put on its uplink (after its own queue). */
  uplinkPackets = 0;
  uplinkBytes = 0;
  uplinkDrops = 0;
  feedbackPackets = 0;
  private readonly random: () => number;
  private readonly times: number[] = [];
  private readonly seqs: number[] = [];
  private readonly kinds: number[] = [];
  private readonly targets: number[] = [];
  private readonly payloads: (Uint8Array | null)[] = [];
  private seqCounter = 0;
  private readonly wakeAt: number[] = [];
  private readonly losses: LossState[] = [];
  private readonly feedbackLosses: LossState[] = [];
  private uplinkFreeAt = 0;
  private readonly feedbackOrigin = new WeakMap<Uint8Array, number>();

  constructor(
    readonly image: Uint8Array,
    senderOptions: Omit<SenderOptions, 'imageSize'>,
    private readonly options: NetworkOptions,
  ) {
    this.random = seededRandom(options.seed);
    this.sender = new Sender({ ...senderOptions, imageSize: image.length }, 0);
    this.wakeAt.push(0);
    this.schedule(0, WAKE, 0, null);
  }

  addReceiver(options: Omit<ReceiverOptions, 'random'>, link: LinkOptions = {}): SimReceiver {
    const index = this.receivers.length + 1;
    const r: SimReceiver = {
      index,
      address: `r${index}`,
      engine: null,
      options: { ...options, random: seededRandom(this.options.seed * 7919 + index) },
      link,
      output: new Uint8Array(this.image.length),
      events: [],
      outcome: 'pending',
      completedAt: null,
      failure: null,
      linkFreeAt: 0,
      dataPacketsDelivered: 0,
    };
    this.receivers.push(r);
    this.wakeAt.push(Infinity);
    this.losses.push(new LossState(link.loss, seededRandom(this.options.seed * 104729 + index)));
    this.feedbackLosses.push(new LossState(link.loss, seededRandom(this.options.seed * 15485863 + index)));
    this.schedule(link.joinAtMs ?? 0, JOIN, index, null);
    return r;
  }

  private schedule(time: number, kind: number, target: number, payload: Uint8Array | null): void {
    // Binary heap on (time, seq) kept in parallel arrays: no allocation per event.
    const seq = this.seqCounter++;
    let i = this.times.length;
    this.times.push(time);
    this.seqs.push(seq);
    this.kinds.push(kind);
    this.targets.push(target);
    this.payloads.push(payload);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (this.times[p]! < time || (this.times[p] === time && this.seqs[p]! < seq)) break;
      this.move(p, i);
      i = p;
    }
    this.times[i] = time;
    this.seqs[i] = seq;
    this.kinds[i] = kind;
    this.targets[i] = target;
    this.payloads[i] = payload;
  }

  private move(from: number, to: number): void {
    this.times[to] = this.times[from]!;
    this.seqs[to] = this.seqs[from]!;
    this.kinds[to] = this.kinds[from]!;
    this.targets[to] = this.targets[from]!;
    this.payloads[to] = this.payloads[from]!;
  }

  private popInto(): { time: number; kind: number; target: number; payload: Uint8Array | null } | null {
    const n = this.times.length;
    if (n === 0) return null;
    const top = { time: this.times[0]!, kind: this.kinds[0]!, target: this.targets[0]!, payload: this.payloads[0]! };
    const lt = this.times.pop()!;
    const ls = this.seqs.pop()!;
    const lk = this.kinds.pop()!;
    const lg = this.targets.pop()!;
    const lp = this.payloads.pop()!;
    const m = n - 1;
    if (m > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= m) break;
        const r = l + 1;
        const c = r < m && (this.times[r]! < this.times[l]! || (this.times[r] === this.times[l] && this.seqs[r]! < this.seqs[l]!)) ? r : l;
        if (this.times[c]! > lt || (this.times[c] === lt && this.seqs[c]! > ls)) break;
        this.move(c, i);
        i = c;
      }
      this.times[i] = lt;
      this.seqs[i] = ls;
      this.kinds[i] = lk;
      this.targets[i] = lg;
      this.payloads[i] = lp;
    }
    return top;
  }

  private node(index: number): Node | null {
    if (index === 0) return this.sender as unknown as Node;
    const r = this.receivers[index - 1]!;
    if (!r.engine) return null;
    if (r.link.dieAtMs !== undefined && this.now >= r.link.dieAtMs) return null;
    return r.engine as unknown as Node;
  }

  /** Runs until every node is done or `untilMs` of virtual time has passed. Returns the end time. */
  run(untilMs = 3_600_000): number {
    for (;;) {
      const ev = this.popInto();
      if (!ev || ev.time > untilMs) break;
      this.now = ev.time;
      if (ev.kind === JOIN) {
        const r = this.receivers[ev.target - 1]!;
        r.engine = new Receiver(r.options, this.now);
        this.drive(ev.target);
        continue;
      }
      const node = this.node(ev.target);
      if (!node) continue;
      if (ev.kind === DELIVER) {
        const from = ev.target === 0 ? this.receivers[this.feedbackOrigin.get(ev.payload!)! - 1]!.address : 'sender';
        node.handleDatagram(this.now, ev.payload!, from);
      } else {
        if (this.wakeAt[ev.target] !== ev.time) continue;
        this.wakeAt[ev.target] = Infinity;
        node.handleTimeout(this.now);
      }
      this.drive(ev.target);
      if (this.sender.isFinished && this.allReceiversSettled()) break;
    }
    return this.now;
  }

  private allReceiversSettled(): boolean {
    return this.receivers.every((r) => r.outcome !== 'pending' || (r.link.dieAtMs !== undefined && this.now >= r.link.dieAtMs));
  }

  /** Drains a node's datagrams and events and arms its next wake-up. */
  private drive(index: number): void {
    const node = this.node(index);
    if (!node) return;
    let t: Transmit | undefined;
    while ((t = node.poll(this.now))) {
      if (index === 0) this.fromSender(t);
      else this.fromReceiver(index, t);
    }
    if (index === 0) this.senderEventsDrain();
    else this.receiverEventsDrain(this.receivers[index - 1]!);
    const next = node.nextTimeout(this.now);
    if (next !== null && next < this.wakeAt[index]!) {
      this.wakeAt[index] = Math.max(next, this.now);
      this.schedule(Math.max(next, this.now), WAKE, index, null);
    }
  }

  private senderEventsDrain(): void {
    let e: SenderEvent | undefined;
    while ((e = this.sender.pollEvent())) {
      if (e.type === 'need-block') {
        const g = this.sender.geometry;
        const offset = e.block * g.blockBytes;
        this.sender.supplyBlock(e.block, this.image.subarray(offset, offset + blockLength(g, e.block)));
      } else if (e.type === 'finished') {
        this.summary = e.summary;
      }
      this.senderEvents.push(e);
    }
  }

  private receiverEventsDrain(r: SimReceiver): void {
    let e: ReceiverEvent | undefined;
    while ((e = r.engine!.pollEvent())) {
      if (e.type === 'block') r.output.set(e.data, e.offset);
      else if (e.type === 'complete') {
        r.outcome = 'complete';
        r.completedAt = this.now;
      } else if (e.type === 'failed') {
        r.outcome = 'failed';
        r.failure = `${e.reason}: ${e.message}`;
      }
      r.events.push(e);
    }
  }

  private datagramOf(t: Transmit): Uint8Array {
    if (t.parts.length === 1) return t.parts[0]!;
    return Buffer.concat(t.parts);
  }

  private fromSender(t: Transmit): void {
    const overhead = this.options.frameOverhead ?? 42;
    const frameBytes = t.bytes + overhead;
    let departure = this.now;
    if (this.options.uplinkBps) {
      const start = Math.max(this.now, this.uplinkFreeAt);
      if (start - this.now > (this.options.queueMs ?? 20)) {
        this.uplinkDrops++;
        return;
      }
      this.uplinkFreeAt = start + (frameBytes * 8) / this.options.uplinkBps * 1000;
      departure = this.uplinkFreeAt;
    }
    this.uplinkPackets++;
    this.uplinkBytes += frameBytes;
    let datagram = this.datagramOf(t);
    if (this.options.tamper) {
      const changed = this.options.tamper(datagram, true);
      if (!changed) return;
      datagram = changed;
    }
    const targets = t.to === null ? this.receivers : this.receivers.filter((r) => r.address === t.to);
    for (const r of targets) {
      if (!r.engine) continue;
      if (this.losses[r.index - 1]!.lost()) continue;
      let arrival = departure + (r.link.delayMs ?? 0.1) + (r.link.jitterMs ?? 0) * this.random();
      if (r.link.rateBps) {
        const start = Math.max(arrival, r.linkFreeAt);
        if (start - arrival > (this.options.queueMs ?? 20)) continue;
        r.linkFreeAt = start + (frameBytes * 8) / r.link.rateBps * 1000;
        arrival = r.linkFreeAt;
      }
      this.schedule(arrival, DELIVER, r.index, datagram);
      if (this.options.duplicate && this.random() < this.options.duplicate) {
        this.schedule(arrival + this.random(), DELIVER, r.index, datagram);
      }
    }
  }

  private fromReceiver(index: number, t: Transmit): void {
    this.feedbackPackets++;
    const r = this.receivers[index - 1]!;
    if (this.feedbackLosses[index - 1]!.lost()) return;
    let datagram = this.datagramOf(t);
    if (this.options.tamper) {
      const changed = this.options.tamper(datagram, false);
      if (!changed) return;
      datagram = changed;
    }
    const arrival = this.now + (r.link.delayMs ?? 0.1) + (r.link.jitterMs ?? 0) * this.random();
    // Deliveries to the sender remember which receiver sent them (the source address).
    this.feedbackOrigin.set(datagram, index);
    this.schedule(arrival, DELIVER, 0, datagram);
  }
}
