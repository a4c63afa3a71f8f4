// Unit tests of the benchmark's scenario matrix and reports (no root needed).

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { RunRecord } from '../../bench/harness.js';
import { markdown, spread, summarise, svgChart, writeReports, type BenchResults } from '../../bench/report.js';
import { allScenarios, filterScenarios, linkMinimumS, quickScenarios, wireTarget, withMtu, type Scenario } from '../../bench/scenarios.js';

test('scenario matrix: N x loss x uplink, plus bursty and slow receiver, plus jumbo frames', () => {
  const all = allScenarios();
  assert.equal(all.length, 3 * 3 * 2 + 2 + 6);
  assert.equal(new Set(all.map((s) => s.name)).size, all.length, 'unique names');
  assert.ok(all.some((s) => s.name === 'n8-loss5-unlimited' && s.receivers === 8 && s.loss === 0.05 && s.uplink === null));
  assert.ok(all.some((s) => s.bursty && s.bursty.loss === 0.01));
  assert.ok(all.some((s) => s.slow?.rate === '100mbit'));
  assert.deepEqual(
    quickScenarios().map((s) => s.name),
    ['n3-loss0-500mbit', 'n3-loss1-500mbit'],
  );
  assert.ok(quickScenarios().every((s) => s.mtu === null), 'quick runs at the run MTU');
});

test('jumbo scenarios: n3 and n8 x 0/1/5 % at 500mbit with MTU 9000; the others take the run MTU', () => {
  const all = allScenarios();
  const jumbo = all.filter((s) => s.mtu !== null);
  assert.deepEqual(
    jumbo.map((s) => s.name),
    ['n3-loss0', 'n3-loss1', 'n3-loss5', 'n8-loss0', 'n8-loss1', 'n8-loss5'].map((n) => `${n}-500mbit-mtu9000`),
  );
  for (const s of jumbo) {
    assert.equal(s.mtu, 9000);
    assert.equal(s.uplink, '500mbit');
    assert.equal(s.bursty, null);
    assert.match(s.description, /MTU 9000/);
    const twin = all.find((x) => x.name === s.name.replace('-mtu9000', ''));
    assert.ok(twin, `the MTU 1500 twin of ${s.name} keeps its name`);
    assert.equal(twin.mtu, null);
    assert.equal(twin.receivers, s.receivers);
    assert.equal(twin.loss, s.loss);
  }
  const settled = withMtu(all, 1500);
  assert.equal(settled.find((s) => s.name === 'n3-loss1-500mbit')?.mtu, 1500);
  assert.equal(settled.find((s) => s.name === 'n3-loss1-500mbit-mtu9000')?.mtu, 9000);
  assert.equal(withMtu(all, 4000).find((s) => s.name === 'n8-loss5-unlimited')?.mtu, 4000, '--mtu applies to scenarios without their own');
});

test('wire target: 1 + p + 0.02 under random loss, none for bursty loss or a slow receiver', () => {
  const byName = (name: string): Scenario => allScenarios().find((s) => s.name === name)!;
  assert.equal(wireTarget(byName('n3-loss0-500mbit')), 1.02);
  assert.equal(wireTarget(byName('n8-loss1-500mbit-mtu9000')), 1.03);
  assert.equal(wireTarget(byName('n8-loss5-unlimited')), 1.07);
  assert.equal(wireTarget(byName('n3-bursty-500mbit')), null);
  assert.equal(wireTarget(byName('n3-slow100mbit-500mbit')), null);
});

test("time target: the link's physical minimum is the image's bits at the uplink rate; none when unlimited or slow", () => {
  const byName = (name: string): Scenario => allScenarios().find((s) => s.name === name)!;
  const image = 200 * 2 ** 20;
  assert.ok(Math.abs(linkMinimumS(byName('n3-loss0-500mbit'), image)! - 3.3554) < 1e-3);
  assert.ok(Math.abs(linkMinimumS(byName('n8-loss5-500mbit-mtu9000'), image)! - 3.3554) < 1e-3);
  assert.equal(linkMinimumS(byName('n8-loss5-unlimited'), image), null);
  assert.equal(linkMinimumS(byName('n3-slow100mbit-500mbit'), image), null);
});

