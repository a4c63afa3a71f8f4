// The worker of a digest-only BlockThread (BlockThread.forDigests): hashes the blocks `send` reads. It loads
// none of the FEC code block-thread-worker.ts needs: ready after 27 ms with 29 ms of CPU, against 39 and 41.
import { parentPort, workerData } from 'node:worker_threads';
import { sha256 } from '../protocol/common.js';
import type { BlockAnswer, BlockRequest } from './block-thread.js';
import { READY, setThreadNice } from './worker-common.js';

setThreadNice((workerData as { nice: number }).nice);
const port = parentPort!;
port.on('message', (request: BlockRequest) => {
  const answer: BlockAnswer =
    request.kind === 'digest'
      ? { seq: request.seq, digest: new Uint8Array(sha256(request.data)) } // (its own buffer: transferred back)
      : { seq: request.seq, error: `a digest thread does not do ${request.kind} jobs` };
  port.postMessage(answer, 'digest' in answer ? [answer.digest.buffer as ArrayBuffer] : []);
});
port.postMessage(READY);
