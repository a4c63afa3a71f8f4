// The sender's state machine (sans-IO): fed datagrams, block data and the time; yields datagrams, timer
// deadlines and events. See docs/protocol.md for the rules implemented here.
import { type BlockEncoder, DEFAULT_FEC_SCHEME, FEC_SCHEME_NAMES, type FecScheme, blockEncoder, defaultBlockSymbols, encoderHasSetUp } from '../fec/scheme.js';
import { SEAL_OVERHEAD, openDatagram, type PacketProtector } from './crypto.js';
import { type Geometry, blockLength, makeGeometry, sourceSymbols } from './geometry.js';
import { Pacer, QueueGuard, RateController, UNLIMITED_BPS } from './rate.js';
import {
  AckKind,
  AnnounceFlag,
  EndReason,
  HASH_BYTES,
  type NackPacket,
  PacketType,
  Phase,
  ReceiverState,
  type StatusPacket,
  WireError,
  decodeJoin,
  decodeNack,
  decodeStatus,
  encodeAck,
  encodeAnnounce,
  encodeDataHeader,
  encodeEnd,
  encodeHashes,
  readHeader,
  type Echo,
  DATA_HEADER_BYTES,
  DropReason,
} from './wire.js';
import { type Transmit, type DropCounters, equalBytes, imageDigest, nackBackoffWindowMs, nackQuietMs, newDropCounters, microsOf, rttFromEcho, sha256 } from './common.js';

export interface SenderOptions {
  sessionId: number;
  imageSize: number;
  symbolSize: number;
  /** The code protecting each block (default Reed-Solomon, see DEFAULT_FEC_SCHEME). */
  fec?: FecScheme;
  /** Source symbols per block (k): 1..255 with Reed-Solomon (default 128), 1..8192 with RaptorQ (default 4096, see defaultBlockSymbols). */
  blockSymbols?: number;
  /** Ceiling on the frame rate in bits/s (default: unlimited). */
  maxRateBps?: number;
  /** Floor for the adaptive rate (default 1 Mbit/s). */
  minRateBps?: number;
  /** Slow down on receiver loss above its background (default true). */
  adaptiveRate?: boolean;
  /** Bytes each datagram costs on the link beyond its UDP payload (default 42: Ethernet + IPv4 + UDP). */
  frameOverhead?: number;
  /** Start once this many receivers have joined (default 1). */
  minReceivers?: number;
  /** Start anyway this long after the first receiver joined (default: wait for minReceivers). */
  maxWaitMs?: number | null;
  /** Wait this long after minReceivers is reached, so that receivers started together all join (default 500). */
  settleMs?: number;
  /** Start sending at once; receivers that join later catch up in later passes (auto-cast). */
  autoStart?: boolean;
  /** Drop a receiver not heard from for this long (default 15 s, at least 6 report intervals). */
  receiverTimeoutMs?: number;
  maxReceivers?: number;
  /** Parity sent with every block in the first pass, as a fraction of k (default 0). */
  proactiveParity?: number;
  /** Per-block SHA-256 digests if known in advance (blockCount * 32 bytes). */
  blockHashes?: Uint8Array;
  protector?: PacketProtector;
  /** Image data kept in memory for repairs, in bytes (default 64 MiB, at least 4 blocks). */
  cacheBytes?: number;
  /** Blocks requested ahead of the first pass (default 8). */
  readAhead?: number;
  /** End the session when no receiver has been heard from for this long while transferring (default none). */
  idleTimeoutMs?: number | null;
  /**
   * Slow-client handling (as WDS): the rate never drops below this for any receiver, and a receiver that takes in
   * less than it over two consecutive 2-second windows in which the sender sent at least this much is dropped
   * (ACK dropped, reason too slow) so it can fall back to unicast. Default: none (the session slows to its
   * slowest receiver, down to minRateBps).
   */
  minReceiverRateBps?: number | null;
  /**
   * Parity is made elsewhere (default false): instead of encoding when a repair goes out, the sender asks for
   * the symbols with a need-parity event, sends other blocks meanwhile, and sends the repair once
   * supplyParity() brings them. For codes whose set-up would stall the pacing (a RaptorQ encoder solves its
   * whole block first), so the driver can run it on another thread.
   */
  asyncParity?: boolean;
}

export type ReceiverOutcome = 'active' | 'completed' | 'dropped' | 'left' | 'failed';

export interface ReceiverRecord {
  nodeId: number;
  name: string;
  address: string;
  joinedAt: number;
  lastHeard: number;
  outcome: ReceiverOutcome;
  reason: string | null;
  /** Why it was dropped (outcome 'dropped'), for applications that act on it (e.g. a slower stream). */
  dropReason: DropReason | null;
  completedAt: number | null;
  rttMs: number | null;
  lossPpm: number;
  blocksComplete: number;
  nacks: number;
  lastStatusAt: number | null;
}

export interface SenderStats {
  phase: 'waiting' | 'transferring' | 'ended';
  startedAt: number | null;
  endedAt: number | null;
  sourcePackets: number;
  parityPackets: number;
  controlPackets: number;
  /** UDP payload bytes sent. */
  datagramBytes: number;
  /** Estimated link bytes (payload + frame overhead per datagram). */
  wireBytes: number;
  feedbackPackets: number;
  nackEntries: number;
  rateBps: number;
  rateDecreases: number;
  /** Times the sender eased off to let its own queue at the bottleneck drain (see QueueGuard). */
  queueDrains: number;
  /** Times a rise in round-trip time that draining did not shrink was taken as the new floor (see QueueGuard). */
  queueRebases: number;
  /** The slowest receiver's bottleneck as last measured, which the rate is held just under (null: none known). */
  bottleneckBps: number | null;
  blocksFirstPassSent: number;
  /** Blocks asked of the application (need-block): the block count, plus re-reads of evicted blocks for repairs. */
  blocksRead: number;
  drops: DropCounters;
}

export interface SenderSummary {
  sessionId: number;
  imageSize: number;
  /** FEC scheme name (docs/fec.md) and source symbols per block. */
  fec: string;
  blockSymbols: number;
  blockCount: number;
  endReason: keyof typeof EndReason;
  durationMs: number;
  stats: SenderStats;
  receivers: ReceiverRecord[];
}

export type SenderEvent =
  | { type: 'need-block'; block: number }
  /** The sender no longer holds the buffer given to supplyBlock (evicted, or copied): it may be reused. */
  | { type: 'block-released'; block: number; data: Uint8Array }
  /**
   * asyncParity: parity symbols `ids` of block `block` (k source symbols, `data` its source, zero-padded to whole
   * symbols) are wanted; answer with supplyParity(). The sender may release the block before the answer: the
   * application must keep `data` intact until it has made the symbols. `data` is null when the sender no longer
   * holds the block and gave it to the application before (in a prepare-parity or need-parity): the
   * application answers from the coder it kept for the block or, if it kept none, with parityUnavailable(),
   * and the sender reads the block again.
   */
  | { type: 'need-parity'; block: number; k: number; ids: number[]; data: Uint8Array | null }
  /**
   * asyncParity: block `block`'s repairs are likely (receivers report loss) and its first pass has begun. An
   * application whose code has a costly set-up (a RaptorQ encoder solves the whole block) may make it now and
   * keep it, so that the block's need-parity is answered at once, without the block; nothing is supplied for
   * it. May be ignored (then answer a need-parity without data with parityUnavailable()).
   */
  | { type: 'prepare-parity'; block: number; k: number; data: Uint8Array }
  | { type: 'started'; receivers: number }
  | { type: 'receiver-joined'; receiver: ReceiverRecord }
  | { type: 'receiver-rejected'; nodeId: number; address: string }
  | { type: 'receiver-completed'; receiver: ReceiverRecord }
  | { type: 'receiver-dropped'; receiver: ReceiverRecord }
  | { type: 'finished'; summary: SenderSummary };

