// Sending rate: a token-bucket pacer (no bursts beyond 5 ms of traffic: Node timers fire every 1-3 ms), a loss-driven
// controller that finds the slowest receiver's bottleneck, settles just under it and remembers it, and a queue
// guard that eases off while the round-trip time shows the sender's own traffic queued at the bottleneck.

/** Rates are bits per second of link-layer frames: datagram + UDP/IP/Ethernet headers, what `tc tbf` counts. */
export const UNLIMITED_BPS = 10e9;

export class Pacer {
  private tokens: number;
  private last: number;
  private bytesPerMs: number;
  private capacity: number;

  constructor(
    bitsPerSecond: number,
    now: number,
    /** The largest frame this sender sends: the bucket always holds two, whatever the rate. */
    private readonly maxFrameBytes = 9100,
    private readonly burstMs = 5,
  ) {
    this.bytesPerMs = bitsPerSecond / 8000;
    this.capacity = this.capacityFor(this.bytesPerMs);
    this.tokens = this.idleCapacity();
    this.last = now;
  }

  /**
   * The burst allowance exists to catch up on late timers while there is data to send. Saved up while idle it
   * would land in the link's queue at once and delay repairs behind it, so idle time earns at most this.
   */
  private idleCapacity(): number {
    return Math.min(this.capacity, Math.max(this.bytesPerMs * 0.5, 2 * this.maxFrameBytes));
  }

  /** The sender has nothing to send now. */
  idle(now: number): void {
    this.refill(now);
    this.tokens = Math.min(this.tokens, this.idleCapacity());
  }

  private capacityFor(bytesPerMs: number): number {
    return Math.max(bytesPerMs * this.burstMs, 2 * this.maxFrameBytes);
  }

  setRate(bitsPerSecond: number, now: number): void {
    this.refill(now);
    this.bytesPerMs = bitsPerSecond / 8000;
    this.capacity = this.capacityFor(this.bytesPerMs);
    this.tokens = Math.min(this.tokens, this.capacity);
  }

  get bitsPerSecond(): number {
    return this.bytesPerMs * 8000;
  }

  private refill(now: number): void {
    if (now > this.last) {
      this.tokens = Math.min(this.capacity, this.tokens + (now - this.last) * this.bytesPerMs);
      this.last = now;
    }
  }

  /** True when a frame may go now (the balance may then dip below zero by one frame). */
  canSend(now: number): boolean {
    this.refill(now);
    return this.tokens > 0;
  }

  consume(bytes: number): void {
    this.tokens -= bytes;
  }

  /** Earliest time at which canSend is true. */
  nextSendTime(now: number): number {
    this.refill(now);
    if (this.tokens > 0) return now;
    return now + -this.tokens / this.bytesPerMs + 0.001;
  }
}

export interface RateControlConfig {
  maxBps: number;
  minBps: number;
  adaptive: boolean;
}

interface ReceiverLoss {
  loss: number;
  /** Packets the loss figure was measured over. */
  samples: number;
  /** Mean length of its runs of lost packets (1 when not reported): loss in runs varies more than single losses. */
  runLength: number;
  /** When the figure arrived: a decrease is judged only on figures measured after it. */
  at: number;
  /** Learnt background loss: what this receiver loses whatever the rate (slowing down does not cure it). */
  baseline: number;
  /** Loss above the background beyond measurement noise, in the last report (0 when none or too few packets). */
  excess: number;
  /** Mean change of its loss from one report to the next (bursty loss varies far more than random loss). */
  swing: number;
  swings: number;
  /** The last report with enough packets (its loss and arrival). */
  previous: { loss: number; at: number } | null;
  /** Reports in a row with an excess above SMALL_EXCESS. */
  streak: number;
  /** What the receiver took in over the report's interval (bits/s of frames), null when unknown. */
  takenBps: number | null;
  /**
   * The most it took in over a report without excess loss lately (bits/s; within CLEAN_MEMORY_MS of cleanAt),
   * 0 when none: what it has shown it can take.
   */
  cleanTakenBps: number;
  cleanAt: number;
  /** When a decrease for it was last taken for a stall. */
  stalledAt: number;
}

interface LossBefore {
  loss: number;
  excess: number;
}

/** Fewer packets than this make a loss figure too noisy to act on (8 % loss: ±1.5 % at one sigma). */
const MIN_SAMPLES = 300;
/**
 * Excess loss that is congestion at once, and excess that is congestion when two reports in a row show it
 * (bursty background loss strays far from its mean in single reports).
 */
