// What BlockThread's worker scripts share (block-thread-worker.ts, digest-thread-worker.ts).
import { readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import { sha256 } from '../protocol/common.js';

/** A worker's first message: it has loaded. */
export const READY = 'ready';

/** A digest job's answer: the data's SHA-256, in a buffer of its own (transferred back). */
export function digestAnswer(seq: number, data: Uint8Array): { seq: number; digest: Uint8Array } {
  return { seq, digest: new Uint8Array(sha256(data)) };
}

/** Lowers this thread's scheduling priority to `nice` (never raises it). */
export function setThreadNice(nice: number): void {
  try {
    // Linux: /proc/thread-self names this thread's id, and setpriority() on a thread id sets that thread only.
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isInteger(tid) && tid > 0) setPriority(tid, Math.max(getPriority(tid), nice));
  } catch {
    // Elsewhere the thread keeps the process's priority.
  }
}
