// fleetcast over IPv6 multicast on the test LAN: a sender and 3 receivers in network namespaces on a bridge,
// with 2001:2::/64 (RFC 5180) and fe80:: addresses and groups of link (ff12::) and site (ff15::) scope that
// exist only on the namespaces' interfaces. Needs root, ip, tc and nft; skipped with the reason otherwise.
// (IPv6 multicast does not work on `lo`, so there is no loopback counterpart: see test/transport/ipv6.test.ts.)
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildLan, prerequisiteProblems, type Lan, type LanHost } from '../../src/testlan/lan.js';
import { type Exited, transfer } from './helpers/fleetcast.js';

const problems = prerequisiteProblems();
const skip = problems.length > 0 ? `test LAN unavailable: ${problems.join('; ')}` : false;
if (skip) console.log(`# skipping IPv6 namespace tests: ${skip}`);

const IMAGE_BYTES = 4 * 1024 * 1024 + 4321;
let lan: Lan;
let dir: string;
let image: string;
let imageData: Buffer;
let port = 30000 + Math.floor(Math.random() * 20000);

before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'fc-ns6-'));
  image = join(dir, 'image.bin');
  imageData = randomBytes(IMAGE_BYTES);
  writeFileSync(image, imageData);
  // 2 % loss on every receiver (the nft rule drops UDP of either family): repairs and NACKs are exercised too.
  lan = await buildLan({ receivers: 3, ipv6: true, loss: 0.02 });
});