const MAX_TSN = 0xffff;
/** What a block's next transmission waits for. */
enum Ready {
  Now,
  AfterRead,
  AfterParity,
}
const HASHES_PER_PACKET = 40;
const END_REPEATS = 3;
/**
 * ANNOUNCE period while waiting for receivers: a receiver that starts listening just after one waits this long
 * to join. (With 50 ms, 10,000 simulated receivers at 5 % loss sent more NACKs per block in 4 of 5 seeds, 83
 * against 48 on average, fewer in one. They come in clusters on a few blocks (docs/protocol.md, "Limit of this
 * suppression"), and the announcements shift which loss each receiver draws; whether the period matters beyond
 * that was not settled, and 200 ms costs nothing where receivers listen before the sender starts.)
 */
const WAITING_ANNOUNCE_MS = 200;
/** ANNOUNCE period while transferring and ending. */
const ANNOUNCE_MS = 100;
/** GRTT is the largest receiver RTT of the current and the previous window this long: it follows a rise at once, a fall within two windows. */
const GRTT_WINDOW_MS = 500;
/** Slow-client handling: window over which a receiver's intake is measured, and consecutive slow windows before a drop. */
const SLOW_WINDOW_MS = 2000;
const SLOW_STRIKES = 2;
/**
 * Share of the minimum receiver rate a receiver may lose at random and still count as keeping up. With the rate
 * held at that minimum (a slow receiver's loss takes it there), a receiver losing 2 % took in 19.6 Mbit/s of
 * 20 and was dropped as too slow (simulator, 1 seed in 40); one that cannot keep up takes in far less.
 */
const SLOW_LOSS_ALLOWANCE = 0.1;

export class Sender {
  readonly geometry: Geometry;
  /** Whether parity is made outside the engine (SenderOptions.asyncParity). */
  readonly asyncParity: boolean;
  private readonly opts: Required<
    Omit<SenderOptions, 'imageSize' | 'symbolSize' | 'fec' | 'blockSymbols' | 'blockHashes' | 'protector' | 'maxWaitMs' | 'idleTimeoutMs' | 'maxReceivers' | 'minReceiverRateBps' | 'cacheBytes'>
  > &
    Pick<SenderOptions, 'protector'> & {
      maxWaitMs: number | null;
      idleTimeoutMs: number | null;
      maxReceivers: number;
      minReceiverRateBps: number | null;
      cacheBlocks: number;
    };
  private phase: Phase = Phase.Waiting;
  private readonly createdAt: number;
  private firstJoinAt: number | null = null;
  private minReachedAt: number | null = null;
  private startedAt: number | null = null;
  private endedAt: number | null = null;
  private endReason: EndReason = EndReason.AllDone;
  private endsSent = 0;
  private nextEndAt = 0;
  private finished = false;

  // Per block: transmissions sent and planned (transmission number tsn = symbol id), last send time.
  private readonly sentEnd: Uint16Array;
  private readonly plannedEnd: Uint16Array;
  private readonly lastSend: Float64Array;
  private readonly hashes: Uint8Array;
  private readonly hashKnown: Uint8Array;
  private hashedPrefix = 0;
  private hashSentPrefix = 0;
  private digest: Uint8Array | null = null;
  private readonly hashChunkSentAt = new Map<number, number>();
  private readonly hashRequests: number[] = [];

  private readonly cache = new Map<number, Uint8Array>();
  /** Cached blocks held in a zero-padded copy the sender made (not the application's buffer). */
  private readonly paddedCopies = new Set<number>();
  private readonly requested = new Set<number>();
  /** Encoders of recently repaired blocks (a RaptorQ encoder is costly to set up: keep it for the next round). */
  private readonly encoders = new Map<number, BlockEncoder>();
  private readonly maxEncoders: number;
  private readonly parity = new Map<number, Map<number, Uint8Array>>();
  /** asyncParity: per block, the transmission number up to which parity has been asked for (exclusive). */
  private readonly parityAskedEnd = new Map<number, number>();
  /** asyncParity: blocks with a need-parity event not answered yet. */
  private readonly parityAwaited = new Set<number>();
  /** asyncParity: blocks the application was given for its coder (prepare-parity, need-parity with data). */
  private readonly parityCoderGiven: Uint8Array;

  private sourceNext = 0; // next block of the first pass
  private firstPassHashes: [number, number] | null = null;
  private starvedForData = false;
  private quickAnnounces = 0;
  private currentBurst = -1; // block being sent contiguously
  private readonly urgent: number[] = [];
  private readonly inUrgent: Uint8Array;
  private readonly inBulk: Uint8Array;
  private bulkCount = 0;
  private bulkCursor = 0;
  private seq = 0;

  private readonly receivers = new Map<number, ReceiverRecord>();
  private activeCount = 0;
  private lastFeedbackAt: number;
  private grttMs = 1;
  private grttWindowMax = 0;
  private grttPrevWindowMax = 0;
  private grttWindowStart: number;
  private nextAnnounceAt: number;
  private nextHousekeepingAt: number;
  private readonly control: Transmit[] = [];
  private readonly events: SenderEvent[] = [];
  private readonly pacer: Pacer;
  private readonly queueGuard = new QueueGuard();
  /** Worst active receiver's recent loss (0..0.5): repair bursts are enlarged by it. */
  private repairLoss = 0;
  /** Frame rate actually achieved lately (bits/s): the last window of at least 250 ms (0: none yet). */
  private sentBps = 0;
  private sentWindowStart = 0;
  private sentWindowBytes = 0;
  private readonly rate: RateController;
  /** Bits a full DATA datagram costs on the link (what receivers' DATA counts are converted to rates with). */
  private readonly dataFrameBits: number;
  private readonly stats: SenderStats;
  private readonly dropReasons = new Map<number, DropReason>();
  /** Slow-client handling: what each receiver took in over the current window. */
  private readonly rateWindows = new Map<number, { start: number; packets: number; sentBytes: number; strikes: number }>();

