// The baseline for `npm run sim`: plain NACK-and-retransmit reliable multicast, the way udpcast and uftp work.
// Receivers report WHICH packets of a block (udpcast: slice) they lack; the sender retransmits exactly those
// source packets, no FEC. It is meant as a fair baseline, not a straw man:
//  - NACK aggregation as in udpcast: the sender merges the requests of all receivers into the union of missing
//    packets per block and retransmits each packet once per round (a request for a packet that was resent less
//    than a round trip + the receivers' quiet time ago is covered by that retransmission and ignored);
//  - receivers stay silent when they lack nothing (udpcast has every receiver acknowledge every slice; uftp
//    NAKs only), and send one NACK per block and round, many blocks per datagram;
//  - the same timers as fleetcast's receivers (quiet time after the last packet of a block, 30 ms retry),
//    the same pacing, start rules (min receivers + settle time), announce interval and completion handshake;
//  - its timers use the network's known round-trip time instead of measuring it (an advantage).
// Sans-IO like the real engine, so it runs in the same simulated network (NackNetwork below).
import { Pacer } from '../src/protocol/rate.js';
import type { Transmit } from '../src/protocol/common.js';
import { MinHeap } from '../src/protocol/heap.js';
import { SimCore, seededRandom, type LinkOptions, type NetworkOptions, type SimHost, type SimSenderNode } from './network.js';

const MAGIC = 0x4e4b; // "NK"
const VERSION = 1;
const HEADER = 8;
export const NackType = { Announce: 1, Data: 2, Join: 4, Complete: 5, Nack: 6, Ack: 7, End: 8 } as const;
const DATA_HEADER = HEADER + 12; // seq u32, block u32, index u16, round u16: the same 20 bytes as fleetcast's
const ANNOUNCE_BYTES = HEADER + 24;
const ACK_JOINED = 1;
const ACK_DONE = 2;
const END_REPEATS = 3;
const CONFIRM_TRIES = 12;

function header(type: number, sessionId: number, bodyBytes: number): Buffer {
  const buf = Buffer.alloc(HEADER + bodyBytes);
  buf.writeUInt16BE(MAGIC, 0);
  buf.writeUInt8(VERSION, 2);
  buf.writeUInt8(type, 3);
  buf.writeUInt32BE(sessionId >>> 0, 4);
  return buf;
}

function u16(d: Uint8Array, o: number): number {
  return (d[o]! << 8) | d[o + 1]!;
}

function u32(d: Uint8Array, o: number): number {
  return ((d[o]! << 24) | (d[o + 1]! << 16) | (d[o + 2]! << 8) | d[o + 3]!) >>> 0;
}

/** The type of a baseline datagram of this session (any session while sessionId is null), or -1. */
function readType(d: Uint8Array, sessionId: number | null): number {
  if (d.length < HEADER) return -1;
  if (u16(d, 0) !== MAGIC || d[2] !== VERSION) return -1;
  if (sessionId !== null && u32(d, 4) !== sessionId) return -1;
  return d[3]!;
}

function asBuffer(d: Uint8Array): Buffer {
  return Buffer.isBuffer(d) ? d : Buffer.from(d.buffer, d.byteOffset, d.byteLength);
}

export interface NackSenderOptions {
  sessionId: number;
  image: Uint8Array;
  symbolSize: number;
  blockSymbols: number;
  maxRateBps: number;
  frameOverhead?: number;
  minReceivers?: number;
  settleMs?: number;
  /** Start anyway this long after the first receiver joined (default: wait for minReceivers). */
  maxWaitMs?: number | null;
  /** Round-trip time of the network (ms), known in advance. */
  rttMs: number;
  /** The receivers' quiet time (ms): how long they wait after the last packet of a block before NACKing. */
  quietMs?: number;
}

export interface NackSenderStats {
  startedAt: number | null;
  endedAt: number | null;
  sourcePackets: number;
  retransmissions: number;
  controlPackets: number;
  feedbackPackets: number;
  nackPackets: number;
  /** Packets requested (summed over NACKs). */
  nackRequests: number;
  /** Requests already queued (merged into the union) or covered by a recent retransmission. */
  merged: number;
  covered: number;
}

interface Peer {
  address: string;
  completed: boolean;
}

