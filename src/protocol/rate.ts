// Sending rate: a token-bucket pacer (no bursts beyond a couple of milliseconds of traffic) and a loss-driven
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
    private readonly burstMs = 2,
  ) {
    this.bytesPerMs = bitsPerSecond / 8000;
    this.capacity = this.capacityFor(this.bytesPerMs);
    this.tokens = this.capacity;
    this.last = now;
  }

  private capacityFor(bytesPerMs: number): number {
    return Math.max(bytesPerMs * this.burstMs, 2 * 9100);
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
  baseline: number;
}

/**
 * AIMD on loss reports. Random loss on a receiver's line is not congestion, so each receiver's background loss
 * is learnt: a decrease that does not lower the worst loss shows that loss was background, and it is undone.
 */
export class RateController {
  rate: number;
  private readonly receivers = new Map<number, ReceiverLoss>();
  private lastDecision = -Infinity;
  private probe: { worstBefore: number; rateBefore: number; node: number } | null = null;
  decreases = 0;

  constructor(private readonly config: RateControlConfig) {
    this.rate = config.maxBps;
  }

  /** Excess loss over background that counts as congestion. */
  static readonly THRESHOLD = 0.03;

  report(nodeId: number, loss: number): void {
    const r = this.receivers.get(nodeId);
    if (r) r.loss = loss;
    else this.receivers.set(nodeId, { loss, baseline: 0 });
  }

  forget(nodeId: number): void {
    this.receivers.delete(nodeId);
  }

  /** Called once per feedback interval; returns the new rate. */
  update(now: number, intervalMs: number): number {
    if (!this.config.adaptive || now - this.lastDecision < intervalMs) return this.rate;
    this.lastDecision = now;
    let worstNode = -1;
    let worstExcess = 0;
    let worstLoss = 0;
    for (const [node, r] of this.receivers) {
      const excess = r.loss - r.baseline;
      if (excess > worstExcess) {
        worstExcess = excess;
        worstNode = node;
        worstLoss = r.loss;
      }
    }
    if (this.probe) {
      const r = this.receivers.get(this.probe.node);
      const probe = this.probe;
      this.probe = null;
      if (r && r.loss > probe.worstBefore - Math.max(0.02, probe.worstBefore * 0.1)) {
        // Slowing down did not help this receiver: its loss is background, not congestion.
        r.baseline = Math.max(r.baseline, r.loss);
        this.rate = probe.rateBefore;
        return this.rate;
      }
    }
    if (worstExcess > RateController.THRESHOLD) {
      this.probe = { worstBefore: worstLoss, rateBefore: this.rate, node: worstNode };
      this.rate = Math.max(this.config.minBps, this.rate * 0.7);
      this.decreases++;
    } else {
      this.rate = Math.min(this.config.maxBps, this.rate * 1.05 + this.config.maxBps * 0.01);
    }
    return this.rate;
  }
}