  constructor(options: SenderOptions, now: number) {
    const fec = options.fec ?? DEFAULT_FEC_SCHEME;
    this.geometry = makeGeometry(fec, options.imageSize, options.symbolSize, options.blockSymbols ?? defaultBlockSymbols(fec, options.symbolSize));
    const cacheBlocks = Math.max(4, Math.floor((options.cacheBytes ?? 64 * 2 ** 20) / this.geometry.blockBytes));
    const maxRate = options.maxRateBps ?? UNLIMITED_BPS;
    this.opts = {
      sessionId: options.sessionId >>> 0,
      maxRateBps: maxRate,
      minRateBps: Math.min(Math.max(options.minRateBps ?? 1e6, options.minReceiverRateBps ?? 0), maxRate),
      adaptiveRate: options.adaptiveRate ?? true,
      frameOverhead: options.frameOverhead ?? 42,
      minReceivers: Math.max(0, options.minReceivers ?? 1),
      maxWaitMs: options.maxWaitMs ?? null,
      settleMs: options.settleMs ?? 500,
      autoStart: options.autoStart ?? false,
      receiverTimeoutMs: options.receiverTimeoutMs ?? 15_000,
      maxReceivers: options.maxReceivers ?? Number.MAX_SAFE_INTEGER,
      proactiveParity: Math.max(0, options.proactiveParity ?? 0),
      cacheBlocks,
      // Blocks read ahead must not evict the block being sent before it goes out (large blocks, small cache).
      readAhead: Math.max(1, Math.min(options.readAhead ?? 8, Math.floor(cacheBlocks / 2))),
      idleTimeoutMs: options.idleTimeoutMs ?? null,
      minReceiverRateBps: options.minReceiverRateBps ?? null,
      protector: options.protector,
      asyncParity: options.asyncParity ?? false,
    };
    this.asyncParity = this.opts.asyncParity;
    // A RaptorQ encoder holds about a block (its intermediate symbols) and costs a full solve to set up: keep
    // one for every other cached block, so repair rounds of interleaved blocks do not rebuild them.
    this.maxEncoders = Math.max(2, Math.floor(this.opts.cacheBlocks / 2));
    const n = this.geometry.blockCount;
    this.sentEnd = new Uint16Array(n);
    this.plannedEnd = new Uint16Array(n);
    this.lastSend = new Float64Array(n).fill(-Infinity);
    this.hashes = new Uint8Array(n * HASH_BYTES);
    this.hashKnown = new Uint8Array(n);
    this.inUrgent = new Uint8Array(n);
    this.inBulk = new Uint8Array(n);
    this.parityCoderGiven = new Uint8Array(n);
    if (options.blockHashes) {
      if (options.blockHashes.length !== n * HASH_BYTES) {
        throw new RangeError(`blockHashes must hold ${n} digests of ${HASH_BYTES} bytes`);
      }
      this.hashes.set(options.blockHashes);
      this.hashKnown.fill(1);
      this.hashedPrefix = n;
      this.digest = imageDigest(this.hashes);
    } else if (n === 0) {
      this.digest = imageDigest(this.hashes);
    }
    this.createdAt = now;
    this.lastFeedbackAt = now;
    this.grttWindowStart = now;
    this.nextAnnounceAt = now;
    this.nextHousekeepingAt = now;
    const dataFrameBytes = DATA_HEADER_BYTES + this.geometry.symbolSize + this.opts.frameOverhead + (this.opts.protector ? SEAL_OVERHEAD : 0);
    this.dataFrameBits = dataFrameBytes * 8;
    this.pacer = new Pacer(maxRate, now, dataFrameBytes);
    this.rate = new RateController({ maxBps: maxRate, minBps: this.opts.minRateBps, adaptive: this.opts.adaptiveRate });
    this.stats = {
      phase: 'waiting',
      startedAt: null,
      endedAt: null,
      sourcePackets: 0,
      parityPackets: 0,
      controlPackets: 0,
      datagramBytes: 0,
      wireBytes: 0,
      feedbackPackets: 0,
      nackEntries: 0,
      rateBps: maxRate,
      rateDecreases: 0,
      queueDrains: 0,
      queueRebases: 0,
      bottleneckBps: null,
      blocksFirstPassSent: 0,
      blocksRead: 0,
      drops: newDropCounters(),
    };
    // The first block is read while the receivers join, so the data starts with the transfer (on the test LAN
    // it went out 4-9 ms after the start, behind that read and its digest).
    if (n > 0) this.request(0);
    if (this.opts.autoStart) this.start(now);
  }

  // ---- public API ------------------------------------------------------------------------------------------

  get sessionId(): number {
    return this.opts.sessionId;
  }

  get isFinished(): boolean {
    return this.finished;
  }

  pollEvent(): SenderEvent | undefined {
    return this.events.shift();
  }

  /**
   * Image data of a block the sender asked for with a need-block event (the image's last block, if short, may
   * come zero-padded to whole symbols). The sender keeps `data` (by reference, unchanged) until a
   * block-released event hands it back; datagrams polled until then may point into it.
   * `digest`, the block's SHA-256 if the application made it (on another thread: hashing a large block here
   * would stall the pacing), saves the sender hashing it; null means it is being made and comes with
   * supplyDigest(): meanwhile the block may go out, and its digest follows it.
   */
  supplyBlock(block: number, data: Uint8Array, digest?: Uint8Array | null): void {
    if (!Number.isInteger(block) || block < 0 || block >= this.geometry.blockCount) {
      throw new RangeError(`no block ${block}`);
    }
    const length = blockLength(this.geometry, block);
    // The code works on whole symbols: the image's last block, if short, is zero-padded; the application may
    // supply it padded (saves a copy: 18 MB of fresh memory, a 12 ms stall, for a RaptorQ block).
    const padded = sourceSymbols(this.geometry, block) * this.geometry.symbolSize;
    if (data.length !== length && data.length !== padded) {
      throw new RangeError(`block ${block} must be ${length} bytes${padded !== length ? ` (or ${padded}, zero-padded to whole symbols)` : ''}, got ${data.length}`);
    }
    if (data.length !== length && data.subarray(length).some((byte) => byte !== 0)) throw new RangeError(`block ${block}'s padding is not zeros`);
    if (digest && digest.length !== HASH_BYTES) throw new RangeError(`block ${block}'s digest must be ${HASH_BYTES} bytes, got ${digest.length}`);
    this.requested.delete(block);
    this.starvedForData = false;
    if (!this.hashKnown[block] && digest !== null) this.noteDigest(block, digest ?? sha256(data.subarray(0, length)));
    this.evict(block);
    let stored = data;
    if (padded !== data.length) {
      stored = new Uint8Array(padded);
      stored.set(data);
      this.paddedCopies.add(block);
      this.events.push({ type: 'block-released', block, data });
    }
    this.cache.set(block, stored);
    while (this.cache.size > this.opts.cacheBlocks) this.evict(this.cache.keys().next().value as number);
  }

  private evict(block: number): void {
    const data = this.cache.get(block);
    if (!data) return;
    this.cache.delete(block);
    // Parity made for it stays (it goes out without the block), and so does parity on its way.
    this.dropEncoder(block);
    // A padded copy is the sender's own; the application's buffer went back when it was made.
    if (!this.paddedCopies.delete(block)) this.events.push({ type: 'block-released', block, data });
  }

  /**
   * asyncParity: the parity symbols a need-parity event asked for (symbols[i] is symbol ids[i], symbolSize
   * bytes; the sender keeps them by reference), also for a block evicted meanwhile: parity goes out without
   * its block.
   */
  supplyParity(block: number, ids: readonly number[], symbols: readonly Uint8Array[]): void {
    if (ids.length !== symbols.length) throw new RangeError(`supplyParity: ${ids.length} ids, ${symbols.length} symbols`);
    for (const s of symbols) {
      if (s.length !== this.geometry.symbolSize) throw new RangeError(`supplyParity: a symbol of ${s.length} bytes, expected ${this.geometry.symbolSize}`);
    }
    this.parityAwaited.delete(block);
    let held = this.parity.get(block);
    if (!held) this.parity.set(block, (held = new Map()));
    for (let i = 0; i < ids.length; i++) held.set(ids[i]!, symbols[i]!);
    this.starvedForData = false;
  }

