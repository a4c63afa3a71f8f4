// One UDP socket interface, two implementations: Node's dgram (everywhere) and the batched addon (Linux:
// recvmmsg/sendmmsg, docs/io.md). The EngineLoop drives both the same way.
import dgram from 'node:dgram';
import { lookup as dnsLookup } from 'node:dns';
import { isIP } from 'node:net';
import { batchAddon, type NativeUdpSocket } from './native.js';

export type IoBackend = 'dgram' | 'batch';
export const IO_BACKENDS: readonly IoBackend[] = ['dgram', 'batch'];

export class TransportError extends Error {}

export function formatAddress(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

export function parseAddress(s: string): { address: string; port: number } {
  const m = /^\[(.*)\]:(\d+)$/.exec(s) ?? /^([^:]*):(\d+)$/.exec(s);
  if (!m) throw new TransportError(`bad address ${s}`);
  return { address: m[1]!, port: Number(m[2]) };
}

export interface DatagramSocket {
  readonly io: IoBackend;
  bind(port: number, address?: string): Promise<void>;
  /** The port bound to (an ephemeral one after bind(0)). */
  localPort(): number;
  /** Asks for receive and send buffers of `bytes`; returns the smaller size granted (Linux reports double). */
  setBuffers(bytes: number): number;
  /** Outgoing multicast interface (IPv4 address or "::%name"), TTL and loopback; undefined leaves one as it is. */
  setMulticast(iface: string | undefined, ttl?: number, loopback?: boolean): void;
  addMembership(group: string, iface?: string): void;
  /**
   * Hands every datagram received to `sink`, then calls `batchEnd` after each batch (one datagram for dgram).
   * The datagram's memory is the socket's again once `sink` returns (the batch backend reuses its receive
   * ring): copy what must outlive the call.
   */
  listen(sink: (datagram: Buffer, from: string) => void, batchEnd: () => void): void;
  /**
   * Takes a datagram to `to` ("address:port", null: the group), gathered from parts that are not copied (they
   * must not change until sent). False when the socket is backed up: the datagram is kept, but give no more
   * until whenWritable() calls back.
   */
  send(parts: readonly Uint8Array[], to: string | null): boolean;
  /** Hands what send() kept to the kernel; false when some remains (wait for whenWritable). */
  flush(): boolean;
  /** True while a datagram given to send() is not yet with the kernel, so its parts may still be read. */
  sendsPending(): boolean;
  whenWritable(callback: () => void): void;
  /** Socket errors, and the first of each kind of failed send (sends are counted, like lost datagrams). */
  onError(callback: (err: Error) => void): void;
  readonly sendErrors: number;
  close(): void;
}

/** Past this many sends queued in libuv, dgram's send() says it is backed up. */
const MAX_DGRAM_QUEUE = 512;

/**
 * fleetcast only sends to address literals: answering them at once spares dgram a DNS call and a deferred tick
 * for every datagram (a measurable share of the sender's CPU at 100k datagrams/s). Names still resolve.
 */
function literalLookup(address: string, family: number, callback: (err: Error | null, address: string, family: number) => void): void {
  const literal = isIP(address);
  if (literal !== 0) callback(null, address, literal);
  else dnsLookup(address, family, callback as (err: NodeJS.ErrnoException | null, address: string, family: number) => void);
}

abstract class BaseSocket {
  sendErrors = 0;
  private lastSendError: string | null = null;
  protected errorHandler: (err: Error) => void = () => undefined;

  onError(callback: (err: Error) => void): void {
    this.errorHandler = callback;
  }

  protected sendFailed(message: string): void {
    this.sendErrors++;
    if (message !== this.lastSendError) this.errorHandler(new Error(message));
    this.lastSendError = message;
  }
}

export class DgramSocket extends BaseSocket implements DatagramSocket {
  readonly io = 'dgram';
  private readonly socket: dgram.Socket;
  private groupSends = 0;
  private closed = false;

  constructor(
    family: 4 | 6,
    private readonly group: { address: string; port: number },
    reuseAddr: boolean,
  ) {
    super();
    this.socket = dgram.createSocket({ type: family === 4 ? 'udp4' : 'udp6', reuseAddr, lookup: literalLookup as unknown as dgram.SocketOptions['lookup'] });
    this.socket.on('error', (err) => this.errorHandler(err));
  }

  bind(port: number, address?: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(new TransportError(`cannot bind UDP ${address ?? '*'}:${port}: ${err.message}`));
      this.socket.once('error', onError);
      this.socket.bind({ port, address, exclusive: false }, () => {
        this.socket.off('error', onError);
        resolve();
      });
    });
  }

  localPort(): number {
    return this.socket.address().port;
  }

  setBuffers(bytes: number): number {
    try {
      this.socket.setRecvBufferSize(bytes);
      this.socket.setSendBufferSize(bytes);
    } catch {
      /* capped: the caller compares what was granted */
    }
    return Math.min(this.socket.getRecvBufferSize(), this.socket.getSendBufferSize());
  }

  setMulticast(iface: string | undefined, ttl?: number, loopback?: boolean): void {
    if (iface) this.socket.setMulticastInterface(iface);
    if (ttl !== undefined) this.socket.setMulticastTTL(ttl);
    if (loopback !== undefined) this.socket.setMulticastLoopback(loopback);
  }

  addMembership(group: string, iface?: string): void {
    this.socket.addMembership(group, iface);
  }

  listen(sink: (datagram: Buffer, from: string) => void, batchEnd: () => void): void {
    this.socket.on('message', (msg, rinfo) => {
      sink(msg, formatAddress(rinfo.address, rinfo.port));
      batchEnd();
    });
  }

  send(parts: readonly Uint8Array[], to: string | null): boolean {
    const { address, port } = to === null ? this.group : parseAddress(to);
    // A completion callback costs a deferred tick per datagram; dgram reports errors only to callbacks, so
    // unicast (control) sends always take one and group sends one in 64: a failing route shows up at once.
    if (to === null && (this.groupSends++ & 63) !== 0) this.socket.send(parts as Buffer[], port, address);
    else this.socket.send(parts as Buffer[], port, address, this.onSent);
    return this.flush();
  }

  flush(): boolean {
    return this.closed || this.socket.getSendQueueCount() <= MAX_DGRAM_QUEUE;
  }

  sendsPending(): boolean {
    return !this.closed && this.socket.getSendQueueCount() > 0;
  }

  whenWritable(callback: () => void): void {
    // dgram has no writability event: libuv drains its queue between turns.
    setImmediate(callback);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.close();
  }

  private readonly onSent = (err: Error | null): void => {
    if (err) this.sendFailed(`send failed: ${err.message}`);
  };
}

