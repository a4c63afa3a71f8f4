// A deterministic discrete-event network with virtual time that runs the real Sender and Receiver state
// machines: one sender, many receivers, per-link loss (independent or Gilbert-Elliott bursts), delay, jitter,
// link rates with drop-tail queues, late joiners. Used by the protocol tests and by `npm run sim`.
//
// The core (SimCore) is protocol-agnostic: SimNetwork plugs the real fleetcast engine into it, and
// sim/nack.ts plugs in the NACK-and-retransmit baseline, so both run in exactly the same network.
//
// Hot path: a multicast datagram fans out to every receiver. Two schedulers:
//  - strict (default): one global event order. A multicast datagram becomes one fan-out record (receivers
//    sorted by arrival time) delivered in a tight loop for as long as its next arrival precedes everything else
//    in the queue: the order is exactly the one per-receiver events would give (ties by scheduling order).
//  - windowed (NetworkOptions.windowed, used by `npm run sim`): conservative lookahead windows as long as the
//    shortest link delay; the sender's events of a window run first, then each receiver's events of the window
//    in one go. Same causality and, without jitter, the same figures; 1.5-2.5x faster with thousands of
//    receivers, because delivering to a receiver costs mostly cache misses on its state, now paid once per
//    window instead of once per datagram.
// Time is virtual (ms); engines see it as `now`. Per-link random streams are seeded from the network's seed.
import { Receiver, type ReceiverEvent, type ReceiverOptions } from '../src/protocol/receiver.js';
import { Sender, type SenderEvent, type SenderOptions, type SenderSummary } from '../src/protocol/sender.js';
import type { Transmit } from '../src/protocol/common.js';
import { blockLength } from '../src/protocol/geometry.js';
import { type BlockEncoder, blockEncoder, encoderHasSetUp, solveBlock } from '../src/fec/scheme.js';
import { MinHeap } from '../src/protocol/heap.js';

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
  /**
   * Gilbert-Elliott in time instead (takes precedence over burstLength): the link is bad for burstMs on average,
   * good for burstMs * (1 - rate) / rate, and loses what crosses it while bad. Back-to-back packets then lose
   * bursts of burstMs / packet time; sparse ones (announcements, status reports) see independent loss, where a
   * burst counted in packets would stretch over seconds of sparse traffic.
   */
  burstMs?: number;
}

export interface LinkOptions {
  /** Loss on the way to this receiver (and, unless feedbackLoss is given, on its way back). */
  loss?: LossModel;
  /** Loss of this receiver's feedback on its way to the sender (default: same model as `loss`). */
  feedbackLoss?: LossModel;
  /** One-way delay in ms (default 0.1). */
  delayMs?: number;
  /** Extra random delay per datagram, uniform in [0, jitterMs) (reorders datagrams when above their spacing). */
  jitterMs?: number;
  /** Downlink rate of this receiver in bits/s (a slow receiver); default unlimited. */
  rateBps?: number;
  /** Join this late (ms of virtual time). */
  joinAtMs?: number;
  /** Stop answering at this time (the host vanished). */
  dieAtMs?: number;
  /** The receiving process cannot take in datagrams faster than this (its CPU), see IntakeOptions. */
  intake?: IntakeOptions;
  /**
   * This host writes the image out at this rate (bits/s of image bytes; a disk slower than the network): each
   * block goes back to its engine (recycleBlock) once written, blocks one after another. Without it a block
   * goes back at once, and only to an engine with a maxUnwrittenBytes limit.
   */
  diskBps?: number;
}

/**
 * A receiving process slower than its link: datagrams wait in its socket buffer and are taken in at `bps` (frame
 * bits, as the sender's rate counts them); one that arrives to a full buffer is dropped, as the kernel drops
 * what overflows a socket's receive buffer. Optional stalls (a garbage collection, a disk flush) stop the
 * intake for `stallMs` every `stallEveryMs`.
 */
export interface IntakeOptions {
  bps: number;
  /** Socket receive buffer, in frame bytes (default 256 KiB). */
  bufferBytes?: number;
  stallMs?: number;
  stallEveryMs?: number;
}

/** A socket buffer drained at a fixed rate, with stalls (see IntakeOptions). */
class IntakeQueue {
  private readonly doneAt: number[] = [];
  private readonly sizes: number[] = [];
  private head = 0;
  private queuedBytes = 0;
  private freeAt = 0;

  constructor(private readonly options: IntakeOptions) {}

  /** When the process takes in a datagram reaching its socket at `arrival`, or null when the buffer is full. */
  admit(arrival: number, frameBytes: number): number | null {
    while (this.head < this.doneAt.length && this.doneAt[this.head]! <= arrival) {
      this.queuedBytes -= this.sizes[this.head]!;
      this.head++;
    }
    if (this.head > 4096) {
      this.doneAt.splice(0, this.head);
      this.sizes.splice(0, this.head);
      this.head = 0;
    }
    if (this.queuedBytes + frameBytes > (this.options.bufferBytes ?? 256 * 1024)) {
      return null;
    }
    let start = Math.max(arrival, this.freeAt);
    const { stallMs, stallEveryMs } = this.options;
    if (stallMs && stallEveryMs) {
      const phase = start % stallEveryMs;
      if (phase < stallMs) start += stallMs - phase;
    }
    this.freeAt = start + ((frameBytes * 8) / this.options.bps) * 1000;
    this.doneAt.push(this.freeAt);
    this.sizes.push(frameBytes);
    this.queuedBytes += frameBytes;
    return this.freeAt;
  }
}