test('scenario filters: substrings, regex, exclusion', () => {
  const all = allScenarios();
  assert.equal(filterScenarios(all, undefined).length, all.length);
  assert.ok(filterScenarios(all, 'n8').every((s) => s.receivers === 8));
  assert.equal(filterScenarios(all, 'n1-loss0,bursty').length, 3);
  assert.deepEqual(
    filterScenarios(all, '/^n3-loss[15]-500mbit$/').map((s) => s.name),
    ['n3-loss1-500mbit', 'n3-loss5-500mbit'],
  );
  assert.ok(filterScenarios(all, 'unlimited,!n8').every((s) => s.uplink === null && s.receivers !== 8));
  assert.equal(filterScenarios(all, 'mtu9000').length, 6);
  assert.deepEqual(filterScenarios(all, 'n3-loss1-500mbit').map((s) => s.name), ['n3-loss1-500mbit'], 'a whole name selects just that scenario');
  assert.deepEqual(filterScenarios(all, 'n3-loss1').map((s) => s.name), ['n3-loss1-500mbit', 'n3-loss1-unlimited', 'n3-loss1-500mbit-mtu9000']);
  assert.equal(filterScenarios(all, 'n8,!mtu9000').length, 6);
  assert.equal(filterScenarios(all, '!n3-loss1-500mbit').length, all.length - 1);
});

function run(tool: string, scenario: string, over: Partial<RunRecord> = {}): RunRecord {
  return {
    scenario,
    tool,
    status: 'ok',
    timeS: 2.5,
    lastCorrectS: 2.5,
    wallS: 2.6,
    firstPacketS: null,
    senderTxBytes: 70e6,
    wireRatio: 1.04,
    senderTxFrames: 48_000,
    ipFragments: 0,
    payloadBytes: 1452,
    senderCpuS: 0.8,
    receiversCpuS: 1.2,
    receiverCpuMaxS: 0.4,
    correct: 3,
    receivers: 3,
    receiverDetails: [],
    sender: 'exit 0',
    timedOut: false,
    stragglersKilled: 0,
    notes: [],
    ...over,
  };
}

function sample(): BenchResults {
  const scenarios = quickScenarios();
  return {
    version: 1,
    startedAt: '2026-01-01T00:00:00.000Z',
    finishedAt: '2026-01-01T00:01:00.000Z',
    loadAverageAtEnd: 0.5,
    complete: true,
    machine: { nproc: 2, cpuModel: 'Test CPU <x>', memoryGiB: 24, kernel: '6.1.0', os: 'Debian', node: 'v20.0.0', date: '2026-01-01', loadAverage: [0.1, 0.2, 0.3] },
    config: { quick: true, sizeMiB: 64, imageBytes: 64 * 2 ** 20, timeoutS: 60, rateFactor: 0.95, lossMatch: 'ip', mtu: 1500, tcpOffload: false },
    tools: [
      { name: 'udpcast', description: '', available: true, reason: null, version: 'udpcast 1' },
      { name: 'http', description: '', available: true, reason: null, version: 'node' },
      { name: 'fleetcast', description: '', available: false, reason: 'CLI not built', version: null },
    ],
    scenarios,
    runs: [
      run('udpcast', 'n3-loss0-500mbit'),
      run('http', 'n3-loss0-500mbit', { wireRatio: 3.16, timeS: 5.9 }),
      run('fleetcast', 'n3-loss0-500mbit', { status: 'not available', reason: 'CLI not built', timeS: null, wireRatio: null }),
      run('udpcast', 'n3-loss1-500mbit', {
        status: 'partial',
        timeS: null,
        correct: 2,
        receiverDetails: [
          { host: 'r3', address: '198.18.1.3', result: 'truncated', ended: 'exit 0', doneS: 3, bytes: 10 * 2 ** 20, droppedPackets: 400 },
        ],
      }),
      run('http', 'n3-loss1-500mbit', { wireRatio: 3.2 }),
      run('fleetcast', 'n3-loss1-500mbit', { status: 'not available', reason: 'CLI not built', timeS: null, wireRatio: null }),
    ],
  };
}

