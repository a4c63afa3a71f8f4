// The benchmark harness on a real test LAN (needs root): the HTTP baseline and, when installed, udpcast
// and uftp on a small image, and the harness's handling of truncated images, time limits and daemons;
// then one jumbo-frame scenario (MTU 9000) for the multicast tools: full frames, no IP fragmentation.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { runOne, type HarnessConfig } from '../../bench/harness.js';
import { createImage } from '../../bench/image.js';
import { pause } from '../../bench/proc.js';
import { allScenarios, quickScenarios, withMtu, type Scenario } from '../../bench/scenarios.js';
import { fleetcast } from '../../bench/tools/fleetcast.js';
import { http } from '../../bench/tools/http.js';
import type { Tool, ToolOutcome } from '../../bench/tools/types.js';
import { udpcast } from '../../bench/tools/udpcast.js';
import { uftp } from '../../bench/tools/uftp.js';
import { buildLan, prerequisiteProblems, type Lan } from '../../src/testlan/lan.js';
import { findExecutable } from '../../src/testlan/system.js';

const problems = prerequisiteProblems();
const skip = problems.length > 0 ? `test LAN unavailable: ${problems.join('; ')}` : false;
if (skip) console.log(`# skipping benchmark harness tests: ${skip}`);

const scenario: Scenario = { ...quickScenarios()[1]!, name: 'test-n2-loss1-500mbit', receivers: 2 };
let lan: Lan;
let workDir: string;
let cfg: HarnessConfig;

before(async () => {
  if (skip) return;
  workDir = mkdtempSync(join(tmpdir(), 'fleetcast-bench-test-'));
  cfg = { image: createImage(join(workDir, 'image.bin'), 4 * 2 ** 20), workDir, timeoutS: 30, rateFactor: 0.95 };
  lan = await buildLan({ receivers: 2, senderRate: '500mbit', loss: 0.01, lossMatch: 'ip' });
});

after(async () => {
  if (skip) return;
  await lan?.teardown();
  rmSync(workDir, { recursive: true, force: true });
});

test('http baseline: every receiver gets the image, wire ~ N x image', { skip, timeout: 60_000 }, async () => {
  const r = await runOne(lan, scenario, http, cfg);
  assert.equal(r.status, 'ok', JSON.stringify(r));
  assert.equal(r.correct, 2);
  assert.ok(r.timeS !== null && r.timeS > 0 && r.timeS < 20);
  assert.ok(r.wireRatio !== null && r.wireRatio > 1.95 && r.wireRatio < 2.6, `wire/image ${r.wireRatio}`);
  assert.ok(r.senderCpuS !== null && r.senderCpuS > 0, 'sender CPU accounted');
  assert.ok(r.receiversCpuS !== null && r.receiversCpuS > 0, 'receiver CPU accounted');
  assert.equal(r.stragglersKilled, 0);
  for (const d of r.receiverDetails) assert.equal(d.result, 'ok');
});

/** Why a peer tool cannot run here, or false. */
function peerSkip(tool: Tool): string | false {
  const bins = tool === udpcast ? ['udp-sender', 'udp-receiver'] : ['uftp', 'uftpd'];
  const missing = bins.filter((b) => !findExecutable(b));
  return skip || (missing.length ? `${missing.join(', ')} not installed (apt-get install ${tool.name})` : false);
}

// On a LAN of their own without loss: what is checked is how the harness drives the peers, and udpcast at 1 %
// loss sometimes stalls for good (a CI run: 348 KB of 4 MiB sent, then nothing for 30 s; its own defect, which
// the benchmark records as a timeout). The harness's handling of a tool that hangs is the test after next.
const lossless: Scenario = { ...quickScenarios()[0]!, name: 'test-n2-loss0-500mbit', receivers: 2 };

for (const tool of [udpcast, uftp]) {
  test(`${tool.name}: every receiver gets the image with about one copy on the wire`, { skip: peerSkip(tool), timeout: 90_000 }, async (t) => {
    const peerLan = await buildLan({ receivers: 2, senderRate: '500mbit' });
    t.after(() => peerLan.teardown());
    const r = await runOne(peerLan, lossless, tool, cfg);
    assert.equal(r.status, 'ok', JSON.stringify(r));
    assert.ok(r.wireRatio !== null && r.wireRatio > 0.95 && r.wireRatio < 1.8, `wire/image ${r.wireRatio}`);
    assert.ok(r.timeS !== null && r.timeS < 30);
    assert.equal(r.stragglersKilled, 0, 'the tool runner stops its own processes (uftpd daemons included)');
    assert.ok(r.senderCpuS !== null && r.senderCpuS > 0);
    // one data packet per 1500-byte frame: the block size fits, nothing (feedback included) is fragmented
    assert.equal(r.payloadBytes, tool === udpcast ? 1456 : 1448);
    assert.equal(r.ipFragments, 0, JSON.stringify(r.notes));
    assert.ok(r.senderTxFrames !== null && r.senderTxFrames >= cfg.image.bytes / 1500, `frames ${r.senderTxFrames}`);
  });
}