  /**
   * The SHA-256 of a block supplied with digest null. If the block's first pass has begun, the digest goes out
   * at once (receivers verify the block against it).
   */
  supplyDigest(block: number, digest: Uint8Array): void {
    if (!Number.isInteger(block) || block < 0 || block >= this.geometry.blockCount) throw new RangeError(`supplyDigest: no block ${block}`);
    if (digest.length !== HASH_BYTES) throw new RangeError(`block ${block}'s digest must be ${HASH_BYTES} bytes, got ${digest.length}`);
    if (this.hashKnown[block]) return;
    this.noteDigest(block, digest);
    if (block < this.sourceNext) this.requestHashes(block, block + 1);
  }

  private noteDigest(block: number, digest: Uint8Array): void {
    this.hashes.set(digest, block * HASH_BYTES);
    this.hashKnown[block] = 1;
    while (this.hashedPrefix < this.geometry.blockCount && this.hashKnown[this.hashedPrefix]) this.hashedPrefix++;
    if (this.hashedPrefix === this.geometry.blockCount && !this.digest) {
      this.digest = imageDigest(this.hashes);
      this.nextAnnounceAt = -Infinity;
      this.quickAnnounces = 3;
    }
  }

  /**
   * asyncParity: the application cannot answer a need-parity without data for `block` (it kept no coder for
   * it): the sender reads the block again and asks with it.
   */
  parityUnavailable(block: number): void {
    if (!Number.isInteger(block) || block < 0 || block >= this.geometry.blockCount) throw new RangeError(`parityUnavailable: no block ${block}`);
    this.parityAwaited.delete(block);
    this.parityCoderGiven[block] = 0;
    this.starvedForData = false;
  }

  /** Ends the session now (receivers still busy are told and fail). */
  cancel(now: number): void {
    if (this.phase !== Phase.Ending) this.beginEnd(now, EndReason.Cancelled);
  }

  /** Starts the transfer now, whatever the start conditions say. */
  startNow(now: number): void {
    if (this.phase === Phase.Waiting) this.start(now);
  }

  getStats(): SenderStats {
    this.stats.rateBps = this.pacer.bitsPerSecond;
    this.stats.rateDecreases = this.rate.decreases;
    this.stats.queueDrains = this.queueGuard.drains;
    this.stats.queueRebases = this.queueGuard.rebases;
    this.stats.bottleneckBps = this.rate.bottleneck;
    return this.stats;
  }

  getReceivers(): ReceiverRecord[] {
    return [...this.receivers.values()];
  }

  handleDatagram(now: number, datagram: Uint8Array, from: string): void {
    try {
      let header = readHeader(datagram);
      if (header.sessionId !== this.opts.sessionId) {
        this.stats.drops.otherSession++;
        return;
      }
      const opened = openDatagram(datagram, header, this.opts.protector, this.stats.drops);
      if (!opened) return;
      const { buf } = opened;
      header = opened.header;
      switch (header.type) {
        case PacketType.Join:
          this.onJoin(now, decodeJoin(buf), from);
          break;
        case PacketType.Status:
          this.onStatus(now, decodeStatus(buf), from);
          break;
        case PacketType.Nack:
          this.onNack(now, decodeNack(buf));
          break;
        default:
          this.stats.drops.unexpected++;
      }
    } catch (err) {
      if (err instanceof WireError) this.stats.drops.malformed++;
      else throw err;
    }
  }

  /** Earliest time at which handleTimeout or poll has something to do (null: nothing until input arrives). */
  nextTimeout(now: number): number | null {
    if (this.finished) return null;
    // Ending: only the END repeats are due (announcements stop, so their stale deadline must not count).
    if (this.phase === Phase.Ending) return this.control.length > 0 ? now : this.nextEndAt;
    let t = Math.min(this.nextAnnounceAt, this.nextHousekeepingAt);
    if (this.control.length > 0) return now;
    // While the only sendable blocks are still being read, supplyBlock is what wakes the sender up.
    if (this.phase === Phase.Transferring && this.hasSendableData() && !this.starvedForData) t = Math.min(t, this.pacer.nextSendTime(now));
    return t;
  }

  handleTimeout(now: number): void {
    if (this.finished) return;
    if (now >= this.nextHousekeepingAt) this.housekeeping(now);
    if (this.phase === Phase.Ending) {
      if (now >= this.nextEndAt) this.sendEnd(now);
      return;
    }
    if (now >= this.nextAnnounceAt) this.queueAnnounce(now);
  }

  /** Next datagram to send now, or undefined when nothing may go now (see nextTimeout). */
  poll(now: number): Transmit | undefined {
    const control = this.control.shift();
    if (control) return control;
    if (this.phase !== Phase.Transferring) return undefined;
    if (this.pendingHashes(now)) return this.control.shift();
    return this.nextData(now);
  }

  // ---- feedback ----------------------------------------------------------------------------------------------

  private onJoin(now: number, join: { nodeId: number; echo: Echo; name: string }, from: string): void {
    this.stats.feedbackPackets++;
    this.lastFeedbackAt = now;
    let r = this.receivers.get(join.nodeId);
    if (!r) {
      if (this.phase === Phase.Ending || this.activeCount >= this.opts.maxReceivers) {
        this.queueControl(encodeAck(this.opts.sessionId, { nodeId: join.nodeId, kind: AckKind.Rejected }), from);
        this.events.push({ type: 'receiver-rejected', nodeId: join.nodeId, address: from });
        return;
      }
      r = {
        nodeId: join.nodeId,
        name: join.name,
        address: from,
        joinedAt: now,
        lastHeard: now,
        outcome: 'active',
        reason: null,
        completedAt: null,
        rttMs: null,
        lossPpm: 0,
        blocksComplete: 0,
        nacks: 0,
        lastStatusAt: null,
        dropReason: null,
      };
      this.receivers.set(join.nodeId, r);
      this.activeCount++;
      this.firstJoinAt ??= now;
      this.events.push({ type: 'receiver-joined', receiver: r });
      this.nextAnnounceAt = Math.min(this.nextAnnounceAt, now + 5);
    }
    r.lastHeard = now;
    r.address = from;
    this.sampleRtt(now, r, join.echo);
    const kind = r.outcome === 'dropped' ? AckKind.Dropped : r.outcome === 'completed' ? AckKind.DoneConfirmed : AckKind.Joined;
    this.queueControl(encodeAck(this.opts.sessionId, { nodeId: r.nodeId, kind, dropReason: this.dropReasons.get(r.nodeId) }), from);
    if (this.phase === Phase.Waiting) this.checkStart(now);
  }

