// Worker-thread side of ParityMaker (parity.ts): makes the parity symbols a sender asks for with need-parity.
import { readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { type BlockEncoder, FecScheme, blockEncoder } from '../fec/scheme.js';
import type { ParityRequest, ParityAnswer } from './parity.js';

/**
 * This thread yields to every other (nice 10): where the sender has a core to spare it makes parity at full
 * speed, and where it shares the cores (with receivers on the same machine, or other work) it does not take
 * them from the pacing and the receiving that the transfer waits on.
 */
const THREAD_NICE = 10;

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

function encoderFor(r: ParityRequest): BlockEncoder {
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

port.on('message', (r: ParityRequest) => {
  let answer: ParityAnswer;
  const transfer: ArrayBuffer[] = [];
  try {
    const symbols = encoderFor(r).repair(r.ids);
    const packed = new Uint8Array(r.ids.length * r.symbolSize);
    symbols.forEach((s, i) => packed.set(s, i * r.symbolSize));
    answer = { seq: r.seq, symbols: packed };
    transfer.push(packed.buffer);
  } catch (err) {
    answer = { seq: r.seq, error: (err as Error).message };
  }
  port.postMessage(answer, transfer);
});
