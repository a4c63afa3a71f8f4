// Sending rate: a token-bucket pacer (no bursts beyond 5 ms of traffic: Node timers fire every 1-3 ms) and a loss-driven
// controller that finds the slowest receiver's bottleneck, settles just under it and remembers it.

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
  /** When the figure arrived: a decrease is judged only on figures measured after it. */
  at: number;
  /** Learnt background loss: what this receiver loses whatever the rate (slowing down does not cure it). */
  baseline: number;
  /** Loss above the background beyond measurement noise, in the last report (0 when none or too few packets). */
  excess: number;
  /** Reports in a row with an excess above SMALL_EXCESS. */
  streak: number;
  /** What the receiver took in over the report's interval (bits/s of frames), null when unknown. */
  takenBps: number | null;
}

/** Fewer packets than this make a loss figure too noisy to act on (8 % loss: ±1.5 % at one sigma). */
const MIN_SAMPLES = 300;
/** Excess loss that is congestion at once, and excess that is congestion when two reports in a row show it. */
const LARGE_EXCESS = 0.03;
const SMALL_EXCESS = 0.01;
/** A decrease lands this far under the bottleneck it measured; the rate then holds there. */
const LANDING = 0.95;
/** Time at the landing rate before looking for more capacity: doubled each time the same bottleneck is hit again. */
const MIN_HOLD_MS = 2000;
const MAX_HOLD_MS = 32_000;
/** Two bottleneck measurements this close (relative) are the same bottleneck. */
const SAME_BOTTLENECK = 0.1;
/** Looking for more capacity: each interval adds this share of the bottleneck times the intervals probed so far. */
const PROBE_STEP = 0.01;
/** Weight of each report below the congestion threshold in the learnt background loss. */
const BACKGROUND_GAIN = 0.1;
/** Growth per interval while no bottleneck is known. */
const FAST_GROWTH = 1.25;

/** Three standard errors of a loss fraction measured over `samples` packets. */
function lossNoise(loss: number, samples: number): number {
  return 3 * Math.sqrt((loss * (1 - loss)) / samples);
}

/**
 * Loss-driven rate control that converges on the slowest receiver's bottleneck and stays there.
 *
 * Loss above a receiver's background means the rate exceeds what some receiver (its link or its process) can
 * take. The rate then drops to just under what that receiver actually took in (the bottleneck), not by a fixed
 * factor, and the bottleneck is remembered: the rate holds just under it and only now and then, after a hold
 * that doubles each time the same bottleneck is hit again, creeps above it to look for more. Far below the
 * bottleneck (or with none known) it grows fast. Random loss on a receiver's line is not congestion: a
 * decrease whose next report does not show that receiver's loss falling shows its loss is background; the
 * decrease is undone and the background learnt (it decays again when later reports show less).
 */
export class RateController {
  rate: number;
  decreases = 0;
  private readonly receivers = new Map<number, ReceiverLoss>();
  private lastDecision = -Infinity;
  /** A decrease under test: undone unless the receiver's next report shows its loss falling. */
  private probe: {
    node: number;
    lossBefore: number;
    excessBefore: number;
    rateBefore: number;
    bottleneckBefore: number | null;
    at: number;
    waited: number;
    /** Fresh reports that did not show the loss easing (the first can still count queued datagrams' loss). */
    unconvinced: number;
  } | null = null;
  /** The slowest receiver's bottleneck (bits/s) as last measured, null when none is known. */
  private bottleneckBps: number | null = null;
  private bottleneckNode = -1;
  private holdMs = MIN_HOLD_MS;
  /** When the rate reached its landing under the bottleneck (null: not there). */
  private landedAt: number | null = null;
  private probeSteps = 0;

  constructor(private readonly config: RateControlConfig) {
    this.rate = config.maxBps;
  }

  /** The bottleneck the rate is held under (bits/s), or null while none is known. */
  get bottleneck(): number | null {
    return this.bottleneckBps;
  }

  /**
   * A receiver's report: its loss over its last interval, the packets that figure was measured over and, when
   * the interval's length is known, the rate it took in (bits/s of frames).
   */
  report(nodeId: number, loss: number, samples: number, now: number, takenBps: number | null = null): void {
    let r = this.receivers.get(nodeId);
    if (!r) {
      r = { loss, samples, at: now, baseline: 0, excess: 0, streak: 0, takenBps };
      this.receivers.set(nodeId, r);
    }
    r.loss = loss;
    r.samples = samples;
    r.at = now;
    r.takenBps = takenBps;
    if (samples < MIN_SAMPLES) {
      r.excess = 0;
      return;
    }
    r.excess = Math.max(0, loss - r.baseline - lossNoise(loss, samples));
    r.streak = r.excess > SMALL_EXCESS ? r.streak + 1 : 0;
    // Loss below the congestion threshold is what this receiver loses anyway: the background follows it.
    if (r.excess <= SMALL_EXCESS && this.probe === null) r.baseline += (loss - r.baseline) * BACKGROUND_GAIN;
  }

  forget(nodeId: number): void {
    this.receivers.delete(nodeId);
    // The bottleneck was this receiver's: the others may take more.
    if (nodeId === this.bottleneckNode) this.clearBottleneck();
  }

