// The receiver's state machine (sans-IO). It gathers symbols per block, decodes a block as soon as it holds
// any k of them, verifies it against its digest and hands it out; it asks the sender for the number of
// symbols it still lacks per block, after a random back-off that lets one request cover many receivers.
import { type BlockDecoder, type SolveJob, blockDecoder, canNeedSolve } from '../fec/scheme.js';
import { openDatagram, type PacketProtector } from './crypto.js';
import { type Transmit, type DropCounters, equalBytes, imageDigest, nackBackoffWindowMs, nackQuietMs, newDropCounters, microsOf, sha256 } from './common.js';
import { type Geometry, blockLength, makeGeometry, sourceSymbolLength, sourceSymbols } from './geometry.js';
import { MinHeap } from './heap.js';
import {
  AckKind,
  type Announce,
  AnnounceFlag,
  EndReason,
  HASH_BYTES,
  type NackEntry,
  NackFlag,
  PacketType,
  Phase,
  ReceiverState,
  WireError,
  decodeAck,
  decodeAnnounce,
  decodeData,
  decodeEnd,
  decodeHashes,
  encodeJoin,
  encodeNack,
  encodeStatus,
  nackCapacity,
  readHeader,
  type DataPacket,
  type AckPacket,
  DropReason,
} from './wire.js';

export interface ReceiverOptions {
  nodeId: number;
  name?: string;
  /** Accept only this session; by default the first session announced on the group. */
  sessionId?: number;
  protector?: PacketProtector;
  /** Image digest known from a trusted source (the site server): the session must match it. */
  expectedDigest?: Uint8Array;
  /** Per-block digests known in advance (blockCount * 32 bytes). */
  blockHashes?: Uint8Array;
  /** Give up when no sender has been heard this long after start (default: wait for ever). */
  startTimeoutMs?: number | null;
  /** Give up when the sender falls silent this long (default 30 s). */
  idleTimeoutMs?: number;
  /** Refuse sessions whose image is larger (e.g. the target device's size). */
  maxImageSize?: number;
  /** Largest datagram this receiver sends (feedback); default 1400. */
  maxDatagram?: number;
  /** Uniform random numbers in [0, 1): back-off timers. Inject a seeded one for deterministic simulation. */
  random?: () => number;
  /**
   * Costly solves run elsewhere (default false): a RaptorQ block short of a source symbol is handed out with a
   * need-decode event instead of solved here, and supplyDecoded() brings the outcome; meanwhile the receiver
   * goes on receiving. Working blocks of such a code are then allocated on SharedArrayBuffers, so that the
   * job's block can be shared with another thread without a copy (only then: V8 copies into shared memory
   * word by word, which cost a Reed-Solomon receiver 0.1 s of CPU per 200 MiB).
   */
  asyncDecode?: boolean;
  /**
   * The most image data handed out in block events that the application has not given back with recycleBlock
   * (not yet written out); null (default): no limit. Past it, DATA is dropped as a full socket buffer drops
   * it: the loss shows in this receiver's reports, and the sender slows down to what it writes (or drops it as
   * too slow, with a minimum receiver rate). A receiver writing to a disk slower than the network otherwise
   * holds the difference in memory: 70 MB per 200 MiB at 40 MB/s against 500 Mbit/s, gigabytes for an OS image.
   */
  maxUnwrittenBytes?: number | null;
  /**
   * Tell the sender the image is complete only once the application says it is written out (written()), not as
   * soon as every block is verified (default false). Until then this receiver's reports say it holds every block
   * and is still receiving, so the sender's "completed" means the image is on this machine's disk: a disk
   * failing in the final flush leaves the receiver failed in the sender's summary too.
   */
  confirmWhenWritten?: boolean;
}

export type FailureReason = 'rejected' | 'dropped' | 'ended' | 'timeout' | 'hash-mismatch' | 'too-large' | 'aborted';

export type ReceiverEvent =
  | { type: 'session'; sessionId: number; geometry: Geometry; sender: string }
  | { type: 'joined' }
  | { type: 'block'; block: number; offset: number; data: Uint8Array }
  /** asyncDecode: run solveBlock(job) and answer with supplyDecoded(); the job's memory is the receiver's again then. */
  | { type: 'need-decode'; block: number; job: SolveJob }
  | { type: 'complete'; digest: Uint8Array }
  | { type: 'closed'; confirmed: boolean }
  | { type: 'failed'; reason: FailureReason; message: string };

export interface ReceiverStats {
  datagrams: number;
  dataPackets: number;
  usefulSymbols: number;
  blocksComplete: number;
  /** Blocks rebuilt with the help of repair symbols. */
  blocksDecoded: number;
  /** Decoding attempts the symbols held did not suffice for (RaptorQ, rarely, at exactly k symbols). */
  decodeFailures: number;
  /** Blocks the application already held (adoptBlocks): not received again. */
  blocksAdopted: number;
  hashMismatches: number;
  nackPackets: number;
  nackEntries: number;
  statusPackets: number;
  lossPpm: number;
  /** DATA dropped because the application had not written out maxUnwrittenBytes of blocks yet. */
  unwrittenDrops: number;
  drops: DropCounters;
}