export interface NetworkOptions {
  seed: number;
  /** Sender uplink in bits/s (frame bytes); default unlimited. */
  uplinkBps?: number;
  /** Drop-tail queue of the uplink and of slow receiver links, in ms of traffic (like tbf latency); default 20. */
  queueMs?: number;
  /** Bytes each datagram costs on the link beyond its payload. */
  frameOverhead?: number;
  /** Hook to tamper with traffic: return null to drop, or a replacement datagram. */
  tamper?: (datagram: Uint8Array, fromSender: boolean) => Uint8Array | null;
  /** Duplicate this fraction of delivered datagrams. */
  duplicate?: number;
  /**
   * Scaled simulation: data datagrams (type byte 2) carry symbols of `simSymbolSize` bytes but are charged on
   * every link (time and byte counters) as if they carried `nominalSymbolSize` bytes. Default: no scaling.
   */
  symbolScale?: { simSymbolSize: number; nominalSymbolSize: number };
  /** Keep a full copy of every receiver's output (default true). False: verify each piece against the image as
   * it arrives instead (counted in mismatchedBytes / verifiedBytes), which saves memory with 10,000 receivers. */
  keepOutput?: boolean;
  /** Keep every receiver's events (default true). */
  keepEvents?: boolean;
  /**
   * Conservative time windows (faster with many receivers, same causality): nothing a node sends can reach
   * another node sooner than the shortest one-way delay W, so the network runs the sender's events of a window
   * [T, T+W) first, then each receiver's events of that window in one go (its memory stays in cache). The
   * figures differ from the default strict event order only by how ties and random numbers fall (every link
   * then has its own random stream for jitter and duplicates; without those the figures are the same). Every
   * link needs a positive delay (run throws otherwise).
   */
  windowed?: boolean;
  /**
   * Hand every datagram to its engine in one reused buffer that is overwritten once the engine returns, as the
   * batch UDP backend's receive ring is: an engine that keeps a reference to a datagram's memory gets garbage
   * (and fails its digests) instead of passing by luck. Costs a copy per delivery (default false).
   */
  borrowedDatagrams?: boolean;
  /**
   * Give the sender each block in a buffer of its own and overwrite it when the sender hands it back
   * (block-released), as `send` reuses read buffers: a sender that still reads a released block sends garbage
   * (and receivers fail their digests). Costs a copy per block read (default false).
   */
  recycledBlocks?: boolean;
  /**
   * With the sender's asyncParity: how long a block's coder set-up takes, in virtual ms (a real driver makes it
   * on another thread meanwhile, and keeps it for the block's later rounds). It starts with the block's
   * prepare-parity or, without one, its first need-parity; a need-parity is answered once the set-up is done.
   * Default 0: answered at the same instant, but after the sender's turn, as a real driver's answer comes.
   */
  parityDelayMs?: number;
  /** With the sender's asyncParity: how many blocks' coders the driver keeps (default all; `send` keeps 128 MiB). */
  keptCoders?: number;
  /**
   * With receivers' asyncDecode: how long each need-decode solve takes, in virtual ms; the solve runs at its end
   * (so an engine that touched the job's block meanwhile would spoil it). Default 0: solved when handed out.
   * Not in windowed mode.
   */
  decodeDelayMs?: number;
}

class LossState {
  private bad = false;
  private last = 0;
  constructor(
    private readonly model: LossModel | undefined,
    private readonly random: () => number,
  ) {}