const LARGE_EXCESS = 0.1;
const SMALL_EXCESS = 0.01;
/** A decrease lands this far under the bottleneck it measured; the rate then holds there. */
const LANDING = 0.95;
/** Time at the landing rate before looking for more capacity: doubled each time the same bottleneck is hit again. */
const MIN_HOLD_MS = 2000;
const MAX_HOLD_MS = 32_000;
/** Two bottleneck measurements this close (relative) are the same bottleneck. */
const SAME_BOTTLENECK = 0.1;
/** Looking for more capacity: each interval adds this share of the bottleneck times the intervals spent looking so far. */
const SEARCH_STEP = 0.01;
/** Nothing lost this far above the bottleneck: it has gone. */
const GONE = 1.1;
/**
 * The most loss learnt as background. Random loss on a working line is a few percent; a larger loss that did not
 * fall when the rate did is a receiver that cannot keep up, or whose report lagged behind its own backlog, and is
 * not learnt: the decrease is undone and tried again. Learnt, it made the bottleneck (what got through, divided by
 * 1 - background) twice the link's. (LAN, a receiver behind 100 Mbit/s busy decoding 255-symbol blocks: 56 %
 * learnt from a report that still covered the burst before the decrease, the rate then held at 210-250 Mbit/s and
 * the sender put 2.3 times the image on the wire. Capped at 20 % instead of not learnt: 115-137 Mbit/s, 1.4 times.)
 */
const MAX_BACKGROUND = 0.2;
/** Weight of each report below the learnt background loss in unlearning it. */
const BACKGROUND_GAIN = 0.1;
/** Report-to-report changes seen before they, rather than the runs the losses came in, say how much a figure varies. */
const STEADY_SWINGS = 3;
/** Growth per interval while no bottleneck is known. */
const FAST_GROWTH = 1.25;
/** How long what a receiver took in without loss counts as what it can take (see decrease: stalls). */
const CLEAN_MEMORY_MS = 2000;
/** A "bottleneck" this far under what the receiver took in without loss just before is taken for a stall. */
const STALL_MARGIN = 1.15;
/** One stall in this long gets the benefit of the doubt; the next decrease for a receiver is a bottleneck. */
const STALL_REPEAT_MS = 10_000;

/**
 * Three standard errors of a loss fraction measured over `samples` packets, lost in runs of `runLength` on
 * average. Losses in runs are a compound count: its variance is about the number of runs times the run length
 * squared, i.e. the run length times that of as many independent losses (TFRC's loss events, RFC 5348, for the
 * same reason). Random loss in 1 ms bursts (16 packets at 200 Mbit/s) of 1 % then measures 0-3 % per 250 ms.
 */
function lossNoise(loss: number, samples: number, runLength = 1): number {
  return 3 * Math.sqrt((loss * (1 - loss) * runLength) / samples);
}

/**
 * Loss-driven rate control that converges on the slowest receiver's bottleneck and stays there.
 *
 * Loss above a receiver's background means the rate exceeds what some receiver (its link or its process) can
 * take. The rate then drops to just under what that receiver actually took in (the bottleneck), not by a fixed
 * factor, and the bottleneck is remembered: the rate holds just under it and only now and then, after a hold
 * that doubles each time the same bottleneck is hit again, creeps above it to look for more. Far below the
 * bottleneck (or with none known) it grows fast. Random loss on a receiver's line is not congestion, and it is
 * told apart by experiment: a decrease after which a receiver's loss does not fall shows that loss is
 * background; the decrease is undone and that receiver's background raised (it is unlearnt gradually when
 * later reports show less). Receivers whose loss swings from report to report (bursty loss) need more to count.
 */
export class RateController {
  rate: number;
  decreases = 0;
  private readonly receivers = new Map<number, ReceiverLoss>();
  private lastDecision = -Infinity;
  /** When the rate last changed, and the interval between decisions. */
  private rateChangedAt = -Infinity;
  private intervalMs = 250;
  /** A decrease under test: undone unless the receiver's next report shows its loss falling. */
  private trial: {
    node: number;
    /** Receivers losing more than their background before the decrease could show, and what they lost. */
    before: Map<number, LossBefore>;
    rateBefore: number;
    bottleneckBefore: number | null;
    bottleneckNodeBefore: number;
    /** Reports from this time on cover time after the decrease. */
    freshFrom: number;
    waited: number;
    /** Reports on the decrease that showed the loss only partly down. */
    unconvinced: number;
    /** The receiver had just taken in far more without loss: if slowing down helps, it was a stall. */
    stall: boolean;
  } | null = null;
  /** The slowest receiver's bottleneck (bits/s) as last measured, null when none is known. */
  private bottleneckBps: number | null = null;
  private bottleneckNode = -1;
  private holdMs = MIN_HOLD_MS;
  /** When the rate reached its landing under the bottleneck (null: not there). */
  private landedAt: number | null = null;
  private searchSteps = 0;