const EMPTY = 0;
const COMPLETE = 1;
const AWAITING_HASH = 2;
/** asyncDecode: its solve is running elsewhere. */
const DECODING = 3;
const MAX_MISMATCHES_PER_BLOCK = 3;
const CONFIRM_TRIES = 12;
/** Block buffers kept for reuse: up to this many bytes, at least 4 and at most 64 blocks. */
const SPARE_BLOCK_BYTES = 64 * 2 ** 20;

interface PartialBlock {
  decoder: BlockDecoder;
  seen: number;
  lastReceived: number;
  /** Highest planned end (in transmission numbers) the sender has announced for this block. */
  plannedEnd: number;
  /** The planned end this receiver last counted on instead of asking (suppression happens once per plan). */
  trustedPlan: number;
  /** When this receiver last asked for the block and no new symbol came since (-1: no request outstanding). */
  askedAt: number;
  /** The block's planned end when it asked: a symbol planned beyond it answers a request. */
  askedPlan: number;
  /** It asked again before an answer came: the answer may be to either request, so it is not timed (Karn). */
  askedAgain: boolean;
}

/**
 * A request's answer is timed from the NACK to the first symbol the sender planned after it, in this
 * receiver's own time (so its processing lag is in it, as it is in the wait). Smoothed as TCP's retransmission
 * timer (RFC 6298): srtt and rttvar, a retry after srtt + 4·rttvar.
 */
const ANSWER_GAIN = 1 / 8;
const ANSWER_VAR_GAIN = 1 / 4;

const DROP_EXPLANATION: Record<DropReason, string> = {
  [DropReason.Unspecified]: 'no reason given',
  [DropReason.Silent]: 'it was not heard from in time',
  [DropReason.TooSlow]: "it took in data more slowly than the session's minimum receiver rate (use unicast, or a slower session)",
  [DropReason.Removed]: 'it was removed by the operator',
};

type Stage = 'listening' | 'joining' | 'receiving' | 'complete' | 'closed' | 'failed';

export class Receiver {
  private stage: Stage = 'listening';
  private sessionId: number | null;
  private sender: string | null = null;
  geometry: Geometry | null = null;
  private blockState = new Uint8Array(0);
  private hashes = new Uint8Array(0);
  private hashKnown = new Uint8Array(0);
  private mismatches = new Map<number, number>();
  private readonly partial = new Map<number, PartialBlock>();
  private readonly decodedAwaitingHash = new Map<number, Uint8Array>();
  /** Blocks handed out in block events and not given back yet, and their bytes (see maxUnwrittenBytes). */
  private readonly unwritten = new Set<Uint8Array>();
  private unwrittenBytes = 0;
  /** Block buffers the application handed back (recycleBlock). */
  private readonly spareBlocks: Uint8Array[] = [];
  private completeCount = 0;
  private digest: Uint8Array | null = null;
  private imageDigestValue: Uint8Array | null = null;

  // Repair requests: a due time per block (stale heap entries are skipped).
  private eligibleUpTo = 0;
  private nackDue = new Float64Array(0);
  private readonly schedule = new MinHeap();

  private readonly startedAt: number;
  private lastSenderPacket = -Infinity;
  private echoTimestamp = 0;
  private echoReceivedAt = 0;
  private grttMs = 1;
  /** Smoothed time from a request to its answer and its variation (null: none timed yet); see ANSWER_GAIN. */
  private answerSrttMs: number | null = null;
  private answerVarMs = 0;
  /** Receivers the sender counts (from its announcements): sizes the back-off that keeps requests few. */
  private groupSize = 1;
  private statusIntervalMs = 250;
  private nextStatusAt = Infinity;
  private nextJoinAt = Infinity;
  private joinTries = 0;
  private lastJoinAt = -Infinity;
  private confirmTries = 0;
  /** The application has written the image out (written()), or it did not ask to be waited for. */
  private imageWritten: boolean;
  private intervalReceived = 0;
  /** Gaps in the sequence numbers this interval: each run of missing datagrams is one loss event. */
  private intervalLossEvents = 0;
  /** Highest DATA sequence number seen (null: no DATA yet). */
  private intervalHighSeq: number | null = null;
  /** The highest at the last STATUS, or the one before the first DATA seen: the interval's loss counts from it. */
  private lastReportHighSeq: number | null = null;
  /**
   * Since when the interval's counts run: the last STATUS, or the first DATA when that came later (null: no DATA
   * yet). The sender divides the DATA count by it, and a count that began mid-interval over the whole interval
   * would understate what this receiver takes in, and the sender would settle under a bottleneck that is not there.
   */
  private countingSince: number | null = null;
  private readonly out: Transmit[] = [];
  private readonly events: ReceiverEvent[] = [];
  private readonly random: () => number;
  private readonly stats: ReceiverStats;

