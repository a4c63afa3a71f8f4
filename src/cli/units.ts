// Parsing of human-written quantities on the command line.

/** "900M", "1G", "500mbit", "2.5g", "100k" or plain bits per second. */
export function parseRate(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:bit|bps|b)?(?:\/s)?\s*$/i.exec(text);
  if (!m) throw new Error(`bad rate "${text}": use a number of bits per second with an optional k, M or G suffix, e.g. 900M`);
  const scale = { '': 1, k: 1e3, m: 1e6, g: 1e9, t: 1e12 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g' | 't'];
  const value = Number(m[1]) * scale;
  if (value < 1000) throw new Error(`rate "${text}" is below 1 kbit/s`);
  return value;
}

export function formatRate(bps: number): string {
  if (bps >= 1e9) return `${(bps / 1e9).toFixed(2)} Gbit/s`;
  if (bps >= 1e6) return `${(bps / 1e6).toFixed(1)} Mbit/s`;
  return `${(bps / 1e3).toFixed(0)} kbit/s`;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

export function parseIntOption(name: string, min: number, max: number) {
  return (text: string): number => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name} must be an integer from ${min} to ${max}, got "${text}"`);
    return n;
  };
}

export function parseSeconds(name: string) {
  return (text: string): number => {
    const n = Number(text);
    if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a number of seconds, got "${text}"`);
    return n;
  };
}

/** "15m", "90s", "1h", "1.5m"; a bare number is in `bareUnit` (ConfigMgr gives the start delay in minutes). Returns seconds. */
export function parseDuration(name: string, bareUnit: 's' | 'm' = 'm') {
  return (text: string): number => {
    const m = /^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h)?\s*$/i.exec(text);
    if (!m) throw new Error(`${name} must be a duration such as 15m, 90s or 1h, got "${text}"`);
    const unit = (m[2]?.[0]?.toLowerCase() ?? bareUnit) as 's' | 'm' | 'h';
    return Number(m[1]) * { s: 1, m: 60, h: 3600 }[unit];
  };
}
