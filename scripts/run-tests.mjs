// Runs every compiled test file under dist/test with Node's built-in runner, one file at a time
// (integration and namespace tests use real processes and must not compete for the 2 cores).
// Usage: node scripts/run-tests.mjs [substring ...]  — only files whose path contains a substring.
// FLEETCAST_IO=dgram|batch runs every test on that UDP backend (docs/io.md); without it the tests use the default
// (batch where the addon is built) and the loopback integration test runs once more on dgram.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function collect(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...collect(path));
    else if (name.endsWith('.test.js')) out.push(path);
  }
  return out;
}

const filters = process.argv.slice(2);
const files = collect('dist/test').filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)));
if (files.length === 0) {
  console.error('no test files found under dist/test (did the build run?)');
  process.exit(1);
}
const run = (list, env) => spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...list], { stdio: 'inherit', env }).status ?? 1;
let status = run(files, process.env);
const again = process.env.FLEETCAST_IO ? [] : files.filter((f) => f.includes(join('integration', 'loopback')));
if (again.length > 0) {
  console.log('# the loopback integration test again, on the dgram backend (FLEETCAST_IO=dgram)');
  const dgramStatus = run(again, { ...process.env, FLEETCAST_IO: 'dgram' });
  status = status || dgramStatus;
}
process.exit(status);