  constructor(private readonly config: RateControlConfig) {
    this.rate = config.maxBps;
  }

  /** The bottleneck the rate is held under (bits/s), or null while none is known. */
  get bottleneck(): number | null {
    return this.bottleneckBps;
  }

  /**
   * A receiver's report: its loss over its last interval, the packets that figure was measured over, when the
   * interval's length is known the rate it took in (bits/s of frames), and in how many runs the loss came
   * (0: not given).
   */
  report(nodeId: number, loss: number, samples: number, now: number, takenBps: number | null = null, lossEvents = 0): void {
    let r = this.receivers.get(nodeId);
    if (!r) {
      r = { loss, samples, runLength: 1, at: now, baseline: 0, swing: 0, swings: 0, previous: null, excess: 0, streak: 0, takenBps, cleanTakenBps: 0, cleanAt: -Infinity, stalledAt: -Infinity };
      this.receivers.set(nodeId, r);
    }
    r.loss = loss;
    r.samples = samples;
    // Lost packets: samples are those received.
    r.runLength = lossEvents > 0 && loss < 1 ? Math.max(1, (loss * samples) / (1 - loss) / lossEvents) : 1;
    r.at = now;
    r.takenBps = takenBps;
    if (samples < MIN_SAMPLES) {
      r.excess = 0;
      return;
    }
    // Only changes while the rate held steady say how the background varies (the first report after a change
    // still counts losses of datagrams queued before it); capped, as the jump at the onset of congestion says
    // little about it.
    if (r.previous !== null && r.previous.at - 1.8 * this.intervalMs >= this.rateChangedAt && this.trial === null) {
      const change = Math.min(Math.abs(loss - r.previous.loss), LARGE_EXCESS / 3);
      r.swing += (change - r.swing) * Math.max(BACKGROUND_GAIN, 1 / (2 + r.swings++));
    }
    r.previous = { loss, at: now };
    r.excess = Math.max(0, loss - r.baseline - this.noise(r));
    r.streak = r.excess > SMALL_EXCESS ? r.streak + 1 : 0;
    if (r.excess === 0 && takenBps !== null && (takenBps >= r.cleanTakenBps || now - r.cleanAt > CLEAN_MEMORY_MS)) {
      r.cleanTakenBps = takenBps;
      r.cleanAt = now;
    }
    // A report measured before a decrease under test could show: what this receiver lost before it.
    const trial = this.trial;
    if (trial && now < trial.freshFrom && r.excess > SMALL_EXCESS && !trial.before.has(nodeId)) trial.before.set(nodeId, { loss, excess: r.excess });
    // Background loss that has eased off is unlearnt gradually. (It is learnt only by experiment, never from
    // reports alone: a receiver overflowing a little more each time would pass its overflow off as background.)
    if (loss < r.baseline && lossNoise(loss, samples, r.runLength) < SMALL_EXCESS) r.baseline += (loss - r.baseline) * BACKGROUND_GAIN;
  }

  /**
   * How far a receiver's loss figure can stray from its background by chance: three standard errors of a
   * binomial count, or more if its reports vary more than that (the mean absolute difference of two
   * independent figures is 1.13 standard deviations).
   */
  private noise(r: ReceiverLoss): number {
    const observed = (3 * r.swing) / 1.13;
    let runs = lossNoise(r.loss, r.samples, r.runLength);
    // A receiver that drops whatever arrives while its disk catches up loses 80 % in runs of hundreds: from the
    // runs alone its figures might be off by 70 points, and that loss never counted though report after report
    // showed it. Once a large loss has held steady, its steadiness is the better measure. (Not for moderate
    // loss: bursts of random loss then took the rate down for nothing in 4 of 5 simulator seeds at 5 %.)
    if (r.loss > LARGE_EXCESS && r.swings >= STEADY_SWINGS) runs = Math.min(runs, observed);
    return Math.max(lossNoise(r.loss, r.samples), runs, observed);
  }

  /** The receiver's loss has fallen from what it lost before a decrease, by more than its noise. */
  private fell(x: ReceiverLoss, before: LossBefore): boolean {
    return before.loss - x.loss > this.noise(x);
  }

