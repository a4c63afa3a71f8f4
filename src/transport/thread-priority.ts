// Scheduling priorities of a session's threads (Linux: nice values are per thread, and a new thread inherits its
// creator's). The pacing thread is raised where the process may do so; the threads doing bulk work lower
// themselves (block-thread.ts).
import { readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

/**
 * The sender's event loop (pacing, feedback) runs at this nice value where it is permitted (root or
 * CAP_SYS_NICE). It is light (under a tenth of a core at 500 Mbit/s) but late: where the cores are shared, each
 * wake-up that waits for a core costs a gap the pacer cannot win back (its burst is capped), and the transfer
 * takes longer. Measured on the dev VM's test LAN (2 cores, 200 MiB, MTU 9000, 500 Mbit/s), time from the
 * sender's start to the last receiver's exit ÷ the link's minimum, by hand: 8 receivers lossless (three runs
 * each) nice 0 1.095-1.105, -5 1.073-1.078, -10 1.071-1.072; RaptorQ, 8 receivers at 1 % loss, whose decoding
 * needs more than the 2 cores (two each), with its parity thread still at nice 5: nice 1 2.22-2.28, -5
 * 2.32-2.33, -10 2.42-2.58. With the parity thread at 0 under the raised pacer (session.ts): -5 2.27-2.40, not
 * raised 2.28-2.38.
 */
export const PACING_NICE = -5;

/** This thread's id (Linux), or null elsewhere. */
function threadId(): number | null {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    return Number.isInteger(tid) && tid > 0 ? tid : null;
  } catch {
    return null;
  }
}

/** Lowers this thread's scheduling priority to `nice` (never raises it). */
export function setThreadNice(nice: number): void {
  const tid = threadId();
  if (tid === null) return; // elsewhere the thread keeps the process's priority
  try {
    setPriority(tid, Math.max(getPriority(tid), nice));
  } catch {
    // not permitted: keep it
  }
}

let holders = 0;
/** The thread raised (from nice 0, which it gets back), while holders > 0. */
let raisedTid: number | null = null;

/**
 * Raises this thread (an event loop's) to `nice` while the returned release function has not been called, where
 * permitted and only from the default priority (a process started under `nice` keeps its place). Holds nest:
 * sends in one process share the raise, and the last release gives the old value back. Returns whether the
 * thread runs raised.
 */
export function holdPacingPriority(nice = PACING_NICE): { raised: boolean; release: () => void } {
  holders++;
  if (holders === 1) {
    const tid = threadId();
    try {
      if (tid !== null && getPriority(tid) === 0 && nice < 0) {
        setPriority(tid, nice);
        raisedTid = tid;
      }
    } catch {
      raisedTid = null; // EACCES without the privilege: stays as it is
    }
  }
  let released = false;
  return {
    raised: raisedTid !== null,
    release: () => {
      if (released) return;
      released = true;
      holders--;
      if (holders > 0 || raisedTid === null) return;
      try {
        setPriority(raisedTid, 0);
      } catch {
        // lowering is always permitted
      }
      raisedTid = null;
    },
  };
}