  /** Whether a packet crossing the link at time `now` is lost. */
  lost(now: number): boolean {
    const m = this.model;
    if (!m || m.rate <= 0) return false;
    if (m.burstMs && m.burstMs > 0 && m.rate < 1) {
      // Continuous-time two-state chain, advanced from the previous packet: the chance of being bad now
      // relaxes from the last state towards the long-run share `rate` at speed 1/bad + 1/good.
      const good = (m.burstMs * (1 - m.rate)) / m.rate;
      const decay = Math.exp(-(1 / m.burstMs + 1 / good) * Math.max(0, now - this.last));
      this.last = now;
      const pBad = this.bad ? m.rate + (1 - m.rate) * decay : m.rate * (1 - decay);
      this.bad = this.random() < pBad;
      return this.bad;
    }
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

/** Sorts the first `count` (host, time) pairs by time, then host index (stable for equal times). */
function sortByTime(hosts: Int32Array, times: Float64Array, count: number): void {
  const idx = new Array<number>(count);
  for (let i = 0; i < count; i++) idx[i] = i;
  idx.sort((a, b) => times[a]! - times[b]! || hosts[a]! - hosts[b]!);
  const h = hosts.slice(0, count);
  const t = times.slice(0, count);
  for (let i = 0; i < count; i++) {
    hosts[i] = h[idx[i]!]!;
    times[i] = t[idx[i]!]!;
  }
}

/** What the network needs of a protocol engine (sender or receiver): the sans-IO interface. */
export interface SimNode {
  handleDatagram(now: number, d: Uint8Array, from: string): void;
  handleTimeout(now: number): void;
  nextTimeout(now: number): number | null;
  poll(now: number): Transmit | undefined;
}

export interface SimSenderNode extends SimNode {
  readonly isFinished: boolean;
}

export interface SimReceiverNode extends SimNode {
  /** Nothing more will happen: datagrams are ignored (the network stops delivering to it). */
  readonly isDone: boolean;
}

/** A receiver host in the network, whatever protocol it runs. */
export interface SimHost<E> {
  index: number;
  address: string;
  engine: E | null;
  link: LinkOptions;
  /** The image as received (empty when the network runs with keepOutput false). */
  output: Uint8Array;
  outcome: 'pending' | 'complete' | 'failed';
  completedAt: number | null;
  failure: string | null;
  linkFreeAt: number;
  dataPacketsDelivered: number;
  /** Datagrams its process was too slow to take in (LinkOptions.intake: socket buffer overflows). */
  intakeOverflows: number;
  /** Bytes handed out by the engine that matched / did not match the image (keepOutput false only). */
  verifiedBytes: number;
  mismatchedBytes: number;
}

export interface SimReceiver extends SimHost<Receiver> {
  options: ReceiverOptions;
  events: ReceiverEvent[];
  /** When its disk has written what it was given (LinkOptions.diskBps). */
  diskFreeAt: number;
  /** Image bytes its engine handed out that its disk has not written yet, now and at most (diskBps only). */
  writeBacklog: number;
  maxWriteBacklog: number;
}

// Event kinds in the queue.
const WAKE = 0;
const DELIVER = 1;
const JOIN = 2;
const FANOUT = 3;
/** Work done for the sender outside its engine (a real driver's thread), due now: see senderWorkAt. */
const SENDER_WORK = 4;
/** Work done for a receiver outside its engine, due now: see receiverWorkAt. */
const RECEIVER_WORK = 5;
const DATA_TYPE = 2;
const SPIN_LIMIT = 1000;


/** A datagram that left the sender (windowed mode). */
interface LogEntry {
  /** Emission order (multicast and unicast share it). */
  seq: number;
  emitted: number;
  departure: number;
  datagram: Uint8Array;
  frameBytes: number;
}

/** One multicast datagram on its way to many receivers: recipients in arrival order. */
interface Fanout {
  datagram: Uint8Array;
  isData: boolean;
  /** Recipients (host indices) and their arrival times, sorted by arrival; `count` of them are in use. */
  hosts: Int32Array;
  times: Float64Array;
  /** All arrive at `time` (times is then not read). */
  uniform: boolean;
  time: number;
  count: number;
  cursor: number;
}

export abstract class SimCore<E extends SimReceiverNode, H extends SimHost<E>> {
  now = 0;
  readonly receivers: H[] = [];
  /** Datagrams and frame bytes the sender put on its uplink (after its own queue); nominal sizes if scaled. */
  uplinkPackets = 0;
  uplinkBytes = 0;
  uplinkDrops = 0;
  /** Data datagrams (type 2) among them, and their frame bytes. */
  uplinkDataPackets = 0;
  uplinkDataBytes = 0;
  /** Datagrams the receivers sent (before loss), and by type byte. */
  feedbackPackets = 0;
  feedbackBytes = 0;
  readonly feedbackByType = new Map<number, number>();
  /** Receiver deliveries performed (datagrams handed to a receiver engine). */
  deliveries = 0;
  /**
   * Times a node asked to be woken at the current instant more than SPIN_LIMIT times in a row and was put off
   * to the next millisecond (an engine livelock: its nextTimeout stays in the past). By node (0: the sender).
   */
  spinClamps = 0;
  readonly spinClampsByNode = new Map<number, number>();
  private readonly spinAt: number[] = [];
  private readonly spinCount: number[] = [];
  protected readonly random: () => number;
  private readonly times: number[] = [];
  private readonly seqs: number[] = [];
  private readonly kinds: number[] = [];
  private readonly targets: number[] = [];
  private readonly payloads: (Uint8Array | null)[] = [];
  private seqCounter = 0;
  private readonly fanouts: (Fanout | null)[] = [];
  private readonly freeFanouts: number[] = [];
  private readonly fanoutPool: Fanout[] = [];
  /** Per host index (0: the sender): the time its host vanishes (Infinity: never). */
  private readonly dieAt: number[] = [Infinity];
  private readonly wakeAt: number[] = [];
  private readonly losses: LossState[] = [];
  private readonly feedbackLosses: LossState[] = [];
  private readonly intakes: (IntakeQueue | null)[] = [];
  private readonly byAddress = new Map<string, H>();
  private uplinkFreeAt = 0;
  private pendingCount = 0;
  private pendingHint = 0;
  /** Receivers sorted by base delay (recomputed when one is added). */
  private order: Int32Array | null = null;
  private uniformDelay = true;
  private readonly imageBuffer: Buffer;
  // ---- windowed mode (see NetworkOptions.windowed) ----
  private readonly windowed: boolean;
  private readonly borrowRing: Uint8Array | null;
  /** Shortest one-way delay of any link: the lookahead. */
  private minDelay = Infinity;
  /** Multicast datagrams that left the sender, in order; logBase is the absolute index of entry 0. */
  private logBase = 0;
  private readonly log: LogEntry[] = [];
  private emitSeq = 0;
  /** Per host index: next log entry to take, unicast datagrams on their way, the inbox (arrival order). */
  private readonly cursor: number[] = [0];
  private readonly ucast: LogEntry[][] = [[]];
  private readonly ucastHead: number[] = [0];
  private readonly inTimes: number[][] = [[]];
  private readonly inData: Uint8Array[][] = [[]];
  private readonly inHead: number[] = [0];
  private readonly joinAt: number[] = [0];
  private readonly linkRandom: (() => number)[] = [() => 0];
  /** Receivers by the time of their next own event (lazy: an entry is valid while rnext[index] equals it). */
  private readonly rheap = new MinHeap();
  private readonly rnext: number[] = [Infinity];
  private readonly isActive: number[] = [0];
  private activeList: number[] = [];
  private activeDirty = false;
  private activeCount = 0;
  /** No active receiver still lacks a log entry below this absolute index. */
  private minCursor = 0;
  /**
   * A lower bound on the next arrival of a logged multicast datagram: receivers that lagged behind the log at
   * the last pass need nothing before logNextTime; those that had caught up (at caughtFrom) are at least
   * caughtDelay away from any later entry.
   */
  private logNextTime = Infinity;
  private caughtFrom = 0;
  private caughtDelay = Infinity;
  private readonly stamp: number[] = [0];
  private windowId = 0;
  protected readonly keepOutput: boolean;
  protected readonly keepEvents: boolean;
  private readonly dataExtraBytes: number;

  constructor(
    readonly image: Uint8Array,
    protected readonly options: NetworkOptions,
  ) {
    this.random = seededRandom(options.seed);
    this.keepOutput = options.keepOutput ?? true;
    this.keepEvents = options.keepEvents ?? true;
    this.windowed = options.windowed ?? false;
    this.borrowRing = options.borrowedDatagrams ? new Uint8Array(65536) : null;
    this.imageBuffer = Buffer.from(image.buffer, image.byteOffset, image.byteLength);
    const scale = options.symbolScale;
    this.dataExtraBytes = scale ? scale.nominalSymbolSize - scale.simSymbolSize : 0;
    this.wakeAt.push(0);
    this.spinAt.push(-1);
    this.spinCount.push(0);
    this.schedule(0, WAKE, 0, null);
  }

  /** The sender's engine. */
  protected abstract senderNode(): SimSenderNode;
  /** Creates a receiver's engine when it joins. */
  protected abstract startReceiver(host: H): E;
  /** Drains the sender's events (after each of its steps). */
  protected abstract drainSender(): void;
  /** Drains a receiver's events (after each of its steps). */
  protected abstract drainReceiver(host: H): void;

  /** Registers a receiver host; subclasses build the host object. */
  protected addHost(host: H): H {
    this.receivers.push(host);
    this.byAddress.set(host.address, host);
    this.wakeAt.push(Infinity);
    this.spinAt.push(-1);
    this.spinCount.push(0);
    const index = host.index;
    this.losses.push(new LossState(host.link.loss, seededRandom(this.options.seed * 104729 + index)));
    this.feedbackLosses.push(
      new LossState(host.link.feedbackLoss ?? host.link.loss, seededRandom(this.options.seed * 15485863 + index)),
    );
    this.intakes.push(host.link.intake ? new IntakeQueue(host.link.intake) : null);
    this.dieAt.push(host.link.dieAtMs ?? Infinity);
    this.pendingCount++;
    this.order = null;
    const join = host.link.joinAtMs ?? 0;
    this.minDelay = Math.min(this.minDelay, host.link.delayMs ?? 0.1);
    this.cursor.push(0);
    this.ucast.push([]);
    this.ucastHead.push(0);
    this.inTimes.push([]);
    this.inData.push([]);
    this.inHead.push(0);
    this.joinAt.push(join);
    this.linkRandom.push(seededRandom(this.options.seed * 2654435761 + index * 40503));
    this.isActive.push(0);
    this.stamp.push(0);
    if (this.windowed) {
      this.rnext.push(join);
      this.rheap.push(join, index);
    } else {
      this.rnext.push(Infinity);
      this.schedule(join, JOIN, index, null);
    }
    return host;
  }

  protected newHost(index: number, link: LinkOptions): SimHost<E> {
    return {
      index,
      address: `r${index}`,
      engine: null,
      link,
      output: new Uint8Array(this.keepOutput ? this.image.length : 0),
      outcome: 'pending',
      completedAt: null,
      failure: null,
      linkFreeAt: 0,
      dataPacketsDelivered: 0,
      intakeOverflows: 0,
      verifiedBytes: 0,
      mismatchedBytes: 0,
    };
  }

  /** Records image bytes a receiver's engine handed out. */
  protected writeOutput(host: H, offset: number, data: Uint8Array): void {
    if (this.keepOutput) {
      host.output.set(data, offset);
      return;
    }
    const expected = this.imageBuffer.subarray(offset, offset + data.length);
    const got = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    if (expected.length === got.length && expected.equals(got)) host.verifiedBytes += data.length;
    else host.mismatchedBytes += data.length;
  }

  /** Receiver finished (completed or failed): call once per host. */
  protected settle(host: H, outcome: 'complete' | 'failed', failure: string | null): void {
    if (host.outcome !== 'pending') return;
    host.outcome = outcome;
    if (outcome === 'complete') host.completedAt = this.now;
    else host.failure = failure;
    this.pendingCount--;
  }

  /** True when the receiver got the exact image (as a whole: complete, every byte checked). */
  isExact(host: H): boolean {
    if (host.outcome !== 'complete') return false;
    if (this.keepOutput) return Buffer.from(host.output).equals(this.imageBuffer);
    return host.mismatchedBytes === 0 && host.verifiedBytes === this.image.length;
  }

  // ---- event queue: a binary heap on (time, seq) kept in parallel arrays, no allocation per event ----------

  private schedule(time: number, kind: number, target: number, payload: Uint8Array | null): void {
    this.push(time, this.seqCounter++, kind, target, payload);
  }

  private push(time: number, seq: number, kind: number, target: number, payload: Uint8Array | null): void {
    const times = this.times;
    const seqs = this.seqs;
    let i = times.length;
    times.push(time);
    seqs.push(seq);
    this.kinds.push(kind);
    this.targets.push(target);
    this.payloads.push(payload);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (times[p]! < time || (times[p] === time && seqs[p]! < seq)) break;
      this.move(p, i);
      i = p;
    }
    times[i] = time;
    seqs[i] = seq;
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

  // The top entry, read before popTop().
  private topTime = 0;
  private topSeq = 0;
  private topKind = 0;
  private topTarget = 0;
  private topPayload: Uint8Array | null = null;

  private popTop(): void {
    const times = this.times;
    const seqs = this.seqs;
    const n = times.length;
    this.topTime = times[0]!;
    this.topSeq = seqs[0]!;
    this.topKind = this.kinds[0]!;
    this.topTarget = this.targets[0]!;
    this.topPayload = this.payloads[0]!;
    const lt = times.pop()!;
    const ls = seqs.pop()!;
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
        const c = r < m && (times[r]! < times[l]! || (times[r] === times[l] && seqs[r]! < seqs[l]!)) ? r : l;
        if (times[c]! > lt || (times[c] === lt && seqs[c]! > ls)) break;
        this.move(c, i);
        i = c;
      }
      times[i] = lt;
      seqs[i] = ls;
      this.kinds[i] = lk;
      this.targets[i] = lg;
      this.payloads[i] = lp;
    }
  }