  forget(nodeId: number): void {
    this.receivers.delete(nodeId);
    // The bottleneck was this receiver's: the others may take more.
    if (nodeId === this.bottleneckNode) this.clearBottleneck();
  }

  /**
   * Called with each report, and decides at most once per 0.8 feedback intervals, given the rate the sender
   * really achieved lately (it can be far below the pacer's rate when the ceiling is "unlimited"); returns the
   * new rate.
   */
  update(now: number, intervalMs: number, sentBps: number): number {
    // Once per interval; receivers' reports are spread by ±10 %, so one that comes a little early counts.
    if (!this.config.adaptive || now - this.lastDecision < intervalMs * 0.8) return this.rate;
    this.lastDecision = now;
    this.intervalMs = intervalMs;
    const rate = this.rate;
    this.decide(now, intervalMs, sentBps);
    if (this.rate !== rate) this.rateChangedAt = now;
    return this.rate;
  }

  private decide(now: number, intervalMs: number, sentBps: number): void {
    const trial = this.trial;
    if (trial) {
      // A decrease is judged on the next report of the receiver it was for; that report (which may still count
      // losses of datagrams queued before the decrease) decides nothing more. Another receiver congested at the
      // lowered rate is slower still, unless it lost as much before the decrease: slowing down did nothing for
      // it, so that is background loss, which the judgement learns (with random loss at every receiver each
      // one otherwise took the rate down again in turn: 200 to 150 Mbit/s in the simulator at 5 %).
      this.judgeTrial(now, intervalMs);
      const slower = this.mostCongested(trial.freshFrom, trial.node, trial.before);
      if (slower) this.decrease(now, intervalMs, slower.r, slower.node, sentBps);
      return;
    }
    const worst = this.mostCongested(-Infinity, -1);
    if (worst) this.decrease(now, intervalMs, worst.r, worst.node, sentBps);
    else this.grow(now);
  }

  /**
   * The receiver with the largest excess loss that is congestion, among reports since `since`, leaving out
   * receivers whose loss has not fallen from what they lost before a decrease under test (`before`).
   */
  private mostCongested(since: number, except: number, before?: Map<number, LossBefore>): { r: ReceiverLoss; node: number } | null {
    let worst: { r: ReceiverLoss; node: number } | null = null;
    for (const [node, r] of this.receivers) {
      if (node === except || r.at < since) continue;
      const lost = before?.get(node);
      if (lost && !this.fell(r, lost)) continue;
      // Looking above the bottleneck, the first small excess is the answer.
      const congested = r.excess > LARGE_EXCESS || (r.excess > SMALL_EXCESS && (r.streak >= 2 || this.searchSteps > 0));
      if (congested && (!worst || r.excess > worst.r.excess)) worst = { r, node };
    }
    return worst;
  }

  /** Keeps or undoes the decrease under test once its receivers have reported on it. */
  private judgeTrial(now: number, intervalMs: number): void {
    const trial = this.trial!;
    const r = this.receivers.get(trial.node);
    // Judge only reports that cover time after the decrease (one interval later), with enough packets.
    const fresh = (x: ReceiverLoss) => x.at >= trial.freshFrom && x.samples >= MIN_SAMPLES;
    if (r && !fresh(r) && ++trial.waited < 6) return;
    // The others that lost more than their background get an interval longer to report on the decrease too.
    for (const node of trial.before.keys()) {
      const x = this.receivers.get(node);
      if (x && !fresh(x) && trial.waited++ < 2) return;
    }
    const before = trial.before.get(trial.node)!;
    let kept = false;
    if (r && fresh(r) && this.fell(r, before)) {
      // Congestion eases as soon as the rate is under the bottleneck: at least half the excess goes.
      kept = before.loss - r.loss >= before.excess / 2;
      if (!kept && trial.unconvinced++ === 0) {
        // Only partly down: a buffer that was full when the rate dropped drains slowly just under the
        // bottleneck, and may still overflow meanwhile. Ask once more.
        trial.freshFrom = r.at + intervalMs * 0.8;
        trial.waited = 0;
        return;
      }
      // Slowing down helped, if not enough: congestion, and the next decision takes the rate further down.
      kept = true;
    }
    this.trial = null;
    // The decrease was an experiment for every receiver that lost more than its background before it: those
    // whose loss did not fall at all lose it anyway (one trial learns the background of many receivers).
    for (const [node, lost] of trial.before) {
      const x = this.receivers.get(node);
      if (x && fresh(x) && !this.fell(x, lost)) {
        if (x.loss <= MAX_BACKGROUND) x.baseline = Math.max(x.baseline, x.loss);
        x.excess = 0;
        x.streak = 0;
      }
    }
    if (kept && trial.stall) {
      // The receiver took in far more without loss just before, and its loss stopped once the rate came down: it
      // stalled (a disk flush, a busy core) and overflowed its socket buffer meanwhile; it has no bottleneck there.
      // Nothing is held or remembered: the rate grows back fast. (Test LAN, 8 receivers writing 2 GiB each while
      // the page cache was full: each such stall held the rate at half for 2 s, then crept back for 3 s.)
      if (r) r.stalledAt = now;
      this.bottleneckBps = trial.bottleneckBefore;
      this.bottleneckNode = trial.bottleneckNodeBefore;
      return;
    }
    if (kept) {
      const same = trial.bottleneckBefore !== null && Math.abs(this.bottleneckBps! - trial.bottleneckBefore) <= trial.bottleneckBefore * SAME_BOTTLENECK;
      this.holdMs = same ? Math.min(MAX_HOLD_MS, this.holdMs * 2) : MIN_HOLD_MS;
      this.landedAt = now;
      return;
    }
    // Slowing down did not help this receiver (or too little flowed to tell): its loss is background.
    this.rate = trial.rateBefore;
    this.bottleneckBps = trial.bottleneckBefore;
    this.bottleneckNode = trial.bottleneckNodeBefore;
  }

