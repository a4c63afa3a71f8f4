// The worker thread of FecThread (fec-thread.ts): makes parity and runs solves.
import { readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { type BlockEncoder, FecScheme, blockEncoder } from '../fec/scheme.js';
import { type FecRequest, runRequest } from './fec-thread.js';

/**
 * This thread yields to the others (nice 5): where a core is spare it works at full speed, and where the cores
 * are shared (the test LAN runs a sender and its receivers on 2 cores; a server runs other work) it leaves
 * most of them to the pacing and the receiving that the transfer waits on. Measured there (200 MiB, MTU 9000,
 * 1 % loss, RaptorQ): at nice 0 the sender's parity work lost time (3 receivers: 5.3-6.9 s against 5.2-5.4
 * inline); at nice 10 the receivers' solves starved with 8 receivers on the 2 cores (9.4-9.5 s against
 * 7.9-8.7 at nice 5).
 */
const THREAD_NICE = 5;

function yieldToOthers(): void {
  try {
    // Linux: /proc/thread-self names this thread's id, and setpriority() on a thread id sets that thread only.
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isInteger(tid) && tid > 0) setPriority(tid, Math.max(getPriority(tid), THREAD_NICE));
  } catch {
    // Elsewhere the thread keeps the process's priority.
  }
}

yieldToOthers();
const port = parentPort!;
const maxEncoders = (workerData as { maxEncoders: number }).maxEncoders;
/**
 * RaptorQ encoders by block, most recently used last: the set-up (a whole-block solve) is the cost, and a
 * block's later repair rounds reuse it. Only RaptorQ's are kept: they work from their intermediate symbols
 * and never read the block again, whose buffer the sender may reuse once the answer is in.
 */
const encoders = new Map<number, BlockEncoder>();

function encoderFor(r: Extract<FecRequest, { kind: 'parity' }>): BlockEncoder {
  const kept = encoders.get(r.block);
  if (kept) {
    encoders.delete(r.block);
    encoders.set(r.block, kept);
    return kept;
  }
  const encoder = blockEncoder(r.fec, r.data, r.k, r.symbolSize);
  if (r.fec !== FecScheme.RaptorQ) return encoder;
  while (encoders.size >= maxEncoders) {
    const oldest = encoders.keys().next().value as number;
    encoders.get(oldest)!.dispose();
    encoders.delete(oldest);
  }
  encoders.set(r.block, encoder);
  return encoder;
}

port.on('message', (request: FecRequest) => {
  const answer = runRequest(request, encoderFor);
  port.postMessage(answer, 'symbols' in answer ? [answer.symbols.buffer as ArrayBuffer] : []);
});
