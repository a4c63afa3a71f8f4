// Tiny multicast sender/receiver used by the namespace tests (run inside a namespace via Lan.spawn).
//
//   node mcast.js recv GROUP PORT IFADDR TIMEOUT_MS
//     joins GROUP on the interface with address IFADDR, prints "READY" on stderr, then counts numbered
//     datagrams until an END marker (or TIMEOUT_MS, or 1.5 s of silence after the first datagram) and
//     prints one JSON line: { count, bytes, firstAt, lastAt, seqs } (seqs: received sequence numbers).
//   node mcast.js send GROUP PORT IFADDR COUNT SIZE PPS
//     sends COUNT numbered datagrams of SIZE bytes at PPS packets/s from the interface with IFADDR,
//     then END markers; prints { sent } as JSON.

import dgram from 'node:dgram';

const MAGIC = 0x46435354; // 'FCST'
const END = 0xffffffff;

function recv(group: string, port: number, ifaddr: string, timeoutMs: number): void {
  const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  const seqs: number[] = [];
  let bytes = 0;
  let firstAt = 0;
  let lastAt = 0;
  let idle: NodeJS.Timeout | undefined;
  let finished = false;
  const finish = (): void => {
    if (finished) return;
    finished = true;
    socket.close();
    // exit only once the (possibly large) line is flushed into the pipe
    process.stdout.write(`${JSON.stringify({ count: seqs.length, bytes, firstAt, lastAt, seqs })}\n`, () => process.exit(0));
  };
  const overall = setTimeout(finish, timeoutMs);
  overall.unref();
  socket.on('message', (msg) => {
    if (msg.length < 8 || msg.readUInt32BE(0) !== MAGIC) return;
    const seq = msg.readUInt32BE(4);
    if (seq === END) {
      finish();
      return;
    }
    const now = performance.now();
    if (seqs.length === 0) firstAt = now;
    lastAt = now;
    seqs.push(seq);
    bytes += msg.length;
    if (idle) clearTimeout(idle);
    idle = setTimeout(finish, 1500);
  });
  socket.bind(port, () => {
    socket.addMembership(group, ifaddr);
    socket.setRecvBufferSize(8 * 1024 * 1024);
    process.stderr.write('READY\n');
  });
  // keep alive until finish
  setInterval(() => {}, 1000);
}

function send(group: string, port: number, ifaddr: string, count: number, size: number, pps: number): void {
  const socket = dgram.createSocket({ type: 'udp4' });
  socket.bind(0, ifaddr, () => {
    socket.setMulticastInterface(ifaddr);
    socket.setMulticastTTL(1);
    socket.setMulticastLoopback(false);
    const start = performance.now();
    let seq = 0;
    const tick = (): void => {
      const due = Math.min(count, Math.floor(((performance.now() - start) / 1000) * pps) + 1);
      while (seq < due) {
        const buf = Buffer.alloc(size);
        buf.writeUInt32BE(MAGIC, 0);
        buf.writeUInt32BE(seq, 4);
        socket.send(buf, port, group);
        seq++;
      }
      if (seq < count) {
        setTimeout(tick, 2);
        return;
      }
      // let queues drain, then send END markers (many, as they can be lost too)
      setTimeout(() => {
        let left = 30;
        const end = (): void => {
          const buf = Buffer.alloc(8);
          buf.writeUInt32BE(MAGIC, 0);
          buf.writeUInt32BE(END, 4);
          socket.send(buf, port, group);
          if (--left > 0) setTimeout(end, 5);
          else
            setTimeout(() => {
              socket.close();
              process.stdout.write(`${JSON.stringify({ sent: count })}\n`);
            }, 50);
        };
        end();
      }, 300);
    };
    tick();
  });
}

const [mode, group, port, ifaddr, a, b, c] = process.argv.slice(2);
if (mode === 'recv' && group && port && ifaddr) recv(group, Number(port), ifaddr, Number(a ?? 10000));
else if (mode === 'send' && group && port && ifaddr) send(group, Number(port), ifaddr, Number(a), Number(b ?? 200), Number(c ?? 5000));
else {
  process.stderr.write('usage: mcast.js recv GROUP PORT IFADDR TIMEOUT_MS | send GROUP PORT IFADDR COUNT SIZE PPS\n');
  process.exit(2);
}
