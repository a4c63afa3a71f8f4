import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Pacer, QueueGuard, RateController } from '../../src/protocol/rate.js';
import { SimNetwork, seededRandom, type LinkOptions } from '../../sim/network.js';
import type { SenderOptions } from '../../src/protocol/sender.js';

/**
 * A receiver behind a bottleneck of `capacity` bits/s with `background` random loss, reporting every 250 ms
 * what it lost and what it took in.
 */
function drive(capacity: number, background: number, maxBps: number, rounds = 80): { rates: number[]; decreases: number } {
  const c = new RateController({ maxBps, minBps: 1e6, adaptive: true });
  const rates: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const rate = c.rate;
    const delivered = Math.min(rate, capacity) * (1 - background);
    const loss = 1 - delivered / rate;
    const samples = Math.round((delivered * 0.25) / (1500 * 8));
    c.report(1, loss, samples, i * 250, delivered);
    rates.push(c.update(i * 250, 250, Math.min(rate, 2e9)));
  }
  return { rates, decreases: c.decreases };
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

test('random background loss is learnt, not mistaken for congestion', () => {
  for (const background of [0.01, 0.05, 0.08, 0.2]) {
    const { rates } = drive(10e9, background, 500e6);
    const tail = rates.slice(-20);
    assert.ok(Math.min(...tail) >= 450e6, `background ${background}: rate fell to ${Math.min(...tail) / 1e6} Mbit/s`);
  }
});

test('loss in long runs needs more to count as congestion than as many single losses', () => {
  // 2.2 % in two reports in a row, over about 4,000 packets: as single losses that is congestion (3 standard
  // errors are 0.7 points); in runs of 16 (loss events of 1 ms at 200 Mbit/s) it is within the noise.
  // `events` (the loss events the receiver reports for its 90 lost packets): 0 is "not given", as from older
  // receivers, and counts as single losses.
  const decide = (events: number) => {
    const c = new RateController({ maxBps: 200e6, minBps: 1e6, adaptive: true });
    for (let i = 0; i < 2; i++) {
      c.report(1, 90 / 4090, 4000, i * 250, 196e6, events);
      c.update(i * 250, 250, 200e6);
    }
    return c.decreases;
  };
  assert.equal(decide(90), 1);
  assert.equal(decide(6), 0); // runs of 15-16
  assert.equal(decide(0), 1);
});

test('a large loss that holds steady report after report counts, however long its runs', () => {
  // A receiver that drops whatever arrives while its disk catches up: 75-81 % of 500 Mbit/s lost in 3-4 runs of
  // hundreds per report. From the runs alone a figure might be off by 70 points; report after report says it
  // is not. It did not count within 12 reports (3 s); now at the fourth, once three changes between reports show
  // it steady (in the simulator it had counted only when two reports in a row happened to clear the noise).
  const c = new RateController({ maxBps: 500e6, minBps: 1e6, adaptive: true });
  const losses = [0.77, 0.8, 0.78, 0.81, 0.75, 0.8, 0.79, 0.77];
  let reports = 0;
  for (const loss of losses) {
    const samples = 650;
    c.report(1, loss, samples, reports * 250, (samples * 1500 * 8) / 0.25, 3);
    c.update(reports * 250, 250, 500e6);
    reports++;
    if (c.decreases > 0) break;
  }
  assert.equal(c.decreases, 1);
  assert.ok(reports <= 4, `counted at report ${reports}`);
  assert.ok(c.rate < 0.25 * 500e6, `rate ${c.rate}`);
});

test('the same random loss at two receivers, a report lost: one decrease finds it is background, not one per report', () => {
  // Both lose about 5 % at random. The decrease is for the one losing more (A); A's next report is lost (feedback
  // crosses the same lossy links), so the decrease waits to be judged while B reports the same loss as before
  // it. Slowing down did nothing for B: that is background, not a slower receiver. (It used to take the rate
  // down again at each of B's reports.)
  const c = new RateController({ maxBps: 200e6, minBps: 1e6, adaptive: true });
  let minRate = c.rate;
  let aReports = 0;
  for (let i = 0; i < 40; i++) {
    const node = i % 2;
    const now = i * 125;
    const loss = node === 0 ? 0.055 : 0.05;
    if (node === 0 && c.decreases > 0 && aReports++ === 0) continue; // A's first report after the decrease is lost
    const received = Math.round(((c.rate * 0.25) / 12000) * (1 - loss));
    c.report(node, loss, received, now, c.rate * (1 - loss), Math.round((received * loss) / (1 - loss)));
    minRate = Math.min(minRate, c.update(now, 250, c.rate));
  }
  assert.equal(c.decreases, 1);
  assert.ok(minRate > 0.85 * 200e6, `rate fell to ${minRate / 1e6} Mbit/s`);
  assert.equal(c.rate, 200e6);
});

