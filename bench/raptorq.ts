// RaptorQ throughput and reception overhead, next to the Cauchy Reed-Solomon codec.
//
// 1. Speed, symbolSize 1452, 5% of the source symbols lost: "encode" is a sender's work per block
//    (intermediate symbols, then as many repair symbols as were lost), "decode" a receiver's (K
//    symbols in, of which 5% repair, the source block out into a reused buffer); MB/s of block
//    data, coders disposed after each block as an engine would. RS rows: the same for the Cauchy
//    codec at k = 128 and 200.
// 2. Reception overhead: how many symbols beyond K a decoder needed (random 10% loss over source
//    and repair symbols), as a distribution over many blocks.
// 3. Multicast: one sender, 8 receivers with independent 5% loss; the sender sends ESIs 0, 1, 2 ...
//    until every receiver decodes. wire/image = symbols sent / K (the ideal is 1/(1-p) = 1.053).
//
//   node dist/bench/raptorq.js [--time=MS per speed figure, default 1000] [--kernel=wasm|js] [--json]

import { randomBytes } from 'node:crypto';
import { fecKernelName, getCodec } from '../src/fec/index.js';
import { RaptorQDecoder, RaptorQEncoder } from '../src/fec/raptorq/index.js';
import { parseArgs, rate, rsLossCase, shuffle } from './codec-bench.js';

const args = parseArgs(process.argv.slice(2));
const timeMs = Number(args.get('time') ?? 1000);
const kernel = args.get('kernel') as 'wasm' | 'js' | undefined;
const json = args.has('json');
const S = 1452;
const LOSS = 0.05;
const log = (line: string): void => {
  if (!json) console.log(line);
};

interface SpeedRow {
  codec: string; k: number; missing: number; encodeMBps: number; decodeMBps: number; inactivated?: number;
}
const speed: SpeedRow[] = [];

log(`raptorq bench: symbolSize=${S}, ${LOSS * 100}% loss, kernel ${kernel ?? fecKernelName()}, ~${timeMs} ms per figure`);
log('codec     k     missing  encode MB/s  decode MB/s  inactivated');
for (const k of [128, 200]) {
  const codec = getCodec(k, S, kernel ? { kernel } : undefined);
  const block = new Uint8Array(randomBytes(k * S));
  const m = Math.round(LOSS * k);
  const { parityIds, ids, symbols } = rsLossCase(codec, block, m);
  const enc = rate(() => codec.encode(block, parityIds), timeMs);
  const dec = rate(() => codec.decode(ids, symbols), timeMs);
  const row = { codec: 'rs', k, missing: m, encodeMBps: (enc * k * S) / 1e6, decodeMBps: (dec * k * S) / 1e6 };
  speed.push(row);
  log(`rs        ${String(k).padEnd(5)} ${String(m).padStart(7)}  ${row.encodeMBps.toFixed(0).padStart(11)}  ${row.decodeMBps.toFixed(0).padStart(11)}`);
}
for (const K of [128, 1024, 4096, 8192]) {
  const block = new Uint8Array(randomBytes(K * S));
  const m = Math.round(LOSS * K);
  const options = kernel ? { kernel } : {};
  const encoder = new RaptorQEncoder(block, S, K, options);
  const lost = new Set(shuffle(Array.from({ length: K }, (_, j) => j)).slice(0, m));
  const received: [number, Uint8Array][] = [];
  for (let j = 0; j < K; j++) if (!lost.has(j)) received.push([j, encoder.symbol(j)]);
  for (let esi = K; received.length < K + 3; esi++) received.push([esi, encoder.symbol(esi)]);
  const enc = rate(() => {
    const e = new RaptorQEncoder(block, S, K, options);
    for (let i = 0; i < m; i++) e.symbol(K + i);
    e.dispose();
  }, timeMs);
  let inactivated = 0;
  const output = new Uint8Array(K * S); // reused, like a receiver's block buffer
  const dec = rate(() => {
    const d = new RaptorQDecoder(K, S, options);
    let used = 0;
    for (; used < K; used++) d.add(...received[used]!);
    while (!d.tryDecode(output)) d.add(...received[used++]!); // rare: one more symbol
    inactivated = d.stats.inactivated;
  }, timeMs);
  encoder.dispose();
  const row = { codec: 'raptorq', k: K, missing: m, encodeMBps: (enc * K * S) / 1e6, decodeMBps: (dec * K * S) / 1e6, inactivated };
  speed.push(row);
  log(
    `raptorq   ${String(K).padEnd(5)} ${String(m).padStart(7)}  ${row.encodeMBps.toFixed(0).padStart(11)}  ` +
      `${row.decodeMBps.toFixed(0).padStart(11)}  ${String(inactivated).padStart(11)}`,
  );
}