export interface BatchOptions {
  /** Datagrams per recvmmsg/sendmmsg. */
  batch?: number;
  /** Receive slot: larger datagrams are dropped and counted (65536 fits any UDP datagram). */
  slotBytes?: number;
  /**
   * After a read that emptied the socket, leave it unwatched this long so that the next read takes many
   * datagrams: a paced stream otherwise wakes the process for nearly every datagram (at MTU 9000 and
   * 500 Mbit/s, 19 000 wakeups for 23 000 datagrams). 0 reads at once. Costs this much latency, so only
   * for bulk data, with socket buffers that hold that long a stretch.
   */
  coalesceMs?: number;
}

/** Receive buffer (as Linux reports it: double the usable bytes) below which coalescing is off: 4 MiB usable. */
const COALESCE_MIN_BUFFER_REPORTED = 8 << 20;

export class BatchSocket extends BaseSocket implements DatagramSocket {
  readonly io = 'batch';
  private readonly native: NativeUdpSocket;
  private readonly meta: Uint32Array;
  private readonly ring: Buffer;
  private readonly batch: number;
  /** Source address text by id, and ids by text, of the native table's current epoch. */
  private names: string[] = [];
  private ids = new Map<string, number>();
  private epoch = 0;
  private groupId = -1;
  private sink: (datagram: Buffer, from: string) => void = () => undefined;
  private batchEnd: () => void = () => undefined;
  private writableWaiters: (() => void)[] = [];
  /** Datagrams taken by send() and not yet handed to the kernel, from `head` on. */
  private queueParts: (readonly Uint8Array[])[] = [];
  private queueTo: (string | null)[] = [];
  private head = 0;
  private readonly partCounts: Uint8Array;
  private readonly destIds: Uint32Array;
  private closed = false;
  private port = 0;
  private coalesceMs: number;
  private resumeTimer: NodeJS.Timeout | null = null;

