// Builds a small test LAN, starts a long-running process inside it, prints {prefix, pid} as JSON and then
// waits (mode "wait") or crashes with an uncaught exception (mode "crash"). Used by the tests that check
// cleanup after SIGINT/SIGTERM and after a crash.

import { buildLan } from '../../../src/testlan/lan.js';

const mode = process.argv[2] ?? 'wait';
const lan = await buildLan({ receivers: 2, loss: 0.1 });
const child = lan.spawn(lan.receivers[0]!, ['sleep', '600'], { stdio: 'ignore' });
process.stdout.write(`${JSON.stringify({ prefix: lan.prefix, pid: child.pid })}\n`);
if (mode === 'crash') {
  setTimeout(() => {
    throw new Error('deliberate crash after the LAN was built');
  }, 200);
}
setInterval(() => {}, 1000);