  private decrease(now: number, intervalMs: number, worst: ReceiverLoss, node: number, sentBps: number): void {
    // What got through to the worst receiver, plus what its background loss took, is the bottleneck's rate.
    // Measured at the receiver when its interval's length is known; else from what was sent, which mixes
    // rates when the rate changed during the interval.
    const base = sentBps > 0 ? Math.min(this.rate, sentBps) : this.rate;
    const taken = worst.takenBps ?? base * (1 - worst.loss);
    const bottleneck = taken / (1 - worst.baseline);
    const rate = Math.max(this.config.minBps, bottleneck * LANDING);
    // Far under what it took in without loss a moment ago: maybe a stall rather than a bottleneck. Once in a while
    // per receiver; the next decrease for it soon after is a bottleneck (a receiver that has really slowed down
    // costs one more interval of loss).
    const stall = worst.cleanTakenBps >= bottleneck * STALL_MARGIN && now - worst.cleanAt <= CLEAN_MEMORY_MS && now - worst.stalledAt > STALL_REPEAT_MS;
    if (rate >= this.rate) return; // at the floor already (or the rate is below what got through): nothing to try
    const before = new Map<number, LossBefore>();
    for (const [n, r] of this.receivers) if (r.excess > SMALL_EXCESS) before.set(n, { loss: r.loss, excess: r.excess });
    // A further decrease before the last one was judged replaces it: undone, it undoes both.
    const earlier = this.trial;
    this.trial = {
      node,
      before,
      rateBefore: earlier?.rateBefore ?? this.rate,
      bottleneckBefore: earlier ? earlier.bottleneckBefore : this.bottleneckBps,
      bottleneckNodeBefore: earlier ? earlier.bottleneckNodeBefore : this.bottleneckNode,
      freshFrom: now + intervalMs * 0.8,
      waited: 0,
      unconvinced: 0,
      stall,
    };
    this.bottleneckBps = bottleneck;
    this.bottleneckNode = node;
    this.rate = rate;
    this.landedAt = null;
    this.searchSteps = 0;
    this.decreases++;
  }

  private grow(now: number): void {
    const bottleneck = this.bottleneckBps;
    if (bottleneck === null) {
      this.rate = Math.min(this.config.maxBps, this.rate * FAST_GROWTH + 1e6);
      return;
    }
    const landing = bottleneck * LANDING;
    if (this.rate < landing) {
      // Far below: halve the distance each interval.
      this.rate = Math.min(landing, this.rate + Math.max((landing - this.rate) / 2, 1e6));
      return;
    }
    this.landedAt ??= now;
    if (now - this.landedAt < this.holdMs) return;
    // Held long enough: creep above the bottleneck, faster the longer nothing is lost (+1 %, +2 %, +3 % ... of
    // it per step), so a bottleneck that has gone is left behind within seconds. A step every other interval:
    // reports come an interval late, and the next step waits for those that cover this one.
    if (this.searchSteps > 0 && now - this.rateChangedAt < 1.6 * this.intervalMs) return;
    if (this.rate >= bottleneck * GONE) {
      // Well above the bottleneck and nothing lost: it has gone (the receiver sped up, or others held it).
      this.clearBottleneck();
      this.rate = Math.min(this.config.maxBps, this.rate * FAST_GROWTH + 1e6);
      return;
    }
    this.searchSteps++;
    this.rate = Math.min(this.config.maxBps, this.rate + bottleneck * SEARCH_STEP * this.searchSteps);
  }

