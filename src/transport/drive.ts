// Runs a sans-IO engine on real sockets and timers: the one event loop shared by the CLI, server and agent,
// whichever UDP backend the sockets use (src/transport/sockets.ts).
import { performance } from 'node:perf_hooks';
import type { Transmit } from '../protocol/common.js';
import type { DatagramSocket } from './sockets.js';

export interface Engine {
  /** `datagram` is borrowed: the socket reuses its memory once this returns, so engines copy what they keep. */
  handleDatagram(now: number, datagram: Uint8Array, from: string): void;
  handleTimeout(now: number): void;
  nextTimeout(now: number): number | null;
  poll(now: number): Transmit | undefined;
}

export const clock = (): number => performance.now();

/** Datagrams taken from the engine in one turn before other work gets its turn. */
const MAX_SENDS_PER_TURN = 4096;

export class EngineLoop {
  private timer: NodeJS.Timeout | null = null;
  /** When the armed timer fires (clock()). */
  private timerAt = 0;
  private immediate: NodeJS.Immediate | null = null;
  private awaitingWritable = false;
  private stopped = false;
  private readonly sockets: DatagramSocket[];

  constructor(
    private readonly engine: Engine,
    /** `group` takes transmits to the group (`to` null), `unicast` the others; both may be one socket. */
    private readonly io: { group: DatagramSocket; unicast: DatagramSocket },
    /** Called after every turn, to drain the engine's events. */
    private readonly afterTurn: () => void,
  ) {
    this.sockets = io.group === io.unicast ? [io.group] : [io.group, io.unicast];
  }

  /** Feeds the sockets' datagrams to the engine and starts sending. */
  start(): void {
    for (const socket of this.sockets) {
      socket.listen(
        (datagram, from) => {
          if (!this.stopped) this.engine.handleDatagram(clock(), datagram, from);
        },
        () => this.schedulePump(),
      );
    }
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
    // What a backed-up socket kept from the last turn goes first.
    let blocked = this.flush();
    let yielded = false;
    if (!blocked) {
      for (let sent = 0; ; sent++) {
        if (sent >= MAX_SENDS_PER_TURN) {
          yielded = true;
          break;
        }
        if ((sent & 63) === 63) now = clock();
        const t = this.engine.poll(now);
        if (!t) break;
        const socket = t.to === null ? this.io.group : this.io.unicast;
        if (!socket.send(t.parts, t.to)) {
          blocked = socket;
          break;
        }
      }
      blocked ||= this.flush();
    }
    this.afterTurn();
    if (this.stopped) return;
    now = clock();
    const next = this.engine.nextTimeout(now);
    if (blocked) {
      if (!this.awaitingWritable) {
        this.awaitingWritable = true;
        blocked.whenWritable(() => {
          this.awaitingWritable = false;
          this.schedulePump();
        });
      }
      this.arm(next, now); // deadlines still count while the socket is backed up
    } else if (yielded || (next !== null && next <= now)) {
      this.schedulePump();
    } else {
      this.arm(next, now);
    }
  }

  /** Hands every socket's kept datagrams to the kernel; the first socket still backed up, else false. */
  private flush(): DatagramSocket | false {
    for (const socket of this.sockets) if (!socket.flush()) return socket;
    return false;
  }

  /**
   * Wakes the loop by `deadline` (null: no deadline). A timer already armed to fire no later is kept: firing
   * early costs one idle turn, while re-arming after every turn cost a timer and two timer-list updates per
   * batch of datagrams.
   */
  private arm(deadline: number | null, now: number): void {
    if (deadline === null) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      return;
    }
    // Node timers are millisecond-grained; the pacer's burst allowance covers the rounding.
    const delay = Math.max(1, Math.ceil(deadline - now));
    if (this.timer && this.timerAt <= now + delay) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = now + delay;
    this.timer = setTimeout(this.onTimer, delay);
  }

  private readonly onTimer = (): void => {
    this.timer = null;
    this.schedulePump();
  };
}