  constructor(
    private readonly opts: ReceiverOptions,
    now: number,
  ) {
    this.sessionId = opts.sessionId ?? null;
    this.imageWritten = !opts.confirmWhenWritten;
    this.startedAt = now;
    this.random = opts.random ?? Math.random;
    if (opts.expectedDigest) this.digest = opts.expectedDigest;
    this.stats = {
      datagrams: 0,
      dataPackets: 0,
      usefulSymbols: 0,
      blocksComplete: 0,
      blocksDecoded: 0,
      decodeFailures: 0,
      blocksAdopted: 0,
      hashMismatches: 0,
      nackPackets: 0,
      nackEntries: 0,
      statusPackets: 0,
      lossPpm: 0,
      unwrittenDrops: 0,
      drops: newDropCounters(),
    };
  }

  // ---- public API ------------------------------------------------------------------------------------------

  get isDone(): boolean {
    return this.stage === 'closed' || this.stage === 'failed';
  }

  get isComplete(): boolean {
    return this.stage === 'complete' || (this.stage === 'closed' && this.imageDigestValue !== null);
  }

  get blocksComplete(): number {
    return this.completeCount;
  }

  getStats(): ReceiverStats {
    this.stats.blocksComplete = this.completeCount;
    return this.stats;
  }

  pollEvent(): ReceiverEvent | undefined {
    return this.events.shift();
  }

  poll(_now?: number): Transmit | undefined {
    return this.out.shift();
  }

  /**
   * Blocks the application already holds, verified against the digests given in advance (`blockHashes`): for
   * example the part file of an interrupted transfer. They count as complete and are never asked for. Returns
   * how many were new. Only after the `session` event, and only with `blockHashes` (nothing else is trusted).
   */
  adoptBlocks(now: number, blocks: Iterable<number>): number {
    const g = this.geometry;
    if (!g || !this.opts.blockHashes) throw new Error('adoptBlocks needs the session geometry and block hashes known in advance');
    if (this.isDone || this.stage === 'complete') return 0;
    let adopted = 0;
    for (const b of blocks) {
      if (!Number.isInteger(b) || b < 0 || b >= g.blockCount) throw new RangeError(`no block ${b} in this image`);
      if (this.blockState[b] === COMPLETE) continue;
      this.partial.get(b)?.decoder.dispose();
      this.partial.delete(b);
      this.decodedAwaitingHash.delete(b);
      this.blockState[b] = COMPLETE;
      this.nackDue[b] = Infinity;
      this.completeCount++;
      adopted++;
    }
    this.stats.blocksAdopted += adopted;
    if (this.completeCount === g.blockCount) this.checkComplete(now);
    return adopted;
  }

  /**
   * Hands back the buffer of a `block` event (the same Uint8Array) once the application is done with it (written
   * out): the next block is assembled into it instead of into fresh memory, whose first touch costs more than
   * the copy. Optional unless maxUnwrittenBytes is set; anything else is ignored.
   */
  recycleBlock(data: Uint8Array): void {
    if (this.unwritten.delete(data)) this.unwrittenBytes -= data.length;
    const g = this.geometry;
    if (!g || data.byteOffset !== 0 || data.buffer.byteLength !== g.blockBytes) return;
    const maxSpares = Math.min(64, Math.max(4, Math.floor(SPARE_BLOCK_BYTES / g.blockBytes)));
    if (this.spareBlocks.length >= maxSpares || this.spareBlocks.some((spare) => spare.buffer === data.buffer)) return;
    this.spareBlocks.push(new Uint8Array(data.buffer, 0, g.blockBytes));
  }

  /** The application gives up (disk full, user interrupt): tells the sender and fails. */
  abort(now: number, message: string): void {
    if (this.isDone) return;
    if (this.sender !== null && this.sessionId !== null) this.sendStatus(now, ReceiverState.Leaving);
    this.fail('aborted', message);
  }

  nextTimeout(_now?: number): number | null {
    if (this.isDone) return null;
    let t = Math.min(this.nextStatusAt, this.nextJoinAt);
    const due = this.schedule.peekKey();
    if (due !== undefined) t = Math.min(t, due);
    if (this.opts.startTimeoutMs != null && this.stage === 'listening') t = Math.min(t, this.startedAt + this.opts.startTimeoutMs);
    if (this.stage !== 'listening') t = Math.min(t, this.lastSenderPacket + this.idleTimeout());
    return t === Infinity ? null : t;
  }

