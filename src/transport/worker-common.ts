// What BlockThread's worker scripts share (block-thread-worker.ts, digest-thread-worker.ts).
import { sha256 } from '../protocol/common.js';

/** A worker's first message: it has loaded. */
export const READY = 'ready';

/** A digest job's answer: the data's SHA-256, in a buffer of its own (transferred back). */
export function digestAnswer(seq: number, data: Uint8Array): { seq: number; digest: Uint8Array } {
  return { seq, digest: new Uint8Array(sha256(data)) };
}
