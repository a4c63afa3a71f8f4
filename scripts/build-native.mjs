// Builds the optional batched-UDP addon (native/fastudp.c -> native/build/Release/fastudp.node) from source with
// node-gyp, as the last step of `npm run build` (and so of `npm ci`). It never fails the build: without Linux, a
// compiler or Node's headers fleetcast runs on Node's dgram (docs/io.md), and this prints one line saying why.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';

const DIR = 'native';
const OUT = join(DIR, 'build', 'Release', 'fastudp.node');
const SOURCES = [join(DIR, 'fastudp.c'), join(DIR, 'binding.gyp')];

function skip(reason) {
  console.log(`build-native: ${reason}; fleetcast will use Node's dgram for UDP (slower, see docs/io.md)`);
  process.exit(0);
}

if (process.platform !== 'linux') skip(`batched UDP I/O (recvmmsg/sendmmsg) is built on Linux only, not ${process.platform}`);
if (existsSync(OUT) && SOURCES.every((s) => statSync(s).mtimeMs < statSync(OUT).mtimeMs)) {
  console.log(`build-native: ${OUT} is up to date`);
  process.exit(0);
}

// npm gives scripts its bundled node-gyp; run by hand, npm's copy beside this Node, else one on the PATH.
const prefix = dirname(dirname(process.execPath));
const bundled = join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
const gyp = process.env.npm_config_node_gyp || (existsSync(bundled) ? bundled : null);
const [command, prefixArgs] = gyp ? [process.execPath, [gyp]] : ['node-gyp', []];
const args = [...prefixArgs, 'rebuild', `--directory=${DIR}`];
// Build against the headers of the Node that runs us when they are installed beside it: nothing to download.
if (!process.env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);

const result = spawnSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 300_000 });
if (result.error || result.status !== 0) {
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}`.trim().split('\n');
  const why = result.error ? result.error.message : output.filter((l) => /error|not found|ERR!/i.test(l)).slice(0, 3).join(' | ') || `node-gyp exited ${result.status}`;
  skip(`the batched UDP addon did not build (${why})`);
}
console.log(`build-native: ${DIR}/fastudp.c -> ${OUT}`);