  handleTimeout(now: number): void {
    if (this.isDone) return;
    if (this.stage === 'listening') {
      if (this.opts.startTimeoutMs != null && now >= this.startedAt + this.opts.startTimeoutMs) {
        this.fail('timeout', `no sender announced a session within ${Math.round(this.opts.startTimeoutMs / 1000)} s${this.keyHint()}`);
      }
      return;
    }
    if (now >= this.lastSenderPacket + this.idleTimeout()) {
      const what = this.stage === 'complete' ? 'confirmation' : 'data';
      if (this.stage === 'complete') {
        this.close(false);
      } else {
        this.fail('timeout', `the sender fell silent for ${Math.round(this.idleTimeout() / 1000)} s (waiting for ${what})`);
      }
      return;
    }
    if (now >= this.nextJoinAt) this.sendJoin(now);
    if (now >= this.nextStatusAt) {
      if (this.stage === 'complete' && !this.imageWritten) {
        // Still writing: every block held, nothing more to take in, alive.
        this.sendStatus(now, ReceiverState.Receiving);
        this.nextStatusAt = now + this.statusIntervalMs * (0.9 + 0.2 * this.random());
      } else if (this.stage === 'complete') {
        this.sendStatus(now, ReceiverState.Complete);
        if (++this.confirmTries >= CONFIRM_TRIES) {
          this.close(false);
          return;
        }
        this.nextStatusAt = now + Math.min(1000, 50 * 2 ** Math.min(this.confirmTries, 5));
      } else {
        this.sendStatus(now, ReceiverState.Receiving);
        this.nextStatusAt = now + this.statusIntervalMs * (0.9 + 0.2 * this.random());
      }
    }
    if (this.stage === 'receiving' || this.stage === 'joining') this.runSchedule(now);
  }

  handleDatagram(now: number, datagram: Uint8Array, from: string): void {
    if (this.isDone) return;
    this.stats.datagrams++;
    try {
      let header = readHeader(datagram);
      if (this.sessionId !== null && header.sessionId !== this.sessionId) {
        this.stats.drops.otherSession++;
        return;
      }
      const opened = openDatagram(datagram, header, this.opts.protector, this.stats.drops);
      if (!opened) return;
      const { buf } = opened;
      header = opened.header;
      if (this.sender !== null && from !== this.sender) {
        // Same session id from another address: someone else's traffic, or forged.
        this.stats.drops.otherSession++;
        return;
      }
      switch (header.type) {
        case PacketType.Announce:
          this.onAnnounce(now, decodeAnnounce(buf), header.sessionId, from);
          break;
        case PacketType.Data:
          if (!this.geometry) {
            this.stats.drops.beforeAnnounce++;
            return;
          }
          this.lastSenderPacket = now;
          // Data flows but our JOIN (or its ACK) was lost: ask again soon, not after the back-off.
          if (this.stage === 'joining') this.nextJoinAt = Math.min(this.nextJoinAt, this.lastJoinAt + Math.max(20, 4 * this.grttMs));
          this.onData(now, decodeData(buf));
          break;
        case PacketType.Hashes:
          if (!this.geometry) {
            this.stats.drops.beforeAnnounce++;
            return;
          }
          this.lastSenderPacket = now;
          this.onHashes(now, decodeHashes(buf));
          break;
        case PacketType.Ack: {
          if (!this.geometry) return;
          const ack = decodeAck(buf);
          if (ack.nodeId !== this.opts.nodeId) return;
          this.lastSenderPacket = now;
          this.onAck(now, ack);
          break;
        }
        case PacketType.End:
          if (!this.geometry) return;
          this.onEnd(decodeEnd(buf).reason);
          break;
        default:
          this.stats.drops.unexpected++;
      }
    } catch (err) {
      if (err instanceof WireError) this.stats.drops.malformed++;
      else throw err;
    }
  }

  // ---- session -----------------------------------------------------------------------------------------------

  /** Why nothing usable arrived, when datagrams did arrive: the commonest mistake is the key. */
  private keyHint(): string {
    const d = this.stats.drops;
    if (d.encrypted > 0) return ` (${d.encrypted} encrypted datagrams were dropped: the sender uses a key; give the same --key)`;
    if (this.opts.protector && d.malformed > 0) return ` (${d.malformed} datagrams failed authentication: is the --key the sender's?)`;
    if (d.unencrypted > 0) return ` (${d.unencrypted} unencrypted datagrams were dropped: the sender uses no key)`;
    return '';
  }

  private idleTimeout(): number {
    return this.opts.idleTimeoutMs ?? 30_000;
  }