export function nackQuietMs(rttMs: number): number {
  return Math.max(3, 2 * rttMs);
}

export class NackSender implements SimSenderNode {
  private readonly k: number;
  private readonly blocks: number;
  private readonly bitmapBytes: number;
  private phase: 'waiting' | 'transferring' | 'ending' = 'waiting';
  private finished = false;
  private minReachedAt: number | null = null;
  private firstJoinAt: number | null = null;
  private nextAnnounceAt = 0;
  private nextHousekeepingAt = 0;
  private endsSent = 0;
  private nextEndAt = 0;
  private readonly peers = new Map<number, Peer>();
  private activeCount = 0;
  private nextBlock = 0;
  private nextIndex = 0;
  private seq = 0;
  private readonly queue: number[] = [];
  private queueHead = 0;
  private readonly queued: Uint8Array;
  private readonly lastSent: Float64Array;
  private readonly control: Transmit[] = [];
  private readonly pacer: Pacer;
  private readonly holdoffMs: number;
  readonly stats: NackSenderStats = {
    startedAt: null,
    endedAt: null,
    sourcePackets: 0,
    retransmissions: 0,
    controlPackets: 0,
    feedbackPackets: 0,
    nackPackets: 0,
    nackRequests: 0,
    merged: 0,
    covered: 0,
  };

  constructor(
    private readonly opts: NackSenderOptions,
    now: number,
  ) {
    this.k = opts.blockSymbols;
    this.blocks = Math.ceil(opts.image.length / (opts.symbolSize * opts.blockSymbols));
    this.bitmapBytes = Math.ceil(this.k / 8);
    this.queued = new Uint8Array(this.blocks * this.k);
    this.lastSent = new Float64Array(this.blocks * this.k).fill(-Infinity);
    this.pacer = new Pacer(opts.maxRateBps, now, DATA_HEADER + opts.symbolSize + (opts.frameOverhead ?? 42));
    this.holdoffMs = opts.rttMs + (opts.quietMs ?? nackQuietMs(opts.rttMs));
    this.nextAnnounceAt = now;
    this.nextHousekeepingAt = now;
  }

  get isFinished(): boolean {
    return this.finished;
  }

  get blockCount(): number {
    return this.blocks;
  }

  private packets(b: number): number {
    const bytes = Math.min(this.k * this.opts.symbolSize, this.opts.image.length - b * this.k * this.opts.symbolSize);
    return Math.ceil(bytes / this.opts.symbolSize);
  }

  handleDatagram(now: number, d: Uint8Array, from: string): void {
    const type = readType(d, this.opts.sessionId);
    if (type < 0) return;
    const b = asBuffer(d);
    this.stats.feedbackPackets++;
    if (b.length < HEADER + 4) return;
    const nodeId = b.readUInt32BE(HEADER);
    switch (type) {
      case NackType.Join: {
        let p = this.peers.get(nodeId);
        if (!p) {
          p = { address: from, completed: false };
          this.peers.set(nodeId, p);
          this.activeCount++;
          this.firstJoinAt ??= now;
        }
        this.sendAck(nodeId, p.completed ? ACK_DONE : ACK_JOINED, from);
        if (this.phase === 'waiting') this.checkStart(now);
        break;
      }
      case NackType.Complete: {
        const p = this.peers.get(nodeId);
        if (!p) return;
        if (!p.completed) {
          p.completed = true;
          this.activeCount--;
        }
        this.sendAck(nodeId, ACK_DONE, from);
        if (this.activeCount === 0 && this.phase === 'transferring') this.beginEnd(now);
        break;
      }
      case NackType.Nack:
        this.onNack(now, b);
        break;
    }
  }

  private onNack(now: number, b: Buffer): void {
    this.stats.nackPackets++;
    if (this.phase !== 'transferring') return;
    const count = b.readUInt16BE(HEADER + 4);
    let o = HEADER + 8;
    const k = this.k;
    for (let e = 0; e < count; e++) {
      const block = b.readUInt32BE(o);
      const bitmap = o + 4;
      o += 4 + this.bitmapBytes;
      if (block >= this.blocks) continue;
      const n = this.packets(block);
      for (let i = 0; i < n; i++) {
        if (!(b[bitmap + (i >> 3)]! & (1 << (i & 7)))) continue;
        this.stats.nackRequests++;
        const id = block * k + i;
        if (this.lastSent[id] === -Infinity) continue; // not sent yet: the first pass will bring it
        if (this.queued[id]) {
          this.stats.merged++;
          continue;
        }
        if (now - this.lastSent[id]! < this.holdoffMs) {
          this.stats.covered++;
          continue;
        }
        this.queued[id] = 1;
        this.queue.push(id);
      }
    }
  }

