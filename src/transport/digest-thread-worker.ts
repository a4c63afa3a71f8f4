// The worker of a digest-only BlockThread (BlockThread.forDigests): hashes the blocks `send` reads. It loads
// none of the FEC code block-thread-worker.ts needs: ready after 27 ms with 29 ms of CPU, against 39 and 41
// (measured by hand: a Worker started four times each, time to its ready message).
import { parentPort, workerData } from 'node:worker_threads';
import type { BlockAnswer, BlockRequest } from './block-thread.js';
import { setThreadNice } from './thread-priority.js';
import { READY, answerTransfers, digestAnswer } from './worker-common.js';

setThreadNice((workerData as { nice: number }).nice);
const port = parentPort!;
port.on('message', (request: BlockRequest) => {
  const answer: BlockAnswer =
    request.kind === 'digest'
      ? digestAnswer(request.seq, request.data)
      : { seq: request.seq, error: `a digest thread does not do ${request.kind} jobs` };
  port.postMessage(answer, answerTransfers(answer));
});
port.postMessage(READY);
