// The worker thread of BlockThread (block-thread.ts): hashes blocks, makes parity and runs solves.
import { readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { type BlockEncoder, FecScheme, blockEncoder } from '../fec/scheme.js';
import { type BlockRequest, READY, runRequest } from './block-thread.js';

function setNice(nice: number): void {
  try {
    // Linux: /proc/thread-self names this thread's id, and setpriority() on a thread id sets that thread only.
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isInteger(tid) && tid > 0) setPriority(tid, Math.max(getPriority(tid), nice));
  } catch {
    // Elsewhere the thread keeps the process's priority.
  }
}

const { maxEncoders, nice } = workerData as { maxEncoders: number; nice: number };
setNice(nice);
const port = parentPort!;
/**
 * RaptorQ encoders by block, most recently used last: the set-up (a whole-block solve) is the cost, and a
 * block's later repair rounds reuse it. Only RaptorQ's are kept: they work from their intermediate symbols
 * and never read the block again, whose buffer the sender may reuse once the answer is in.
 */
const encoders = new Map<number, BlockEncoder>();

function encoderFor(r: Extract<BlockRequest, { kind: 'parity' }>): BlockEncoder {
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

port.on('message', (request: BlockRequest) => {
  const answer = runRequest(request, encoderFor);
  port.postMessage(answer, 'symbols' in answer ? [answer.symbols.buffer as ArrayBuffer] : 'digest' in answer ? [answer.digest.buffer as ArrayBuffer] : []);
});
port.postMessage(READY);
