// Runs a session's costly per-block work on a worker thread: the sender's block digests and RaptorQ parity (the
// engine's asyncParity) and the receiver's solves (asyncDecode). SHA-256 of an 18 MB RaptorQ block takes 11-29
// ms. A RaptorQ encoder solves its whole block before its first symbol, and a damaged block costs its receiver
// the same solve: 30-50 ms for an 18 MB block on an idle core and several times that on a busy one. On the
// event loop that stalls the sender's pacing (which cannot win the time back: its burst is capped) or the
// receiver's reading, timers and replies (its round-trip samples, and so every repair timer of the session,
// grow with the stall).
import { Worker } from 'node:worker_threads';
import { type FecScheme, type SolveJob, blockEncoder, solveBlock } from '../fec/scheme.js';
import { READY, digestAnswer } from './worker-common.js';

/** One job as the thread gets it. Block memory on a SharedArrayBuffer is shared, not copied. */
export type BlockRequest =
  | { seq: number; kind: 'parity'; block: number; fec: FecScheme; k: number; symbolSize: number; ids: number[]; data: Uint8Array | null }
  | { seq: number; kind: 'solve'; job: SolveJob }
  | { seq: number; kind: 'digest'; data: Uint8Array };

/**
 * Parity symbols packed end to end in the order of the request's ids (null: asked without the block, and no
 * encoder was kept for it); a solve's outcome; a digest; or why it failed.
 */
export type BlockAnswer =
  | { seq: number; symbols: Uint8Array | null }
  | { seq: number; ok: boolean }
  | { seq: number; digest: Uint8Array }
  | { seq: number; error: string };

/**
 * The thread's scheduling priority. Parity and solves yield to the others (nice 5): where a core is spare they
 * work at full speed, and where the cores are shared (the test LAN runs a sender and its receivers on 2 cores; a
 * server runs other work) they leave most of them to the pacing and the receiving that the transfer waits on.
 * Measured there (200 MiB, MTU 9000, 1 % loss, RaptorQ): at nice 0 the sender's parity work lost time (3
 * receivers: 5.3-6.9 s against 5.2-5.4 inline); at nice 10 the receivers' solves starved with 8 receivers on the
 * 2 cores (9.4-9.5 s against 7.9-8.7 at nice 5). A sender's digests are on its first pass's path: nice 0.
 * A sender whose pacing thread runs raised (thread-priority.ts) starts its parity thread FEC_NICE under the pacer
 * instead: nice 0 under PACING_NICE. The parity still yields to the pacing, and no longer to work the transfer
 * does not wait on; at nice 5 the 8 receivers of the test LAN (nice 0) starved it, and repairs waited seconds
 * for their RaptorQ encoders (8 x 5 %: 2.44-2.50 against 2.17-2.31 at nice 0; 8 x 1 %: 2.30-2.33 against
 * 2.03-2.13; 3 x 1 %: 1.106-1.128 against 1.098-1.109; by hand, time ÷ the link's minimum).
 */
export const FEC_NICE = 5;
export const DIGEST_NICE = 0;

/** Encoder set-ups made ahead (prepare()) that may wait for the thread at once. */
export const MAX_QUEUED_SET_UPS = 2;

/** The worker scripts: parity, solves and digests; digests only (it loads faster, none of the FEC code). */
const FEC_WORKER = './block-thread-worker.js';
const DIGEST_WORKER = './digest-thread-worker.js';

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
  request: BlockRequest;
  /** The block memory the job reads (and a solve writes), if any. */
  memory: Uint8Array | null;
  answer: (answer: BlockAnswer) => void;
}

export class BlockThread {
  private worker: Worker | null = null;
  /** Set once the thread failed: from then on the work is done on this thread. */
  private broken = false;
  private closed = false;
  private threadReady = false;
  private seq = 0;
  private readonly pending = new Map<number, Pending>();
  /** prepare() jobs not answered yet. */
  private queuedSetUps = 0;

  constructor(
    /** RaptorQ encoders the thread keeps for later repair rounds of a block (keptEncoders()). */
    private readonly maxEncoders: number,
    private readonly onError: (err: Error) => void,
    private readonly nice = FEC_NICE,
    private readonly workerFile = FEC_WORKER,
  ) {}

  /** A thread for digest jobs only, at DIGEST_NICE. */
  static forDigests(onError: (err: Error) => void): BlockThread {
    return new BlockThread(0, onError, DIGEST_NICE, DIGEST_WORKER);
  }

