// Link-rate strings for the test LAN and the benchmark.
//
// Accepts tc's spellings ("500mbit", "1gbit", "800kbit", "64000bit", and the byte-based "10mbps")
// and the short forms used by fleetcast's CLI ("500M", "1G", "800k": bits per second, powers of 1000).
// Note tc's trap: "mbps" means megabytes per second, "mbit" megabits.

const UNITS: Record<string, number> = {
  bit: 1,
  kbit: 1e3,
  mbit: 1e6,
  gbit: 1e9,
  tbit: 1e12,
  bps: 8,
  kbps: 8e3,
  mbps: 8e6,
  gbps: 8e9,
  tbps: 8e12,
  '': 1,
  k: 1e3,
  m: 1e6,
  g: 1e9,
  t: 1e12,
};

/** Parses a rate string into bits per second; throws on anything it does not understand. */
export function parseRate(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = m?.[2]?.toLowerCase();
  if (!m || unit === undefined || !(unit in UNITS)) {
    throw new Error(`not a rate: ${JSON.stringify(text)} (use e.g. 500mbit, 1gbit, 800kbit or 500M)`);
  }
  const bits = Number(m[1]) * (UNITS[unit] as number);
  if (!Number.isFinite(bits) || bits < 8000) {
    throw new Error(`rate ${JSON.stringify(text)} is too low (minimum 8kbit)`);
  }
  return bits;
}

/** tc's unambiguous spelling of a rate in bits per second. */
export function tcRate(bitsPerSecond: number): string {
  return `${Math.round(bitsPerSecond)}bit`;
}

/** Human form: 500mbit, 1.5gbit, 800kbit. */
export function formatRate(bitsPerSecond: number): string {
  const fmt = (v: number): string => String(Math.round(v * 100) / 100);
  if (bitsPerSecond >= 1e9) return `${fmt(bitsPerSecond / 1e9)}gbit`;
  if (bitsPerSecond >= 1e6) return `${fmt(bitsPerSecond / 1e6)}mbit`;
  if (bitsPerSecond >= 1e3) return `${fmt(bitsPerSecond / 1e3)}kbit`;
  return `${Math.round(bitsPerSecond)}bit`;
}
