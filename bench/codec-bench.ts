// Helpers shared by the codec micro-benchmarks (bench/fec.ts, bench/raptorq.ts).

import { performance } from 'node:perf_hooks';
import type { ErasureCodec } from '../src/fec/index.js';

/**
 * Calls per second of fn: a short warm-up (so V8 tiers the wasm and JS up), then five batches of
 * timeMs/5 each (at least one call per batch); the median batch is reported, which shrugs off a GC
 * pause or a noisy neighbour.
 */
export function rate(fn: () => void, timeMs: number): number {
  const warm = performance.now() + Math.min(100, timeMs / 4);
  do fn();
  while (performance.now() < warm);
  const rates: number[] = [];
  for (let b = 0; b < 5; b++) {
    let n = 0;
    const t0 = performance.now();
    let t = t0;
    do {
      fn();
      n++;
      t = performance.now();
    } while (t - t0 < timeMs / 5);
    rates.push((n * 1000) / (t - t0));
  }
  return rates.sort((a, b) => a - b)[2]!;
}

/** Fisher-Yates in place with Math.random (benchmarks need variety, not reproducibility). */
export function shuffle<T>(a: T[]): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/** --name=value / --flag arguments as a map. */
export function parseArgs(argv: string[]): Map<string, string> {
  return new Map(
    argv.map((a) => {
      const [k, v] = a.replace(/^--/, '').split('=');
      return [k!, v ?? 'true'] as const;
    }),
  );
}

/**
 * A Reed-Solomon receiver's view of a block with m random source symbols lost: the k ids and
 * symbols it decodes from (the surviving sources plus the first m parities), and those parity ids.
 */
export function rsLossCase(codec: ErasureCodec, block: Uint8Array, m: number): { parityIds: number[]; ids: number[]; symbols: Uint8Array[] } {
  const { k, symbolSize: S } = codec;
  const parityIds = Array.from({ length: m }, (_, i) => k + i);
  const parity = codec.encode(block, parityIds);
  const lost = new Set(shuffle(Array.from({ length: k }, (_, j) => j)).slice(0, m));
  const ids: number[] = [];
  const symbols: Uint8Array[] = [];
  for (let j = 0; j < k; j++) if (!lost.has(j)) { ids.push(j); symbols.push(block.subarray(j * S, j * S + S)); }
  for (let i = 0; i < m; i++) { ids.push(parityIds[i]!); symbols.push(parity[i]!); }
  return { parityIds, ids, symbols };
}
