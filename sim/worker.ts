// A worker thread for `npm run sim --jobs N`: runs the scenarios it is sent, one at a time.
import { parentPort } from 'node:worker_threads';
import { runScenario, type Policy, type Scenario } from './scenario.js';

parentPort!.on('message', (msg: { id: number; scenario: Scenario; policy: Policy }) => {
  const { result } = runScenario(msg.scenario, msg.policy);
  parentPort!.postMessage({ id: msg.id, result });
});