  private receiverNode(index: number): E | null {
    const r = this.receivers[index - 1]!;
    if (!r.engine) return null;
    if (this.now >= this.dieAt[index]!) return null;
    return r.engine;
  }

  /** Runs until every node is done or `untilMs` of virtual time has passed. Returns the end time. */
  run(untilMs = 3_600_000): number {
    if (this.windowed) return this.runWindowed(untilMs);
    const sender = this.senderNode();
    for (;;) {
      if (this.times.length === 0 || this.times[0]! > untilMs) break;
      this.popTop();
      this.now = this.topTime;
      const kind = this.topKind;
      const target = this.topTarget;
      if (kind === FANOUT) {
        if (this.runFanout(target, this.topSeq, untilMs)) break;
        continue;
      }
      if (kind === JOIN) {
        const r = this.receivers[target - 1]!;
        r.engine = this.startReceiver(r);
        this.driveReceiver(target);
      } else if (target === 0 || target < 0) {
        // The sender: a timer, or feedback (target -i: from receiver i).
        if (!this.senderEvent(sender, kind, target)) continue;
      } else {
        const node = this.receiverNode(target);
        if (!node) continue;
        if (kind === RECEIVER_WORK) {
          const work = this.receiverWork.get(target)!;
          while (work.length > 0 && work[0]!.at <= this.now) work.shift()!.run();
        } else if (kind === DELIVER) {
          const d = this.topPayload!;
          this.deliveries++;
          if (d.length >= 4 && (d[3]! & 0x7f) === DATA_TYPE) this.receivers[target - 1]!.dataPacketsDelivered++;
          this.handOver(node, this.now, d, 'sender');
        } else {
          if (this.wakeAt[target] !== this.now) continue;
          this.wakeAt[target] = Infinity;
          node.handleTimeout(this.now);
        }
        this.driveReceiver(target);
      }
      if (sender.isFinished && this.allReceiversSettled()) break;
    }
    return this.now;
  }

  /** Delivers a multicast datagram to its recipients in arrival order while nothing else comes first. True: stop. */
  private runFanout(slot: number, seq: number, untilMs: number): boolean {
    const f = this.fanouts[slot]!;
    const sender = this.senderNode();
    const receivers = this.receivers;
    const dieAt = this.dieAt;
    const hosts = f.hosts;
    const times = f.times;
    const count = f.count;
    const heapTimes = this.times;
    for (;;) {
      const index = hosts[f.cursor++]!;
      const r = receivers[index - 1]!;
      const node = r.engine;
      // (Recipients were chosen when the datagram left: joined and not done.)
      if (node !== null && this.now < dieAt[index]!) {
        this.deliveries++;
        if (f.isData) r.dataPacketsDelivered++;
        this.handOver(node, this.now, f.datagram, 'sender');
        this.driveReceiverNode(index, r, node);
      }
      if (f.cursor >= count) {
        this.fanouts[slot] = null;
        this.freeFanouts.push(slot);
        this.fanoutPool.push(f);
        return sender.isFinished && this.allReceiversSettled();
      }
      if (sender.isFinished && this.allReceiversSettled()) {
        this.push(this.now, seq, FANOUT, slot, null);
        return true;
      }
      const next = f.uniform ? f.time : times[f.cursor]!;
      if (next > untilMs || (heapTimes.length > 0 && (heapTimes[0]! < next || (heapTimes[0] === next && this.seqs[0]! < seq)))) {
        this.push(next, seq, FANOUT, slot, null);
        return false;
      }
      this.now = next;
    }
  }

  // ---- windowed mode -------------------------------------------------------------------------------------

  /** A receiver's next own event may now be as early as `time`. */
  private noteNext(index: number, time: number): void {
    if (time < this.rnext[index]!) {
      this.rnext[index] = time;
      this.rheap.push(time, index);
    }
  }