after(async () => {
  await lan?.teardown();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Every receiver exited 0 with the exact image; returns their JSON results. */
function assertReceived(sender: Exited, results: Exited[], name = 'out', expected = imageData): Array<{ sender: string }> {
  assert.equal(sender.code, 0, `sender: ${sender.stderr}\n${sender.stdout}`);
  return results.map((r, i) => {
    assert.equal(r.code, 0, `receiver ${i}: ${r.stderr}\n${r.stdout}`);
    assert.ok(readFileSync(join(dir, `${name}${i}.bin`)).equals(expected), `receiver ${i}: the image differs`);
    return JSON.parse(r.stdout) as { sender: string };
  });
}

const addressesOf = (sender: Exited): string[] => (JSON.parse(sender.stdout) as { receivers: Array<{ address: string }> }).receivers.map((r) => r.address).sort();

/** An nft counter in a receiver's namespace: datagrams to the group and port with hop limit `hops`, and others. */
async function countHopLimits(host: LanHost, group: string, dport: number, hops: number): Promise<() => Promise<{ want: number; other: number }>> {
  const match = `ip6 daddr ${group} udp dport ${dport}`;
  const ruleset = [
    'table ip6 fleetcast_hops {',
    '  counter want { }',
    '  counter other { }',
    '  chain count { type filter hook prerouting priority -10; policy accept;',
    `    ${match} ip6 hoplimit ${hops} counter name want`,
    `    ${match} ip6 hoplimit != ${hops} counter name other`,
    '  }',
    '}',
    '',
  ].join('\n');
  await lan.exec(host, ['nft', '-f', '-'], { input: ruleset });
  return async () => {
    const { stdout } = await lan.exec(host, ['nft', '-j', 'list', 'counters', 'table', 'ip6', 'fleetcast_hops']);
    const counters = (JSON.parse(stdout) as { nftables: Array<{ counter?: { name: string; packets: number } }> }).nftables.flatMap((e) => (e.counter ? [e.counter] : []));
    const packets = (name: string) => counters.find((c) => c.name === name)?.packets ?? NaN;
    return { want: packets('want'), other: packets('other') };
  };
}

test('the IPv6 LAN: 2001:2::/64 and fe80:: addresses usable at once, the ff00::/8 route, no way off the LAN', { skip, timeout: 30_000 }, async () => {
  for (const host of lan.hosts) {
    assert.match(host.address6 ?? '', /^2001:2::/);
    const addrs = (await lan.exec(host, ['ip', '-6', '-o', 'addr', 'show', 'dev', host.ifname])).stdout;
    assert.ok(addrs.includes(`inet6 ${host.address6}/64 scope global`), addrs);
    assert.match(addrs, /inet6 fe80::\S+\/64 scope link/);
    assert.doesNotMatch(addrs, /tentative|dadfailed/, 'no duplicate address detection pending');
    const local = (await lan.exec(host, ['ip', '-6', 'route', 'show', 'table', 'local'])).stdout;
    assert.match(local, /multicast ff00::\/8 dev lan0/);
    const routes = (await lan.exec(host, ['ip', '-6', 'route', 'show'])).stdout;
    assert.doesNotMatch(routes, /default/, 'no default route: nothing leaves the LAN');
  }
  assert.equal(new Set(lan.hosts.map((h) => h.address6)).size, lan.hosts.length);
});

test('site scope (ff15::), batch backend, --interface by name, --ttl 3 as hop limit: 3 exact images', { skip, timeout: 120_000 }, async () => {
  const group = 'ff15::fc:1';
  const dport = port++;
  const hops = await countHopLimits(lan.receivers[0]!, group, dport, 3);
  const fragments = await lan.ipFragmentsCreated(lan.sender, 6);
  const { sender, results } = await transfer(lan, dir, image, { group, port: dport, senderArgs: ['--ttl', '3'], bothArgs: ['--io', 'batch'], limitMs: 60_000 });
  const received = assertReceived(sender, results);
  // A site-scope group: the sender's global address is the source, and feedback comes from the receivers' ones.
  for (const r of received) assert.match(r.sender, /^\[2001:2::1\]:\d+$/);
  assert.deepEqual(addressesOf(sender).map((a) => a.replace(/:\d+$/, '')), lan.receivers.map((h) => `[${h.address6}]`).sort());
  const counted = await hops();
  assert.ok(counted.want > IMAGE_BYTES / 1500, `datagrams with hop limit 3: ${JSON.stringify(counted)}`);
  assert.equal(counted.other, 0, 'every datagram to the group carried hop limit 3');
  assert.equal(await lan.ipFragmentsCreated(lan.sender, 6), fragments, 'datagrams fit the MTU with the 40-byte IPv6 header');
  const dropped = await Promise.all(lan.receivers.map((h) => lan.droppedPackets(h)));
  assert.ok(dropped.every((d) => d > 0), `the loss rules dropped IPv6 datagrams at every receiver: ${dropped}`);
});

test('link scope (ff12::), dgram backend, --interface by IPv6 address, --key, a receiver on the sender host: link-local sources with their zone', { skip, timeout: 120_000 }, async () => {
  const { sender, results } = await transfer(lan, dir, image, {
    group: 'ff12::fc:2',
    port: port++,
    // The sender's own host receives too: multicast loopback (on by default) over IPv6.
    receivers: [...lan.receivers, lan.sender],
    iface: (host) => host.address6!,
    bothArgs: ['--io', 'dgram', '--key', 'ns6-secret'],
    limitMs: 60_000,
  });
  const received = assertReceived(sender, results);
  // Link scope: the sender sends from its fe80:: address; receivers answer it there, through lan0.
  for (const r of received) assert.match(r.sender, /^\[fe80::[0-9a-f:]+%lan0\]:\d+$/);
  assert.equal(new Set(received.map((r) => r.sender)).size, 1);
  for (const address of addressesOf(sender)) assert.match(address, /^\[fe80::[0-9a-f:]+%lan0\]:\d+$/);
});

test('two sessions on one port, two groups, a receiver in both: each receiver gets its own session\'s image', { skip, timeout: 120_000 }, async () => {
  const [r1, r2, r3] = lan.receivers as [LanHost, LanHost, LanHost];
  const imageB = join(dir, 'image-b.bin');
  const dataB = randomBytes(IMAGE_BYTES - 1000);
  writeFileSync(imageB, dataB);
  const shared = { port: port++, limitMs: 60_000 };
  const [a, b] = await Promise.all([
    transfer(lan, dir, image, { ...shared, group: 'ff12::fc:3', receivers: [r1, r2], name: 'a' }),
    transfer(lan, dir, imageB, { ...shared, group: 'ff15::fc:4', receivers: [r1, r3], name: 'b' }),
  ]);
  assertReceived(a.sender, a.results, 'a');
  assertReceived(b.sender, b.results, 'b', dataB);
});
