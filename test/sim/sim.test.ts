// The simulator: determinism, byte-exact delivery for both policies, the windowed scheduler against the strict
// one, and how repair feedback scales with the number of receivers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { runScenario, type Policy, type RunResult, type Scenario } from '../../sim/scenario.js';

function scenario(over: Partial<Scenario>): Scenario {
  return {
    name: 'random',
    receivers: 20,
    loss: 0.05,
    seed: 3,
    blocks: 10,
    k: 32,
    simSymbolSize: 64,
    nominalSymbolSize: 1452,
    rateBps: 1e9,
    delayMs: [0.1, 0.5],
    jitterMs: 0,
    limitMs: 60_000,
    ...over,
  };
}

/** The figures of a run without the wall-clock time. */
function figures(r: RunResult): Omit<RunResult, 'wallMs'> {
  const { wallMs: _ignored, ...rest } = r;
  return rest;
}

/** The figures that must not depend on the scheduler (not its own counters, nor where it stopped). */
function outcome(r: RunResult): Omit<RunResult, 'wallMs' | 'deliveries' | 'virtualEndMs' | 'spinClamps'> {
  const { wallMs: _w, deliveries: _d, virtualEndMs: _v, spinClamps: _s, ...rest } = r;
  return rest;
}

for (const policy of ['fleetcast', 'nack'] as Policy[]) {
  test(`${policy}: same seed, same figures; another seed, other figures`, () => {
    const s = scenario({ receivers: 40, loss: 0.05, burstLength: 4, jitterMs: 0.05 });
    const a = runScenario(s, policy).result;
    const b = runScenario(s, policy).result;
    assert.deepEqual(figures(a), figures(b));
    const c = runScenario({ ...s, seed: 4 }, policy).result;
    assert.notDeepEqual(
      [c.dataPackets, c.feedbackPackets, c.lastMs],
      [a.dataPackets, a.feedbackPackets, a.lastMs],
      'a different seed gives a different run',
    );
  });

  test(`${policy}: every receiver gets the exact image in a lossy network (independent and bursty loss, jitter, a slow and a late receiver)`, () => {
    for (const s of [
      scenario({ receivers: 25, loss: 0.05, keepOutput: true }),
      scenario({ name: 'bursty', receivers: 25, loss: 0.05, burstLength: 10, jitterMs: 0.2, keepOutput: true }),
      scenario({ name: 'slow receiver', receivers: 12, loss: 0.02, lossSpread: 1, slowReceivers: 1, slowRateBps: 200e6 }),
      // A late joiner learns of the session from an announcement (every 100 ms): the transfer must last longer.
      scenario({ name: 'late joiner', receivers: 8, loss: 0.01, lateJoiners: 1, lateJoinMs: 40, blocks: 400, k: 32 }),
    ]) {
      const { result, net, image } = runScenario(s, policy);
      assert.equal(result.completed, s.receivers, `${s.name}: ${result.worst}`);
      assert.equal(result.exact, s.receivers, `${s.name}: every completed image is byte-exact`);
      if (s.keepOutput) {
        for (const r of net.receivers) assert.ok(Buffer.from(r.output).equals(Buffer.from(image)), `${s.name} ${r.address}`);
      }
      assert.ok(result.repairPackets > 0, 'losses were repaired');
      assert.ok(result.wireOverImage > 1 && result.dataOverImage > 1);
    }
  });

  test(`${policy}: the windowed scheduler gives the strict event order's figures (no jitter: same random streams)`, () => {
    const s = scenario({ receivers: 30, loss: 0.05, lossSpread: 0.5, slowReceivers: 1, slowRateBps: 250e6 });
    const strict = runScenario({ ...s, windowed: false }, policy).result;
    const windowed = runScenario({ ...s, windowed: true }, policy).result;
    assert.deepEqual(outcome(windowed), outcome(strict));
  });
}