  private onAnnounce(now: number, a: Announce, sessionId: number, from: string): void {
    this.lastSenderPacket = now;
    if (!this.geometry) {
      if (this.opts.maxImageSize !== undefined && a.imageSize > this.opts.maxImageSize) {
        this.fail('too-large', `the session's image (${a.imageSize} bytes) is larger than the target (${this.opts.maxImageSize} bytes)`);
        return;
      }
      const g = makeGeometry(a.fec, a.imageSize, a.symbolSize, a.blockSymbols);
      if (this.opts.blockHashes && this.opts.blockHashes.length !== g.blockCount * HASH_BYTES) {
        throw new RangeError(`blockHashes must hold ${g.blockCount} digests`);
      }
      this.geometry = g;
      this.sessionId = sessionId;
      this.sender = from;
      this.blockState = new Uint8Array(g.blockCount);
      this.hashes = new Uint8Array(g.blockCount * HASH_BYTES);
      this.hashKnown = new Uint8Array(g.blockCount);
      this.nackDue = new Float64Array(g.blockCount).fill(Infinity);
      if (this.opts.blockHashes) {
        this.hashes.set(this.opts.blockHashes);
        this.hashKnown.fill(1);
      }
      this.events.push({ type: 'session', sessionId, geometry: g, sender: from });
      this.stage = 'joining';
      this.sendJoin(now);
    }
    this.echoTimestamp = a.timestamp;
    this.echoReceivedAt = now;
    this.grttMs = Math.max(0.2, a.grttMicros / 1000);
    this.groupSize = Math.max(1, a.receivers);
    this.statusIntervalMs = Math.max(50, a.statusIntervalMs);
    if (a.digest && !this.opts.expectedDigest) this.digest = a.digest;
    if (a.digest && this.opts.expectedDigest && !equalBytes(a.digest, this.opts.expectedDigest)) {
      this.fail('hash-mismatch', 'the session announces another image than the one expected');
      return;
    }
    const g = this.geometry;
    if (a.phase !== Phase.Waiting) {
      const eligible = a.flags & AnnounceFlag.sourcePassDone ? g.blockCount : Math.max(0, a.sourceFrontier - 1);
      this.makeEligible(now, eligible);
    }
    this.checkComplete(now);
  }

  private sendJoin(now: number): void {
    if (this.stage !== 'joining') {
      this.nextJoinAt = Infinity;
      return;
    }
    this.push(encodeJoin(this.sessionId!, { nodeId: this.opts.nodeId, echo: this.echo(now), name: this.opts.name ?? '' }));
    this.joinTries++;
    this.lastJoinAt = now;
    this.nextJoinAt = now + Math.min(2000, 100 * 2 ** Math.min(this.joinTries, 5)) * (0.8 + 0.4 * this.random());
  }

  private onAck(now: number, a: AckPacket): void {
    switch (a.kind) {
      case AckKind.Joined:
        if (this.stage === 'joining') {
          this.stage = 'receiving';
          this.nextJoinAt = Infinity;
          this.nextStatusAt = now + this.statusIntervalMs * this.random();
          this.events.push({ type: 'joined' });
          this.checkComplete(now);
        }
        break;
      case AckKind.DoneConfirmed:
        if (this.stage === 'complete') this.close(true);
        break;
      case AckKind.Rejected:
        if (this.stage === 'joining') this.fail('rejected', 'the sender refused this receiver (session full or ending)');
        break;
      case AckKind.Dropped:
        if (this.stage === 'complete') this.close(false);
        else this.fail('dropped', `the sender dropped this receiver: ${DROP_EXPLANATION[a.dropReason ?? DropReason.Unspecified]}`);
        break;
    }
  }

  private onEnd(reason: EndReason): void {
    if (this.stage === 'complete') {
      this.close(true);
      return;
    }
    const why = reason === EndReason.Cancelled ? 'it was cancelled' : reason === EndReason.Limit ? 'it hit its time limit' : 'the other receivers were done';
    this.fail('ended', `the sender ended the session before this receiver had the whole image (${why}); ${this.completeCount}/${this.geometry?.blockCount ?? 0} blocks verified`);
  }

  private fail(reason: FailureReason, message: string): void {
    if (this.isDone) return;
    this.stage = 'failed';
    for (const p of this.partial.values()) p.decoder.dispose();
    this.partial.clear();
    this.events.push({ type: 'failed', reason, message });
  }

  private close(confirmed: boolean): void {
    this.stage = 'closed';
    this.events.push({ type: 'closed', confirmed });
  }

  private echo(now: number): { timestamp: number; delay: number } {
    if (this.echoTimestamp === 0) return { timestamp: 0, delay: 0 };
    return { timestamp: this.echoTimestamp, delay: microsOf(now - this.echoReceivedAt) };
  }

  private push(datagram: Buffer): void {
    const parts = [this.opts.protector ? this.opts.protector.seal([datagram]) : datagram];
    this.out.push({ to: this.sender, parts, bytes: parts[0]!.length });
  }

  private sendStatus(now: number, state: ReceiverState): void {
    const expected = this.intervalHighSeq === null || this.lastReportHighSeq === null ? 0 : (this.intervalHighSeq - this.lastReportHighSeq) >>> 0;
    const loss = expected > 0 ? Math.max(0, 1 - this.intervalReceived / expected) : 0;
    this.stats.lossPpm = Math.round(loss * 1e6);
    this.push(
      encodeStatus(this.sessionId!, {
        nodeId: this.opts.nodeId,
        state,
        blocksComplete: this.completeCount,
        echo: this.echo(now),
        received: this.intervalReceived,
        lossPpm: this.stats.lossPpm,
        lossEvents: loss > 0 ? this.intervalLossEvents : 0,
        intervalMicros: this.countingSince === null ? 0 : (now - this.countingSince) * 1000,
        digest: state === ReceiverState.Complete ? this.imageDigestValue : null,
      }),
    );
    if (this.countingSince !== null) this.countingSince = now;
    this.stats.statusPackets++;
    this.lastReportHighSeq = this.intervalHighSeq;
    this.intervalReceived = 0;
    this.intervalLossEvents = 0;
  }

