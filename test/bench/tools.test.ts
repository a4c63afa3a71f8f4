// Unit tests of the benchmark's command lines: every tool is told the link MTU, and the payload it gets fills
// one frame without IP fragmentation (no root, no LAN; the netns bench test runs them for real).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fleetcast, fleetcastCommands, igmpMember } from '../../bench/tools/fleetcast.js';
import { toolEnv } from '../../bench/proc.js';
import { http } from '../../bench/tools/http.js';
import type { CommandParams } from '../../bench/tools/types.js';
import { udpcast, udpcastCommands } from '../../bench/tools/udpcast.js';
import { UFTP_MAX_BLOCK_BYTES, uftp, uftpCommands } from '../../bench/tools/uftp.js';

const params = (mtu: number, rateBits: number | null = 475e6): CommandParams => ({
  ifname: 'lan0',
  port: 20004,
  groups: ['239.255.2.1', '239.255.2.2'],
  rateBits,
  mtu,
  receivers: 3,
  imagePath: '/tmp/image.bin',
});

/** The value right after `flag` in argv (asserting the flag is there once). */
function flagValue(argv: readonly string[], flag: string): string {
  const at = argv.indexOf(flag);
  assert.ok(at >= 0, `${flag} in ${argv.join(' ')}`);
  assert.equal(argv.lastIndexOf(flag), at, `${flag} given once`);
  return argv[at + 1] as string;
}

const IP_UDP = 20 + 8;

test('udpcast: --blocksize fills one frame (1456 = its default at MTU 1500, 8956 at 9000)', () => {
  for (const [mtu, block] of [[1500, 1456], [9000, 8956]] as const) {
    const { sender, receiver } = udpcastCommands(params(mtu));
    assert.equal(flagValue(sender, '--blocksize'), String(block));
    assert.equal(udpcast.payloadBytes(mtu), block);
    assert.equal(block + 16 + IP_UDP, mtu, 'data block + 16-byte udpcast header + IP/UDP = the MTU');
    assert.equal(flagValue(sender, '--max-bitrate'), '475m');
    assert.equal(flagValue(sender, '--min-receivers'), '3');
    assert.equal(flagValue(sender, '--mcast-data-address'), '239.255.2.1');
    const r = receiver('/out/image.bin');
    assert.equal(r[0], 'udp-receiver');
    assert.equal(flagValue(r, '--file'), '/out/image.bin');
    assert.equal(flagValue(r, '--portbase'), '20004');
    assert.ok(!r.includes('--blocksize'), 'the receiver learns the block size from the sender');
  }
  assert.ok(!udpcastCommands(params(1500, null)).sender.includes('--max-bitrate'), 'unlimited uplink: no rate limit');
});

test('uftp: -b fills one frame, capped at the 8800 bytes uftp accepts', () => {
  const files = { dir: '/run/r1', pid: '/run/r1.pid', status: '/run/r1.status', log: '/run/r1.log' };
  for (const [mtu, block] of [[1500, 1448], [9000, UFTP_MAX_BLOCK_BYTES], [4000, 3948]] as const) {
    const { sender, receiver } = uftpCommands(params(mtu));
    assert.equal(flagValue(sender, '-b'), String(block));
    assert.equal(uftp.payloadBytes(mtu), block);
    assert.ok(block + 24 + IP_UDP <= mtu, 'block + 24 bytes of uftp headers + IP/UDP fit the MTU');
    if (block < UFTP_MAX_BLOCK_BYTES) assert.equal(block + 24 + IP_UDP, mtu, 'below the cap: exactly one frame');
    assert.equal(flagValue(sender, '-H'), '0x00000001,0x00000002,0x00000003');
    assert.equal(flagValue(sender, '-R'), '475000');
    assert.equal(sender.at(-1), '/tmp/image.bin');
    const r = receiver(1, files);
    assert.equal(flagValue(r, '-U'), '0x00000002');
    assert.equal(flagValue(r, '-M'), '239.255.2.1');
    assert.equal(flagValue(r, '-D'), '/run/r1');
  }
  assert.equal(flagValue(uftpCommands(params(9000, null)).sender, '-R'), '-1', 'unlimited uplink');
});

test('fleetcast: the sender gets --mtu (symbols of MTU - 48 bytes), receivers learn it from the session', () => {
  for (const [mtu, symbol] of [[1500, 1452], [9000, 8952]] as const) {
    for (const io of ['batch', 'dgram'] as const) {
      const { sender, receiver } = fleetcastCommands(params(mtu), io);
      assert.equal(flagValue(sender, '--mtu'), String(mtu));
      assert.equal(flagValue(sender, '--io'), io);
      assert.equal(flagValue(sender, '--rate'), '475M');
      assert.equal(flagValue(sender, '--min-receivers'), '3');
      assert.equal(sender[3], '/tmp/image.bin');
      const r = receiver('/out/image.bin');
      assert.equal(flagValue(r, '-o'), '/out/image.bin');
      assert.ok(!r.includes('--mtu'));
    }
    assert.equal(fleetcast.payloadBytes(mtu), symbol);
  }
  assert.ok(!fleetcastCommands(params(1500, null), 'batch').sender.includes('--rate'));
  assert.equal(flagValue(fleetcastCommands(params(1500), 'batch').sender, '--fec'), 'reed-solomon');
  assert.equal(flagValue(fleetcastCommands(params(1500), 'batch', 'raptorq').sender, '--fec'), 'raptorq');
  assert.ok(!fleetcastCommands(params(1500), 'batch', 'raptorq').receiver('/o').includes('--fec'), 'receivers learn the scheme from the session');
  assert.equal(flagValue(fleetcastCommands(params(1500), 'batch', 'reed-solomon', ['--block-symbols', '255']).sender, '--block-symbols'), '255');
});

test('fleetcast: the sender starts once /proc/net/igmp shows every receiver in the group on its interface', () => {
  // As a namespace's /proc/PID/net/igmp reads with 239.255.70.1 joined on lan0 (and only the all-hosts group on lo).
  const igmp = [
    'Idx\tDevice    : Count Querier\tGroup    Users Timer\tReporter',
    '1\tlo        :     1      V3',
    '\t\t\t\t010000E0     1 0:00000000\t\t0',
    '2\tlan0      :     2      V3',
    '\t\t\t\t0146FFEF     1 0:00000000\t\t0',
    '\t\t\t\t010000E0     1 0:00000000\t\t0',
    '',
  ].join('\n');
  assert.ok(igmpMember(igmp, 'lan0', '239.255.70.1'));
  assert.ok(!igmpMember(igmp, 'lo', '239.255.70.1'), 'on another interface');
  assert.ok(!igmpMember(igmp, 'lan0', '239.255.70.2'), 'another group');
  assert.ok(igmpMember(igmp, 'lo', '224.0.0.1'));
});

test('http: TCP segments fill the MTU by themselves (payload = MTU - 52 with timestamps)', () => {
  assert.equal(http.payloadBytes(1500), 1448);
  assert.equal(http.payloadBytes(9000), 8948);
});

test('tools run without NODE_EXTRA_CA_CERTS (a CA bundle every Node process parses at start) and with the rest of the environment', () => {
  const env = toolEnv({ PATH: '/usr/bin', NODE_EXTRA_CA_CERTS: '/etc/ssl/certs/ca-certificates.crt', LANG: 'C' });
  assert.deepEqual(env, { PATH: '/usr/bin', LANG: 'C' });
  assert.deepEqual(toolEnv({ PATH: '/bin' }), { PATH: '/bin' });
});