  private runWindowed(untilMs: number): number {
    if (!(this.minDelay > 0)) throw new RangeError('windowed mode needs a positive delay on every link');
    const sender = this.senderNode();
    const W = this.minDelay;
    let last = this.now;
    for (;;) {
      // The next thing to happen anywhere.
      let T = this.times.length > 0 ? this.times[0]! : Infinity;
      let top: number | undefined;
      while ((top = this.rheap.peekKey()) !== undefined) {
        // Drop stale entries at the top.
        if (this.rnext[this.rheap.peekValue()!] === top) break;
        this.rheap.pop();
      }
      if (top !== undefined && top < T) T = top;
      const logNext = this.logNextArrival();
      if (logNext < T) T = logNext;
      if (T === Infinity || T > untilMs) break;
      const Tw = Math.min(T + W, untilMs + 1e-9);
      // 1. The sender's events of the window: what it sends now arrives at Tw at the earliest.
      while (this.times.length > 0 && this.times[0]! < Tw) {
        this.popTop();
        this.now = this.topTime;
        const target = this.topTarget;
        if (!this.senderEvent(sender, this.topKind, target)) continue;
        if (this.now > last) last = this.now;
      }
      // 2. Each receiver's events of the window, one receiver at a time.
      const id = ++this.windowId;
      const due: number[] = [];
      while ((top = this.rheap.peekKey()) !== undefined && top < Tw) {
        const i = this.rheap.pop()!;
        if (this.rnext[i] !== top) continue;
        this.rnext[i] = Infinity;
        due.push(i);
      }
      if (logNext < Tw) {
        // Multicast datagrams arrive in this window: everyone listening takes part.
        if (this.activeDirty) this.rebuildActive();
        const list = this.activeList;
        for (let n = 0; n < list.length; n++) {
          const i = list[n]!;
          this.stamp[i] = id;
          const t = this.runReceiver(i, Tw);
          if (t > last) last = t;
        }
      }
      for (const i of due) {
        if (this.stamp[i] === id) continue;
        this.stamp[i] = id;
        const t = this.runReceiver(i, Tw);
        if (t > last) last = t;
      }
      if (logNext < Tw) this.advanceLog();
      this.now = last;
      if (sender.isFinished && this.allReceiversSettled()) break;
    }
    this.now = last;
    return this.now;
  }

  private rebuildActive(): void {
    const list: number[] = [];
    for (let i = 1; i < this.isActive.length; i++) if (this.isActive[i]) list.push(i);
    this.activeList = list;
    this.activeDirty = false;
  }

  private setActive(index: number, active: boolean): void {
    if ((this.isActive[index] === 1) === active) return;
    this.isActive[index] = active ? 1 : 0;
    this.activeCount += active ? 1 : -1;
    this.activeDirty = true;
  }

  /** Earliest time a logged multicast datagram not yet taken by every active receiver can arrive. */
  private logNextArrival(): number {
    if (this.activeCount === 0) return Infinity;
    const i = this.caughtFrom - this.logBase;
    const caught = i < this.log.length ? this.log[i]!.departure + this.caughtDelay : Infinity;
    return Math.min(this.logNextTime, caught);
  }

  /** A receiver now listens from log entry `c` on: lower the bounds for it. */
  private noteCursor(index: number, c: number): void {
    const delay = this.receivers[index - 1]!.link.delayMs ?? 0.1;
    if (c < this.minCursor) this.minCursor = c;
    const i = c - this.logBase;
    if (i < this.log.length) this.logNextTime = Math.min(this.logNextTime, this.log[i]!.departure + delay);
    else {
      this.caughtFrom = Math.min(this.caughtFrom, c);
      this.caughtDelay = Math.min(this.caughtDelay, delay);
    }
  }

  /** After a pass over all active receivers: where each one is in the log; forget what all have. */
  private advanceLog(): void {
    if (this.activeDirty) this.rebuildActive();
    const end = this.logBase + this.log.length;
    let min = end;
    let next = Infinity;
    let caughtDelay = Infinity;
    for (const i of this.activeList) {
      if (!this.isActive[i]) continue;
      const c = this.cursor[i]!;
      const delay = this.receivers[i - 1]!.link.delayMs ?? 0.1;
      if (c < min) min = c;
      if (c < end) next = Math.min(next, this.log[c - this.logBase]!.departure + delay);
      else caughtDelay = Math.min(caughtDelay, delay);
    }
    this.logNextTime = next;
    this.caughtFrom = end;
    this.caughtDelay = caughtDelay;
    this.minCursor = min;
    const drop = min - this.logBase;
    if (drop > 1024) {
      this.log.splice(0, drop);
      this.logBase = min;
    }
  }

  /** Runs receiver `index` up to (not including) time `until`. Returns the time of its last event. */
  private runReceiver(index: number, until: number): number {
    const r = this.receivers[index - 1]!;
    const bound = Math.min(until, this.dieAt[index]!);
    let last = -Infinity;
    let node = r.engine;
    if (node === null) {
      const join = this.joinAt[index]!;
      if (join >= bound) {
        if (join < this.dieAt[index]!) this.noteNext(index, join);
        return last;
      }
      this.now = last = join;
      node = r.engine = this.startReceiver(r);
      // It hears datagrams sent after it joined (as in the strict order, where a sender event at the same
      // instant that was scheduled first, like its very first wake-up, comes before the join).
      let c = this.logBase + this.log.length;
      while (c > this.logBase && this.log[c - 1 - this.logBase]!.emitted > join) c--;
      this.cursor[index] = c;
      this.noteCursor(index, c);
      this.setActive(index, true);
      this.driveReceiverWindowed(index, r, node);
    }
    if (!node.isDone) {
      this.take(index, r, until);
      const times = this.inTimes[index]!;
      const data = this.inData[index]!;
      let head = this.inHead[index]!;
      for (;;) {
        const tIn = head < times.length ? times[head]! : Infinity;
        const tWake = this.wakeAt[index]!;
        if (tIn <= tWake) {
          if (tIn >= bound) break;
          this.now = last = tIn;
          const d = data[head]!;
          head++;
          this.inHead[index] = head;
          this.deliveries++;
          if (d.length >= 4 && (d[3]! & 0x7f) === DATA_TYPE) r.dataPacketsDelivered++;
          this.handOver(node, tIn, d, 'sender');
        } else {
          if (tWake >= bound) break;
          this.now = last = tWake;
          this.wakeAt[index] = Infinity;
          node.handleTimeout(tWake);
        }
        this.driveReceiverWindowed(index, r, node);
        if (node.isDone) break;
      }
      if (head > 64 && head * 2 > times.length) {
        times.splice(0, head);
        data.splice(0, head);
        head = 0;
        this.inHead[index] = 0;
      }
    }
    if (node.isDone || this.dieAt[index]! <= until) {
      this.setActive(index, false);
      this.rnext[index] = Infinity;
      return last;
    }
    // Its next own event: an inbox arrival, a timer, or a unicast datagram on its way.
    let next = this.wakeAt[index]!;
    const head = this.inHead[index]!;
    const times = this.inTimes[index]!;
    if (head < times.length && times[head]! < next) next = times[head]!;
    const uq = this.ucast[index]!;
    const uh = this.ucastHead[index]!;
    if (uh < uq.length) next = Math.min(next, uq[uh]!.departure + (r.link.delayMs ?? 0.1));
    if (next !== this.rnext[index]) {
      this.rnext[index] = next;
      if (next !== Infinity) this.rheap.push(next, index);
    }
    return last;
  }

