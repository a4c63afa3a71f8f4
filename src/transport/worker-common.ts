// What BlockThread's worker scripts share (block-thread-worker.ts, digest-thread-worker.ts).
import { sha256 } from '../protocol/common.js';
import type { BlockAnswer } from './block-thread.js';

/** A worker's first message: it has loaded. */
export const READY = 'ready';

/** A digest job's answer: the data's SHA-256, in a buffer of its own (transferred back). */
export function digestAnswer(seq: number, data: Uint8Array): { seq: number; digest: Uint8Array } {
  return { seq, digest: new Uint8Array(sha256(data)) };
}

/** The buffers an answer moves back to the other thread (what the worker made for it). */
export function answerTransfers(answer: BlockAnswer): ArrayBuffer[] {
  if ('symbols' in answer) return answer.symbols ? [answer.symbols.buffer as ArrayBuffer] : [];
  if ('digest' in answer) return [answer.digest.buffer as ArrayBuffer];
  return [];
}