test('a bottleneck below the ceiling: the rate lands just under it at once and holds there', () => {
  const { rates } = drive(300e6, 0, 10e9);
  // One report at 10 Gbit/s says what got through: the next rate is 95 % of it, not a fixed fraction of 10 G.
  assert.ok(rates[0]! >= 280e6 && rates[0]! <= 300e6, `first decrease to ${rates[0]! / 1e6} Mbit/s`);
  // Above it only while looking for more now and then, and never far.
  const above = rates.filter((r) => r > 300e6).length;
  assert.ok(above <= rates.length * 0.12, `${above} of ${rates.length} intervals above the bottleneck`);
  assert.ok(Math.max(...rates.slice(1)) <= 330e6, `peak ${Math.max(...rates.slice(1)) / 1e6} Mbit/s`);
  const m = mean(rates.slice(-40));
  assert.ok(m > 270e6 && m < 310e6, `mean ${m / 1e6}`);
});

test('bottleneck plus background loss: lands under the bottleneck, not under bottleneck less background', () => {
  const { rates } = drive(200e6, 0.05, 1e9);
  const m = mean(rates.slice(-40));
  assert.ok(m > 180e6 && m < 215e6, `mean ${m / 1e6}`);
});

test('the same bottleneck hit again: the hold before looking above it doubles', () => {
  const { rates, decreases } = drive(300e6, 0.01, 1e9, 400); // 100 s
  // Probes above the bottleneck after holds of 2, 4, 8, 16, 32 s: a handful of decreases in 100 s, not one per few seconds.
  assert.ok(decreases >= 3 && decreases <= 7, `${decreases} decreases`);
  const lateAbove = rates.slice(200).filter((r) => r > 300e6).length;
  assert.ok(lateAbove <= 6, `${lateAbove} intervals above the bottleneck in the last 50 s`);
});

test('a bottleneck that goes away is left behind within seconds', () => {
  const c = new RateController({ maxBps: 1e9, minBps: 1e6, adaptive: true });
  let capacity = 200e6;
  let t = 0;
  const step = () => {
    const rate = c.rate;
    const delivered = Math.min(rate, capacity);
    c.report(1, 1 - delivered / rate, Math.round((delivered * 0.25) / 12000), t, delivered);
    c.update(t, 250, rate);
    t += 250;
  };
  for (let i = 0; i < 20; i++) step();
  assert.ok(c.rate < 200e6 && c.bottleneck !== null);
  capacity = 10e9;
  for (let i = 0; i < 40; i++) step(); // 10 s
  assert.equal(c.rate, 1e9);
});

test('reports two intervals late: a large loss that did not fall yet is not learnt as background', () => {
  // A receiver behind 100 Mbit/s whose reports lag its own backlog (busy decoding): the report that judges the
  // first decrease still shows the loss from before it. Learnt as background, that 80 % made the rate sit at the
  // ceiling for good (5x the link); not learnt, the decrease is tried again.
  const c = new RateController({ maxBps: 500e6, minBps: 1e6, adaptive: true });
  const capacity = 100e6;
  const intervals: { loss: number; taken: number; samples: number }[] = [];
  const rates: number[] = [];
  for (let i = 0; i < 160; i++) {
    const rate = c.rate;
    const delivered = Math.min(rate, capacity);
    intervals.push({ loss: 1 - delivered / rate, taken: delivered, samples: Math.round((delivered * 0.25) / 12000) });
    const late = intervals[Math.max(0, intervals.length - 3)]!;
    c.report(1, late.loss, late.samples, i * 250, late.taken);
    c.report(2, 0, Math.round((rate * 0.25) / 12000), i * 250, rate);
    rates.push(c.update(i * 250, 250, rate));
  }
  const tail = rates.slice(60);
  assert.ok(mean(tail) < capacity * 1.5, `mean ${mean(tail) / 1e6} Mbit/s`);
  assert.ok(tail.filter((r) => r >= capacity * 2).length <= tail.length * 0.1, 'rarely at twice the link');
});

