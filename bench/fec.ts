// FEC throughput: encode and decode MB/s of block data (k * symbolSize bytes per block) for
// k in {64, 128, 200}, symbolSize 1452, with 1%, 5% and 10% of the source symbols missing, for
// both kernels. Encode makes as many parity symbols as are missing (what a sender repairs with);
// decode rebuilds that many. "madd GB/s" is the raw kernel rate: multiply-added bytes per second.
//
//   node dist/bench/fec.js [--time=MS per figure, default 500] [--kernel=wasm|js] [--json]

import { randomBytes } from 'node:crypto';
import { fecKernelName, getCodec } from '../src/fec/index.js';
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
if (args.has('json')) console.log(JSON.stringify(rows, null, 2));
