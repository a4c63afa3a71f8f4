// The batched UDP backend (native/fastudp.c through BatchSocket) on real loopback sockets. On Linux the addon
// must be built (`npm run build`): a missing one fails here rather than quietly testing nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { batchAddon } from '../../src/transport/native.js';
import { BatchSocket } from '../../src/transport/sockets.js';

const skip = process.platform === 'linux' ? false : `batched UDP I/O is Linux-only (this is ${process.platform})`;
if (skip) console.log(`# skipping batch socket tests: ${skip}`);

const LOOPBACK = { address: '127.0.0.1', port: 9 };

async function openReceiver(t: { after(fn: () => void): void }, slotBytes?: number, coalesceMs?: number): Promise<BatchSocket> {
  const loaded = batchAddon();
  assert.ok(!('error' in loaded), `the addon should load on Linux: ${'error' in loaded ? loaded.error : ''}`);
  const socket = new BatchSocket(4, LOOPBACK, false, { slotBytes, coalesceMs });
  t.after(() => socket.close());
  await socket.bind(0, '127.0.0.1');
  socket.setBuffers(4 << 20);
  return socket;
}

async function openDgram(t: { after(fn: () => void): void }): Promise<dgram.Socket> {
  const socket = dgram.createSocket('udp4');
  t.after(() => socket.close());
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  return socket;
}

function sendAll(socket: dgram.Socket, port: number, datagrams: Buffer[]): Promise<void> {
  return Promise.all(datagrams.map((d) => new Promise<void>((resolve, reject) => socket.send(d, port, '127.0.0.1', (err) => (err ? reject(err) : resolve()))))).then(() => undefined);
}

const turns = (n: number) => new Promise<void>((resolve) => (function next(i: number) { if (i === 0) resolve(); else setImmediate(() => next(i - 1)); })(n));

test('batch receive from several senders: every datagram, in order per sender, attributed to its source', { skip }, async (t) => {
  const receiver = await openReceiver(t);
  const senders = await Promise.all([1, 2, 3].map(() => openDgram(t)));
  const perSender = 60; // 180 small datagrams fit even the default socket buffer limit
  // Queued in the kernel before reading starts, so reads come in full batches.
  for (const [i, s] of senders.entries()) await sendAll(s, receiver.localPort(), Array.from({ length: perSender }, (_, n) => Buffer.from(`${i}:${n}`)));
  const got = new Map<string, number[]>();
  let batches = 0;
  let total = 0;
  const all = new Promise<void>((resolve) => {
    receiver.listen(
      (datagram, from) => {
        const [sender, seq] = datagram.toString().split(':').map(Number);
        const list = got.get(from) ?? [];
        list.push(seq!);
        got.set(from, list);
        assert.equal(from, `127.0.0.1:${senders[sender!]!.address().port}`, 'source attributed to its sender');
        if (++total === 3 * perSender) resolve();
      },
      () => batches++,
    );
  });
  await all;
  assert.equal(got.size, 3);
  for (const seqs of got.values()) assert.deepEqual(seqs, Array.from({ length: perSender }, (_, n) => n), 'complete and in order');
  assert.ok(batches <= Math.ceil((3 * perSender) / 64) + 1, `${batches} batches for ${3 * perSender} datagrams`);
  assert.equal(receiver.stats().truncated, 0);
});

test('oversized datagrams are dropped and counted, the others delivered', { skip }, async (t) => {
  const receiver = await openReceiver(t, 256);
  const sender = await openDgram(t);
  const sizes = [100, 300, 256, 65_000, 1, 257];
  await sendAll(sender, receiver.localPort(), sizes.map((n, i) => Buffer.alloc(n, i)));
  const lengths: number[] = [];
  await new Promise<void>((resolve) => receiver.listen((d) => lengths.push(d.length) === 3 && resolve(), () => undefined));
  await turns(5);
  assert.deepEqual(lengths, [100, 256, 1]);
  assert.equal(receiver.stats().truncated, 3);
});

