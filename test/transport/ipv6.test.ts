// IPv6 parts of the UDP transport that need no root and send nothing but unicast on loopback: interface
// resolution, group checks, where a receiver binds, and both backends' IPv6 sockets on ::1.
//
// IPv6 multicast itself cannot be tested on `lo`: Linux gives lo neither the MULTICAST flag nor the
// `multicast ff00::/8` route it adds to other interfaces, so a send to ff15::… or ff12::… on lo fails with
// ENETUNREACH (and with the route added by root, lo still does not loop the datagrams back). Sending and
// receiving over IPv6 groups is tested on the namespace LAN instead (test/netns/ipv6.test.ts, root only).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { networkInterfaces } from 'node:os';
import { createDatagramSocket, type DatagramSocket } from '../../src/transport/sockets.js';
import { IO_BACKENDS, checkMulticastGroup, groupBindAddress, openReceiverSockets, resolveInterface } from '../../src/transport/udp.js';

const loHas = (family: 'IPv4' | 'IPv6', address: string) => (networkInterfaces().lo ?? []).some((a) => a.family === family && a.address === address);
const skip = process.platform !== 'linux' ? `Linux only (this is ${process.platform})` : !loHas('IPv6', '::1') || !loHas('IPv4', '127.0.0.1') ? 'lo has no ::1 or no 127.0.0.1 (IPv6 disabled?)' : false;
if (skip) console.log(`# skipping IPv6 transport tests: ${skip}`);

let portSeed = 20000 + Math.floor(Math.random() * 20000);

test('IPv6 groups: ff00::/8 only, however written', () => {
  for (const group of ['ff15::77', 'FF12::1:2', 'ff02::1', 'ff0e:0:0::1']) assert.doesNotThrow(() => checkMulticastGroup(group), group);
  // ff::1 is 00ff::1 and ff1::1 is 0ff1::1: neither is multicast, though both start with "ff".
  for (const group of ['ff::1', 'ff1::1', '2001:2::1', '::ffff:239.1.1.1']) assert.throws(() => checkMulticastGroup(group), /not a multicast address/, group);
});

test('--interface by address: either family, any spelling, a zone; the group family decides what is used', { skip }, () => {
  assert.deepEqual(resolveInterface('lo', 6), { family: 6, address: '::%lo', name: 'lo' });
  assert.deepEqual(resolveInterface('127.0.0.1', 6), { family: 6, address: '::%lo', name: 'lo' });
  // An IPv6 address of the interface with an IPv4 group: the interface's IPv4 address, not the IPv6 one.
  assert.deepEqual(resolveInterface('::1', 4), { family: 4, address: '127.0.0.1', name: 'lo' });
  assert.deepEqual(resolveInterface('0:0:0:0:0:0:0:1', 6), { family: 6, address: '::%lo', name: 'lo' });
  assert.deepEqual(resolveInterface('::1%lo', 6), { family: 6, address: '::%lo', name: 'lo' });
  assert.throws(() => resolveInterface('2001:2::99', 6), /no interface named or addressed "2001:2::99"/);
});

test('a receiver binds to its group (with the interface as zone where the group needs one)', () => {
  const lo = { family: 6 as const, address: '::%lo', name: 'lo' };
  assert.equal(groupBindAddress('239.255.77.1', null), '239.255.77.1');
  assert.equal(groupBindAddress('ff15::77', null), 'ff15::77');
  assert.equal(groupBindAddress('ff15::77', lo), 'ff15::77%lo');
  assert.equal(groupBindAddress('ff12::77', lo), 'ff12::77%lo');
  assert.equal(groupBindAddress('FF02::77', lo), 'FF02::77%lo');
  // Link scope without an interface: the kernel cannot bind it, so the port on every address.
  assert.equal(groupBindAddress('ff12::77', null), '::');
});

for (const io of IO_BACKENDS) {
  test(`${io}: IPv6 receivers on one port, two groups, link and site scope: each bound to its group, no unicast gets in`, { skip }, async (t) => {
    const port = portSeed++;
    const opened: DatagramSocket[] = [];
    t.after(() => opened.forEach((s) => s.close()));
    const received: string[] = [];
    for (const group of ['ff12::fc:1', 'ff15::fc:2']) {
      const { data, feedback } = await openReceiverSockets({ group, port, iface: 'lo', io });
      opened.push(data, feedback);
      assert.equal(data.localPort(), port);
      data.listen((datagram) => received.push(datagram.toString()), () => undefined);
    }
    // Bound to '::' (as before), these sockets took any datagram to the port: from another session's group,
    // or unicast. Bound to their groups, a unicast datagram to [::1]:port finds no socket.
    const probe = dgram.createSocket('udp6');
    t.after(() => probe.close());
    const answer = new Promise<Error | null>((resolve) => probe.send('unicast', port, '::1', resolve));
    assert.equal(await answer, null);
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(received, []);
  });

  test(`${io}: IPv6 unicast on ::1 both ways, the source named as [::1]:port (as the other backend names it)`, { skip }, async (t) => {
    const peer = dgram.createSocket('udp6');
    t.after(() => peer.close());
    peer.bind(0, '::1');
    await once(peer, 'listening');
    const socket = createDatagramSocket(io, 6, { address: '::1', port: peer.address().port }, false);
    t.after(() => socket.close());
    await socket.bind(0, '::1');
    const from = new Promise<string>((resolve) => socket.listen((datagram, source) => resolve(`${datagram.toString()} from ${source}`), () => undefined));
    // To the default destination (as a sender's group), then an answer to the address it reported.
    const got = once(peer, 'message') as Promise<[Buffer, dgram.RemoteInfo]>;
    socket.send([Buffer.from('to '), Buffer.from('peer')], null);
    socket.flush();
    const [message, rinfo] = await got;
    assert.equal(message.toString(), 'to peer');
    assert.equal(rinfo.address, '::1');
    assert.equal(rinfo.port, socket.localPort());
    peer.send('hello', socket.localPort(), '::1');
    const source = `[::1]:${peer.address().port}`;
    assert.equal(await from, `hello from ${source}`);
    const back = once(peer, 'message') as Promise<[Buffer, dgram.RemoteInfo]>;
    socket.send([Buffer.from('reply')], source);
    socket.flush();
    assert.equal((await back)[0].toString(), 'reply');
  });
}
