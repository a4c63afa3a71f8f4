// IPv6 parts of the UDP transport that need no root and send nothing but unicast on loopback: interface
// resolution, group checks, and both backends' IPv6 sockets on ::1.
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
import { createDatagramSocket } from '../../src/transport/sockets.js';
import { IO_BACKENDS, checkMulticastGroup, resolveInterface } from '../../src/transport/udp.js';

const loHas = (family: 'IPv4' | 'IPv6', address: string) => (networkInterfaces().lo ?? []).some((a) => a.family === family && a.address === address);
const skip = process.platform !== 'linux' ? `Linux only (this is ${process.platform})` : !loHas('IPv6', '::1') || !loHas('IPv4', '127.0.0.1') ? 'lo has no ::1 or no 127.0.0.1 (IPv6 disabled?)' : false;
if (skip) console.log(`# skipping IPv6 transport tests: ${skip}`);

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

for (const io of IO_BACKENDS) {
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
