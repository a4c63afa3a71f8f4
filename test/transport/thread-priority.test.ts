import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';

const MODULE = new URL('../../src/transport/thread-priority.js', import.meta.url).href;

/**
 * Runs `body` (an async function's source taking the module) on a thread of its own, whose nice values cannot
 * leak into the test runner's, and returns what it returns.
 */
function onThread<T>(body: string): Promise<T> {
  const code = `
    const { parentPort } = require('node:worker_threads');
    const os = require('node:os');
    const fs = require('node:fs');
    const tid = Number(fs.readlinkSync('/proc/thread-self').split('/').pop());
    const nice = () => os.getPriority(tid);
    // Whether this process may raise a thread (root with CAP_SYS_NICE; a container may withhold it from root).
    let mayRaise = false;
    try {
      os.setPriority(tid, -1);
      os.setPriority(tid, 0);
      mayRaise = true;
    } catch {}
    globalThis.mayRaise = mayRaise;
    import(${JSON.stringify(MODULE)}).then(async (m) => parentPort.postMessage(await (${body})(m, nice)));
  `;
  return new Promise((resolve, reject) => {
    const worker = new Worker(code, { eval: true });
    worker.once('message', (value: T) => {
      resolve(value);
      void worker.terminate();
    });
    worker.once('error', reject);
  });
}

test('the pacing thread is raised while held (where permitted), nested holds share it, and the last release restores it', async () => {
  const seen = await onThread<{ raised: boolean[]; nice: number[]; pacing: number; mayRaise: boolean }>(`async (m, nice) => {
    const nices = [nice()];
    const a = m.holdPacingPriority();
    nices.push(nice());
    const b = m.holdPacingPriority();
    a.release();
    a.release(); // twice: counted once
    nices.push(nice());
    b.release();
    nices.push(nice());
    return { raised: [a.raised, b.raised], nice: nices, pacing: m.PACING_NICE, mayRaise: globalThis.mayRaise };
  }`);
  assert.ok(seen.pacing < 0);
  if (seen.mayRaise) {
    assert.deepEqual(seen.raised, [true, true]);
    assert.deepEqual(seen.nice, [0, seen.pacing, seen.pacing, 0], 'raised while any hold lasts, then back to 0');
  } else {
    // Without the privilege nothing changes (and nothing fails).
    assert.deepEqual(seen.raised, [false, false]);
    assert.deepEqual(seen.nice, [0, 0, 0, 0]);
  }
});

test('a thread started under nice keeps its place: neither the pacing hold nor setThreadNice raises it', async () => {
  const seen = await onThread<number[]>(`async (m, nice) => {
    m.setThreadNice(5);
    const after = [nice()];
    const hold = m.holdPacingPriority();
    after.push(nice(), hold.raised ? 1 : 0);
    hold.release();
    m.setThreadNice(0); // never raises
    after.push(nice());
    return after;
  }`);
  assert.deepEqual(seen, [5, 5, 0, 5]);
});