test('scaling: fleetcast repair requests per block grow sublinearly with receivers (10 vs 300); the NACK baseline grows about linearly', () => {
  const ratio = (policy: Policy) => {
    const small = runScenario(scenario({ receivers: 10, loss: 0.05, blocks: 20, seed: 1 }), policy).result;
    const large = runScenario(scenario({ receivers: 300, loss: 0.05, blocks: 20, seed: 1 }), policy).result;
    assert.equal(small.completed, 10);
    assert.equal(large.completed, 300);
    return { ratio: large.nackPerBlock / small.nackPerBlock, small: small.nackPerBlock, large: large.nackPerBlock };
  };
  const fleetcast = ratio('fleetcast');
  const nack = ratio('nack');
  const detail = `fleetcast ${fleetcast.small.toFixed(1)} -> ${fleetcast.large.toFixed(1)} NACKs/block, nack ${nack.small.toFixed(1)} -> ${nack.large.toFixed(1)}`;
  // 30 times the receivers: linear growth would multiply the requests by 30.
  assert.ok(fleetcast.ratio < 0.9 * 30, `fleetcast grows sublinearly: ${detail}`);
  assert.ok(nack.ratio > fleetcast.ratio, `every baseline receiver reports its own losses: ${detail}`);
  assert.ok(fleetcast.large < nack.large / 2, detail);
});

test('scaling: fleetcast repair requests per block grow about logarithmically (group-size back-off, suppression on the planned end)', () => {
  const small = runScenario(scenario({ receivers: 10, loss: 0.05, blocks: 20 }), 'fleetcast').result;
  const large = runScenario(scenario({ receivers: 300, loss: 0.05, blocks: 20 }), 'fleetcast').result;
  // ln 300 / ln 10 ≈ 2.5; allow 4x.
  assert.ok(large.nackPerBlock / small.nackPerBlock < 4, `${small.nackPerBlock} -> ${large.nackPerBlock} NACKs/block`);
});

test('baseline: the sender merges requests into one retransmission per packet and round', () => {
  const { result } = runScenario(scenario({ receivers: 200, loss: 0.05 }), 'nack');
  const d = result.detail;
  assert.ok(d.nackRequests! > 3 * d.retransmissions!, `requests ${d.nackRequests}, retransmissions ${d.retransmissions}`);
  assert.ok(d.mergedRequests! + d.coveredRequests! > 0);
  assert.equal(result.repairPackets, d.retransmissions);
});

test('npm run sim: CLI options, JSON and markdown output', () => {
  const main = fileURLToPath(new URL('../../sim/main.js', import.meta.url));
  const args = ['--receivers', '5,20', '--loss', '2', '--blocks', '4', '--k', '16', '--seed', '9', '--no-extras'];
  const json = spawnSync(process.execPath, [main, ...args, '--json'], { encoding: 'utf8' });
  assert.equal(json.status, 0, json.stderr);
  const out = JSON.parse(json.stdout) as { config: { blocks: number; k: number; seed: number }; results: RunResult[] };
  assert.equal(out.results.length, 4);
  assert.deepEqual(
    out.results.map((r) => [r.policy, r.receivers, r.lossPct]),
    [
      ['fleetcast', 5, 2],
      ['nack', 5, 2],
      ['fleetcast', 20, 2],
      ['nack', 20, 2],
    ],
  );
  assert.deepEqual([out.config.blocks, out.config.k, out.config.seed], [4, 16, 9]);
  for (const r of out.results) assert.equal(r.exact, r.receivers);
  const md = spawnSync(process.execPath, [main, ...args, '--policy', 'fleetcast'], { encoding: 'utf8' });
  assert.equal(md.status, 0, md.stderr);
  assert.match(md.stdout, /^\| scenario \| receivers \| loss \| policy \| done \| wire\/image/m);
  assert.equal(md.stdout.split('\n').filter((l) => l.startsWith('| random |')).length, 2);
  const bad = spawnSync(process.execPath, [main, '--loss', 'lots'], { encoding: 'utf8' });
  assert.notEqual(bad.status, 0);
});