  private driveReceiverWindowed(index: number, host: H, node: E): void {
    let t: Transmit | undefined;
    while ((t = node.poll(this.now))) this.fromReceiver(index, t);
    this.drainReceiver(host);
    const next = node.nextTimeout(this.now);
    if (next !== null && next < this.wakeAt[index]!) this.wakeAt[index] = this.wakeTime(index, next);
  }

  /** Moves the datagrams that can reach receiver `index` before `until` from the log and its unicast queue to its inbox. */
  private take(index: number, r: H, until: number): void {
    const delay = r.link.delayMs ?? 0.1;
    const log = this.log;
    const base = this.logBase;
    const end = base + log.length;
    let c = this.cursor[index]!;
    const uq = this.ucast[index]!;
    let uh = this.ucastHead[index]!;
    for (;;) {
      const l = c < end && log[c - base]!.departure + delay < until ? log[c - base]! : null;
      const u = uh < uq.length && uq[uh]!.departure + delay < until ? uq[uh]! : null;
      let e: LogEntry;
      if (l && (!u || l.seq < u.seq)) {
        e = l;
        c++;
      } else if (u) {
        e = u;
        uh++;
      } else break;
      const arrival = this.arrival(r, e.departure, e.frameBytes, this.linkRandom[index]!);
      if (arrival === null) continue;
      this.toInbox(index, arrival, e.datagram);
      if (this.options.duplicate && this.linkRandom[index]!() < this.options.duplicate) {
        this.toInbox(index, arrival + this.linkRandom[index]!(), e.datagram);
      }
    }
    this.cursor[index] = c;
    if (uh >= uq.length) {
      uq.length = 0;
      uh = 0;
    }
    this.ucastHead[index] = uh;
  }

  /** Inserts into a receiver's inbox, kept in arrival order (equal times: first in, first out). */
  private toInbox(index: number, arrival: number, datagram: Uint8Array): void {
    const times = this.inTimes[index]!;
    const data = this.inData[index]!;
    const head = this.inHead[index]!;
    let i = times.length;
    if (i === head || times[i - 1]! <= arrival) {
      times.push(arrival);
      data.push(datagram);
      return;
    }
    while (i > head && times[i - 1]! > arrival) i--;
    times.splice(i, 0, arrival);
    data.splice(i, 0, datagram);
  }

  private allReceiversSettled(): boolean {
    if (this.pendingCount === 0) return true;
    // Pending receivers only count while alive. Remember where the last live one was.
    const n = this.receivers.length;
    for (let scanned = 0; scanned < n; scanned++) {
      const i = (this.pendingHint + scanned) % n;
      const r = this.receivers[i]!;
      if (r.outcome === 'pending' && this.now < this.dieAt[i + 1]!) {
        this.pendingHint = i;
        return false;
      }
    }
    return true;
  }

  private driveSender(): void {
    const node = this.senderNode();
    let t: Transmit | undefined;
    while ((t = node.poll(this.now))) this.fromSender(t);
    this.drainSender();
    this.arm(0, node.nextTimeout(this.now));
  }

  private driveReceiver(index: number): void {
    const node = this.receiverNode(index);
    if (node) this.driveReceiverNode(index, this.receivers[index - 1]!, node);
  }

  private driveReceiverNode(index: number, host: H, node: E): void {
    let t: Transmit | undefined;
    while ((t = node.poll(this.now))) this.fromReceiver(index, t);
    this.drainReceiver(host);
    const next = node.nextTimeout(this.now);
    if (next !== null && next < this.wakeAt[index]!) this.arm(index, next);
  }

  private arm(index: number, next: number | null): void {
    if (next !== null && next < this.wakeAt[index]!) {
      const at = this.wakeTime(index, next);
      this.wakeAt[index] = at;
      if (this.windowed && index > 0) return; // receivers keep their own timers in windowed mode
      this.schedule(at, WAKE, index, null);
    }
  }

  /** Gives `node` a datagram, in the borrowed ring when so configured (NetworkOptions.borrowedDatagrams). */
  private handOver(node: { handleDatagram(now: number, d: Uint8Array, from: string): void }, now: number, d: Uint8Array, from: string): void {
    const ring = this.borrowRing;
    if (!ring) return node.handleDatagram(now, d, from);
    const view = ring.subarray(0, d.length);
    view.set(d);
    node.handleDatagram(now, view, from);
    view.fill(0xa5);
  }

  private readonly senderWork: { at: number; run: () => void }[] = [];
  private readonly receiverWork = new Map<number, { at: number; run: () => void }[]>();

  /** Runs `work` for receiver `index` at virtual time `at`, then lets it act (FIFO per receiver; not windowed). */
  protected receiverWorkAt(index: number, at: number, work: () => void): void {
    if (this.windowed) throw new Error('work outside the receivers (decodeDelayMs) is not simulated in windowed mode');
    let queue = this.receiverWork.get(index);
    if (!queue) this.receiverWork.set(index, (queue = []));
    queue.push({ at, run: work });
    this.schedule(at, RECEIVER_WORK, index, null);
  }

  /** Runs `work` for the sender at virtual time `at`, then lets the sender act (FIFO: `at` must not decrease). */
  protected senderWorkAt(at: number, work: () => void): void {
    this.senderWork.push({ at, run: work });
    this.schedule(at, SENDER_WORK, 0, null);
  }

  /** The sender's event at the top of the queue: feedback from receiver -target, its timer, or work done for it. False: a stale timer. */
  private senderEvent(sender: SimSenderNode, kind: number, target: number): boolean {
    if (kind === SENDER_WORK) {
      while (this.senderWork.length > 0 && this.senderWork[0]!.at <= this.now) this.senderWork.shift()!.run();
    } else if (kind === DELIVER) {
      this.handOver(sender, this.now, this.topPayload!, this.receivers[-target - 1]!.address);
    } else {
      if (this.wakeAt[0] !== this.now) return false;
      this.wakeAt[0] = Infinity;
      sender.handleTimeout(this.now);
    }
    this.driveSender();
    return true;
  }

