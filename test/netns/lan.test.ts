// Namespace tests of the test LAN (src/testlan). They need root, ip, tc and nft; otherwise they are
// skipped with the reason. Each builds its own LAN with a random prefix and removes it afterwards.

import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { buildLan, listLeftovers, prerequisiteProblems, type Lan, type LanHost } from '../../src/testlan/lan.js';

const here = dirname(fileURLToPath(import.meta.url));
const MCAST = join(here, 'helpers', 'mcast.js');
const HOLD = join(here, 'helpers', 'hold-lan.js');
const NOT_ROOT = join(here, 'helpers', 'not-root.js');

const problems = prerequisiteProblems();
const skip = problems.length > 0 ? `test LAN unavailable: ${problems.join('; ')}` : false;
if (skip) console.log(`# skipping namespace tests: ${skip}`);

interface RecvResult {
  count: number;
  bytes: number;
  firstAt: number;
  lastAt: number;
  seqs: number[];
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return false;
  }
}

let portCounter = 41000 + Math.floor(Math.random() * 1000) * 2;
const nextPort = (): number => (portCounter += 2);

async function readJsonLine(child: ChildProcess): Promise<unknown> {
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  const [code] = (await once(child, 'close')) as [number | null];
  const line = out.trim().split('\n').pop() ?? '';
  assert.ok(line.startsWith('{'), `no JSON from child (exit ${code}): ${out}`);
  return JSON.parse(line);
}

function waitReady(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let err = '';
    const timer = setTimeout(() => reject(new Error(`receiver not ready: ${err}`)), 10_000);
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('READY')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`receiver exited early (${code}): ${err}`));
    });
  });
}

/** Sends count datagrams from the sender to a group; returns what each listed receiver got. */
async function multicast(lan: Lan, receivers: readonly LanHost[], count: number, size: number, pps: number): Promise<RecvResult[]> {
  const group = `239.255.${Math.floor(Math.random() * 200) + 1}.${Math.floor(Math.random() * 200) + 1}`;
  const port = nextPort();
  const recvs = receivers.map((host) => lan.spawn(host, [process.execPath, MCAST, 'recv', group, String(port), host.address, '30000']));
  await Promise.all(recvs.map(waitReady));
  const results = Promise.all(recvs.map((c) => readJsonLine(c) as Promise<RecvResult>));
  const sent = await lan.exec(lan.sender, [process.execPath, MCAST, 'send', group, String(port), lan.sender.address, String(count), String(size), String(pps)]);
  assert.match(sent.stdout, /"sent"/);
  return results;
}

function assertNoLeftovers(prefix: string): void {
  const left = listLeftovers(prefix);
  assert.deepEqual(left, { namespaces: [], links: [], cgroups: [], states: [] }, `leftovers of ${prefix}`);
  const netns = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
  assert.ok(!netns.includes(prefix), `ip netns list still shows ${prefix}:\n${netns}`);
  const links = spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).stdout;
  assert.ok(!links.includes(prefix), `ip link still shows ${prefix}:\n${links}`);
  const tables = spawnSync('nft', ['list', 'tables'], { encoding: 'utf8' }).stdout;
  assert.ok(!tables.includes('fleetcast'), `nft list tables still shows a fleetcast table:\n${tables}`);
}

async function withLan(options: Parameters<typeof buildLan>[0], body: (lan: Lan) => Promise<void>): Promise<void> {
  const lan = await buildLan(options);
  try {
    await body(lan);
  } finally {
    await lan.teardown();
    assertNoLeftovers(lan.prefix);
  }
}

test('multicast from the sender reaches every receiver', { skip, timeout: 60_000 }, async () => {
  await withLan({ receivers: 3 }, async (lan) => {
    assert.equal(lan.receivers.length, 3);
    for (const host of lan.hosts) {
      assert.match(host.address, /^198\.1[89]\./);
      const addr = await lan.exec(host, ['ip', '-o', 'addr', 'show', 'dev', host.ifname]);
      assert.match(addr.stdout, new RegExp(`inet ${host.cidr.replace(/\./g, '\\.')} brd ${host.broadcast.replace(/\./g, '\\.')}`));
      const routes = await lan.exec(host, ['ip', 'route', 'show']);
      assert.match(routes.stdout, /224\.0\.0\.0\/4 dev lan0/);
      const lo = await lan.exec(host, ['ip', '-o', 'link', 'show', 'dev', 'lo']);
      assert.match(lo.stdout, /UP/);
    }
    const tx0 = await lan.txBytes(lan.sender);
    const sent0 = lan.packetsSent(lan.sender);
    const results = await multicast(lan, lan.receivers, 500, 200, 5000);
    for (const [i, r] of results.entries()) {
      assert.ok(r.count >= 495, `receiver ${i + 1} got ${r.count}/500`);
      assert.equal(new Set(r.seqs).size, r.count, 'no duplicates');
    }
    // one copy on the sender's wire for all receivers (multicast, not N unicasts)
    const txDelta = (await lan.txBytes(lan.sender)) - tx0;
    assert.ok(txDelta >= 500 * 200 && txDelta < 500 * 260 * 1.5, `sender tx ${txDelta} bytes`);
    const sentDelta = lan.packetsSent(lan.sender) - sent0;
    assert.ok(sentDelta >= 500 && sentDelta < 600, `the sender's veth end counted ${sentDelta} packets from it`);
    assert.ok((await lan.rxBytes(lan.receivers[0]!)) >= 500 * 200);
    const cpu = lan.cpuUsage(lan.sender);
    if (cpu) assert.ok(cpu.totalS > 0, 'CPU accounted in the sender cgroup');
  });
});