  /**
   * Called once per feedback interval with the rate the sender really achieved lately (it can be far below
   * the pacer's rate when the ceiling is "unlimited"); returns the new rate.
   */
  update(now: number, intervalMs: number, sentBps: number): number {
    // Once per interval; receivers' reports are spread by ±10 %, so one that comes a little early counts.
    if (!this.config.adaptive || now - this.lastDecision < intervalMs * 0.8) return this.rate;
    this.lastDecision = now;
    if (this.probe) {
      // A decrease is judged on the next report; whatever the verdict, that report (which still counts losses of
      // datagrams that were queued before the decrease) decides nothing more.
      if (!this.judgeProbe(now, intervalMs)) return this.rate;
      // Still waiting: another receiver congested at the lowered rate is slower still.
      const slower = this.mostCongested(this.probe.at + intervalMs * 0.8, this.probe.node);
      if (slower) this.decrease(now, slower.r, slower.node, sentBps);
      return this.rate;
    }
    const worst = this.mostCongested(-Infinity, -1);
    if (worst) this.decrease(now, worst.r, worst.node, sentBps);
    else this.grow(now);
    return this.rate;
  }

  /** The receiver with the largest excess loss that is congestion, among reports since `since`. */
  private mostCongested(since: number, except: number): { r: ReceiverLoss; node: number } | null {
    let worst: { r: ReceiverLoss; node: number } | null = null;
    for (const [node, r] of this.receivers) {
      if (node === except || r.at < since) continue;
      // Looking above the bottleneck, the first small excess is the answer.
      const congested = r.excess > LARGE_EXCESS || (r.excess > SMALL_EXCESS && (r.streak >= 2 || this.probeSteps > 0));
      if (congested && (!worst || r.excess > worst.r.excess)) worst = { r, node };
    }
    return worst;
  }

  /** Keeps or undoes the decrease under test once its receiver has reported on it; true while still waiting. */
  private judgeProbe(now: number, intervalMs: number): boolean {
    const probe = this.probe!;
    const r = this.receivers.get(probe.node);
    // Judge only a report that covers time after the decrease (one interval later), with enough packets.
    const fresh = r !== undefined && r.at >= probe.at + intervalMs * 0.8 && r.samples >= MIN_SAMPLES;
    if (r && !fresh && ++probe.waited < 6) return true;
    // Congestion eases as soon as the rate is under the bottleneck: at least half the excess goes.
    const eased = fresh && probe.lossBefore - r.loss >= Math.max(probe.excessBefore / 2, lossNoise(r.loss, r.samples));
    if (!eased && fresh && probe.unconvinced++ === 0) {
      // A buffer that was full when the rate dropped drains slowly just under the bottleneck: ask once more.
      probe.at = r.at;
      probe.waited = 0;
      return true;
    }
    this.probe = null;
    if (eased) {
      const same = probe.bottleneckBefore !== null && Math.abs(this.bottleneckBps! - probe.bottleneckBefore) <= probe.bottleneckBefore * SAME_BOTTLENECK;
      this.holdMs = same ? Math.min(MAX_HOLD_MS, this.holdMs * 2) : MIN_HOLD_MS;
      this.landedAt = now;
      return false;
    }
    // Slowing down did not help (or too little flowed to tell): the loss is background. Undo the decrease.
    if (fresh) {
      r.baseline = Math.max(r.baseline, r.loss);
      r.excess = 0;
      r.streak = 0;
    }
    this.rate = probe.rateBefore;
    this.bottleneckBps = probe.bottleneckBefore;
    return false;
  }


  private decrease(now: number, worst: ReceiverLoss, node: number, sentBps: number): void {
    // What got through to the worst receiver, plus what its background loss took, is the bottleneck's rate.
    // Measured at the receiver when its interval's length is known; else from what was sent, which mixes
    // rates when the rate changed during the interval.
    const base = sentBps > 0 ? Math.min(this.rate, sentBps) : this.rate;
    const taken = worst.takenBps ?? base * (1 - worst.loss);
    const bottleneck = taken / (1 - worst.baseline);
    const rate = Math.max(this.config.minBps, bottleneck * LANDING);
    if (rate >= this.rate) return; // already at the floor: nothing to try
    this.probe = {
      node,
      lossBefore: worst.loss,
      excessBefore: worst.excess,
      rateBefore: this.rate,
      bottleneckBefore: this.bottleneckBps,
      at: now,
      waited: 0,
      unconvinced: 0,
    };
    this.bottleneckBps = bottleneck;
    this.bottleneckNode = node;
    this.rate = rate;
    this.landedAt = null;
    this.probeSteps = 0;
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
    // it per interval), so a bottleneck that has gone is left behind within seconds.
    this.probeSteps++;
    this.rate = Math.min(this.config.maxBps, this.rate + bottleneck * PROBE_STEP * this.probeSteps);
  }

  private clearBottleneck(): void {
    this.bottleneckBps = null;
    this.bottleneckNode = -1;
    this.holdMs = MIN_HOLD_MS;
    this.landedAt = null;
    this.probeSteps = 0;
  }
}