test('closing from inside a batch stops delivery at once and is safe to repeat', { skip }, async (t) => {
  const receiver = await openReceiver(t);
  const sender = await openDgram(t);
  await sendAll(sender, receiver.localPort(), Array.from({ length: 200 }, (_, n) => Buffer.from(String(n))));
  let delivered = 0;
  let batchEnds = 0;
  await new Promise<void>((resolve) => {
    receiver.listen(
      () => {
        if (++delivered === 10) {
          receiver.close();
          resolve();
        }
      },
      () => batchEnds++,
    );
  });
  await sendAll(sender, receiver.localPort(), [Buffer.from('late')]);
  await turns(20);
  assert.equal(delivered, 10, 'nothing delivered after close');
  assert.ok(batchEnds <= 1);
  receiver.close();
  assert.equal(receiver.send([Buffer.from('x')], null), true, 'send after close is a no-op');
  assert.equal(receiver.flush(), true);
});

test('batch send: gathered parts arrive whole, in order, to the group default and to unicast addresses', { skip }, async (t) => {
  const sink = await openDgram(t);
  const other = await openDgram(t);
  const port = sink.address().port;
  const socket = new BatchSocket(4, { address: '127.0.0.1', port }, false);
  t.after(() => socket.close());
  await socket.bind(0, '127.0.0.1');
  const atSink: string[] = [];
  const atOther: string[] = [];
  const done = new Promise<void>((resolve) => {
    const check = () => atSink.length === 150 && atOther.length === 50 && resolve();
    sink.on('message', (m, rinfo) => {
      assert.equal(rinfo.port, socket.localPort());
      atSink.push(m.toString());
      check();
    });
    other.on('message', (m) => {
      atOther.push(m.toString());
      check();
    });
  });
  const to = `127.0.0.1:${other.address().port}`;
  for (let n = 0; n < 200; n++) {
    const unicast = n % 4 === 3;
    assert.equal(socket.send([Buffer.from(`h${n}|`), Buffer.from(`payload ${n}`)], unicast ? to : null), true);
  }
  assert.equal(socket.flush(), true);
  await done;
  const expected = Array.from({ length: 200 }, (_, n) => `h${n}|payload ${n}`);
  assert.deepEqual(atSink, expected.filter((_, n) => n % 4 !== 3));
  assert.deepEqual(atOther, expected.filter((_, n) => n % 4 === 3));
  await new Promise<void>((resolve) => socket.whenWritable(resolve));
});

test('coalescing: after a read empties the socket, what arrives within coalesceMs is taken in one batch', { skip }, async (t) => {
  const receiver = await openReceiver(t, undefined, 400);
  if (receiver.setBuffers(16 << 20) < 8 << 20) {
    t.skip('net.core.rmem_max caps socket buffers below 4 MiB, where coalescing is off (sysctl -w net.core.rmem_max=67108864)');
    return;
  }
  const sender = await openDgram(t);
  let received = 0;
  const batchSizes: number[] = [];
  let wanted = 1;
  let reached: () => void = () => undefined;
  const until = (n: number) => new Promise<void>((resolve) => {
    wanted = n;
    reached = resolve;
  });
  receiver.listen(
    () => received++,
    () => {
      batchSizes.push(received - batchSizes.reduce((a, b) => a + b, 0));
      if (received >= wanted) reached();
    },
  );
  const first = until(1);
  await sendAll(sender, receiver.localPort(), [Buffer.from('first')]);
  await first;
  // The socket now rests for 400 ms: these 20, sent 5 ms apart (each would wake an uncoalesced reader), queue in
  // the kernel and one read takes them all.
  const rest = until(21);
  for (let i = 0; i < 20; i++) {
    await sendAll(sender, receiver.localPort(), [Buffer.from(`d${i}`)]);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  await rest;
  assert.deepEqual(batchSizes, [1, 20]);
});