test('random loss drops about the configured fraction', { skip, timeout: 60_000 }, async (t) => {
  await withLan({ receivers: 3, loss: 0.2 }, async (lan) => {
    const results = await multicast(lan, lan.receivers, 3000, 200, 10000);
    for (const [i, r] of results.entries()) {
      const fraction = r.count / 3000;
      t.diagnostic(`receiver ${i + 1}: received ${(fraction * 100).toFixed(1)} %`);
      assert.ok(fraction > 0.7 && fraction < 0.88, `receiver ${i + 1} received ${(fraction * 100).toFixed(1)} % (configured loss 20 %)`);
      const dropped = await lan.droppedPackets(lan.receivers[i]!);
      assert.ok(dropped >= 3000 - r.count - 30, `nft counted ${dropped} drops`);
    }
  });
});

test('bursty loss loses packets in runs', { skip, timeout: 60_000 }, async (t) => {
  await withLan({ receivers: 2, bursty: { loss: 0.1, meanBurst: 8 } }, async (lan) => {
    const total = 6000;
    const results = await multicast(lan, lan.receivers, total, 200, 10000);
    for (const [i, r] of results.entries()) {
      const got = new Set(r.seqs);
      const runs: number[] = [];
      let current = 0;
      for (let seq = 0; seq < total; seq++) {
        if (!got.has(seq)) current++;
        else if (current > 0) {
          runs.push(current);
          current = 0;
        }
      }
      if (current > 0) runs.push(current);
      const lost = total - got.size;
      const meanRun = runs.length ? lost / runs.length : 0;
      t.diagnostic(`receiver ${i + 1}: lost ${((lost / total) * 100).toFixed(1)} % in ${runs.length} runs, mean run ${meanRun.toFixed(2)}`);
      assert.ok(lost / total > 0.03 && lost / total < 0.25, `receiver ${i + 1} lost ${((lost / total) * 100).toFixed(1)} % (configured 10 %)`);
      // independent 10 % loss would give runs of about 1.1 packets
      assert.ok(meanRun >= 3, `receiver ${i + 1}: mean loss run ${meanRun.toFixed(2)} packets (configured 8)`);
    }
  });
});

test('tbf limits the sender uplink and the slow receiver', { skip, timeout: 60_000 }, async (t) => {
  await withLan({ receivers: 2, senderRate: '40mbit', slowReceiver: { rate: '10mbit' } }, async (lan) => {
    const senderQdisc = await lan.exec(lan.sender, ['tc', 'qdisc', 'show', 'dev', 'lan0']);
    assert.match(senderQdisc.stdout, /tbf .*rate 40Mbit/);
    const slow = lan.receivers[1]!;
    assert.match((await lan.exec(slow, ['tc', 'qdisc', 'show', 'dev', 'lan0'])).stdout, /tbf .*rate 10Mbit/);
    const rootSide = spawnSync('tc', ['qdisc', 'show', 'dev', slow.rootIfname], { encoding: 'utf8' }).stdout;
    assert.match(rootSide, /tbf .*rate 10Mbit/);
    // offer ~80 Mbit/s for 2 s: the fast receiver should see ~40, the slow one ~10
    const [fast, slowResult] = await multicast(lan, lan.receivers, 14000, 1400, 7000);
    const mbit = (r: RecvResult): number => (r.bytes * 8) / ((r.lastAt - r.firstAt) / 1000) / 1e6;
    t.diagnostic(`fast receiver ${mbit(fast!).toFixed(1)} Mbit/s, slow receiver ${mbit(slowResult!).toFixed(1)} Mbit/s`);
    assert.ok(mbit(fast!) > 20 && mbit(fast!) < 52, `fast receiver at ${mbit(fast!).toFixed(1)} Mbit/s (tbf 40)`);
    assert.ok(mbit(slowResult!) > 5 && mbit(slowResult!) < 14, `slow receiver at ${mbit(slowResult!).toFixed(1)} Mbit/s (tbf 10)`);
  });
});

