// Runs the costly RaptorQ work of a session on a worker thread: the sender's parity (the engine's asyncParity)
// and the receiver's solves (asyncDecode). A RaptorQ encoder solves its whole block before its first symbol,
// and a damaged block costs its receiver the same solve: 30-50 ms for an 18 MB block on an idle core and
// several times that on a busy one. On the event loop that stalls the sender's pacing (which cannot win the
// time back: its burst is capped) or the receiver's reading, timers and replies (its round-trip samples, and so
// every repair timer of the session, grow with the stall).
import { Worker } from 'node:worker_threads';
import { type FecScheme, type SolveJob, blockEncoder, solveBlock } from '../fec/scheme.js';

/** One job as the thread gets it. Block memory on a SharedArrayBuffer is shared, not copied. */
export type FecRequest =
  | { seq: number; kind: 'parity'; block: number; fec: FecScheme; k: number; symbolSize: number; ids: number[]; data: Uint8Array }
  | { seq: number; kind: 'solve'; job: SolveJob };

/** Parity symbols packed end to end in the order of the request's ids; a solve's outcome; or why it failed. */
export type FecAnswer = { seq: number; symbols: Uint8Array } | { seq: number; ok: boolean } | { seq: number; error: string };

/**
 * Memory for the RaptorQ encoders the thread keeps (each about a block). Later repair rounds of a block come
 * after other blocks' first rounds: with only 2 kept (half a 64 MiB cache of 18 MB blocks), 9 of 12 blocks
 * were set up twice at 5 % loss, each set-up 35-900 ms.
 */
export const KEPT_ENCODER_BYTES = 128 * 2 ** 20;

/** How many encoders of blockBytes blocks the thread keeps. */
export function keptEncoders(blockBytes: number): number {
  return Math.max(2, Math.floor(KEPT_ENCODER_BYTES / Math.max(1, blockBytes)));
}

interface Pending {
  request: FecRequest;
  /** The block memory the job reads (and a solve writes). */
  memory: Uint8Array;
  answer: (answer: FecAnswer) => void;
}

export class FecThread {
  private worker: Worker | null = null;
  /** Set once the thread failed: from then on the work is done on this thread. */
  private broken = false;
  private closed = false;
  private seq = 0;
  private readonly pending = new Map<number, Pending>();

  constructor(
    /** RaptorQ encoders the thread keeps for later repair rounds of a block (keptEncoders()). */
    private readonly maxEncoders: number,
    private readonly onError: (err: Error) => void,
  ) {}

  /** Parity symbols `ids` of `block` from its source `data`, which must stay intact until holds() says no. */
  parity(fec: FecScheme, block: number, k: number, symbolSize: number, ids: number[], data: Uint8Array, done: (symbols: Uint8Array[]) => void): void {
    this.start({ seq: this.seq++, kind: 'parity', block, fec, k, symbolSize, ids, data }, data, (answer) => {
      if ('error' in answer) this.onError(new Error(`cannot make parity for block ${block}: ${answer.error}`));
      else if ('symbols' in answer) done(ids.map((_, i) => answer.symbols.subarray(i * symbolSize, (i + 1) * symbolSize)));
    });
  }

  /** Runs solveBlock(job); the job's block must not be touched until `done`. */
  solve(job: SolveJob, done: (ok: boolean) => void): void {
    this.start({ seq: this.seq++, kind: 'solve', job }, job.block, (answer) => {
      if ('error' in answer) this.onError(new Error(`cannot decode a block: ${answer.error}`));
      else if ('ok' in answer) done(answer.ok);
    });
  }

  /** Whether a job not yet answered still uses this buffer. */
  holds(data: Uint8Array): boolean {
    for (const p of this.pending.values()) if (p.memory.buffer === data.buffer) return true;
    return false;
  }

  /** Stops the thread; jobs not answered yet never are. */
  async close(): Promise<void> {
    this.closed = true;
    this.pending.clear();
    const worker = this.worker;
    this.worker = null;
    await worker?.terminate();
  }

  private start(request: FecRequest, memory: Uint8Array, answer: (answer: FecAnswer) => void): void {
    if (this.closed) return;
    this.pending.set(request.seq, { request, memory, answer });
    if (this.broken) setImmediate(() => this.runHere(request.seq));
    else this.thread().postMessage(request);
  }

  private finish(answer: FecAnswer): void {
    const p = this.pending.get(answer.seq);
    if (!p) return; // closed meanwhile
    this.pending.delete(answer.seq);
    p.answer(answer);
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(new URL('./fec-thread-worker.js', import.meta.url), { workerData: { maxEncoders: this.maxEncoders } });
    worker.on('message', (answer: FecAnswer) => this.finish(answer));
    // A thread that dies (it should not) costs speed, not the transfer: what it had not answered is done here.
    const fallBack = (): void => {
      if (this.worker !== worker) return;
      this.worker = null;
      this.broken = true;
      for (const seq of this.pending.keys()) setImmediate(() => this.runHere(seq));
    };
    worker.on('error', fallBack);
    worker.on('exit', fallBack);
    this.worker = worker;
    return worker;
  }

  private runHere(seq: number): void {
    const p = this.pending.get(seq);
    if (!p) return;
    this.finish(runRequest(p.request, (r) => blockEncoder(r.fec, r.data, r.k, r.symbolSize)));
  }
}

/** Does one job (on whichever thread): `encoderFor` supplies the parity request's encoder. */
export function runRequest(request: FecRequest, encoderFor: (r: Extract<FecRequest, { kind: 'parity' }>) => ReturnType<typeof blockEncoder>): FecAnswer {
  try {
    if (request.kind === 'solve') return { seq: request.seq, ok: solveBlock(request.job) };
    const symbols = encoderFor(request).repair(request.ids);
    const packed = new Uint8Array(request.ids.length * request.symbolSize);
    symbols.forEach((s, i) => packed.set(s, i * request.symbolSize));
    return { seq: request.seq, symbols: packed };
  } catch (err) {
    return { seq: request.seq, error: (err as Error).message };
  }
}