  constructor(
    family: 4 | 6,
    private readonly group: { address: string; port: number },
    private readonly reuseAddr: boolean,
    opts: BatchOptions = {},
  ) {
    super();
    const loaded = batchAddon();
    if ('error' in loaded) throw new TransportError(`batched UDP I/O is not available: ${loaded.error}`);
    this.batch = opts.batch ?? 64;
    this.coalesceMs = opts.coalesceMs ?? 0;
    this.native = new loaded.addon.UdpSocket(family, (events) => this.onReady(events), this.batch, opts.slotBytes ?? 65536);
    this.meta = new Uint32Array(this.native.meta);
    this.ring = Buffer.from(this.native.ring);
    this.partCounts = new Uint8Array(this.batch);
    this.destIds = new Uint32Array(this.batch);
  }

  async bind(port: number, address?: string): Promise<void> {
    try {
      this.port = this.native.bind(address ?? null, port, this.reuseAddr);
    } catch (err) {
      throw new TransportError(`cannot bind UDP ${address ?? '*'}:${port}: ${(err as Error).message}`);
    }
  }

  localPort(): number {
    return this.port;
  }

  setBuffers(bytes: number): number {
    const [receive, send] = this.native.setBuffers(bytes, bytes);
    // A capped buffer (net.core.rmem_max left at its default) cannot hold a coalesced stretch at speed.
    if (receive < COALESCE_MIN_BUFFER_REPORTED) this.coalesceMs = 0;
    return Math.min(receive, send);
  }

  setMulticast(iface: string | undefined, ttl?: number, loopback?: boolean): void {
    this.native.setMulticast(iface ?? null, ttl ?? -1, loopback === undefined ? -1 : Number(loopback));
  }

  addMembership(group: string, iface?: string): void {
    this.native.addMembership(group, iface ?? null);
  }

  listen(sink: (datagram: Buffer, from: string) => void, batchEnd: () => void): void {
    this.sink = sink;
    this.batchEnd = batchEnd;
    this.native.start();
  }

  /** Datagrams received, and dropped for not fitting a receive slot. */
  stats(): { datagrams: number; truncated: number } {
    const { datagrams, truncated } = this.native.stats();
    return { datagrams, truncated };
  }

  send(parts: readonly Uint8Array[], to: string | null): boolean {
    if (this.closed) return true;
    this.queueParts.push(parts);
    this.queueTo.push(to);
    return this.queueParts.length - this.head < this.batch || this.flush();
  }

  flush(): boolean {
    while (!this.closed && this.head < this.queueParts.length) {
      const n = Math.min(this.batch, this.queueParts.length - this.head);
      const parts: Uint8Array[] = [];
      this.resolveDestinations(n);
      for (let i = 0; i < n; i++) {
        const datagram = this.queueParts[this.head + i]!;
        this.partCounts[i] = datagram.length;
        for (const part of datagram) parts.push(part);
      }
      const sent = this.native.send(parts, this.partCounts, this.destIds, n);
      this.head += sent;
      if (sent < n) {
        const error = this.native.sendError();
        if (error === null) return false; // would block: the rest waits for writability
        this.sendFailed(error);
        this.head++; // that datagram is lost, as on a failing link
      }
    }
    this.queueParts = [];
    this.queueTo = [];
    this.head = 0;
    return true;
  }