test('the bottleneck receiver leaving: the rate grows back fast to the ceiling', () => {
  const c = new RateController({ maxBps: 1e9, minBps: 1e6, adaptive: true });
  for (let i = 0; i < 8; i++) {
    const rate = c.rate;
    const delivered = Math.min(rate, 100e6);
    c.report(7, 1 - delivered / rate, Math.round((delivered * 0.25) / 12000), i * 250, delivered);
    c.update(i * 250, 250, rate);
  }
  assert.ok(c.rate < 100e6);
  c.forget(7);
  assert.equal(c.bottleneck, null);
  for (let i = 8; i < 20; i++) c.update(i * 250, 250, c.rate);
  assert.equal(c.rate, 1e9);
});

// ---- the real engine on the simulated network ---------------------------------------------------------------

/** Data symbols are 32 bytes in memory but cost full 1500-byte frames on every link (and in the sender's rate). */
const SYMBOL = 32;
const NOMINAL = 1452;

interface RateRun {
  net: SimNetwork;
  /** The sender's rate every 100 ms of virtual time from the start of the transfer (bits/s). */
  rates: number[];
  /** Receivers' socket-buffer overflows before `settleMs` into the transfer. */
  overflowsBefore: number[];
  sent: number;
}

function rateRun(receivers: LinkOptions[], packets: number, sender: Partial<SenderOptions> = {}, settleMs = 2000, seed = 5): RateRun {
  const img = new Uint8Array(packets * SYMBOL);
  const rnd = seededRandom(3);
  for (let i = 0; i < img.length; i++) img[i] = (rnd() * 256) | 0;
  const net = new SimNetwork(
    img,
    { sessionId: 1, symbolSize: SYMBOL, blockSymbols: 128, maxRateBps: 1e9, minReceivers: receivers.length, frameOverhead: 42 + NOMINAL - SYMBOL, ...sender },
    { seed, symbolScale: { simSymbolSize: SYMBOL, nominalSymbolSize: NOMINAL }, keepEvents: false },
  );
  receivers.forEach((link, i) => net.addReceiver({ nodeId: 100 + i }, link));
  const rates: number[] = [];
  let overflowsBefore: number[] = [];
  for (let t = 100; !net.summary && t < 120_000; t += 100) {
    net.run(t);
    const stats = net.sender.getStats();
    if (stats.startedAt === null) continue;
    rates.push(stats.rateBps);
    if (t - stats.startedAt < settleMs) overflowsBefore = net.receivers.map((r) => r.intakeOverflows);
  }
  for (const r of net.receivers) {
    if (r.link.dieAtMs === undefined) assert.ok(net.isExact(r), `${r.address}: ${r.failure ?? 'not exact'}`);
  }
  const s = net.summary!.stats;
  return { net, rates, overflowsBefore, sent: s.sourcePackets + s.parityPackets };
}

test('a receiver that takes in only 300 Mbit/s: the rate settles just under it and does not saw back above', () => {
  const { net, rates, overflowsBefore, sent } = rateRun([{ loss: { rate: 0.01 }, intake: { bps: 300e6, stallMs: 3, stallEveryMs: 200 } }], 120_000);
  const settled = rates.slice(20);
  const above = settled.filter((r) => r > 300e6).length;
  assert.ok(above <= settled.length * 0.1, `${above} of ${settled.length} samples above the receiver's intake`);
  assert.ok(settled.every((r) => r < 345e6), `peak ${Math.max(...settled) / 1e6} Mbit/s`);
  assert.ok(mean(settled) > 270e6, `mean ${mean(settled) / 1e6} Mbit/s`);
  // Once settled, overflows are the odd look above the bottleneck: a fraction of a percent of what was sent.
  const late = net.receivers[0]!.intakeOverflows - overflowsBefore[0]!;
  assert.ok(late < sent * 0.005, `${late} overflows after settling, of ${sent} packets`);
  assert.ok(net.summary!.stats.rateDecreases <= 4, `${net.summary!.stats.rateDecreases} decreases`);
});

