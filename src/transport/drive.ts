// Runs a sans-IO engine on real sockets and timers: the one event loop shared by the CLI, server and agent.
import type dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import type { Transmit } from '../protocol/common.js';
import { formatAddress, parseAddress } from './udp.js';

export interface Engine {
  handleDatagram(now: number, datagram: Uint8Array, from: string): void;
  handleTimeout(now: number): void;
  nextTimeout(now: number): number | null;
  poll(now: number): Transmit | undefined;
}

export const clock = (): number => performance.now();

/** Sends are handed to the kernel at once; past this many queued in libuv we wait (back-pressure). */
const MAX_SEND_QUEUE = 512;

export class EngineLoop {
  private timer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;
  private stopped = false;
  sendErrors = 0;
  lastSendError: string | null = null;

  constructor(
    private readonly engine: Engine,
    /** Socket used for a transmit: `to` null is the group. */
    private readonly socketFor: (to: string | null) => dgram.Socket,
    private readonly group: { address: string; port: number },
    /** Called after every turn, to drain the engine's events. */
    private readonly afterTurn: () => void,
  ) {}

  /** Feeds a datagram from a socket. */
  attach(socket: dgram.Socket): void {
    socket.on('message', (msg, rinfo) => {
      if (this.stopped) return;
      this.engine.handleDatagram(clock(), msg, formatAddress(rinfo.address, rinfo.port));
      this.schedulePump();
    });
  }

  start(): void {
    this.pump();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
  }

  /** Coalesces the work of many datagrams arriving in one event-loop turn into one pump. */
  schedulePump(): void {
    if (this.immediate || this.stopped) return;
    this.immediate = setImmediate(() => {
      this.immediate = null;
      this.pump();
    });
  }

  private pump(): void {
    if (this.stopped) return;
    let now = clock();
    const deadline = this.engine.nextTimeout(now);
    if (deadline !== null && deadline <= now) this.engine.handleTimeout(now);
    let blocked = false;
    const group = this.socketFor(null);
    for (let sent = 0; ; sent++) {
      if (group.getSendQueueCount() > MAX_SEND_QUEUE || sent >= 4096) {
        blocked = true;
        break;
      }
      if ((sent & 63) === 63) now = clock();
      const t = this.engine.poll(now);
      if (!t) break;
      this.send(t);
    }
    this.afterTurn();
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    now = clock();
    const next = this.engine.nextTimeout(now);
    if (blocked || (next !== null && next <= now)) {
      this.schedulePump();
    } else if (next !== null) {
      // Node timers are millisecond-grained; the pacer's burst allowance covers the rounding.
      this.timer = setTimeout(() => {
        this.timer = null;
        this.schedulePump();
      }, Math.max(1, Math.ceil(next - now)));
    }
  }

  private send(t: Transmit): void {
    let address = this.group.address;
    let port = this.group.port;
    if (t.to !== null) ({ address, port } = parseAddress(t.to));
    const socket = this.socketFor(t.to);
    // A completion callback costs a deferred tick per datagram; dgram reports errors only to callbacks, so
    // unicast (control) sends always take one and group sends one in 64: a failing route shows up at once.
    if (t.to === null && (this.groupSends++ & 63) !== 0) socket.send(t.parts as Buffer[], port, address);
    else socket.send(t.parts as Buffer[], port, address, this.onSent);
  }

  private groupSends = 0;
  private readonly onSent = (err: Error | null): void => {
    if (err) {
      this.sendErrors++;
      this.lastSendError = err.message;
    }
  };
}
