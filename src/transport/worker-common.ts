// What BlockThread's worker scripts share (block-thread-worker.ts, digest-thread-worker.ts).
import { readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

/** A worker's first message: it has loaded. */
export const READY = 'ready';

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