  /** When to wake a node that asked for `next`: now at the earliest, and see SPIN_LIMIT. */
  private wakeTime(index: number, next: number): number {
    if (next > this.now) return next;
    // A node that keeps asking to be woken at the current instant without getting anywhere would spin for ever
    // in virtual time (in real time it would spin the CPU until the clock moves on). After many such wake-ups
    // in a row, move its wake-up to the next millisecond, like a timer's granularity, and count it.
    if (this.spinAt[index] !== this.now) {
      this.spinAt[index] = this.now;
      this.spinCount[index] = 0;
      return this.now;
    }
    if (++this.spinCount[index]! <= SPIN_LIMIT) return this.now;
    this.spinClamps++;
    this.spinClampsByNode.set(index, (this.spinClampsByNode.get(index) ?? 0) + 1);
    return this.now + 1;
  }

  private datagramOf(t: Transmit): Uint8Array {
    if (t.parts.length === 1) return t.parts[0]!;
    return Buffer.concat(t.parts);
  }

  /** Frame bytes a datagram costs on a link (nominal symbol size for data when the simulation is scaled). */
  private frameBytes(datagram: Uint8Array, bytes: number): number {
    const overhead = this.options.frameOverhead ?? 42;
    if (this.dataExtraBytes !== 0 && bytes >= 4 && (datagram[3]! & 0x7f) === DATA_TYPE) return bytes + overhead + this.dataExtraBytes;
    return bytes + overhead;
  }

  private sortedOrder(): Int32Array {
    if (this.order && this.order.length === this.receivers.length) return this.order;
    const order = new Int32Array(this.receivers.length);
    for (let i = 0; i < order.length; i++) order[i] = i + 1;
    const delay = (i: number) => this.receivers[i - 1]!.link.delayMs ?? 0.1;
    const first = this.receivers.length > 0 ? delay(1) : 0;
    this.uniformDelay = this.receivers.every((r) => (r.link.delayMs ?? 0.1) === first);
    if (!this.uniformDelay) order.sort((a, b) => delay(a) - delay(b) || a - b);
    this.order = order;
    return order;
  }

  private fromSender(t: Transmit): void {
    let datagram = this.datagramOf(t);
    const isData = t.bytes >= 4 && (datagram[3]! & 0x7f) === DATA_TYPE;
    const frameBytes = this.frameBytes(datagram, t.bytes);
    let departure = this.now;
    if (this.options.uplinkBps) {
      const start = Math.max(this.now, this.uplinkFreeAt);
      if (start - this.now > (this.options.queueMs ?? 20)) {
        this.uplinkDrops++;
        return;
      }
      this.uplinkFreeAt = start + ((frameBytes * 8) / this.options.uplinkBps) * 1000;
      departure = this.uplinkFreeAt;
    }
    this.uplinkPackets++;
    this.uplinkBytes += frameBytes;
    if (isData) {
      this.uplinkDataPackets++;
      this.uplinkDataBytes += frameBytes;
    }
    if (this.options.tamper) {
      const changed = this.options.tamper(datagram, true);
      if (!changed) return;
      datagram = changed;
    }
    if (this.windowed) {
      const entry: LogEntry = { seq: this.emitSeq++, emitted: this.now, departure, datagram, frameBytes };
      if (t.to === null) {
        this.log.push(entry);
        return;
      }
      const r = this.byAddress.get(t.to);
      if (!r || !r.engine || r.engine.isDone) return;
      this.ucast[r.index]!.push(entry);
      this.noteNext(r.index, departure + (r.link.delayMs ?? 0.1));
      return;
    }
    if (t.to !== null) {
      const r = this.byAddress.get(t.to);
      if (r && r.engine) {
        const arrival = this.arrival(r, departure, frameBytes, this.random);
        if (arrival !== null) this.deliverLater(r, arrival, datagram);
      }
      return;
    }
    // Multicast: one fan-out record, recipients in arrival order.
    const order = this.sortedOrder();
    const n = order.length;
    let f = this.fanoutPool.pop();
    if (!f || f.hosts.length < n) {
      const capacity = Math.max(16, n);
      f = { datagram, isData, hosts: new Int32Array(capacity), times: new Float64Array(capacity), uniform: true, time: 0, count: 0, cursor: 0 };
    }
    const hosts = f.hosts;
    const times = f.times;
    let count = 0;
    let sorted = true;
    let uniform = true;
    let prev = -Infinity;
    for (let i = 0; i < n; i++) {
      const index = order[i]!;
      const r = this.receivers[index - 1]!;
      const node = r.engine;
      if (node === null || node.isDone) continue;
      const arrival = this.arrival(r, departure, frameBytes, this.random);
      if (arrival === null) continue;
      hosts[count] = index;
      times[count] = arrival;
      if (count > 0 && arrival !== prev) {
        uniform = false;
        if (arrival < prev) sorted = false;
      }
      prev = arrival;
      count++;
      if (this.options.duplicate && this.random() < this.options.duplicate) {
        this.deliverLater(r, arrival + this.random(), datagram);
      }
    }
    if (count === 0) {
      this.fanoutPool.push(f);
      return;
    }
    if (!sorted) sortByTime(hosts, times, count);
    f.datagram = datagram;
    f.isData = isData;
    f.uniform = uniform;
    f.time = times[0]!;
    f.count = count;
    f.cursor = 0;
    let slot = this.freeFanouts.pop();
    if (slot === undefined) {
      slot = this.fanouts.length;
      this.fanouts.push(f);
    } else this.fanouts[slot] = f;
    this.schedule(f.time, FANOUT, slot, null);
  }

  /**
   * Arrival time at a receiver of a datagram leaving the sender at `departure`, or null when lost. `jitter` is
   * the random source for the delay jitter (per receiver in the windowed scheduler, shared in the strict one).
   */
  private arrival(r: H, departure: number, frameBytes: number, jitter: () => number): number | null {
    if (this.losses[r.index - 1]!.lost(departure)) return null;
    const link = r.link;
    let arrival = departure + (link.delayMs ?? 0.1);
    if (link.jitterMs) arrival += link.jitterMs * jitter();
    if (link.rateBps) {
      const start = Math.max(arrival, r.linkFreeAt);
      if (start - arrival > (this.options.queueMs ?? 20)) return null;
      r.linkFreeAt = start + ((frameBytes * 8) / link.rateBps) * 1000;
      arrival = r.linkFreeAt;
    }
    const intake = this.intakes[r.index - 1];
    if (intake) {
      const takenAt = intake.admit(arrival, frameBytes);
      if (takenAt === null) {
        r.intakeOverflows++;
        return null;
      }
      arrival = takenAt;
    }
    return arrival;
  }

  private deliverLater(r: H, arrival: number, datagram: Uint8Array): void {
    this.schedule(arrival, DELIVER, r.index, datagram);
  }