  /** Starts the thread now rather than with the first job (it takes tens of ms to load). */
  prestart(): void {
    if (!this.broken && !this.closed) this.thread();
  }

  /** Whether the thread has loaded and answers jobs at once (until then a job waits for it). */
  get ready(): boolean {
    return this.threadReady && this.worker !== null;
  }

  /** SHA-256 of `data`, which must stay intact until `done`. */
  digest(data: Uint8Array, done: (digest: Uint8Array) => void): void {
    this.start({ seq: this.seq++, kind: 'digest', data }, data, (answer) => {
      if ('error' in answer) this.onError(new Error(`cannot hash a block: ${answer.error}`));
      else if ('digest' in answer) done(answer.digest);
    });
  }

  /**
   * Parity symbols `ids` of `block` from its source `data`, which must stay intact until holds() says no; or,
   * with `data` null, from the encoder kept for the block, and null if none was kept.
   */
  parity(fec: FecScheme, block: number, k: number, symbolSize: number, ids: number[], data: Uint8Array | null, done: (symbols: Uint8Array[] | null) => void): void {
    this.start({ seq: this.seq++, kind: 'parity', block, fec, k, symbolSize, ids, data }, data, (answer) => {
      if ('error' in answer) this.onError(new Error(`cannot make parity for block ${block}: ${answer.error}`));
      else if ('symbols' in answer) {
        const packed = answer.symbols;
        done(packed && ids.map((_, i) => packed.subarray(i * symbolSize, (i + 1) * symbolSize)));
      }
    });
  }

  /**
   * Sets up `block`'s encoder ahead of its parity (kept for it, like the encoders of blocks repaired). The thread
   * does this after the jobs that are waited for. `data` must stay intact until holds() says no. Skipped while
   * MAX_QUEUED_SET_UPS wait: a thread that falls behind would hold every block read meanwhile.
   */
  prepare(fec: FecScheme, block: number, k: number, symbolSize: number, data: Uint8Array): void {
    if (this.queuedSetUps >= MAX_QUEUED_SET_UPS) return;
    this.queuedSetUps++;
    this.start({ seq: this.seq++, kind: 'parity', block, fec, k, symbolSize, ids: [], data }, data, (answer) => {
      this.queuedSetUps--;
      if ('error' in answer) this.onError(new Error(`cannot make parity for block ${block}: ${answer.error}`));
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
    for (const p of this.pending.values()) if (p.memory?.buffer === data.buffer) return true;
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

  private start(request: BlockRequest, memory: Uint8Array | null, answer: (answer: BlockAnswer) => void): void {
    if (this.closed) return;
    this.pending.set(request.seq, { request, memory, answer });
    if (this.broken) setImmediate(() => this.runHere(request.seq));
    else this.thread().postMessage(request);
  }

  private finish(answer: BlockAnswer): void {
    const p = this.pending.get(answer.seq);
    if (!p) return; // closed meanwhile
    this.pending.delete(answer.seq);
    p.answer(answer);
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(new URL(this.workerFile, import.meta.url), { workerData: { maxEncoders: this.maxEncoders, nice: this.nice } });
    worker.on('message', (answer: BlockAnswer | typeof READY) => {
      if (answer === READY) this.threadReady = true;
      else this.finish(answer);
    });
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
    // Encoders are not kept on this thread: a set-up ahead of parity (no ids) is worth nothing, and parity asked
    // without the block cannot be made.
    this.finish(runRequest(p.request, (r) => (r.data && r.ids.length > 0 ? blockEncoder(r.fec, r.data, r.k, r.symbolSize) : null)));
  }
}

/**
 * Does one job (on whichever thread): `encoderFor` supplies the parity request's encoder, or null when asked
 * without the block and none was kept.
 */
export function runRequest(request: BlockRequest, encoderFor: (r: Extract<BlockRequest, { kind: 'parity' }>) => ReturnType<typeof blockEncoder> | null): BlockAnswer {
  try {
    if (request.kind === 'solve') return { seq: request.seq, ok: solveBlock(request.job) };
    if (request.kind === 'digest') return digestAnswer(request.seq, request.data);
    const encoder = encoderFor(request);
    if (!encoder) return { seq: request.seq, symbols: null };
    const symbols = encoder.repair(request.ids);
    const packed = new Uint8Array(request.ids.length * request.symbolSize);
    symbols.forEach((s, i) => packed.set(s, i * request.symbolSize));
    return { seq: request.seq, symbols: packed };
  } catch (err) {
    return { seq: request.seq, error: (err as Error).message };
  }
}
