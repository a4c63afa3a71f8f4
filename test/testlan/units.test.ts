// Unit tests of the test LAN's pure parts (no root needed).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gilbertElliott, hostAddress6, lossRuleset, prerequisiteProblems } from '../../src/testlan/lan.js';
import { formatRate, parseRate, tcRate } from '../../src/testlan/rate.js';

test('parseRate understands tc and short spellings', () => {
  assert.equal(parseRate('500mbit'), 500e6);
  assert.equal(parseRate('1gbit'), 1e9);
  assert.equal(parseRate('800kbit'), 800e3);
  assert.equal(parseRate('500M'), 500e6);
  assert.equal(parseRate('1G'), 1e9);
  assert.equal(parseRate('10mbps'), 80e6, 'tc: mbps is megabytes per second');
  assert.equal(parseRate('1.5gbit'), 1.5e9);
  assert.throws(() => parseRate('fast'), /not a rate/);
  assert.throws(() => parseRate('500 furlongs'), /not a rate/);
  assert.throws(() => parseRate('10bit'), /too low/);
  assert.equal(tcRate(500e6), '500000000bit');
  assert.equal(formatRate(500e6), '500mbit');
  assert.equal(formatRate(1.5e9), '1.5gbit');
});

test('Gilbert-Elliott parameters give the configured average and burst length', () => {
  const { p, r } = gilbertElliott({ loss: 0.01, meanBurst: 10 });
  assert.ok(Math.abs(r - 0.1) < 1e-12);
  assert.ok(Math.abs(p / (p + r) - 0.01) < 1e-12, 'stationary loss');
  assert.throws(() => gilbertElliott({ loss: 0, meanBurst: 10 }), /loss/);
  assert.throws(() => gilbertElliott({ loss: 0.1, meanBurst: 0.5 }), /meanBurst/);
});

test('loss rulesets', () => {
  assert.equal(lossRuleset({}), null);
  assert.equal(lossRuleset({ loss: 0 }), null);
  const random = lossRuleset({ loss: 0.01 }) ?? '';
  assert.match(random, /table inet fleetcast_lan/);
  assert.match(random, /meta l4proto udp numgen random mod 1000000 < 10000 counter name lost drop/);
  const ip = lossRuleset({ loss: 0.05, lossMatch: 'ip' }) ?? '';
  assert.match(ip, /meta nfproto ipv4 numgen random mod 1000000 < 50000/);
  const bursty = lossRuleset({ bursty: { loss: 0.01, meanBurst: 10 } }) ?? '';
  assert.match(bursty, /set ge_bad \{ type iface_index; flags dynamic,timeout; timeout 20ms; \}/);
  assert.match(bursty, /meta iif @ge_bad numgen random mod 1000000 < 100000 delete @ge_bad \{ meta iif \} accept/);
  assert.match(bursty, /meta iif @ge_bad counter name lost drop/);
  assert.match(bursty, /numgen random mod 1000000 < 1010 add @ge_bad \{ meta iif \} counter name lost drop/);
  assert.match(lossRuleset({ bursty: { loss: 0.01, meanBurst: 10, maxBurstMs: 5 } }) ?? '', /timeout 5ms/);
});

test('prerequisites: says what is missing and how to install it', () => {
  assert.deepEqual(prerequisiteProblems(0, (n) => `/usr/sbin/${n}`), []);
  const notRoot = prerequisiteProblems(1000, (n) => `/usr/sbin/${n}`);
  assert.equal(notRoot.length, 1);
  assert.match(notRoot[0] ?? '', /needs root.*uid 1000/);
  const missing = prerequisiteProblems(0, (n) => (n === 'nft' || n === 'tc' ? undefined : `/usr/sbin/${n}`));
  assert.match(missing[0] ?? '', /missing commands: tc, nft/);
  assert.match(missing[0] ?? '', /apt-get install iproute2 nftables/);
});

test('IPv6 host addresses: 2001:2::/64 (RFC 5180), the IPv4 address\'s last two octets as the last two groups', () => {
  assert.equal(hostAddress6(0), '2001:2::1');
  assert.equal(hostAddress6(1), '2001:2::1:1');
  assert.equal(hostAddress6(250), '2001:2::1:250');
  assert.equal(hostAddress6(251), '2001:2::2:1');
  const all = Array.from({ length: 201 }, (_, i) => hostAddress6(i));
  assert.equal(new Set(all).size, all.length);
  for (const a of all) assert.equal(new URL(`http://[${a}]/`).hostname, `[${a}]`, `${a} is written canonically`);
});