  private sendAck(nodeId: number, kind: number, to: string): void {
    const buf = header(NackType.Ack, this.opts.sessionId, 8);
    buf.writeUInt32BE(nodeId >>> 0, HEADER);
    buf.writeUInt8(kind, HEADER + 4);
    this.queueControl(buf, to);
  }

  private queueControl(buf: Buffer, to: string | null): void {
    this.control.push({ to, parts: [buf], bytes: buf.length });
    this.stats.controlPackets++;
  }

  private checkStart(now: number): void {
    if (this.activeCount >= (this.opts.minReceivers ?? 1) && this.activeCount > 0) {
      this.minReachedAt ??= now;
      const settle = this.opts.settleMs ?? 500;
      if (now - this.minReachedAt >= settle) this.start(now);
      else this.nextHousekeepingAt = Math.min(this.nextHousekeepingAt, this.minReachedAt + settle);
    } else {
      this.minReachedAt = null;
      const maxWait = this.opts.maxWaitMs ?? null;
      if (maxWait !== null && this.firstJoinAt !== null) {
        if (now - this.firstJoinAt >= maxWait) this.start(now);
        else this.nextHousekeepingAt = Math.min(this.nextHousekeepingAt, this.firstJoinAt + maxWait);
      }
    }
  }

  private start(now: number): void {
    this.phase = 'transferring';
    this.stats.startedAt = now;
    this.nextAnnounceAt = now;
  }

  private beginEnd(now: number): void {
    this.phase = 'ending';
    this.stats.endedAt = now;
    this.nextEndAt = now;
  }

  nextTimeout(now: number): number | null {
    if (this.finished) return null;
    if (this.control.length > 0) return now;
    if (this.phase === 'ending') return this.nextEndAt;
    let t = Math.min(this.nextAnnounceAt, this.nextHousekeepingAt);
    if (this.phase === 'transferring' && this.hasData()) t = Math.min(t, this.pacer.nextSendTime(now));
    return t;
  }

  handleTimeout(now: number): void {
    if (this.finished) return;
    if (this.phase === 'ending') {
      if (now >= this.nextEndAt) {
        const buf = header(NackType.End, this.opts.sessionId, 4);
        this.queueControl(buf, null);
        this.nextEndAt = now + Math.max(20, 2 * this.opts.rttMs);
        if (++this.endsSent >= END_REPEATS) this.finished = true;
      }
      return;
    }
    if (now >= this.nextHousekeepingAt) {
      this.nextHousekeepingAt = now + 100;
      if (this.phase === 'waiting') this.checkStart(now);
    }
    if (now >= this.nextAnnounceAt) {
      const buf = header(NackType.Announce, this.opts.sessionId, ANNOUNCE_BYTES - HEADER);
      buf.writeUInt8(this.phase === 'waiting' ? 0 : 1, HEADER);
      buf.writeUInt8(this.nextBlock >= this.blocks ? 1 : 0, HEADER + 1);
      buf.writeUInt16BE(this.opts.symbolSize, HEADER + 2);
      buf.writeUInt16BE(this.k, HEADER + 4);
      buf.writeUInt32BE(Math.floor(this.opts.image.length / 2 ** 32), HEADER + 8);
      buf.writeUInt32BE(this.opts.image.length >>> 0, HEADER + 12);
      buf.writeUInt32BE(this.nextBlock, HEADER + 16);
      this.queueControl(buf, null);
      this.nextAnnounceAt = now + (this.phase === 'waiting' ? 200 : 100);
    }
  }

  private hasData(): boolean {
    return this.queueHead < this.queue.length || this.nextBlock < this.blocks;
  }

