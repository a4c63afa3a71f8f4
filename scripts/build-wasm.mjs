// Assembles the hand-written FEC kernel (src/fec/kernel.wat) into dist/src/fec/kernel.wasm with
// wabt. Run by `npm run build` after tsc. Any failure exits non-zero: a build that silently
// shipped no kernel would make every receiver fall back to the much slower JS kernel.
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import wabtInit from 'wabt';

const SRC = 'src/fec/kernel.wat';
const OUT = 'dist/src/fec/kernel.wasm';

try {
  const wabt = await wabtInit();
  const text = readFileSync(SRC, 'utf8');
  const mod = wabt.parseWat(SRC, text, { simd: true, bulk_memory: true });
  try {
    mod.resolveNames();
    mod.validate();
    const { buffer } = mod.toBinary({ canonicalize_lebs: true });
    if (!WebAssembly.validate(buffer)) throw new Error('this Node cannot validate the assembled module');
    mkdirSync(dirname(OUT), { recursive: true });
    writeFileSync(OUT, buffer);
    console.log(`build-wasm: ${SRC} -> ${OUT} (${buffer.length} bytes)`);
  } finally {
    mod.destroy();
  }
} catch (err) {
  console.error(`build-wasm: FAILED to assemble ${SRC}:`);
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
}
