import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Pacer, RateController } from '../../src/protocol/rate.js';

/** A receiver behind a bottleneck of `capacity` bits/s with `background` random loss, reporting every 250 ms. */
function drive(capacity: number, background: number, maxBps: number, rounds = 80): { rates: number[]; decreases: number } {
  const c = new RateController({ maxBps, minBps: 1e6, adaptive: true });
  const rates: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const rate = c.rate;
    const delivered = Math.min(rate, capacity) * (1 - background);
    const loss = 1 - delivered / rate;
    const samples = Math.round((rate * 0.25) / (1500 * 8));
    c.report(1, loss, samples, i * 250);
    rates.push(c.update(i * 250, 250, Math.min(rate, 2e9)));
  }
  return { rates, decreases: c.decreases };
}

test('random background loss is learnt, not mistaken for congestion', () => {
  for (const background of [0.01, 0.05, 0.08, 0.2]) {
    const { rates } = drive(10e9, background, 500e6);
    const tail = rates.slice(-20);
    assert.ok(Math.min(...tail) >= 450e6, `background ${background}: rate fell to ${Math.min(...tail) / 1e6} Mbit/s`);
  }
});

test('a bottleneck below the ceiling: the rate converges to it quickly and stays near it', () => {
  const { rates } = drive(300e6, 0, 10e9);
  assert.ok(rates[3]! <= 330e6, `after 1 s the rate is ${rates[3]! / 1e6} Mbit/s`);
  const tail = rates.slice(-40);
  const mean = tail.reduce((a, b) => a + b, 0) / tail.length;
  assert.ok(mean > 220e6 && mean < 340e6, `mean ${mean / 1e6}`);
});

test('bottleneck plus background loss', () => {
  const { rates } = drive(200e6, 0.05, 1e9);
  const tail = rates.slice(-40);
  const mean = tail.reduce((a, b) => a + b, 0) / tail.length;
  assert.ok(mean > 140e6 && mean < 240e6, `mean ${mean / 1e6}`);
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