  private fromReceiver(index: number, t: Transmit): void {
    this.feedbackPackets++;
    this.feedbackBytes += t.bytes;
    const first = t.parts[0]!;
    const type = first.length >= 4 ? first[3]! & 0x7f : -1;
    this.feedbackByType.set(type, (this.feedbackByType.get(type) ?? 0) + 1);
    const r = this.receivers[index - 1]!;
    if (this.feedbackLosses[index - 1]!.lost(this.now)) return;
    let datagram = this.datagramOf(t);
    if (this.options.tamper) {
      const changed = this.options.tamper(datagram, false);
      if (!changed) return;
      datagram = changed;
    }
    let arrival = this.now + (r.link.delayMs ?? 0.1);
    if (r.link.jitterMs) arrival += r.link.jitterMs * (this.windowed ? this.linkRandom[index]!() : this.random());
    // Deliveries to the sender remember which receiver sent them (the source address): target -index.
    this.schedule(arrival, DELIVER, -index, datagram);
  }
}

/** The real fleetcast engine in the simulated network. */
export class SimNetwork extends SimCore<Receiver, SimReceiver> {
  readonly sender: Sender;
  readonly senderEvents: SenderEvent[] = [];
  /** asyncParity: the coders kept by block, most recently used last (parityCoder()). */
  private readonly parityCoders = new Map<number, { encoder: BlockEncoder; readyAt: number }>();
  summary: SenderSummary | null = null;

  constructor(image: Uint8Array, senderOptions: Omit<SenderOptions, 'imageSize'>, options: NetworkOptions) {
    super(image, options);
    this.sender = new Sender({ ...senderOptions, imageSize: image.length }, 0);
  }

  addReceiver(options: Omit<ReceiverOptions, 'random'>, link: LinkOptions = {}): SimReceiver {
    const index = this.receivers.length + 1;
    const host: SimReceiver = {
      ...this.newHost(index, link),
      options: { ...options, random: seededRandom(this.options.seed * 7919 + index) },
      events: [],
      diskFreeAt: 0,
      writeBacklog: 0,
      maxWriteBacklog: 0,
    };
    return this.addHost(host);
  }

  protected senderNode(): SimSenderNode {
    return this.sender;
  }

  protected startReceiver(host: SimReceiver): Receiver {
    return new Receiver(host.options, this.now);
  }

  protected drainSender(): void {
    let e: SenderEvent | undefined;
    while ((e = this.sender.pollEvent())) {
      if (e.type === 'need-block') {
        const g = this.sender.geometry;
        const offset = e.block * g.blockBytes;
        const data = this.image.subarray(offset, offset + blockLength(g, e.block));
        this.sender.supplyBlock(e.block, this.options.recycledBlocks ? data.slice() : data);
      } else if (e.type === 'prepare-parity') {
        this.parityCoder(e.block, e.k, e.data);
      } else if (e.type === 'need-parity') {
        // Made now, while `data` is valid (a released block may be recycled), handed over once set up.
        const coder = this.parityCoder(e.block, e.k, e.data);
        const { block, ids } = e;
        if (!coder) this.senderWorkAt(this.now, () => this.sender.parityUnavailable(block));
        else {
          const symbols = coder.encoder.repair(ids);
          this.senderWorkAt(Math.max(this.now, coder.readyAt), () => this.sender.supplyParity(block, ids, symbols));
        }
      } else if (e.type === 'block-released') {
        if (this.options.recycledBlocks) e.data.fill(0xa5);
      } else if (e.type === 'finished') {
        this.summary = e.summary;
      }
      if (this.keepEvents) this.senderEvents.push(e);
    }
  }

  /**
   * Block b's coder, as a driver keeps it (the last keptCoders of them, for codes with a set-up): set up from
   * `data` now if there is none (done parityDelayMs later); null if there is none and no data.
   */
  private parityCoder(b: number, k: number, data: Uint8Array | null): { encoder: BlockEncoder; readyAt: number } | null {
    const kept = this.parityCoders.get(b);
    if (kept) {
      this.parityCoders.delete(b);
      this.parityCoders.set(b, kept);
      return kept;
    }
    if (!data) return null;
    const g = this.sender.geometry;
    const coder = { encoder: blockEncoder(g.fec, data, k, g.symbolSize), readyAt: this.now + (this.options.parityDelayMs ?? 0) };
    if (!encoderHasSetUp(g.fec)) return coder; // it reads the block as it goes: not kept
    this.parityCoders.set(b, coder);
    while (this.parityCoders.size > (this.options.keptCoders ?? Infinity)) {
      const oldest = this.parityCoders.keys().next().value as number;
      this.parityCoders.get(oldest)!.encoder.dispose();
      this.parityCoders.delete(oldest);
    }
    return coder;
  }

  /** A written block's buffer goes back to the engine: once the host's disk has written it, else at once. */
  private giveBack(r: SimReceiver, data: Uint8Array): void {
    const engine = r.engine!;
    const bps = r.link.diskBps;
    if (!bps) {
      if (r.options.maxUnwrittenBytes != null) engine.recycleBlock(data);
      return;
    }
    r.writeBacklog += data.length;
    r.maxWriteBacklog = Math.max(r.maxWriteBacklog, r.writeBacklog);
    r.diskFreeAt = Math.max(this.now, r.diskFreeAt) + (data.length * 8 * 1000) / bps;
    this.afterWrites(r, () => {
      r.writeBacklog -= data.length;
      engine.recycleBlock(data);
    });
  }

  /** Runs `work` once the host's disk has written all it was given (at once without a disk model). */
  private afterWrites(r: SimReceiver, work: () => void): void {
    if (r.link.diskBps && r.diskFreeAt > this.now) this.receiverWorkAt(r.index, r.diskFreeAt, work);
    else work();
  }

  protected drainReceiver(r: SimReceiver): void {
    let e: ReceiverEvent | undefined;
    while ((e = r.engine!.pollEvent())) {
      if (e.type === 'block') {
        this.writeOutput(r, e.offset, e.data);
        this.giveBack(r, e.data);
      } else if (e.type === 'need-decode') {
        const { block, job } = e;
        const engine = r.engine!;
        const solve = (): void => engine.supplyDecoded(this.now, block, solveBlock(job));
        const delay = this.options.decodeDelayMs ?? 0;
        if (delay > 0) this.receiverWorkAt(r.index, this.now + delay, solve);
        else solve();
      }
      else if (e.type === 'complete') {
        this.settle(r, 'complete', null);
        if (r.options.confirmWhenWritten) this.afterWrites(r, () => r.engine!.written(this.now));
      }
      else if (e.type === 'failed') this.settle(r, 'failed', `${e.reason}: ${e.message}`);
      if (this.keepEvents) r.events.push(e);
    }
  }
}