  poll(now: number): Transmit | undefined {
    const c = this.control.shift();
    if (c) return c;
    if (this.phase !== 'transferring' || !this.hasData() || !this.pacer.canSend(now)) return undefined;
    let id: number;
    let retransmission = false;
    if (this.queueHead < this.queue.length) {
      // Retransmissions first, in the order they were requested.
      id = this.queue[this.queueHead++]!;
      if (this.queueHead > 4096 && this.queueHead * 2 > this.queue.length) {
        this.queue.splice(0, this.queueHead);
        this.queueHead = 0;
      }
      this.queued[id] = 0;
      retransmission = true;
      this.stats.retransmissions++;
    } else {
      id = this.nextBlock * this.k + this.nextIndex;
      this.stats.sourcePackets++;
      if (++this.nextIndex >= this.packets(this.nextBlock)) {
        this.nextIndex = 0;
        this.nextBlock++;
        if (this.nextBlock >= this.blocks) this.nextAnnounceAt = now; // tell everyone the pass is over
      }
    }
    this.lastSent[id] = now;
    const block = Math.floor(id / this.k);
    const index = id % this.k;
    const L = this.opts.symbolSize;
    const offset = (block * this.k + index) * L;
    const payload = this.opts.image.subarray(offset, Math.min(offset + L, this.opts.image.length));
    const hdr = header(NackType.Data, this.opts.sessionId, DATA_HEADER - HEADER);
    hdr.writeUInt32BE(this.seq++ >>> 0, HEADER);
    hdr.writeUInt32BE(block, HEADER + 4);
    hdr.writeUInt16BE(index, HEADER + 8);
    hdr.writeUInt16BE(retransmission ? 1 : 0, HEADER + 10);
    const bytes = hdr.length + payload.length;
    this.pacer.consume(bytes + (this.opts.frameOverhead ?? 42));
    return { to: null, parts: [hdr, payload], bytes };
  }
}

export interface NackReceiverOptions {
  nodeId: number;
  rttMs: number;
  random: () => number;
  /** Called with every new piece of the image. */
  onData?: (offset: number, data: Uint8Array) => void;
  maxDatagram?: number;
  idleTimeoutMs?: number;
}

export class NackReceiver {
  private stage: 'listening' | 'joining' | 'receiving' | 'complete' | 'closed' | 'failed' = 'listening';
  private sessionId: number | null = null;
  private sender: string | null = null;
  private symbolSize = 0;
  private k = 0;
  private imageSize = 0;
  private blocks = 0;
  private bitmapBytes = 0;
  private have = new Uint8Array(0);
  private count = new Uint16Array(0);
  private lastRx = new Float64Array(0);
  private nackDue = new Float64Array(0);
  private missingBlocks = 0;
  private eligibleUpTo = 0;
  private readonly schedule = new MinHeap();
  private nextJoinAt = Infinity;
  private joinTries = 0;
  private nextStatusAt = Infinity;
  private confirmTries = 0;
  private lastSenderPacket = -Infinity;
  private readonly out: Transmit[] = [];
  completedAt: number | null = null;
  failure: string | null = null;
  nackPackets = 0;
  duplicates = 0;

  constructor(private readonly opts: NackReceiverOptions) {}

  get isDone(): boolean {
    return this.stage === 'closed' || this.stage === 'failed';
  }

  get isComplete(): boolean {
    return this.completedAt !== null;
  }

  get isFailed(): boolean {
    return this.stage === 'failed';
  }

  private quiet(): number {
    return nackQuietMs(this.opts.rttMs);
  }

  private retry(): number {
    return Math.max(30, 6 * this.opts.rttMs);
  }

  poll(): Transmit | undefined {
    return this.out.shift();
  }

  nextTimeout(): number | null {
    if (this.isDone || this.stage === 'listening') return null;
    let t = Math.min(this.nextJoinAt, this.nextStatusAt, this.lastSenderPacket + (this.opts.idleTimeoutMs ?? 30_000));
    if (this.stage === 'receiving' || this.stage === 'joining') {
      const due = this.schedule.peekKey();
      if (due !== undefined) t = Math.min(t, due);
    }
    return t;
  }

  private push(buf: Buffer): void {
    this.out.push({ to: this.sender, parts: [buf], bytes: buf.length });
  }

  private sendSmall(type: number): void {
    const buf = header(type, this.sessionId!, 4);
    buf.writeUInt32BE(this.opts.nodeId >>> 0, HEADER);
    this.push(buf);
  }

