// The worker thread of BlockThread (block-thread.ts): makes parity, runs solves (and hashes blocks, though `send`
// hashes on a digest-only thread: digest-thread-worker.ts).
import { parentPort, workerData } from 'node:worker_threads';
import { type BlockEncoder, blockEncoder, encoderHasSetUp } from '../fec/scheme.js';
import { type BlockRequest, runRequest } from './block-thread.js';
import { setThreadNice } from './thread-priority.js';
import { READY, answerTransfers } from './worker-common.js';

type ParityRequest = Extract<BlockRequest, { kind: 'parity' }>;

const { maxEncoders, nice } = workerData as { maxEncoders: number; nice: number };
setThreadNice(nice);
const port = parentPort!;
/**
 * RaptorQ encoders by block, most recently used last: the set-up (a whole-block solve) is the cost, and a
 * block's later repair rounds reuse it. Only RaptorQ's are kept: they work from their intermediate symbols
 * and never read the block again, whose buffer the sender may reuse once the answer is in.
 */
const encoders = new Map<number, BlockEncoder>();

function encoderFor(r: ParityRequest): BlockEncoder | null {
  const kept = encoders.get(r.block);
  if (kept) {
    encoders.delete(r.block);
    encoders.set(r.block, kept);
    return kept;
  }
  if (!r.data) return null; // asked without the block: the sender reads it again
  const encoder = blockEncoder(r.fec, r.data, r.k, r.symbolSize);
  if (!encoderHasSetUp(r.fec)) return encoder;
  while (encoders.size >= maxEncoders) {
    const oldest = encoders.keys().next().value as number;
    encoders.get(oldest)!.dispose();
    encoders.delete(oldest);
  }
  encoders.set(r.block, encoder);
  return encoder;
}

/**
 * Jobs not started yet. Those the other thread waits for go first; encoder set-ups ahead of parity (no ids)
 * wait for them: a set-up takes 25 ms on an idle core and several times that on a busy one.
 */
const queue: BlockRequest[] = [];
let draining = false;

const isSetUp = (r: BlockRequest): r is ParityRequest => r.kind === 'parity' && r.ids.length === 0;

function drain(): void {
  let next = Math.max(0, queue.findIndex((r) => !isSetUp(r)));
  const chosen = queue[next]!;
  // Parity asked for (perhaps without the block) while its block's set-up waits: the set-up first.
  if (chosen.kind === 'parity') {
    const setUp = queue.findIndex((r) => isSetUp(r) && r.block === chosen.block);
    if (setUp >= 0) next = setUp;
  }
  const [request] = queue.splice(next, 1);
  const answer = runRequest(request!, encoderFor);
  port.postMessage(answer, answerTransfers(answer));
  // Through the event loop, so that jobs posted meanwhile are queued before the next is chosen.
  if (queue.length > 0) setImmediate(drain);
  else draining = false;
}

port.on('message', (request: BlockRequest) => {
  queue.push(request);
  if (!draining) {
    draining = true;
    setImmediate(drain);
  }
});
port.postMessage(READY);