test('markdown report: machine, summary and per-run rows', () => {
  const md = markdown(sample());
  assert.match(md, /2 CPUs \(`nproc`\)/);
  assert.match(md, /24 GiB memory, kernel 6\.1\.0/);
  assert.match(md, /node v20\.0\.0/);
  assert.match(md, /\| n3-loss0-500mbit \| 2\.50 \/ 1\.04 \| 5\.90 \/ 3\.16 \| n\/a \|/);
  assert.match(md, /\*\*partial\*\* 2\/3/);
  assert.match(md, /r3: truncated \(10\.0 MiB\), exit 0/);
  assert.match(md, /fleetcast \| – \| no: CLI not built/);
});

/** A run of the quick pair at MTU 1500 and their jumbo twins at 9000. */
function mixedMtuSample(): BenchResults {
  const base = sample();
  const names = ['n3-loss0-500mbit', 'n3-loss1-500mbit', 'n3-loss0-500mbit-mtu9000', 'n3-loss1-500mbit-mtu9000'];
  const scenarios = withMtu(allScenarios().filter((s) => names.includes(s.name)), 1500);
  const jumbo = { payloadBytes: 8952, senderTxFrames: 3800, senderTxBytes: 3800 * 8990 };
  return {
    ...base,
    tools: base.tools.map((t) => ({ ...t, available: true, reason: null })),
    scenarios,
    runs: [
      run('udpcast', 'n3-loss0-500mbit'),
      run('fleetcast', 'n3-loss0-500mbit', { wireRatio: 1.043 }),
      run('udpcast', 'n3-loss1-500mbit', { wireRatio: 1.07 }),
      run('fleetcast', 'n3-loss1-500mbit', { status: 'timeout', timeS: null, correct: 1, wireRatio: 0.4 }),
      run('udpcast', 'n3-loss0-500mbit-mtu9000', { ...jumbo, wireRatio: 1.007, payloadBytes: 8956, timeS: 1.1, firstPacketS: 0.05 }),
      run('fleetcast', 'n3-loss0-500mbit-mtu9000', { ...jumbo, wireRatio: 1.021 }),
      run('udpcast', 'n3-loss1-500mbit-mtu9000', { ...jumbo, wireRatio: 1.038, payloadBytes: 8956 }),
      run('fleetcast', 'n3-loss1-500mbit-mtu9000', { ...jumbo, wireRatio: 1.029, notes: ['IP fragmentation: 3 fragments created (datagrams larger than the MTU 9000)'] }),
    ],
  };
}