  // ---- data --------------------------------------------------------------------------------------------------

  private onData(now: number, d: DataPacket): void {
    const g = this.geometry!;
    // Not taken in at all, like a datagram the kernel drops: a gap in the sequence, reported as loss.
    if (this.opts.maxUnwrittenBytes != null && this.unwrittenBytes > this.opts.maxUnwrittenBytes) {
      this.stats.unwrittenDrops++;
      return;
    }
    this.stats.dataPackets++;
    if (this.intervalHighSeq === null) {
      this.countingSince = now;
      this.lastReportHighSeq = d.seq - 1;
      this.intervalHighSeq = d.seq;
    } else {
      // Sequence numbers are 32 bits and wrap: newer is up to 2^31 ahead.
      const ahead = (d.seq - this.intervalHighSeq) >>> 0;
      if (ahead > 0 && ahead <= 0x7fffffff) {
        if (ahead > 1) this.intervalLossEvents++;
        this.intervalHighSeq = d.seq;
      }
    }
    this.intervalReceived++;
    if (d.block >= g.blockCount) throw new WireError(`data for block ${d.block} of ${g.blockCount}`);
    const b = d.block;
    const k = sourceSymbols(g, b);
    const id = d.tsn; // the transmission number is the symbol id
    // A first-pass source symbol of block b means every earlier block had its first pass.
    if (d.tsn < k) this.makeEligible(now, b);
    if (this.blockState[b] !== EMPTY) {
      this.stats.drops.duplicate++;
      return;
    }
    const expectedLength = id < k ? sourceSymbolLength(g, b, id) : g.symbolSize;
    if (d.payload.length !== expectedLength) throw new WireError(`symbol ${id} of block ${b} has ${d.payload.length} bytes, expected ${expectedLength}`);
    let p = this.partial.get(b);
    if (!p) {
      const spare = k === g.blockSymbols ? this.spareBlocks.pop() : undefined;
      // Shared memory only where a solve may be handed out (see asyncDecode).
      const shared = this.opts.asyncDecode && canNeedSolve(g.fec);
      const working = spare ?? (shared ? new Uint8Array(new SharedArrayBuffer(k * g.symbolSize)) : undefined);
      p = { decoder: blockDecoder(g.fec, k, g.symbolSize, working), seen: 0, lastReceived: now, plannedEnd: 0, trustedPlan: 0, askedAt: -1, askedPlan: 0, askedAgain: false };
      this.partial.set(b, p);
    }
    p.lastReceived = now;
    if (d.tsn + 1 > p.seen) p.seen = d.tsn + 1;
    if (p.askedAt >= 0 && d.tsn >= p.askedPlan) this.answered(now, p);
    if (d.plannedEnd > p.plannedEnd) p.plannedEnd = d.plannedEnd;
    // Copied: the datagram's memory is the socket's to reuse once this returns.
    if (!p.decoder.add(id, d.payload)) {
      this.stats.drops.duplicate++;
      return;
    }
    this.stats.usefulSymbols++;
    if (p.decoder.missing === 0 && this.decodeBlock(now, b, p)) return;
    if (d.tsn >= k && d.tsn + 1 >= d.plannedEnd) this.burstEnded(now, b);
  }

  /**
   * The last planned repair of a block arrived and the block is still short: some of the burst was lost. Ask
   * again after the quiet time rather than waiting out the retry timer (30 ms or more) meant for lost requests.
   */
  private burstEnded(now: number, b: number): void {
    if (b >= this.eligibleUpTo) return;
    const due = now + this.quietMs() + this.backoff();
    if (due < this.nackDue[b]!) {
      this.nackDue[b] = due;
      this.schedule.push(due, b);
    }
  }

  /**
   * Rebuilds a block that holds enough symbols, or with asyncDecode hands its solve out; false if they did not
   * suffice (a rare RaptorQ case: ask for one more).
   */
  private decodeBlock(now: number, b: number, p: PartialBlock): boolean {
    if (this.opts.asyncDecode && p.decoder.needsSolve) {
      this.blockState[b] = DECODING;
      this.events.push({ type: 'need-decode', block: b, job: p.decoder.solveJob() });
      return true;
    }
    return this.decoded(now, b, p, p.decoder.decode());
  }

  /**
   * asyncDecode: the outcome of a need-decode event's solve (ok: solveBlock returned true, and the job's block
   * holds the source). Ignored when the block is no longer waiting for it (adopted, or the receiver is done).
   */
  supplyDecoded(now: number, block: number, ok: boolean): void {
    const p = this.partial.get(block);
    if (this.isDone || this.blockState[block] !== DECODING || !p) return;
    this.blockState[block] = EMPTY;
    // Short of a symbol after all: ask for one more at once (symbols that came meanwhile were not kept).
    if (!this.decoded(now, block, p, p.decoder.solved(ok))) this.scheduleNack(now, block, 0);
  }