  private onStatus(now: number, s: StatusPacket, from: string): void {
    this.stats.feedbackPackets++;
    this.lastFeedbackAt = now;
    const r = this.receivers.get(s.nodeId);
    if (!r) {
      this.stats.drops.unknownReceiver++;
      return;
    }
    r.lastHeard = now;
    r.address = from;
    r.blocksComplete = s.blocksComplete;
    const previousStatusAt = r.lastStatusAt;
    r.lastStatusAt = now;
    this.sampleRtt(now, r, s.echo);
    if (r.outcome === 'dropped') {
      this.queueControl(encodeAck(this.opts.sessionId, { nodeId: r.nodeId, kind: AckKind.Dropped, dropReason: this.dropReasons.get(r.nodeId) }), from);
      return;
    }
    if (s.state === ReceiverState.Receiving && r.outcome === 'active') {
      r.lossPpm = s.lossPpm;
      // One holding every block takes nothing in while it writes the image out (confirmWhenWritten): not slow.
      if (s.blocksComplete < this.geometry.blockCount && this.judgeReceiverRate(now, r, s.received)) return;
      if (s.received > 0) this.rate.report(r.nodeId, s.lossPpm / 1e6, s.received, now, this.intakeRate(now, previousStatusAt, s), s.lossEvents);
      const allowed = this.rate.update(now, this.statusIntervalMs(), this.sentBps);
      this.pacer.setRate(this.opts.adaptiveRate ? allowed * this.queueGuard.factor : allowed, now);
    } else if (s.state === ReceiverState.Complete) {
      if (r.outcome === 'active') {
        if (!this.digest || !s.digest || !equalBytes(this.digest, s.digest)) {
          // A receiver claiming completion with another image digest is broken or lying: never count it done.
          this.finishReceiver(now, r, 'failed', 'reported a different image digest');
        } else {
          this.finishReceiver(now, r, 'completed', null);
        }
      }
      if (r.outcome === 'completed') {
        this.queueControl(encodeAck(this.opts.sessionId, { nodeId: r.nodeId, kind: AckKind.DoneConfirmed }), from);
      }
    } else if (s.state === ReceiverState.Leaving && r.outcome === 'active') {
      this.finishReceiver(now, r, 'left', 'receiver gave up');
    }
  }

  private onNack(now: number, nack: NackPacket): void {
    this.stats.feedbackPackets++;
    this.lastFeedbackAt = now;
    const r = this.receivers.get(nack.nodeId);
    if (!r || r.outcome !== 'active') {
      this.stats.drops.unknownReceiver++;
      return;
    }
    r.lastHeard = now;
    r.nacks++;
    this.sampleRtt(now, r, nack.echo);
    if (this.phase !== Phase.Transferring) return;
    const lossHorizon = Math.max(4 * this.grttMs, 20);
    const g = this.geometry;
    for (const e of nack.entries) {
      this.stats.nackEntries++;
      const end = Math.min(e.block + e.run, g.blockCount);
      if (e.block >= g.blockCount) {
        this.stats.drops.malformed++;
        continue;
      }
      if (e.flags & 1) this.requestHashes(e.block, end);
      if (e.need === 0) continue;
      for (let b = e.block; b < end; b++) {
        if (b >= this.sourceNext && this.plannedEnd[b] === 0) continue; // not sent yet: the first pass will come
        const k = sourceSymbols(g, b);
        const need = Math.min(e.need, k);
        const recent = now - this.lastSend[b]! < lossHorizon;
        // Transmissions after what the receiver saw may still be in flight if they went out recently;
        // older ones are lost for it, so only the unsent remainder still counts as coming.
        const base = recent ? Math.min(e.seen, this.sentEnd[b]!) : this.sentEnd[b]!;
        // Add what the worst receiver is expected to lose of the burst itself: fewer repair rounds. Rounded, not
        // rounded up: at 1 % loss a burst of 1-3 symbols would always get one more, 0.6-0.7 % of the image in
        // all (simulator, 3 and 8 receivers: wire 1.025 and 1.031 against 1.031 and 1.038, no slower).
        const target = Math.min(MAX_TSN, base + need + Math.round((need * this.repairLoss) / (1 - this.repairLoss)));
        if (target > this.plannedEnd[b]!) {
          this.plannedEnd[b] = target;
          if (e.seen === 0 && need === k) this.addBulk(b);
          else this.addUrgent(b);
        }
      }
    }
    // The first loss reported: the block in its first pass will want repairs too.
    const firstPass = this.firstPassBlock();
    if (firstPass >= 0) this.prepareParity(firstPass);
  }

  /**
   * The rate a receiver took DATA in over its last status interval: the interval it reports or, from receivers
   * that do not say, the time since its previous STATUS arrived (which a busy receiver's late timers blur).
   * Null when neither is known (that report was lost, or there was none).
   */
  private intakeRate(now: number, previousStatusAt: number | null, s: StatusPacket): number | null {
    let elapsed = s.intervalMicros / 1000;
    if (elapsed === 0) {
      if (previousStatusAt === null) return null;
      const interval = this.statusIntervalMs();
      elapsed = now - previousStatusAt;
      // Receivers spread their reports by ±10 % of the interval; a gap far longer spans a lost report.
      if (elapsed < interval * 0.5 || elapsed > interval * 1.5) return null;
    }
    return (s.received * this.dataFrameBits * 1000) / elapsed;
  }

  private sampleRtt(now: number, r: ReceiverRecord, echo: Echo): void {
    const rtt = rttFromEcho(now, echo);
    if (rtt === null) return;
    this.queueGuard.sample(r.nodeId, rtt, now);
    // Down fast, up slowly: a receiver's samples run long while it is busy (starting up, or behind on its
    // socket), and a GRTT set by such a sample slowed every repair timer for seconds (20 ms against 2).
    r.rttMs = r.rttMs === null ? rtt : rtt < r.rttMs ? (r.rttMs + rtt) / 2 : r.rttMs * 0.875 + rtt * 0.125;
    this.grttWindowMax = Math.max(this.grttWindowMax, r.rttMs);
    this.grttMs = Math.max(0.5, this.grttWindowMax, this.grttPrevWindowMax);
  }

  /**
   * Drops an active receiver (for example one the operator removed): it is told at once, and again whenever it
   * speaks. False if there is no such active receiver.
   */
  dropReceiver(now: number, nodeId: number, reason = 'removed by the operator'): boolean {
    const r = this.receivers.get(nodeId);
    if (!r || r.outcome !== 'active') return false;
    this.drop(now, r, DropReason.Removed, reason);
    return true;
  }

  private drop(now: number, r: ReceiverRecord, code: DropReason, reason: string): void {
    if (r.outcome !== 'active') return;
    this.dropReasons.set(r.nodeId, code);
    r.dropReason = code;
    this.queueControl(encodeAck(this.opts.sessionId, { nodeId: r.nodeId, kind: AckKind.Dropped, dropReason: code }), r.address);
    this.finishReceiver(now, r, 'dropped', reason);
  }

  /**
   * Slow-client handling: counts what the receiver took in per window (its STATUS reports) against what the
   * sender sent. True if the receiver was dropped.
   */
  private judgeReceiverRate(now: number, r: ReceiverRecord, received: number): boolean {
    const floor = this.opts.minReceiverRateBps;
    if (floor === null || this.phase !== Phase.Transferring) return false;
    let w = this.rateWindows.get(r.nodeId);
    if (!w) {
      w = { start: now, packets: 0, sentBytes: this.stats.wireBytes, strikes: 0 };
      this.rateWindows.set(r.nodeId, w);
      return false;
    }
    w.packets += received;
    const elapsed = now - w.start;
    if (elapsed < SLOW_WINDOW_MS) return false;
    const takenBps = (w.packets * this.dataFrameBits * 1000) / elapsed;
    const sentBps = ((this.stats.wireBytes - w.sentBytes) * 8 * 1000) / elapsed;
    // Only a window in which the sender offered at least the floor says anything about the receiver.
    if (sentBps >= floor) w.strikes = takenBps < floor * (1 - SLOW_LOSS_ALLOWANCE) ? w.strikes + 1 : 0;
    w.start = now;
    w.packets = 0;
    w.sentBytes = this.stats.wireBytes;
    if (w.strikes < SLOW_STRIKES) return false;
    const mbps = (n: number) => (n / 1e6).toFixed(1);
    this.drop(now, r, DropReason.TooSlow, `too slow: took in ${mbps(takenBps)} Mbit/s, the session's minimum is ${mbps(floor)} Mbit/s`);
    return true;
  }

