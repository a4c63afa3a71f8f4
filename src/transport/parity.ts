// Makes a sender's parity on a worker thread (the engine's asyncParity, src/protocol/sender.ts). A RaptorQ
// encoder solves its whole block before its first symbol: 30-50 ms for an 18 MB block on an idle core and
// several times that on a busy one. On the event loop that stalls the pacing of everything behind it; the
// pacer cannot catch up (its burst is capped), so each repaired block cost the transfer that long.
import { Worker } from 'node:worker_threads';
import { type FecScheme, blockEncoder } from '../fec/scheme.js';

/** One need-parity event as the worker gets it. `data` is shared, not copied, when it is on a SharedArrayBuffer. */
export interface ParityRequest {
  seq: number;
  block: number;
  fec: FecScheme;
  k: number;
  symbolSize: number;
  ids: number[];
  data: Uint8Array;
}

/** The symbols packed end to end, in the order of the request's ids; or why they could not be made. */
export type ParityAnswer = { seq: number; symbols: Uint8Array } | { seq: number; error: string };

export type ParityDone = (block: number, ids: number[], symbols: Uint8Array[]) => void;

/**
 * Memory for the RaptorQ encoders the thread keeps (each about a block). Later repair rounds of a block come
 * after other blocks' first rounds: with only 2 kept (half a 64 MiB cache of 18 MB blocks), 9 of 12 blocks
 * were set up twice at 5 % loss, each set-up 35-500 ms.
 */
export const PARITY_ENCODER_BYTES = 128 * 2 ** 20;

/** How many encoders of blockBytes blocks the thread keeps. */
export function keptEncoders(blockBytes: number): number {
  return Math.max(2, Math.floor(PARITY_ENCODER_BYTES / Math.max(1, blockBytes)));
}

export class ParityMaker {
  private worker: Worker | null = null;
  /** Set once the worker failed: from then on parity is made on this thread. */
  private broken = false;
  private seq = 0;
  private readonly unanswered = new Map<number, ParityRequest>();

  constructor(
    private readonly fec: FecScheme,
    private readonly symbolSize: number,
    /** RaptorQ encoders the worker keeps for later repair rounds of the same block (keptEncoders()). */
    private readonly maxEncoders: number,
    private readonly done: ParityDone,
    private readonly onError: (err: Error) => void,
  ) {}

  /** Starts making parity symbols `ids` of `block` from `data`, which must stay intact until holds() says no. */
  make(block: number, k: number, ids: number[], data: Uint8Array): void {
    const request: ParityRequest = { seq: this.seq++, block, fec: this.fec, k, symbolSize: this.symbolSize, ids, data };
    this.unanswered.set(request.seq, request);
    if (this.broken) {
      setImmediate(() => this.makeHere(request));
      return;
    }
    this.thread().postMessage(request);
  }

  /** Whether a request not yet answered still reads this buffer. */
  holds(data: Uint8Array): boolean {
    for (const r of this.unanswered.values()) if (r.data.buffer === data.buffer) return true;
    return false;
  }

  async close(): Promise<void> {
    this.unanswered.clear();
    const worker = this.worker;
    this.worker = null;
    await worker?.terminate();
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(new URL('./parity-thread.js', import.meta.url), { workerData: { maxEncoders: this.maxEncoders } });
    worker.on('message', (answer: ParityAnswer) => {
      const request = this.unanswered.get(answer.seq);
      if (!request) return; // closed meanwhile
      this.unanswered.delete(answer.seq);
      if ('error' in answer) {
        this.onError(new Error(`cannot make parity for block ${request.block}: ${answer.error}`));
        return;
      }
      const S = this.symbolSize;
      this.done(request.block, request.ids, request.ids.map((_, i) => answer.symbols.subarray(i * S, (i + 1) * S)));
    });
    // A worker that dies (it should not) costs speed, not the transfer: what it had not answered is made here.
    const fallBack = (): void => {
      if (this.worker !== worker) return;
      this.worker = null;
      this.broken = true;
      for (const request of this.unanswered.values()) setImmediate(() => this.makeHere(request));
    };
    worker.on('error', fallBack);
    worker.on('exit', fallBack);
    this.worker = worker;
    return worker;
  }

  private makeHere(request: ParityRequest): void {
    if (!this.unanswered.delete(request.seq)) return;
    try {
      const symbols = blockEncoder(request.fec, request.data, request.k, request.symbolSize).repair(request.ids);
      this.done(request.block, request.ids, symbols);
    } catch (err) {
      this.onError(new Error(`cannot make parity for block ${request.block}: ${(err as Error).message}`));
    }
  }
}