  private decoded(now: number, b: number, p: PartialBlock, data: Uint8Array | null): boolean {
    const g = this.geometry!;
    if (!data) {
      this.stats.decodeFailures++;
      return false;
    }
    this.partial.delete(b);
    if (p.decoder.repaired) this.stats.blocksDecoded++;
    const block = data.subarray(0, blockLength(g, b));
    if (this.hashKnown[b]) this.verifyBlock(now, b, block);
    else {
      this.blockState[b] = AWAITING_HASH;
      this.decodedAwaitingHash.set(b, block);
      this.scheduleNack(now, b, 0);
    }
    return true;
  }

  private verifyBlock(now: number, b: number, block: Uint8Array): void {
    const g = this.geometry!;
    const expected = this.hashes.subarray(b * HASH_BYTES, (b + 1) * HASH_BYTES);
    if (equalBytes(sha256(block), expected)) {
      this.blockState[b] = COMPLETE;
      this.nackDue[b] = Infinity;
      this.completeCount++;
      if (this.opts.maxUnwrittenBytes != null) {
        this.unwritten.add(block);
        this.unwrittenBytes += block.length;
      }
      this.events.push({ type: 'block', block: b, offset: b * g.blockBytes, data: block });
      if (this.completeCount === g.blockCount) this.checkComplete(now);
      return;
    }
    // Some symbol was corrupt or forged; which one cannot be told, so start this block over.
    this.stats.hashMismatches++;
    const count = (this.mismatches.get(b) ?? 0) + 1;
    this.mismatches.set(b, count);
    this.blockState[b] = EMPTY;
    this.recycleBlock(block);
    if (count >= MAX_MISMATCHES_PER_BLOCK) {
      this.fail('hash-mismatch', `block ${b} failed verification ${count} times: the data or its digest is corrupt`);
      return;
    }
    this.scheduleNack(now, b, 0);
  }

  private onHashes(now: number, h: { firstBlock: number; hashes: Uint8Array }): void {
    const g = this.geometry!;
    const count = h.hashes.length / HASH_BYTES;
    if (h.firstBlock + count > g.blockCount) throw new WireError('digests beyond the last block');
    for (let i = 0; i < count; i++) {
      const b = h.firstBlock + i;
      if (this.hashKnown[b]) continue;
      this.hashes.set(h.hashes.subarray(i * HASH_BYTES, (i + 1) * HASH_BYTES), b * HASH_BYTES);
      this.hashKnown[b] = 1;
      const pending = this.decodedAwaitingHash.get(b);
      if (pending) {
        this.decodedAwaitingHash.delete(b);
        this.verifyBlock(now, b, pending);
      }
    }
  }

  private checkComplete(now: number): void {
    const g = this.geometry;
    // Only a joined receiver completes: the sender must know of it to confirm, and count it.
    if (!g || this.stage !== 'receiving' || this.completeCount < g.blockCount) return;
    if (!this.digest) return; // the sender announces it once it has read the whole image
    const digest = imageDigest(this.hashes);
    if (!equalBytes(digest, this.digest)) {
      this.fail('hash-mismatch', 'every block verified but the image digest does not match: the digest list is corrupt');
      return;
    }
    this.imageDigestValue = digest;
    this.stage = 'complete';
    this.nextJoinAt = Infinity;
    this.schedule.clear();
    this.events.push({ type: 'complete', digest });
    if (this.imageWritten) this.confirm(now);
    else this.nextStatusAt = now;
  }

  /** With confirmWhenWritten: the application has written the image out (flushed); the sender is told now. */
  written(now: number): void {
    if (this.imageWritten) return;
    this.imageWritten = true;
    if (this.stage === 'complete') this.confirm(now);
  }

  private confirm(now: number): void {
    this.confirmTries = 0;
    this.sendStatus(now, ReceiverState.Complete);
    this.nextStatusAt = now + 50;
  }

  // ---- repair requests ---------------------------------------------------------------------------------------

  /**
   * A random back-off in [0, window): truncated exponential in the group size (as NORM, RFC 5740), so that
   * among N receivers only a few draw an early time, and the sender's answer reaches the rest first.
   */
  private backoff(): number {
    const window = nackBackoffWindowMs(this.grttMs);
    const lambda = Math.log(this.groupSize) + 1;
    const x = this.random();
    return (window / lambda) * Math.log(1 + x * (Math.exp(lambda) - 1));
  }

  private quietMs(): number {
    return nackQuietMs(this.grttMs);
  }