  private finishReceiver(now: number, r: ReceiverRecord, outcome: ReceiverOutcome, reason: string | null): void {
    if (r.outcome !== 'active') return;
    r.outcome = outcome;
    r.reason = reason;
    this.activeCount--;
    this.rate.forget(r.nodeId);
    this.queueGuard.forget(r.nodeId);
    if (outcome === 'completed') {
      r.completedAt = now;
      this.events.push({ type: 'receiver-completed', receiver: r });
    } else {
      this.events.push({ type: 'receiver-dropped', receiver: r });
    }
    this.checkAllDone(now);
  }

  private checkAllDone(now: number): void {
    const transferring = this.phase === Phase.Transferring || (this.phase === Phase.Waiting && this.geometry.blockCount === 0);
    if (transferring && this.activeCount === 0 && this.receivers.size > 0) {
      const completed = [...this.receivers.values()].some((r) => r.outcome === 'completed');
      this.beginEnd(now, completed ? EndReason.AllDone : EndReason.NoReceivers);
    }
  }

  // ---- timers ------------------------------------------------------------------------------------------------

  private statusIntervalMs(): number {
    return Math.min(5000, Math.max(250, Math.ceil(this.activeCount * 0.25)));
  }

  private housekeeping(now: number): void {
    this.nextHousekeepingAt = now + 100;
    if (now - this.sentWindowStart >= 250) {
      // The last window alone: an average reaching back into quieter times would understate the bottleneck.
      this.sentBps = ((this.stats.wireBytes - this.sentWindowBytes) * 8 * 1000) / (now - this.sentWindowStart);
      this.sentWindowStart = now;
      this.sentWindowBytes = this.stats.wireBytes;
    }
    if (now - this.grttWindowStart > GRTT_WINDOW_MS) {
      this.grttPrevWindowMax = this.grttWindowMax;
      this.grttWindowMax = 0;
      this.grttWindowStart = now;
    }
    const timeout = Math.max(this.opts.receiverTimeoutMs, 6 * this.statusIntervalMs());
    let worstLoss = 0;
    for (const r of this.receivers.values()) {
      if (r.outcome === 'active') worstLoss = Math.max(worstLoss, r.lossPpm / 1e6);
      if (r.outcome === 'active' && now - r.lastHeard > timeout) {
        this.drop(now, r, DropReason.Silent, `silent for ${Math.round((now - r.lastHeard) / 1000)} s`);
      }
    }
    this.repairLoss = Math.min(0.5, worstLoss);
    if (this.phase === Phase.Waiting) this.checkStart(now);
    if (
      this.phase === Phase.Transferring &&
      this.opts.idleTimeoutMs !== null &&
      now - this.lastFeedbackAt > this.opts.idleTimeoutMs
    ) {
      this.beginEnd(now, EndReason.Limit);
    }
  }

  private checkStart(now: number): void {
    const n = this.activeCount;
    if (n >= this.opts.minReceivers && n > 0) {
      this.minReachedAt ??= now;
      // Compared as the deadline is computed (now - a >= b can differ from now >= a + b in floating point).
      if (now >= this.minReachedAt + this.opts.settleMs) this.start(now);
      else this.nextHousekeepingAt = Math.min(this.nextHousekeepingAt, this.minReachedAt + this.opts.settleMs);
    } else {
      this.minReachedAt = null;
      if (this.opts.maxWaitMs !== null && this.firstJoinAt !== null && n > 0) {
        if (now >= this.firstJoinAt + this.opts.maxWaitMs) this.start(now);
        else this.nextHousekeepingAt = Math.min(this.nextHousekeepingAt, this.firstJoinAt + this.opts.maxWaitMs);
      }
    }
  }

  private start(now: number): void {
    this.phase = Phase.Transferring;
    this.startedAt = now;
    this.stats.phase = 'transferring';
    this.stats.startedAt = now;
    this.lastFeedbackAt = now;
    this.nextAnnounceAt = now;
    // The rate achieved while waiting says nothing about the transfer's.
    this.sentBps = 0;
    this.sentWindowStart = now;
    this.sentWindowBytes = this.stats.wireBytes;
    this.events.push({ type: 'started', receivers: this.activeCount });
    // Only the first block (asked already while waiting, unless evicted since): asked together with the
    // read-ahead, it came back among the others and waited for them to be hashed too (start to first data on
    // the LAN: 8-16 ms, then 4-8). The rest is asked when this block's first pass starts.
    if (this.sourceNext < this.geometry.blockCount) this.request(this.sourceNext);
    if (this.geometry.blockCount === 0) this.checkAllDone(now);
  }

  private beginEnd(now: number, reason: EndReason): void {
    this.phase = Phase.Ending;
    this.endReason = reason;
    this.endedAt = now;
    this.stats.phase = 'ended';
    this.stats.endedAt = now;
    this.nextEndAt = now;
    for (const r of this.receivers.values()) {
      if (r.outcome === 'active') {
        r.outcome = reason === EndReason.Cancelled ? 'failed' : 'dropped';
        r.reason = reason === EndReason.Cancelled ? 'session cancelled' : 'session ended before it completed';
        this.activeCount--;
      }
    }
  }

  private sendEnd(now: number): void {
    const completed = [...this.receivers.values()].filter((r) => r.outcome === 'completed').length;
    this.queueControl(encodeEnd(this.opts.sessionId, { reason: this.endReason, completed }), null);
    this.endsSent++;
    this.nextEndAt = now + Math.max(20, 2 * this.grttMs);
    if (this.endsSent >= END_REPEATS) {
      this.finished = true;
      for (const b of [...this.encoders.keys()]) this.dropEncoder(b);
      this.events.push({ type: 'finished', summary: this.summary(now) });
    }
  }

  summary(now: number): SenderSummary {
    const start = this.startedAt ?? this.createdAt;
    return {
      sessionId: this.opts.sessionId,
      imageSize: this.geometry.imageSize,
      fec: FEC_SCHEME_NAMES[this.geometry.fec],
      blockSymbols: this.geometry.blockSymbols,
      blockCount: this.geometry.blockCount,
      endReason: EndReason[this.endReason] as keyof typeof EndReason,
      durationMs: (this.endedAt ?? now) - start,
      stats: this.getStats(),
      receivers: this.getReceivers(),
    };
  }

  // ---- control packets ---------------------------------------------------------------------------------------

  private queueControl(datagram: Buffer, to: string | null): void {
    const parts = [this.seal(datagram)];
    this.control.push({ to, parts, bytes: parts[0]!.length });
    this.countControl(parts[0]!.length);
  }

  private countControl(bytes: number): void {
    this.stats.controlPackets++;
    this.stats.datagramBytes += bytes;
    this.stats.wireBytes += bytes + this.opts.frameOverhead;
  }

  private seal(datagram: Buffer): Buffer {
    return this.opts.protector ? this.opts.protector.seal([datagram]) : datagram;
  }

