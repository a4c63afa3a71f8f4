// Calls buildLan and prints the error message (run as an unprivileged user by the tests).
import { buildLan } from '../../../src/testlan/lan.js';

try {
  const lan = await buildLan({ receivers: 1 });
  await lan.teardown();
  process.stdout.write('BUILT\n');
} catch (error) {
  process.stdout.write(`${(error as Error).message}\n`);
}