/** A fake tool: receiver 1 copies the whole image, receiver 2 only half of it; the sender does nothing. */
const truncating: Tool = {
  name: 'truncating',
  description: 'test double',
  check: async () => null,
  version: async () => 'test',
  payloadBytes: () => 0,
  async run(ctx): Promise<ToolOutcome> {
    ctx.markStart();
    const sender = ctx.start(ctx.lan.sender, ['true'], 'sender');
    const receivers = ctx.lan.receivers.map((host, i) =>
      ctx.start(host, ['sh', '-c', `head -c ${i === 0 ? ctx.image.bytes : ctx.image.bytes / 2} "$0" > "$1"`, ctx.image.path, ctx.outputPath(host)], `r${i}`),
    );
    for (const p of receivers) void p.exited.then((e) => ctx.receiverDone(p.host, e.at));
    await Promise.all(receivers.map((p) => p.exited));
    return { sender: await sender.exited, receivers: new Map(receivers.map((p) => [p.host.name, p.exit!])), argv: { sender: 'true', receiver: 'head' } };
  },
};

test('harness: a truncated image is reported as such', { skip, timeout: 30_000 }, async () => {
  const r = await runOne(lan, scenario, truncating, cfg);
  assert.equal(r.status, 'partial');
  assert.equal(r.correct, 1);
  assert.equal(r.timeS, null, 'no time when not every receiver is correct');
  assert.ok(r.lastCorrectS !== null);
  assert.equal(r.receiverDetails[0]?.result, 'ok');
  assert.equal(r.receiverDetails[1]?.result, 'truncated');
  assert.equal(r.receiverDetails[1]?.bytes, cfg.image.bytes / 2);
  assert.equal(r.receiverDetails[1]?.ended, 'exit 0');
});

/** A fake tool that never finishes, and leaves a daemon behind in a receiver. */
const hanging: Tool = {
  name: 'hanging',
  description: 'test double',
  check: async () => null,
  version: async () => 'test',
  payloadBytes: () => 0,
  async run(ctx): Promise<ToolOutcome> {
    const daemon = ctx.start(ctx.lan.receivers[0]!, ['sh', '-c', 'sleep 600 >/dev/null 2>&1 </dev/null & exit 0'], 'daemon');
    await daemon.exited;
    ctx.markStart();
    const sender = ctx.start(ctx.lan.sender, ['sh', '-c', 'while :; do :; done'], 'sender');
    const receiver = ctx.start(ctx.lan.receivers[1]!, ['sleep', '600'], 'receiver');
    await Promise.all([sender.exited, receiver.exited]);
    await pause(10);
    return { sender: sender.exit, receivers: new Map([[receiver.host.name, receiver.exit!]]), argv: { sender: 'busy loop', receiver: 'sleep' } };
  },
};

test('harness: the time limit kills stragglers, daemons included, and CPU is still accounted', { skip, timeout: 30_000 }, async () => {
  const r = await runOne(lan, scenario, hanging, { ...cfg, timeoutS: 2 });
  assert.equal(r.status, 'timeout');
  assert.equal(r.timedOut, true);
  assert.equal(r.correct, 0);
  assert.match(r.receiverDetails[1]?.ended ?? '', /killed at the 2 s limit/);
  assert.equal(r.receiverDetails[0]?.result, 'missing');
  assert.ok(r.wallS !== null && r.wallS >= 1.9 && r.wallS < 6, `wall ${r.wallS}`);
  // the busy loop ran for ~2 s on a machine with other work: at least some of it is accounted
  assert.ok(r.senderCpuS !== null && r.senderCpuS > 0.3, `sender CPU ${r.senderCpuS}`);
  for (const host of lan.hosts) assert.deepEqual(lan.processes(host), [], `nothing left running in ${host.name}`);
});

test('jumbo frames (MTU 9000): every multicast tool fills 9000-byte frames without IP fragmentation', { skip, timeout: 120_000 }, async (t) => {
  const jumbo: Scenario = {
    ...withMtu(allScenarios(), 1500).find((s) => s.name === 'n3-loss0-500mbit-mtu9000')!,
    name: 'test-n1-loss0-500mbit-mtu9000',
    receivers: 1,
  };
  const jumboLan = await buildLan({ receivers: 1, senderRate: '500mbit', mtu: jumbo.mtu! });
  t.after(() => jumboLan.teardown());
  assert.equal(jumboLan.mtu, 9000);
  for (const tool of [fleetcast, udpcast, uftp]) {
    const unusable = tool === fleetcast ? await fleetcast.check({ install: false }) : peerSkip(tool);
    if (unusable) {
      t.diagnostic(`${tool.name} skipped: ${unusable}`);
      continue;
    }
    const r = await runOne(jumboLan, jumbo, tool, cfg);
    const what = `${tool.name}: ${JSON.stringify(r)}`;
    assert.equal(r.status, 'ok', what);
    assert.equal(r.ipFragments, 0, what);
    assert.ok(r.payloadBytes !== null && r.payloadBytes > 8700, what);
    // data frames of ~9014 bytes dominate; at MTU 1500 the mean could not exceed 1514
    assert.ok(r.senderTxBytes !== null && r.senderTxFrames && r.senderTxBytes / r.senderTxFrames > 6000, what);
    assert.ok(r.wireRatio !== null && r.wireRatio < 1.02, `framing under 1 % without loss: ${what}`);
  }
});