  private makeEligible(now: number, upTo: number): void {
    if (upTo <= this.eligibleUpTo) return;
    // Blocks with nothing received (a late joiner's) share one due time, so one NACK covers them all as a run.
    const sharedDue = now + this.quietMs() + this.backoff();
    for (let b = this.eligibleUpTo; b < upTo; b++) {
      if (this.blockState[b] === COMPLETE) continue;
      if (this.partial.has(b)) this.scheduleNack(now, b, this.quietMs());
      else {
        this.nackDue[b] = sharedDue;
        this.schedule.push(sharedDue, b);
      }
    }
    this.eligibleUpTo = upTo;
  }

  private scheduleNack(now: number, b: number, delay: number): void {
    const due = now + delay + this.backoff();
    this.nackDue[b] = due;
    this.schedule.push(due, b);
  }

  private runSchedule(now: number): void {
    const g = this.geometry!;
    const quiet = this.quietMs();
    const retry = this.retryMs();
    const due: NackEntry[] = [];
    let top: number | undefined;
    while ((top = this.schedule.peekKey()) !== undefined && top <= now) {
      const b = this.schedule.pop()!;
      if (this.nackDue[b] !== top || this.blockState[b] === COMPLETE || this.blockState[b] === DECODING) continue;
      const p = this.partial.get(b);
      if (p && now - p.lastReceived < quiet) {
        // Symbols of this block are still arriving: wait until they stop.
        this.scheduleNack(now, b, p.lastReceived + quiet - now);
        continue;
      }
      const need = this.blockState[b] === AWAITING_HASH ? 0 : p ? p.decoder.missing : sourceSymbols(g, b);
      if (p && need > 0 && p.plannedEnd > p.trustedPlan && this.coveredByPlan(p, need)) {
        // The sender already plans enough symbols (another receiver asked): wait for them once, then ask if short.
        p.trustedPlan = p.plannedEnd;
        this.scheduleNack(now, b, retry);
        continue;
      }
      const flags = this.hashKnown[b] ? 0 : NackFlag.hashMissing;
      due.push({ block: b, run: 1, need, seen: p ? Math.min(p.seen, 0xffff) : 0, flags });
      if (p && need > 0) {
        p.askedAgain = p.askedAt >= 0;
        p.askedAt = now;
        p.askedPlan = p.plannedEnd;
      }
    }
    if (due.length === 0) return;
    // Blocks lacking everything (a late joiner's) coalesce into runs, so one request covers thousands.
    due.sort((x, y) => x.block - y.block);
    const capacity = nackCapacity(this.opts.maxDatagram ?? 1400);
    let entries: NackEntry[] = [];
    for (const e of due) {
      const last = entries[entries.length - 1];
      if (last && e.seen === 0 && last.seen === 0 && last.need === e.need && last.flags === e.flags && last.block + last.run === e.block && last.run < 0xffff) {
        last.run++;
      } else {
        if (entries.length >= capacity) {
          this.sendNack(now, entries);
          entries = [];
        }
        entries.push(e);
      }
      this.scheduleNack(now, e.block, retry);
    }
    this.sendNack(now, entries);
  }

  /** A symbol planned after this receiver asked for the block came: time the answer (not after a second request). */
  private answered(now: number, p: PartialBlock): void {
    if (!p.askedAgain) {
      const ms = now - p.askedAt;
      if (this.answerSrttMs === null) {
        this.answerSrttMs = ms;
        this.answerVarMs = ms / 2;
      } else {
        this.answerVarMs += ANSWER_VAR_GAIN * (Math.abs(this.answerSrttMs - ms) - this.answerVarMs);
        this.answerSrttMs += ANSWER_GAIN * (ms - this.answerSrttMs);
      }
    }
    p.askedAt = -1;
    p.askedAgain = false;
  }

  /**
   * How long a request waits for its answer before it is repeated: 6·GRTT (at least 30 ms) until answers were
   * timed, then what they took, srtt + 4·rttvar, within [30 ms, 6·GRTT]. The GRTT is the slowest receiver's
   * round trip, and receivers busy on shared cores stretch it (their reports wait behind their socket queue:
   * 20-110 ms on the test LAN's 8 receivers at 5 % loss, where the path takes 1 ms); a receiver whose
   * last repair was lost then waited 400-650 ms to ask again, the last to finish by that much.
   */
  private retryMs(): number {
    const most = Math.max(30, 6 * this.grttMs);
    if (this.answerSrttMs === null) return most;
    return Math.min(most, Math.max(30, this.answerSrttMs + 4 * this.answerVarMs));
  }

  /** Would the symbols the sender still plans for this block, less this receiver's loss, cover its need? */
  private coveredByPlan(p: PartialBlock, need: number): boolean {
    const loss = Math.min(0.5, this.stats.lossPpm / 1e6);
    return (p.plannedEnd - p.seen) * (1 - loss) >= need;
  }

  private sendNack(now: number, entries: NackEntry[]): void {
    this.push(encodeNack(this.sessionId!, { nodeId: this.opts.nodeId, echo: this.echo(now), entries }));
    this.stats.nackPackets++;
    this.stats.nackEntries += entries.length;
  }
}