  handleTimeout(now: number): void {
    if (this.isDone || this.stage === 'listening') return;
    if (now - this.lastSenderPacket >= (this.opts.idleTimeoutMs ?? 30_000)) {
      if (this.stage === 'complete') this.stage = 'closed';
      else this.fail('the sender fell silent');
      return;
    }
    if (now >= this.nextJoinAt) {
      this.sendSmall(NackType.Join);
      this.joinTries++;
      this.nextJoinAt = now + Math.min(2000, 100 * 2 ** Math.min(this.joinTries, 5)) * (0.8 + 0.4 * this.opts.random());
    }
    if (now >= this.nextStatusAt && this.stage === 'complete') {
      this.sendSmall(NackType.Complete);
      if (++this.confirmTries >= CONFIRM_TRIES) {
        this.stage = 'closed';
        return;
      }
      this.nextStatusAt = now + Math.min(1000, 50 * 2 ** Math.min(this.confirmTries, 5));
    }
    if (this.stage === 'receiving' || this.stage === 'joining') this.runSchedule(now);
  }

  private fail(message: string): void {
    this.stage = 'failed';
    this.failure = message;
  }

  handleDatagram(now: number, d: Uint8Array, from: string): void {
    if (this.isDone) return;
    const type = readType(d, this.sessionId);
    if (type < 0) return;
    if (this.sender !== null && from !== this.sender) return;
    if (type === NackType.Data) {
      if (this.sessionId === null) return;
      this.lastSenderPacket = now;
      this.onData(now, d);
      return;
    }
    const b = asBuffer(d);
    switch (type) {
      case NackType.Announce:
        this.lastSenderPacket = now;
        this.onAnnounce(now, b, from);
        break;
      case NackType.Ack: {
        if (this.sessionId === null || b.readUInt32BE(HEADER) !== this.opts.nodeId) return;
        this.lastSenderPacket = now;
        const kind = b[HEADER + 4];
        if (kind === ACK_JOINED && this.stage === 'joining') {
          this.stage = 'receiving';
          this.nextJoinAt = Infinity;
        } else if (kind === ACK_DONE && this.stage === 'complete') this.stage = 'closed';
        break;
      }
      case NackType.End:
        if (this.sessionId === null) return;
        if (this.stage === 'complete') this.stage = 'closed';
        else this.fail('the sender ended the session before this receiver had the whole image');
        break;
    }
  }

  private onAnnounce(now: number, b: Buffer, from: string): void {
    if (this.sessionId === null) {
      this.sessionId = b.readUInt32BE(4);
      this.sender = from;
      this.symbolSize = b.readUInt16BE(HEADER + 2);
      this.k = b.readUInt16BE(HEADER + 4);
      this.imageSize = b.readUInt32BE(HEADER + 8) * 2 ** 32 + b.readUInt32BE(HEADER + 12);
      this.blocks = Math.ceil(this.imageSize / (this.symbolSize * this.k));
      this.bitmapBytes = Math.ceil(this.k / 8);
      this.have = new Uint8Array(this.blocks * this.k);
      this.count = new Uint16Array(this.blocks);
      this.lastRx = new Float64Array(this.blocks).fill(-Infinity);
      this.nackDue = new Float64Array(this.blocks).fill(Infinity);
      this.missingBlocks = this.blocks;
      this.stage = 'joining';
      this.sendSmall(NackType.Join);
      this.joinTries = 1;
      this.nextJoinAt = now + 100 * (0.8 + 0.4 * this.opts.random());
      if (this.blocks === 0) this.complete(now);
    }
    if (b[HEADER] === 1) this.makeEligible(now, b[HEADER + 1] === 1 ? this.blocks : b.readUInt32BE(HEADER + 16));
  }

  private packets(block: number): number {
    const bytes = Math.min(this.k * this.symbolSize, this.imageSize - block * this.k * this.symbolSize);
    return Math.ceil(bytes / this.symbolSize);
  }