  sendsPending(): boolean {
    return !this.closed && this.head < this.queueParts.length;
  }

  whenWritable(callback: () => void): void {
    if (this.closed) return;
    this.writableWaiters.push(callback);
    this.native.wantWritable();
  }

  close(): void {
    if (this.closed) return;
    this.flush(); // what is left goes out if the kernel takes it now (the last END datagrams)
    this.closed = true;
    this.writableWaiters = [];
    this.queueParts = [];
    this.queueTo = [];
    if (this.resumeTimer) clearTimeout(this.resumeTimer);
    this.native.close();
  }

  private onReady(events: number): void {
    if (events & 2) {
      const waiters = this.writableWaiters;
      this.writableWaiters = [];
      for (const callback of waiters) callback();
    }
    if (events & 1) this.readBatches();
  }

  /** Two recvmmsg per readiness event at most: timers, file I/O and sends get their turn under a flood. */
  private readBatches(): void {
    const meta = this.meta;
    for (let round = 0; round < 2 && !this.closed; round++) {
      const count = this.native.read();
      if (count === 0) return;
      if (meta[1] !== this.epoch) this.forgetAddresses();
      for (let i = 0; i < count && !this.closed; i++) {
        const length = meta[2 + i]!;
        const id = meta[2 + this.batch + i]!;
        const offset = meta[2 + 2 * this.batch + i]!;
        let from = this.names[id];
        if (from === undefined) {
          from = this.native.addressName(id);
          this.names[id] = from;
          this.ids.set(from, id);
        }
        this.sink(this.ring.subarray(offset, offset + length), from);
      }
      this.batchEnd();
      if (count < this.batch) {
        this.rest();
        return;
      }
    }
  }

  /** The socket is empty: with coalescing, look again only after coalesceMs (see BatchOptions). */
  private rest(): void {
    if (this.coalesceMs <= 0 || this.closed) return;
    this.native.pause();
    if (this.resumeTimer) this.resumeTimer.refresh();
    else this.resumeTimer = setTimeout(this.resume, this.coalesceMs);
  }

  private readonly resume = (): void => {
    if (!this.closed) this.native.start();
  };

  private forgetAddresses(): void {
    this.epoch = this.meta[1]!;
    this.names = [];
    this.ids = new Map();
    this.groupId = -1;
  }

  /** destIds for the next n queued datagrams, all of one address epoch. */
  private resolveDestinations(n: number): void {
    for (;;) {
      const epoch = this.meta[1];
      if (epoch !== this.epoch) this.forgetAddresses();
      for (let i = 0; i < n; i++) this.destIds[i] = this.idOf(this.queueTo[this.head + i]!);
      if (this.meta[1] === epoch) return;
    }
  }

  private idOf(to: string | null): number {
    if (to === null) {
      if (this.groupId < 0) this.groupId = this.native.intern(this.group.address, this.group.port);
      return this.groupId;
    }
    let id = this.ids.get(to);
    if (id === undefined) {
      const { address, port } = parseAddress(to);
      id = this.native.intern(address, port);
      this.ids.set(to, id);
    }
    return id;
  }
}

/** A socket of the chosen backend, sending to `group` by default. */
export function createDatagramSocket(
  io: IoBackend,
  family: 4 | 6,
  group: { address: string; port: number },
  reuseAddr: boolean,
  opts: Pick<BatchOptions, 'coalesceMs'> = {},
): DatagramSocket {
  return io === 'batch' ? new BatchSocket(family, group, reuseAddr, opts) : new DgramSocket(family, group, reuseAddr);
}