/** Symbols a decoder needed beyond K, receiving a random 10%-loss stream of ESIs 0, 1, 2 ... */
function overheadOnce(encoder: RaptorQEncoder): number {
  const { K } = encoder;
  const d = new RaptorQDecoder(K, encoder.symbolSize);
  for (let esi = 0; ; esi++) {
    if (Math.random() < 0.1) continue;
    d.add(esi, encoder.symbol(esi));
    if (d.received >= K && d.tryDecode()) return d.received - K;
  }
}

interface OverheadRow { k: number; trials: number; histogram: Record<string, number>; mean: number }
const overhead: OverheadRow[] = [];
log('\nreception overhead (symbols beyond K to decode; 10% random loss over source and repair)');
for (const [K, trials] of [[128, 1000], [1024, 200], [8192, 20]] as const) {
  const encoder = new RaptorQEncoder(new Uint8Array(randomBytes(K * 16)), 16, K);
  const histogram: Record<string, number> = {};
  let sum = 0;
  for (let t = 0; t < trials; t++) {
    const o = overheadOnce(encoder);
    sum += o;
    histogram[String(o)] = (histogram[String(o)] ?? 0) + 1;
  }
  overhead.push({ k: K, trials, histogram, mean: sum / trials });
  const shown = Object.entries(histogram).map(([o, n]) => `+${o}: ${((n / trials) * 100).toFixed(1)}%`).join('  ');
  log(`K=${String(K).padEnd(5)} ${String(trials).padStart(4)} blocks  ${shown}  (mean ${(sum / trials).toFixed(3)})`);
}

/** One block to `receivers` receivers with independent loss: symbols sent until all decoded. */
function multicastOnce(encoder: RaptorQEncoder, receivers: number, loss: number): number {
  const { K } = encoder;
  const decs = Array.from({ length: receivers }, () => new RaptorQDecoder(K, encoder.symbolSize));
  const done = new Array<boolean>(receivers).fill(false);
  let pending = receivers;
  let esi = 0;
  for (; pending > 0; esi++) {
    const symbol = encoder.symbol(esi);
    decs.forEach((d, r) => {
      if (done[r] || Math.random() < loss) return;
      d.add(esi, symbol);
      if (d.received >= K && d.tryDecode()) {
        done[r] = true;
        pending--;
      }
    });
  }
  return esi;
}

interface MulticastRow { k: number; receivers: number; loss: number; trials: number; wireMean: number; wireMax: number }
const multicast: MulticastRow[] = [];
log(`\nmulticast: 8 receivers, ${LOSS * 100}% independent loss each; wire/image = symbols sent / K (ideal ${(1 / (1 - LOSS)).toFixed(3)})`);
for (const [K, trials] of [[1024, 20], [8192, 4]] as const) {
  const encoder = new RaptorQEncoder(new Uint8Array(randomBytes(K * 16)), 16, K);
  const wires: number[] = [];
  for (let t = 0; t < trials; t++) wires.push(multicastOnce(encoder, 8, LOSS) / K);
  const row = { k: K, receivers: 8, loss: LOSS, trials, wireMean: wires.reduce((a, b) => a + b, 0) / trials, wireMax: Math.max(...wires) };
  multicast.push(row);
  log(`K=${String(K).padEnd(5)} ${String(trials).padStart(3)} blocks  wire/image mean ${row.wireMean.toFixed(4)}  max ${row.wireMax.toFixed(4)}`);
}

if (json) console.log(JSON.stringify({ symbolSize: S, loss: LOSS, kernel: kernel ?? fecKernelName(), speed, overhead, multicast }, null, 2));