  private onData(now: number, b: Uint8Array): void {
    if (b.length < DATA_HEADER) return;
    const block = u32(b, HEADER + 4);
    const index = u16(b, HEADER + 8);
    if (block >= this.blocks || index >= this.packets(block)) return;
    if (u16(b, HEADER + 10) === 0) this.makeEligible(now, block); // first pass: earlier blocks are over
    this.lastRx[block] = now;
    const id = block * this.k + index;
    if (this.have[id]) {
      this.duplicates++;
      return;
    }
    this.have[id] = 1;
    this.opts.onData?.(id * this.symbolSize, b.subarray(DATA_HEADER));
    if (++this.count[block]! === this.packets(block)) {
      this.nackDue[block] = Infinity;
      if (--this.missingBlocks === 0) this.complete(now);
    }
  }

  private complete(now: number): void {
    if (this.completedAt !== null) return;
    this.completedAt = now;
    this.stage = 'complete';
    this.nextJoinAt = Infinity;
    this.sendSmall(NackType.Complete);
    this.nextStatusAt = now + 50;
  }

  private makeEligible(now: number, upTo: number): void {
    if (upTo <= this.eligibleUpTo) return;
    for (let b = this.eligibleUpTo; b < upTo; b++) {
      if (this.count[b]! < this.packets(b)) this.scheduleNack(b, now + this.quiet());
    }
    this.eligibleUpTo = upTo;
  }

  private scheduleNack(b: number, due: number): void {
    this.nackDue[b] = due;
    this.schedule.push(due, b);
  }

  private runSchedule(now: number): void {
    const quiet = this.quiet();
    const due: number[] = [];
    let top: number | undefined;
    while ((top = this.schedule.peekKey()) !== undefined && top <= now) {
      const b = this.schedule.pop()!;
      if (this.nackDue[b] !== top || this.count[b]! >= this.packets(b)) continue;
      if (now - this.lastRx[b]! < quiet) {
        // Packets of this block are still arriving (a retransmission round): wait until they stop.
        this.scheduleNack(b, this.lastRx[b]! + quiet);
        continue;
      }
      due.push(b);
      this.scheduleNack(b, now + this.retry());
    }
    if (due.length === 0) return;
    due.sort((x, y) => x - y);
    const entryBytes = 4 + this.bitmapBytes;
    const capacity = Math.max(1, Math.floor(((this.opts.maxDatagram ?? 1400) - HEADER - 8) / entryBytes));
    for (let first = 0; first < due.length; first += capacity) {
      const part = due.slice(first, first + capacity);
      const buf = header(NackType.Nack, this.sessionId!, 8 + part.length * entryBytes);
      buf.writeUInt32BE(this.opts.nodeId >>> 0, HEADER);
      buf.writeUInt16BE(part.length, HEADER + 4);
      let o = HEADER + 8;
      for (const b of part) {
        buf.writeUInt32BE(b, o);
        const n = this.packets(b);
        for (let i = 0; i < n; i++) if (!this.have[b * this.k + i]) buf[o + 4 + (i >> 3)]! |= 1 << (i & 7);
        o += entryBytes;
      }
      this.push(buf);
      this.nackPackets++;
    }
  }
}

export interface NackHost extends SimHost<NackReceiver> {
  nodeId: number;
}

/** The baseline in the simulated network: the same links, loss, delays and counters as SimNetwork. */
export class NackNetwork extends SimCore<NackReceiver, NackHost> {
  readonly sender: NackSender;
  private readonly rttMs: number;

  constructor(image: Uint8Array, senderOptions: Omit<NackSenderOptions, 'image'>, options: NetworkOptions) {
    super(image, options);
    this.sender = new NackSender({ ...senderOptions, image }, 0);
    this.rttMs = senderOptions.rttMs;
  }

  addReceiver(nodeId: number, link: LinkOptions = {}): NackHost {
    const index = this.receivers.length + 1;
    return this.addHost({ ...this.newHost(index, link), nodeId });
  }

  protected senderNode(): SimSenderNode {
    return this.sender;
  }

  protected startReceiver(host: NackHost): NackReceiver {
    return new NackReceiver({
      nodeId: host.nodeId,
      rttMs: this.rttMs,
      random: seededRandom(this.options.seed * 7919 + host.index),
      onData: (offset, data) => this.writeOutput(host, offset, data),
    });
  }

  protected drainSender(): void {}

  protected drainReceiver(host: NackHost): void {
    const e = host.engine!;
    if (host.outcome !== 'pending') return;
    if (e.isComplete) this.settle(host, 'complete', null);
    else if (e.isFailed) this.settle(host, 'failed', e.failure);
  }
}