  private clearBottleneck(): void {
    this.bottleneckBps = null;
    this.bottleneckNode = -1;
    this.holdMs = MIN_HOLD_MS;
    this.landedAt = null;
    this.searchSteps = 0;
  }
}

/** Queue (ms of round-trip time above the least seen) at which the guard eases off, and under which it stops. */
const QUEUE_HIGH_MS = 5;
const QUEUE_LOW_MS = 2;
/** Share of the allowed rate sent while a queue drains: drains 20 ms of queue in 0.2 s, and copes with a rate up to 10 % over the link's. */
const DRAIN_FACTOR = 0.9;
/**
 * A queue of q ms drains in q / (1 − DRAIN_FACTOR) ms; one still there after twice that (and at least this
 * long, for reports to come back) is not the sender's own.
 */
const MIN_DRAIN_MS = 200;

/**
 * Keeps the sender's own queue at the bottleneck short when it paces at about the bottleneck's rate (a --rate
 * equal to the link's). Then nothing drains what its catch-up bursts after late timers leave in that queue: it
 * fills and stays full, every repair and report waits behind it (20 ms with the test LAN's tbf, so repair rounds
 * took 20 ms instead of 1), and the next burst overflows it, which all receivers see as loss. Each receiver's
 * latest round-trip time, against the least seen (the path with no queue), says how much is queued: the least of
 * them counts, so one receiver's late processing does not. While that exceeds QUEUE_HIGH_MS the rate is
 * DRAIN_FACTOR of what the loss controller allows, until it is under QUEUE_LOW_MS. Draining costs no throughput
 * while the queue lasts (the link sends from it at its rate), and the guard never takes more than a tenth.
 * A rise that draining does not shrink in twice the time it would take (at least MIN_DRAIN_MS) is not the
 * sender's queue: every receiver late at once (the test LAN's 8 receivers on 2 cores, all busy), or another
 * sender's traffic. Draining cannot end it, so the guard takes it as the new floor and stops (a bench run that
 * drained for such rises took 4.76 s instead of 3.60); a queue that builds above that floor starts it again.
 */
export class QueueGuard {
  private baseMs = Infinity;
  private readonly latestMs = new Map<number, number>();
  /** The least latest sample and whose it is (rescanned only when that receiver's own rises or it leaves). */
  private leastMs = Infinity;
  private leastNode = -1;
  private draining = false;
  /** While draining: when the queue must be short by. */
  private drainDeadline = 0;
  /** Times the guard began draining, and times a rise it drained for was taken as the new floor. */
  drains = 0;
  rebases = 0;

  sample(nodeId: number, rttMs: number, now: number): void {
    this.baseMs = Math.min(this.baseMs, rttMs);
    this.latestMs.set(nodeId, rttMs);
    if (rttMs <= this.leastMs) {
      this.leastMs = rttMs;
      this.leastNode = nodeId;
    } else if (nodeId === this.leastNode) this.rescan();
    const queuedMs = this.leastMs - this.baseMs;
    if (!this.draining && queuedMs > QUEUE_HIGH_MS) {
      this.draining = true;
      this.drainDeadline = now + Math.max(MIN_DRAIN_MS, (2 * queuedMs) / (1 - DRAIN_FACTOR));
      this.drains++;
    } else if (this.draining && queuedMs < QUEUE_LOW_MS) this.draining = false;
    else if (this.draining && now > this.drainDeadline) {
      this.baseMs = this.leastMs;
      this.draining = false;
      this.rebases++;
    }
  }

  forget(nodeId: number): void {
    if (this.latestMs.delete(nodeId) && nodeId === this.leastNode) this.rescan();
  }

  private rescan(): void {
    this.leastMs = Infinity;
    this.leastNode = -1;
    for (const [node, ms] of this.latestMs) {
      if (ms < this.leastMs) {
        this.leastMs = ms;
        this.leastNode = node;
      }
    }
  }

  /** Share of the allowed rate to send now. */
  get factor(): number {
    return this.draining ? DRAIN_FACTOR : 1;
  }
}
