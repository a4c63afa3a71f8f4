// FEC throughput: encode and decode MB/s of block data (k * symbolSize bytes per block) for
// k in {64, 128, 200}, symbolSize 1452, with 1%, 5% and 10% of the source symbols missing, for
// both kernels. Encode makes as many parity symbols as are missing (what a sender repairs with);
// decode rebuilds that many. "madd GB/s" is the raw kernel rate: multiply-added bytes per second.
// Then decoding with extension symbols (ids past 255): the decode plan's scalar time, and how often k symbols
// with extension symbols among them fail to determine the block (docs/fec.md, "Extension symbols").
//
//   node dist/bench/fec.js [--time=MS per figure, default 500] [--kernel=wasm|js] [--json]

import { randomBytes } from 'node:crypto';
import { fecKernelName, getCodec } from '../src/fec/index.js';
import { planDecode } from '../src/fec/matrix.js';
import { parseArgs, rate as rateFor, rsLossCase } from './codec-bench.js';

const args = parseArgs(process.argv.slice(2));
const timeMs = Number(args.get('time') ?? 500);
const kernels = (args.has('kernel') ? [args.get('kernel')!] : fecKernelName() === 'wasm-simd' ? ['wasm', 'js'] : ['js']) as ('wasm' | 'js')[];
const S = 1452;
const KS = [64, 128, 200];
const LOSSES = [0.01, 0.05, 0.1];

const rate = (fn: () => void): number => rateFor(fn, timeMs);

interface Row {
  kernel: string; k: number; loss: number; missing: number;
  encodeMBps: number; decodeMBps: number; encodeMaddGBps: number; decodeMaddGBps: number;
}
const rows: Row[] = [];
if (!args.has('json')) {
  console.log(`fec bench: symbolSize=${S}, default kernel ${fecKernelName()}, ${timeMs} ms per figure`);
  console.log('kernel  k    loss  missing  encode MB/s  decode MB/s  (madd GB/s enc/dec)');
}
for (const kernel of kernels) {
  for (const k of KS) {
    const codec = getCodec(k, S, { kernel });
    const block = new Uint8Array(randomBytes(k * S));
    for (const loss of LOSSES) {
      const m = Math.max(1, Math.round(loss * k));
      const { parityIds, ids, symbols } = rsLossCase(codec, block, m);
      const got = codec.decode(ids, symbols);
      if (!got?.every((v, i) => v === block[i])) throw new Error(`decode mismatch: kernel=${kernel} k=${k} m=${m}`);
      const enc = rate(() => codec.encode(block, parityIds));
      const dec = rate(() => codec.decode(ids, symbols));
      const row: Row = {
        kernel, k, loss, missing: m,
        encodeMBps: (enc * k * S) / 1e6, decodeMBps: (dec * k * S) / 1e6,
        encodeMaddGBps: (enc * m * k * S) / 1e9, decodeMaddGBps: (dec * m * k * S) / 1e9,
      };
      rows.push(row);
      if (!args.has('json')) {
        console.log(
          `${kernel.padEnd(6)}  ${String(k).padEnd(3)}  ${(loss * 100).toFixed(0).padStart(3)}%  ${String(m).padStart(7)}  ` +
            `${row.encodeMBps.toFixed(0).padStart(11)}  ${row.decodeMBps.toFixed(0).padStart(11)}  ` +
            `(${row.encodeMaddGBps.toFixed(2)}/${row.decodeMaddGBps.toFixed(2)})`,
        );
      }
    }
  }
}

// Extension symbols. Each case: k, the sources missing, and how many of the repair symbols are Cauchy parities
// (the rest are extension symbols): a late joiner's block at k = 128 (every source missing, 127 Cauchy parities
// and one extension symbol), and blocks of extension symbols only.
interface ExtensionRow { k: number; missing: number; cauchy: number; planMs: number; undeterminedPct: number }
const extensionRows: ExtensionRow[] = [];
const EXTENSION_TRIALS = 2000;
if (!args.has('json')) console.log('\nextension symbols: k  missing  cauchy  plan ms  undetermined (of 2000)');
for (const [k, e, cauchy] of [[128, 10, 0], [128, 128, 127], [255, 40, 0], [255, 200, 0]] as const) {
  const idsFor = (trial: number): number[] => {
    const ids: number[] = [];
    for (let j = e; j < k; j++) ids.push(j);
    for (let i = 0; i < cauchy; i++) ids.push(k + i);
    const base = 256 + ((trial * 7919) % 60000);
    for (let i = 0; ids.length < k; i++) ids.push(base + i);
    return ids;
  };
  let undetermined = 0;
  for (let t = 0; t < EXTENSION_TRIALS; t++) if (!planDecode(k, idsFor(t))) undetermined++;
  const ids = idsFor(1);
  const row = { k, missing: e, cauchy, planMs: 1000 / rate(() => planDecode(k, ids)), undeterminedPct: (undetermined / EXTENSION_TRIALS) * 100 };
  extensionRows.push(row);
  if (!args.has('json')) {
    console.log(`                   ${String(k).padStart(3)}  ${String(e).padStart(7)}  ${String(cauchy).padStart(6)}  ${row.planMs.toFixed(2).padStart(7)}  ${row.undeterminedPct.toFixed(2)} %`);
  }
}
if (args.has('json')) console.log(JSON.stringify({ codec: rows, extension: extensionRows }, null, 2));
