// Sending rate: a token-bucket pacer (no bursts beyond 5 ms of traffic: Node timers fire every 1-3 ms) and a loss-driven
// AIMD controller that backs off when receivers report loss above their own background level.

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
  /** When the figure arrived: a probe is judged only on figures measured after its decrease. */
  at: number;
  baseline: number;
}

/** Fewer packets than this make a loss figure too noisy to act on (8 % loss: ±1.5 % at one sigma). */
const MIN_SAMPLES = 300;

/**
 * AIMD on loss reports. Random loss on a receiver's line is not congestion, so each receiver's background loss
 * is learnt: a decrease that does not lower the worst loss shows that loss was background, and it is undone.
 * On congestion the rate drops to what the worst receiver actually took in (its bottleneck), not by a fixed
 * factor, so a sender far above a link's rate converges in one step.
 */
export class RateController {
  rate: number;
  private readonly receivers = new Map<number, ReceiverLoss>();
  private lastDecision = -Infinity;
  private probe: { worstBefore: number; rateBefore: number; node: number; at: number; waited: number } | null = null;
  decreases = 0;

  constructor(private readonly config: RateControlConfig) {
    this.rate = config.maxBps;
  }

  /** Excess loss over background that counts as congestion. */
  static readonly THRESHOLD = 0.03;

  report(nodeId: number, loss: number, samples: number, now: number): void {
    const r = this.receivers.get(nodeId);
    if (r) {
      r.loss = loss;
      r.samples = samples;
      r.at = now;
    } else this.receivers.set(nodeId, { loss, samples, at: now, baseline: 0 });
  }

  forget(nodeId: number): void {
    this.receivers.delete(nodeId);
  }

  /**
   * Called once per feedback interval with the rate the sender really achieved lately (it can be far below
   * the pacer's rate when the ceiling is "unlimited"); returns the new rate.
   */
  update(now: number, intervalMs: number, sentBps: number): number {
    if (!this.config.adaptive || now - this.lastDecision < intervalMs) return this.rate;
    this.lastDecision = now;
    if (this.probe) {
      const probe = this.probe;
      const r = this.receivers.get(probe.node);
      // Judge only a report that covers time after the decrease (one interval later), with enough packets.
      const fresh = r !== undefined && r.at >= probe.at + intervalMs * 0.8;
      if (r && (!fresh || r.samples < MIN_SAMPLES) && ++probe.waited < 6) return this.rate;
      this.probe = null;
      // Undo when the loss did not fall, or when too little flowed to tell (the decrease is unproven).
      if (!r || !fresh || r.samples < MIN_SAMPLES || r.loss > probe.worstBefore - Math.max(0.02, probe.worstBefore * 0.1)) {
        // Slowing down did not help this receiver: its loss is background, not congestion.
        if (r && r.samples >= MIN_SAMPLES) r.baseline = Math.max(r.baseline, r.loss);
        this.rate = probe.rateBefore;
        return this.rate;
      }
    }
    let worst: ReceiverLoss | null = null;
    let worstNode = -1;
    for (const [node, r] of this.receivers) {
      if (r.samples < MIN_SAMPLES) continue;
      const noise = 3 * Math.sqrt((r.loss * (1 - r.loss)) / r.samples);
      const excess = r.loss - r.baseline - noise;
      if (excess > RateController.THRESHOLD && (!worst || excess > worst.loss - worst.baseline)) {
        worst = r;
        worstNode = node;
      }
    }
    if (worst) {
      this.probe = { worstBefore: worst.loss, rateBefore: this.rate, node: worstNode, at: now, waited: 0 };
      // What got through to the worst receiver is the bottleneck's rate.
      const base = sentBps > 0 ? Math.min(this.rate, sentBps) : this.rate;
      const bottleneck = base * (1 - (worst.loss - worst.baseline)) * 0.95;
      this.rate = Math.max(this.config.minBps, Math.min(base * 0.85, bottleneck));
      this.decreases++;
    } else {
      this.rate = Math.min(this.config.maxBps, this.rate * 1.04 + 1e6);
    }
    return this.rate;
  }
}
