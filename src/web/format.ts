// How the console writes quantities and times. Bytes and rates are the CLI's own formats (src/cli/units.ts).
import { formatBytes, formatRate, parseRate } from '../cli/units.js';

export { formatBytes, formatRate, parseRate };

export const bytesOrDash = (n: number | null | undefined): string => (n === null || n === undefined ? '—' : formatBytes(n));

/** A rate as the rate fields take it back: "unlimited", "100M", "1.5G", "64k". */
export function rateInput(bps: number | null): string {
  if (bps === null) return 'unlimited';
  for (const [scale, suffix] of [
    [1e9, 'G'],
    [1e6, 'M'],
    [1e3, 'k'],
  ] as const) {
    if (bps >= scale) return `${+(bps / scale).toFixed(3)}${suffix}`;
  }
  return String(bps);
}

/** A rate field's text as bits/s; "unlimited" (or empty, when allowed) is null. Throws with a message to show. */
export function parseRateInput(text: string, allowUnlimited: boolean): number | null {
  const t = text.trim().toLowerCase();
  if (allowUnlimited && (t === '' || t === 'unlimited')) return null;
  return parseRate(text);
}

/** Local date and time, to the second. */
export function when(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
}

/** "1 h 02 min", "3 min 05 s", "12.3 s". */
export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '—';
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(Math.floor(s % 60)).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

export const count = (n: number | null | undefined): string => (n === null || n === undefined ? '—' : n.toLocaleString());