  private queueAnnounce(now: number): void {
    const g = this.geometry;
    const flags = this.sourceNext >= g.blockCount && this.phase !== Phase.Waiting ? AnnounceFlag.sourcePassDone : 0;
    const announce = encodeAnnounce(this.opts.sessionId, {
      phase: this.phase,
      flags,
      fec: g.fec,
      symbolSize: g.symbolSize,
      blockSymbols: g.blockSymbols,
      imageSize: g.imageSize,
      sourceFrontier: this.sourceNext,
      receivers: this.activeCount,
      grttMicros: Math.round(this.grttMs * 1000),
      timestamp: microsOf(now),
      statusIntervalMs: this.statusIntervalMs(),
      rateKbps: Math.round(this.pacer.bitsPerSecond / 1000),
      digest: this.digest,
    });
    this.queueControl(announce, null);
    // The announcement that says the first pass is over (and carries the digest) lets receivers ask for their
    // last blocks and finish: repeat it quickly a few times rather than wait a whole period after a loss.
    if (this.quickAnnounces > 0) {
      this.quickAnnounces--;
      this.nextAnnounceAt = now + Math.max(5, 2 * this.grttMs);
    } else this.nextAnnounceAt = now + (this.phase === Phase.Waiting ? WAITING_ANNOUNCE_MS : ANNOUNCE_MS);
  }

  private requestHashes(from: number, to: number): void {
    for (let c = Math.floor(from / HASHES_PER_PACKET); c * HASHES_PER_PACKET < to; c++) this.hashRequests.push(c);
  }

  /** Queues the hash packets due now: the next first-pass block's and requested ones. True if any. */
  private pendingHashes(now: number): boolean {
    let queued = false;
    while (this.hashRequests.length > 0) {
      const chunk = this.hashRequests.shift()!;
      const last = this.hashChunkSentAt.get(chunk);
      // Requests sent before a resend could reach their senders are answered by it; later ones need another.
      if (last !== undefined && now - last < Math.max(this.grttMs, 2)) continue;
      const first = chunk * HASHES_PER_PACKET;
      const end = Math.min(first + HASHES_PER_PACKET, this.hashedPrefix);
      if (end <= first) continue;
      this.queueHashes(now, first, end);
      queued = true;
    }
    return queued;
  }

  private queueHashes(now: number, first: number, end: number): void {
    this.hashChunkSentAt.set(Math.floor(first / HASHES_PER_PACKET), now);
    // (Digests that came after their blocks' first pass began, sent on request: not again with the next block.)
    if (first <= this.hashSentPrefix && end > this.hashSentPrefix) this.hashSentPrefix = end;
    const datagram = encodeHashes(this.opts.sessionId, first, this.hashes.subarray(first * HASH_BYTES, end * HASH_BYTES));
    this.queueControl(datagram, null);
  }

  // ---- data --------------------------------------------------------------------------------------------------

  private addUrgent(b: number): void {
    if (!this.inUrgent[b]) {
      this.inUrgent[b] = 1;
      this.urgent.push(b);
    }
  }

  private addBulk(b: number): void {
    if (!this.inBulk[b]) {
      this.inBulk[b] = 1;
      this.bulkCount++;
    }
  }

  private pending(b: number): boolean {
    return this.plannedEnd[b]! > this.sentEnd[b]!;
  }

  private hasSendableData(): boolean {
    if (this.currentBurst >= 0 && this.pending(this.currentBurst)) return true;
    if (this.firstPassBlock() >= 0) return true;
    if (this.urgent.length > 0 || this.bulkCount > 0) return true;
    return this.sourceNext < this.geometry.blockCount;
  }

  private request(b: number): void {
    if (!this.requested.has(b) && !this.cache.has(b)) {
      this.requested.add(b);
      this.stats.blocksRead++;
      this.events.push({ type: 'need-block', block: b });
    }
  }

  private requestReadAhead(): void {
    const end = Math.min(this.geometry.blockCount, this.sourceNext + this.opts.readAhead);
    for (let b = this.sourceNext; b < end; b++) this.request(b);
  }

  /** The block whose first pass has begun and still has planned transmissions (source or parity with it), or -1. */
  private firstPassBlock(): number {
    const b = this.sourceNext - 1;
    return b >= 0 && this.pending(b) ? b : -1;
  }

  /**
   * Picks the block to send from: the repair burst in progress, then repairs, then the first pass (the block in
   * progress, then the next), then catch-up. A first pass gives way to repairs that are ready: a RaptorQ block's
   * takes 300 ms at 500 Mbit/s (18 MB), and its predecessor's repair waited that long behind it.
   */
  private pickBlock(): number {
    const firstPass = this.firstPassBlock();
    if (this.currentBurst >= 0 && this.currentBurst !== firstPass && this.pending(this.currentBurst)) {
      if (this.readiness(this.currentBurst) === Ready.Now) return this.currentBurst;
      // Evicted mid-burst (the cache is smaller than the image; readiness asked to read it again) or waiting for
      // its parity: queue the rest of the burst, or nothing would send it (its receivers' requests are planned).
      this.addUrgent(this.currentBurst);
    }
    for (let i = 0; i < this.urgent.length && i < 16; i++) {
      const b = this.urgent[i]!;
      if (!this.pending(b)) {
        this.urgent.splice(i, 1);
        this.inUrgent[b] = 0;
        i--;
        continue;
      }
      if (this.readiness(b) === Ready.Now) {
        this.urgent.splice(i, 1);
        this.inUrgent[b] = 0;
        return b;
      }
    }
    if (firstPass >= 0) {
      if (this.readiness(firstPass) === Ready.Now) return firstPass;
      this.addUrgent(firstPass);
    }
    if (this.sourceNext < this.geometry.blockCount) {
      const b = this.sourceNext;
      if (this.cache.has(b)) {
        this.startFirstPass(b);
        return b;
      }
      this.request(b);
      return -1;
    }
    if (this.bulkCount > 0) {
      const n = this.geometry.blockCount;
      for (let scanned = 0; scanned < n && this.bulkCount > 0; scanned++) {
        const b = this.bulkCursor;
        this.bulkCursor = (this.bulkCursor + 1) % n;
        if (!this.inBulk[b]) continue;
        if (!this.pending(b)) {
          this.inBulk[b] = 0;
          this.bulkCount--;
          continue;
        }
        const ready = this.readiness(b);
        if (ready === Ready.Now) {
          this.inBulk[b] = 0;
          this.bulkCount--;
          return b;
        }
        if (ready === Ready.AfterParity) continue;
        // Come back to this block once its data arrives.
        this.bulkCursor = b;
        return -1;
      }
    }
    return -1;
  }

  private startFirstPass(b: number): void {
    const k = sourceSymbols(this.geometry, b);
    let extra = Math.ceil(k * this.opts.proactiveParity);
    if (this.endsFirstPass(b)) extra = Math.max(extra, this.endOfPassParity(k));
    this.plannedEnd[b] = Math.max(this.plannedEnd[b]!, Math.min(MAX_TSN, k + extra));
    this.sourceNext++;
    this.prepareParity(b);
    this.stats.blocksFirstPassSent = this.sourceNext;
    this.requestReadAhead();
    if (this.sourceNext >= this.geometry.blockCount) {
      this.nextAnnounceAt = -Infinity;
      this.quickAnnounces = 3;
    }
    // Receivers verify each block against its digest: send digests ahead of the data they cover.
    if (this.hashSentPrefix <= b) {
      const first = this.hashSentPrefix;
      const end = Math.min(this.hashedPrefix, first + HASHES_PER_PACKET);
      if (end > first) {
        this.hashSentPrefix = end;
        this.firstPassHashes = [first, end];
      }
    }
  }