test('jumbo MTU', { skip, timeout: 60_000 }, async () => {
  await withLan({ receivers: 1, mtu: 9000 }, async (lan) => {
    for (const host of lan.hosts) assert.match((await lan.exec(host, ['ip', '-o', 'link', 'show', 'dev', 'lan0'])).stdout, /mtu 9000/);
    const frames0 = await lan.txFrames(lan.sender);
    const fragments0 = await lan.ipFragmentsCreated(lan.sender);
    const [r] = await multicast(lan, lan.receivers, 50, 8900, 1000);
    assert.ok(r!.count >= 49);
    // 8900-byte datagrams go out unfragmented: about one frame per datagram
    assert.ok(r!.bytes >= 49 * 8900);
    const frames = (await lan.txFrames(lan.sender)) - frames0;
    assert.ok(frames >= 80 && frames < 90, `${frames} frames for 50 datagrams and 30 END markers`);
    assert.equal((await lan.ipFragmentsCreated(lan.sender)) - fragments0, 0);
    // larger than the MTU: the kernel splits each into two fragments, and the counter sees it
    await multicast(lan, lan.receivers, 10, 12000, 1000);
    assert.ok((await lan.ipFragmentsCreated(lan.sender)) - fragments0 >= 20);
  });
});

test('teardown removes everything and is idempotent', { skip, timeout: 60_000 }, async () => {
  const lan = await buildLan({ receivers: 3, loss: 0.01, bursty: { loss: 0.01, meanBurst: 5 }, senderRate: '100mbit', slowReceiver: { rate: '10mbit' } });
  const sleeper = lan.spawn(lan.receivers[0]!, ['sleep', '600'], { stdio: 'ignore' });
  assert.ok(listLeftovers(lan.prefix).namespaces.length === 4);
  await lan.teardown();
  await lan.teardown();
  assertNoLeftovers(lan.prefix);
  if (sleeper.exitCode === null && sleeper.signalCode === null) await once(sleeper, 'exit');
  assert.equal(sleeper.signalCode, 'SIGKILL');
  assert.throws(() => lan.spawn(lan.sender, ['true']), /torn down/);
});

test('a failure midway through the build leaves nothing behind', { skip, timeout: 60_000 }, async () => {
  const prefix = `fct${Math.random().toString(36).slice(2, 7).padEnd(5, '0')}`;
  const steps: string[] = [];
  let seenNamespaces = 0;
  await assert.rejects(
    buildLan({
      receivers: 3,
      loss: 0.05,
      prefix,
      onStep: (step) => {
        steps.push(step);
        seenNamespaces = listLeftovers(prefix).namespaces.length;
        if (step === 'host:r2') throw new Error('injected failure');
      },
    }),
    /injected failure/,
  );
  assert.deepEqual(steps, ['preflight', 'bridge', 'host:s', 'host:r1', 'host:r2']);
  assert.equal(seenNamespaces, 3, 'three namespaces existed when the failure came');
  assertNoLeftovers(prefix);
});

test('a failure thrown while the LAN is in use leaves nothing behind', { skip, timeout: 60_000 }, async () => {
  let prefix = '';
  await assert.rejects(
    withLan({ receivers: 2 }, async (lan) => {
      prefix = lan.prefix;
      lan.spawn(lan.receivers[1]!, ['sleep', '600'], { stdio: 'ignore' });
      throw new Error('test body failed');
    }),
    /test body failed/,
  );
  assertNoLeftovers(prefix);
});

for (const how of ['SIGINT', 'SIGTERM', 'crash'] as const) {
  test(`an interrupted run cleans up (${how})`, { skip, timeout: 60_000 }, async () => {
    const child = spawn(process.execPath, [HOLD, how === 'crash' ? 'crash' : 'wait'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const info = await new Promise<{ prefix: string; pid: number }>((resolve, reject) => {
      let out = '';
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0] as string) as { prefix: string; pid: number });
      });
      child.once('exit', (code) => reject(new Error(`holder exited early (${code}): ${err}`)));
    });
    assert.equal(listLeftovers(info.prefix).namespaces.length, 3);
    if (how !== 'crash') child.kill(how);
    const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
    if (how === 'crash') assert.equal(code, 1);
    else assert.equal(signal, how, 'the process still dies of the signal');
    assertNoLeftovers(info.prefix);
    // the process started inside the LAN is gone too
    assert.ok(!alive(info.pid), `process ${info.pid} still runs`);
  });
}

test('refuses clearly when not root', { skip, timeout: 30_000 }, () => {
  const result = spawnSync(process.execPath, [NOT_ROOT], { uid: 65534, gid: 65534, encoding: 'utf8', cwd: '/' });
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stdout, /needs root/);
  assert.match(result.stdout, /uid 65534/);
});