test('pure random loss (no receiver is slow): the rate does not come down', () => {
  // Bursts in time (1 ms, about 16 packets), so that feedback, which is sparse, sees independent loss. In bursts
  // 1 % measures 0-3 % per report: before reports gave loss events, seeds 7 and 8 here took that for congestion.
  const cases = [
    { loss: { rate: 0.01 }, seeds: [5] },
    { loss: { rate: 0.05 }, seeds: [5] },
    { loss: { rate: 0.01, burstMs: 1 }, seeds: [1, 2, 3, 4, 5, 6, 7, 8] },
  ];
  for (const { loss, seeds } of cases) {
    for (const seed of seeds) {
      // 4 s at 200 Mbit/s: 16 reports from each receiver.
      const { net, rates } = rateRun([{ loss }, { loss }], 60_000, { maxRateBps: 200e6 }, 2000, seed);
      const atCeiling = rates.filter((r) => r === 200e6).length;
      const what = `loss ${JSON.stringify(loss)}, seed ${seed}`;
      assert.ok(atCeiling >= rates.length * 0.8, `${what}: ${atCeiling} of ${rates.length} samples at the ceiling`);
      assert.equal(net.summary!.stats.rateBps, 200e6, what);
      if (loss.rate === 0.01) assert.equal(net.summary!.stats.rateDecreases, 0, what);
    }
  }
});

test('several receivers: the slowest one sets the rate', () => {
  const { rates } = rateRun([{ loss: { rate: 0.01 } }, { loss: { rate: 0.01 }, intake: { bps: 500e6 } }, { loss: { rate: 0.01 }, intake: { bps: 200e6 } }], 80_000);
  const settled = rates.slice(20);
  assert.ok(mean(settled) > 180e6 && mean(settled) < 200e6, `mean ${mean(settled) / 1e6} Mbit/s`);
});

test('the slow receiver goes away: the rest get the full rate again', () => {
  const { rates } = rateRun([{ loss: { rate: 0.01 } }, { intake: { bps: 100e6 }, dieAtMs: 2500 }], 150_000, { receiverTimeoutMs: 1500 });
  assert.ok(Math.min(...rates) < 100e6, 'the rate came down for the slow receiver');
  assert.equal(rates.at(-1), 1e9);
});

test('pacer: never more than the rate plus one burst over any horizon (property)', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 1000 }), fc.array(fc.integer({ min: 1, max: 5000 }), { minLength: 1, maxLength: 200 }), (mbit, gaps) => {
      const rate = mbit * 1e6;
      const p = new Pacer(rate, 0);
      let now = 0;
      let sent = 0;
      for (const gap of gaps) {
        now += gap / 1000;
        while (p.canSend(now)) {
          p.consume(1500);
          sent += 1500;
        }
      }
      const allowed = (rate / 8000) * now + Math.max((rate / 8000) * 5, 2 * 9100) + 1500;
      return sent <= allowed;
    }),
  );
});

test('QueueGuard: eases off while every receiver sees the queue, stops once it is short, ignores one late receiver', () => {
  const guard = new QueueGuard();
  guard.sample(1, 0.3, 10);
  guard.sample(2, 0.4, 20);
  assert.equal(guard.factor, 1);
  // One receiver's late processing: the other's RTT shows no queue.
  guard.sample(1, 40, 30);
  assert.equal(guard.factor, 1);
  // Both see 20 ms more than the path without a queue: drain.
  guard.sample(2, 20.4, 40);
  guard.sample(1, 20.3, 50);
  assert.ok(guard.factor < 1 && guard.factor >= 0.9);
  assert.equal(guard.drains, 1);
  // Hysteresis: 3 ms is not yet short enough to stop.
  guard.sample(1, 3.3, 60);
  guard.sample(2, 3.4, 70);
  assert.ok(guard.factor < 1);
  // The queue is the sender's, shared by all: one short RTT shows it is short.
  guard.sample(1, 1, 80);
  assert.equal(guard.factor, 1);
  // A receiver that left no longer counts.
  guard.sample(2, 30, 90);
  assert.equal(guard.factor, 1);
  guard.forget(1);
  guard.sample(2, 30, 100);
  assert.ok(guard.factor < 1);
  assert.equal(guard.drains, 2);
});

test('QueueGuard: a rise that draining does not shrink is not the sender\'s queue: taken as the new floor, and a rise above it drains again', () => {
  const guard = new QueueGuard();
  guard.sample(1, 0.5, 0);
  guard.sample(2, 0.6, 0);
  // Every receiver 8 ms late at once (busy cores, not a queue): the guard drains, but the rise stays.
  guard.sample(1, 8.5, 1000);
  guard.sample(2, 8.6, 1000);
  assert.ok(guard.factor < 1);
  // 8 ms of queue drains in 80 ms at 90 %: allowed twice that, and at least 200 ms.
  for (let t = 1050; t <= 1200; t += 50) {
    guard.sample(1, 8.5, t);
    assert.ok(guard.factor < 1, `still draining at ${t} ms`);
  }
  guard.sample(2, 8.6, 1250);
  assert.equal(guard.factor, 1, 'not drained after 250 ms: taken as the floor');
  assert.equal(guard.rebases, 1);
  guard.sample(1, 9, 1300);
  assert.equal(guard.factor, 1, 'small changes above the new floor are no queue');
  // A queue building above the new floor drains again, and stops once it is short.
  guard.sample(1, 15, 1400);
  guard.sample(2, 15.1, 1400);
  assert.ok(guard.factor < 1);
  assert.equal(guard.drains, 2);
  guard.sample(1, 9.5, 1450);
  assert.equal(guard.factor, 1);
  assert.equal(guard.rebases, 1, 'this one drained');
  // When the receivers catch up, the floor follows them down.
  guard.sample(1, 0.5, 2000);
  guard.sample(2, 6.5, 2000);
  guard.sample(1, 6.4, 2010);
  assert.ok(guard.factor < 1, '6 ms over the floor seen again');
});