  /**
   * The first pass ends before a request for block b could come back: what is left of it after b takes less than
   * a request round (a receiver's quiet time, its back-off window, and one group round trip) at the rate the
   * sender achieves (under an "unlimited" ceiling far less than the pacer's).
   */
  private endsFirstPass(b: number): boolean {
    const g = this.geometry;
    const symbolsAfter = Math.ceil(Math.max(0, g.imageSize - (b + 1) * g.blockBytes) / g.symbolSize);
    const roundMs = nackQuietMs(this.grttMs) + nackBackoffWindowMs(this.grttMs) + this.grttMs;
    const bps = this.sentBps > 0 ? Math.min(this.sentBps, this.pacer.bitsPerSecond) : this.pacer.bitsPerSecond;
    return (symbolsAfter * this.dataFrameBits * 1000) / bps < roundMs;
  }

  /**
   * Parity for the blocks that end the first pass, sent with them unasked. Nothing else is in flight then, so
   * a request round for them (quiet time, back-off, the repair) adds straight to the session's time: 20-50 ms on
   * the test LAN at 1-5 % loss, once or twice. As many symbols as the worst receiver is expected to lose of the
   * block plus two standard deviations: most often no request at all, for a handful of symbols once per session
   * (none without loss).
   */
  private endOfPassParity(k: number): number {
    const loss = this.repairLoss;
    if (loss <= 0) return 0;
    const sent = k / (1 - loss);
    return Math.ceil(sent * loss + 2 * Math.sqrt(sent * loss * (1 - loss)));
  }

  private nextData(now: number): Transmit | undefined {
    if (!this.pacer.canSend(now)) return undefined;
    const b = this.pickBlock();
    this.starvedForData = b < 0 && (this.requested.size > 0 || this.parityAwaited.size > 0);
    if (b < 0) {
      this.pacer.idle(now);
      return undefined;
    }
    this.currentBurst = b;
    const data = this.buildData(now, b);
    this.pacer.consume(data.bytes + this.opts.frameOverhead);
    if (this.firstPassHashes) {
      const [first, end] = this.firstPassHashes;
      this.firstPassHashes = null;
      this.queueHashes(now, first, end);
      this.control.push(data);
      return this.control.shift();
    }
    return data;
  }

  private buildData(now: number, b: number): Transmit {
    const g = this.geometry;
    const id = this.sentEnd[b]!;
    const k = sourceSymbols(g, b);
    // (Absent only when the symbol is parity already made: readiness() saw to it.)
    const data = this.cache.get(b)!;
    let payload: Uint8Array;
    if (id < k) {
      const length = Math.min(g.symbolSize, blockLength(g, b) - id * g.symbolSize);
      payload = data.subarray(id * g.symbolSize, id * g.symbolSize + length);
      this.stats.sourcePackets++;
    } else {
      payload = this.paritySymbol(b, id, k, data);
      this.stats.parityPackets++;
    }
    this.sentEnd[b] = id + 1;
    this.lastSend[b] = now;
    const header = encodeDataHeader(this.opts.sessionId, this.seq++, b, id, this.plannedEnd[b]!);
    const parts = this.opts.protector ? [this.opts.protector.seal([header, payload])] : [header, payload];
    let bytes = 0;
    for (const p of parts) bytes += p.length;
    this.stats.datagramBytes += bytes;
    this.stats.wireBytes += bytes + this.opts.frameOverhead;
    return { to: null, parts, bytes };
  }

  /** Parity symbol `id` of block b, computing all parity of the planned burst in one codec call. */
  private paritySymbol(b: number, id: number, k: number, data: Uint8Array): Uint8Array {
    let symbols = this.parity.get(b);
    const cached = symbols?.get(id);
    if (cached) {
      symbols!.delete(id);
      return cached;
    }
    const { ids } = this.plannedParity(b, id, k);
    const out = this.encoderFor(b, k, data).repair(ids);
    if (!symbols) {
      symbols = new Map();
      this.parity.set(b, symbols);
    }
    for (let i = 1; i < ids.length; i++) symbols.set(ids[i]!, out[i]!);
    return out[0]!;
  }

  /** The parity ids planned for block b from transmission tsn on (at most 256 at a time), and where they end. */
  private plannedParity(b: number, tsn: number, k: number): { ids: number[]; end: number } {
    const ids: number[] = [];
    let t = Math.max(tsn, k);
    for (; t < this.plannedEnd[b]! && ids.length < 256; t++) ids.push(t);
    return { ids, end: t };
  }

  /**
   * Whether block b's next transmission can go out now. If not, what it waits for is set going: a read of
   * the block (need-block), or with asyncParity its parity (need-parity, the rest of the planned burst with it).
   * Parity symbols already made go out without the block.
   */
  private readiness(b: number): Ready {
    const tsn = this.sentEnd[b]!; // the next symbol id
    const k = sourceSymbols(this.geometry, b);
    if (tsn >= k) {
      if (this.parity.get(b)?.has(tsn)) return Ready.Now;
      if (this.opts.asyncParity && this.parityAwaited.has(b) && (this.parityAskedEnd.get(b) ?? 0) > tsn) return Ready.AfterParity;
    }
    const data = this.cache.get(b);
    if (tsn >= k && this.opts.asyncParity && (data || this.parityCoderGiven[b])) {
      // Without the block when the application has had it for its coder: no read for a later round.
      const { ids, end } = this.plannedParity(b, tsn, k);
      this.parityAskedEnd.set(b, end);
      this.parityAwaited.add(b);
      if (data) this.parityCoderGiven[b] = 1;
      this.events.push({ type: 'need-parity', block: b, k, ids, data: data ?? null });
      return Ready.AfterParity;
    }
    if (!data) {
      this.request(b);
      return Ready.AfterRead;
    }
    return Ready.Now;
  }

  /**
   * asyncParity, once receivers report loss: asks for block b's coder set-up as its first pass begins, so that it
   * is done when the block's requests come (measured, RaptorQ at 3 × 1 %: the set-up on the thread answered
   * 230-500 ms after the requests, while the cores were busy with the transfer).
   */
  private prepareParity(b: number): void {
    if (!this.opts.asyncParity || !encoderHasSetUp(this.geometry.fec) || this.parityCoderGiven[b]) return;
    if (this.repairLoss <= 0 && this.stats.nackEntries === 0) return;
    const data = this.cache.get(b);
    if (!data) return;
    this.parityCoderGiven[b] = 1;
    this.events.push({ type: 'prepare-parity', block: b, k: sourceSymbols(this.geometry, b), data });
  }

  private encoderFor(b: number, k: number, data: Uint8Array): BlockEncoder {
    let encoder = this.encoders.get(b);
    if (encoder) {
      this.encoders.delete(b); // most recently used last
    } else {
      encoder = blockEncoder(this.geometry.fec, data, k, this.geometry.symbolSize);
      while (this.encoders.size >= this.maxEncoders) this.dropEncoder(this.encoders.keys().next().value as number);
    }
    this.encoders.set(b, encoder);
    return encoder;
  }

  private dropEncoder(b: number): void {
    this.encoders.get(b)?.dispose();
    this.encoders.delete(b);
  }
}
