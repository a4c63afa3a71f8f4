// Timing helpers shared by the codec micro-benchmarks (bench/fec.ts, bench/raptorq.ts).

import { performance } from 'node:perf_hooks';

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