test('markdown report with jumbo scenarios: MTU column, wire target per run, payload and frame sizes', () => {
  const md = markdown(mixedMtuSample());
  assert.match(md, /MTU 1500 unless the scenario has its own \(MTU column\)/);
  assert.match(md, /\| scenario \| MTU \| udpcast \| http \| fleetcast \|/);
  assert.match(md, /\| n3-loss0-500mbit \| 1500 \| 2\.50 \/ 1\.04 \|/);
  assert.match(md, /\| n3-loss1-500mbit-mtu9000 \| 9000 \| 2\.50 \/ 1\.04 \|/);
  const target = md.slice(md.indexOf('## Wire target'), md.indexOf('## Time target'));
  assert.match(target, /\| n3-loss0-500mbit \| 1500 \| 1\.02 \| 1\.040 ✗ \| – \| 1\.043 ✗ \|/);
  assert.match(target, /\| n3-loss1-500mbit \| 1500 \| 1\.03 \| 1\.070 ✗ \| – \| – \|/, 'a run that did not deliver is not judged');
  assert.match(target, /\| n3-loss0-500mbit-mtu9000 \| 9000 \| 1\.02 \| 1\.007 ✓ \| – \| 1\.021 ✗ \|/);
  assert.match(target, /\| n3-loss1-500mbit-mtu9000 \| 9000 \| 1\.03 \| 1\.038 ✗ \| – \| 1\.029 ✓ \|/);
  assert.match(md, /\| n3-loss1-500mbit-mtu9000 \| udpcast \| ok \| 2\.50 \| 1\.04 \| 8956 \| 8990 \|/);
  assert.match(md, /\| n3-loss0-500mbit \| udpcast \| ok \| 2\.50 \| 1\.04 \| 1452 \| 1458 \|/);
  // 64 MiB at 500 Mbit/s: 1.07 s at least; 2.50 s is 2.328 times that, 1.10 s 1.024, and 1.05 s from the first packet 0.978
  const time = md.slice(md.indexOf('## Time target'), md.indexOf('## All runs'));
  assert.match(time, /Tools were told 95 % of the uplink: sending the image alone then takes 1\.053 × the minimum/);
  assert.match(time, /\| n3-loss0-500mbit \| 1500 \| 1\.07 \| 2\.328 ✗ \| – \| 2\.328 ✗ \|/);
  assert.match(time, /\| n3-loss1-500mbit \| 1500 \| 1\.07 \| 2\.328 ✗ \| – \| – \|/, 'a run that did not deliver is not judged');
  assert.match(time, /\| n3-loss0-500mbit-mtu9000 \| 9000 \| 1\.07 \| 1\.024 ✓ · 0\.978 \| – \| 2\.328 ✗ \|/);
  assert.match(time, /After the dot: the same from the sender host's first packet on the LAN/);
  assert.match(md, /IP fragmentation: 3 fragments created/);
  assert.match(md, /`n3-loss0-500mbit-mtu9000`: 3 receivers, 0 % random loss, uplink 500mbit, MTU 9000 \(jumbo frames\)/);
});

test('markdown report at one MTU has no MTU column; older results without frame counts still render', () => {
  const md = markdown(sample());
  assert.match(md, /\| scenario \| udpcast \| http \| fleetcast \|/);
  assert.doesNotMatch(md, /unless the scenario has its own/);
  const old = sample();
  old.runs = old.runs.map(({ senderTxFrames: _f, ipFragments: _i, payloadBytes: _p, ...rest }) => rest as RunRecord);
  old.scenarios = old.scenarios.map(({ mtu: _m, ...rest }) => rest as Scenario);
  assert.match(markdown(old), /\| n3-loss0-500mbit \| udpcast \| ok \| 2\.50 \| 1\.04 \| – \| – \|/);
});

test('SVG chart: well-formed, one bar per run that ran, escaped text', () => {
  const svg = svgChart(sample());
  assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
  assert.ok(svg.trim().endsWith('</svg>'));
  // 4 runs with numbers x 2 panels
  assert.equal((svg.match(/<rect [^>]*><title>/g) ?? []).length, 8);
  assert.ok(svg.includes('url(#hatch0)'), 'the partial run is hatched');
  assert.ok(!/<x>/.test(svg));
  // tags balance (a rough well-formedness check)
  const opens = (svg.match(/<(?!\/|!)[a-zA-Z]+[^>]*[^/]>/g) ?? []).length;
  const closes = (svg.match(/<\/[a-zA-Z]+>/g) ?? []).length;
  assert.equal(opens, closes);
});

test('spread: median of an odd or even count, range, nothing for no values', () => {
  assert.deepEqual(spread([3, 1, 2]), { median: 2, min: 1, max: 3, n: 3 });
  assert.deepEqual(spread([4, 1, 2, 3]), { median: 2.5, min: 1, max: 4, n: 4 });
  assert.equal(spread([]), null);
});

/** Three runs of two tools at MTU 9000 (--repeat 3): one of fleetcast's did not deliver. */
function repeatedSample(): BenchResults {
  const base = sample();
  const scenarios = withMtu(allScenarios().filter((s) => s.name === 'n8-loss1-500mbit-mtu9000'), 1500);
  const s = 'n8-loss1-500mbit-mtu9000';
  return {
    ...base,
    config: { ...base.config, sizeMiB: 200, imageBytes: 200 * 2 ** 20, repeat: 3 },
    tools: [
      { name: 'uftp', description: '', available: true, reason: null, version: 'uftp 5' },
      { name: 'fleetcast', description: '', available: true, reason: null, version: '1' },
    ],
    scenarios,
    runs: [
      run('uftp', s, { repeat: 0, timeS: 3.8, wireRatio: 1.09, firstPacketS: 0.03 }),
      run('fleetcast', s, { repeat: 0, timeS: 3.7, wireRatio: 1.03, firstPacketS: 0.1 }),
      run('fleetcast', s, { repeat: 1, timeS: null, status: 'partial', correct: 7, receivers: 8, wireRatio: 0.9 }),
      run('uftp', s, { repeat: 1, timeS: 3.9, wireRatio: 1.08, firstPacketS: 0.03 }),
      run('uftp', s, { repeat: 2, timeS: 4.4, wireRatio: 1.1, firstPacketS: 0.03 }),
      run('fleetcast', s, { repeat: 2, timeS: 3.5, wireRatio: 1.02, firstPacketS: 0.1 }),
    ],
  };
}

test('repeated runs: medians with their range, runs that did not deliver counted and left out of the figures', () => {
  const results = repeatedSample();
  const fc = summarise(results.runs.filter((r) => r.tool === 'fleetcast'));
  assert.equal(fc.ok.length, 2);
  assert.equal(fc.failed.length, 1);
  assert.deepEqual(fc.time, { median: 3.6, min: 3.5, max: 3.7, n: 2 });
  const md = markdown(results);
  assert.match(md, /3 runs of each tool in each scenario, the tools in a rotating order/);
  assert.doesNotMatch(md, /ran without/);
  assert.match(markdown({ ...results, config: { ...results.config, envDropped: ['NODE_EXTRA_CA_CERTS'] } }), /the tools ran without NODE_EXTRA_CA_CERTS, set in this environment/);
  assert.match(md, /\| n8-loss1-500mbit-mtu9000 \| 9000 \| 3\.90 \(3\.80–4\.40\) \/ 1\.09 \(1\.08–1\.10\) \| \*\*1 of 3 partial\*\* 3\.60 \(3\.50–3\.70\) \/ 1\.02 \(1\.02–1\.03\) \|/);
  // The wire target is 1.03: judged on the median, not on the best run.
  const wire = md.slice(md.indexOf('## Wire target'), md.indexOf('## Time target'));
  assert.match(wire, /\| 1\.090 \(1\.080–1\.100\) ✗ \| \*\*1 of 3 partial\*\* 1\.025 \(1\.020–1\.030\) ✓ \|/);
  // 200 MiB at 500 Mbit/s: 3.355 s at least.
  const time = md.slice(md.indexOf('## Time target'), md.indexOf('## All runs'));
  assert.match(time, /\| 1\.162 \(1\.132–1\.311\) ✗ · 1\.153 \(1\.124–1\.302\) \| \*\*1 of 3 partial\*\* 1\.073 \(1\.043–1\.103\) ✓ · 1\.043 \(1\.013–1\.073\) \|/);
  assert.match(md, /\| n8-loss1-500mbit-mtu9000 \| fleetcast #2 \| partial \|/);
  // One bar per tool and panel (the medians), hatched where a run did not deliver.
  const svg = svgChart(results);
  assert.equal((svg.match(/<rect [^>]*><title>/g) ?? []).length, 4);
  assert.match(svg, /fleetcast: 3\.6 \(median of 2, 3\.5–3\.7; 2 of 3 runs delivered to every receiver\)/);
  assert.ok(svg.includes('url(#hatch1)'));
});

test('writeReports writes json, md and svg (stamped and latest)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetcast-report-test-'));
  try {
    const written = writeReports(dir, 'stamp', sample());
    assert.deepEqual(written.map((p) => p.slice(dir.length + 1)).sort(), ['bench-stamp.json', 'bench-stamp.md', 'bench-stamp.svg']);
    const json = JSON.parse(readFileSync(join(dir, 'latest.json'), 'utf8')) as BenchResults;
    assert.equal(json.runs.length, 6);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