test('QueueGuard: the tracked least sample equals a scan of every receiver latest one (property)', () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.integer({ min: 0, max: 5 }), fc.oneof(fc.constant(-1), fc.double({ min: 0.1, max: 40, noNaN: true })), fc.integer({ min: 0, max: 100 })), { maxLength: 200 }),
      (steps) => {
        const guard = new QueueGuard();
        const latest = new Map<number, number>();
        let base = Infinity;
        let draining = false;
        let deadline = 0;
        let now = 0;
        for (const [node, rtt, step] of steps) {
          now += step;
          if (rtt < 0) {
            guard.forget(node);
            latest.delete(node);
            continue;
          }
          guard.sample(node, rtt, now);
          latest.set(node, rtt);
          base = Math.min(base, rtt);
          const least = Math.min(...latest.values());
          const queued = least - base;
          if (!draining && queued > 5) {
            draining = true;
            deadline = now + Math.max(200, (2 * queued) / (1 - 0.9)); // as QueueGuard computes it (floating point)
          } else if (draining && queued < 2) draining = false;
          else if (draining && now > deadline) {
            base = least;
            draining = false;
          }
          assert.equal(guard.factor < 1, draining);
        }
      },
    ),
  );
});

/** A receiver reporting every 250 ms: it takes in `capacity(t)` and loses the rest of what the rate sends. */
function driveStalls(capacity: (t: number) => number, intervals: number): { rates: number[]; decreases: number } {
  const c = new RateController({ maxBps: 500e6, minBps: 1e6, adaptive: true });
  const rates: number[] = [];
  for (let i = 0; i < intervals; i++) {
    const t = i * 250;
    const rate = c.rate;
    const delivered = Math.min(rate, capacity(t));
    c.report(1, 1 - delivered / rate, Math.round((delivered * 0.25) / 72_000), t, delivered);
    rates.push(c.update(t, 250, rate));
  }
  return { rates, decreases: c.decreases };
}

test('a receiver that stalls once (a disk flush) after taking in the full rate: back to the full rate within a second or so', () => {
  // 3 s at the full rate without loss, then one interval in which the receiver took in only 270 Mbit/s (it
  // overflowed while stalled), then the full rate again. The rate used to land at 256 Mbit/s, hold 2 s there and
  // creep back over 3 s more.
  const { rates, decreases } = driveStalls((t) => (t === 3000 ? 270e6 : 1e9), 40);
  assert.equal(decreases, 1);
  const after = rates.slice(12);
  assert.ok(Math.min(...after) < 300e6, 'the rate came down at the stall');
  const back = after.findIndex((r) => r >= 0.95 * 500e6);
  assert.ok(back >= 0 && back <= 8, `back at the full rate after ${back} intervals: ${after.slice(0, 12).map((r) => Math.round(r / 1e6)).join(' ')}`);
});

test('a receiver that slows down for good after taking in the full rate: the second decrease for it holds', () => {
  // From 3 s on it takes in 270 Mbit/s. The first decrease gets the benefit of the doubt (a stall), the rate grows
  // back and overflows it once more; then it settles under 270 and stays there, with no third fast return.
  const { rates, decreases } = driveStalls((t) => (t >= 3000 ? 270e6 : 1e9), 80);
  assert.ok(decreases >= 2 && decreases <= 4, `${decreases} decreases`);
  const settled = rates.slice(40);
  assert.ok(settled.filter((r) => r > 270e6).length <= settled.length * 0.15, `above 270 Mbit/s: ${settled.map((r) => Math.round(r / 1e6)).join(' ')}`);
  assert.ok(mean(settled) > 230e6, `mean ${mean(settled) / 1e6} Mbit/s`);
});
