// Unit tests of the benchmark's scenario matrix and reports (no root needed).

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { RunRecord } from '../../bench/harness.js';
import { markdown, svgChart, writeReports, type BenchResults } from '../../bench/report.js';
import { allScenarios, filterScenarios, quickScenarios } from '../../bench/scenarios.js';

test('scenario matrix: N x loss x uplink, plus bursty and slow receiver', () => {
  const all = allScenarios();
  assert.equal(all.length, 3 * 3 * 2 + 2);
  assert.equal(new Set(all.map((s) => s.name)).size, all.length, 'unique names');
  assert.ok(all.some((s) => s.name === 'n8-loss5-unlimited' && s.receivers === 8 && s.loss === 0.05 && s.uplink === null));
  assert.ok(all.some((s) => s.bursty && s.bursty.loss === 0.01));
  assert.ok(all.some((s) => s.slow?.rate === '100mbit'));
  assert.deepEqual(
    quickScenarios().map((s) => s.name),
    ['n3-loss0-500mbit', 'n3-loss1-500mbit'],
  );
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
});

function run(tool: string, scenario: string, over: Partial<RunRecord> = {}): RunRecord {
  return {
    scenario,
    tool,
    status: 'ok',
    timeS: 2.5,
    lastCorrectS: 2.5,
    wallS: 2.6,
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
