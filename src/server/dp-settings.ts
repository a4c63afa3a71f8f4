// The distribution point's multicast settings: ConfigMgr's multicast tab plus WDS's auto-cast and slow-client
// handling. One flat document, so that a partial update is a plain merge followed by validation.
import { isIP } from 'node:net';
import type { DpSettings, FieldProblem } from './api-types.js';

export type { DpSettings, SlowClientHandling } from './api-types.js';

export const DEFAULT_DP_SETTINGS: DpSettings = {
  multicastEnabled: true,
  addressPool: 'any',
  addressStart: null,
  addressEnd: null,
  portStart: 63000,
  portEnd: 64000,
  transferRateBps: null,
  maxClients: 100,
  scheduledMulticast: false,
  sessionStartDelaySeconds: 15 * 60,
  minimumSessionSize: 20,
  autoCast: true,
  slowClientHandling: 'none',
  slowClientThresholdBps: null,
};

/** The "any range" pool: IPv4 admin-scoped multicast, minus its network and broadcast-looking ends. */
export const ANY_POOL = { start: '239.255.0.1', end: '239.255.255.254' } as const;

/** ConfigMgr-style network profiles accepted wherever a rate is asked for. */
export const RATE_PROFILES: Record<string, number | null> = {
  '10 Mbps': 10e6,
  '100 Mbps': 100e6,
  '1 Gbps': 1e9,
  '10 Gbps': 10e9,
  unlimited: null,
};

export class SettingsError extends Error {
  constructor(
    message: string,
    readonly errors: FieldProblem[] = [],
  ) {
    super(message);
  }
}

/** Address as a number (BigInt covers IPv6); family 4 or 6. */
export function addressValue(address: string): { family: 4 | 6; value: bigint } {
  const family = isIP(address);
  if (family === 4) {
    return { family, value: address.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n) };
  }
  if (family === 6) {
    const [head, tail] = address.includes('::') ? address.split('::') : [address, undefined];
    const parse = (s: string | undefined) => (s ? s.split(':').filter((x) => x !== '') : []);
    const h = parse(head);
    const t = parse(tail);
    if (t.some((x) => x.includes('.')) || h.some((x) => x.includes('.'))) throw new SettingsError(`${address}: IPv4-mapped IPv6 addresses are not multicast groups`);
    const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
    return { family, value: groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n) };
  }
  throw new SettingsError(`"${address}" is not an IP address`);
}

export function addressString(family: 4 | 6, value: bigint): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 255n)).join('.');
  const groups = [];
  for (let s = 112n; s >= 0n; s -= 16n) groups.push(((value >> s) & 0xffffn).toString(16));
  // Shortest form: the longest run of zero groups becomes '::'.
  let best = { at: -1, len: 0 };
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > best.len && j - i > 1) best = { at: i, len: j - i };
    i = j;
  }
  if (best.at < 0) return groups.join(':');
  return `${groups.slice(0, best.at).join(':')}::${groups.slice(best.at + best.len).join(':')}`;
}

function checkMulticast(label: string, address: string): { family: 4 | 6; value: bigint } {
  const a = addressValue(address);
  if (a.family === 4) {
    if (a.value >> 28n !== 0xen) throw new SettingsError(`${label} ${address} is not an IPv4 multicast address (224.0.0.0–239.255.255.255); the admin-scoped range 239.255.0.0/16 is the usual choice`);
    if (a.value >> 8n === 0xe00000n) throw new SettingsError(`${label} ${address} is in 224.0.0.0/24, reserved for local network control (routing protocols); use e.g. 239.255.0.0/16`);
  } else if (a.value >> 120n !== 0xffn) {
    throw new SettingsError(`${label} ${address} is not an IPv6 multicast address (ff00::/8), e.g. ff15::1`);
  }
  return a;
}

/** The multicast pool as a range of address values. */
export function addressPoolOf(s: DpSettings): { family: 4 | 6; start: bigint; end: bigint } {
  const start = addressValue(s.addressPool === 'any' ? ANY_POOL.start : s.addressStart!);
  const end = addressValue(s.addressPool === 'any' ? ANY_POOL.end : s.addressEnd!);
  return { family: start.family, start: start.value, end: end.value };
}

const KEYS = Object.keys(DEFAULT_DP_SETTINGS) as (keyof DpSettings)[];

/**
 * Checks a complete settings document; every problem is reported at once, each saying what to do.
 * Throws SettingsError; returns the settings normalized (addresses in canonical form).
 */
export function validateDpSettings(input: DpSettings): DpSettings {
  const s = { ...input };
  const problems: FieldProblem[] = [];
  const problem = (field: keyof DpSettings | null, message: string) => problems.push({ path: field ? `/${field}` : '', message });
  const unknown = Object.keys(input).filter((k) => !KEYS.includes(k as keyof DpSettings));
  if (unknown.length) problem(null, `unknown setting(s): ${unknown.join(', ')}`);
  const intIn = (key: keyof DpSettings, min: number, max: number) => {
    const v = s[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) problem(key, `${key} must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
  };
  if (s.addressPool === 'range') {
    if (!s.addressStart || !s.addressEnd) {
      problem(s.addressStart ? 'addressEnd' : 'addressStart', 'addressPool "range" needs addressStart and addressEnd (e.g. 239.255.0.1 and 239.255.0.255)');
    } else {
      // Each end is checked on its own, so that a form can show each problem next to its field.
      const checked = (field: 'addressStart' | 'addressEnd', address: string) => {
        try {
          return checkMulticast(field, address);
        } catch (err) {
          problem(field, (err as Error).message);
          return null;
        }
      };
      const a = checked('addressStart', s.addressStart);
      const b = checked('addressEnd', s.addressEnd);
      if (a && b) {
        if (a.family !== b.family) problem('addressEnd', `addressStart ${s.addressStart} and addressEnd ${s.addressEnd} mix IPv4 and IPv6: give both of one family`);
        else if (a.value > b.value) problem('addressStart', `addressStart ${s.addressStart} is after addressEnd ${s.addressEnd}`);
        else {
          s.addressStart = addressString(a.family, a.value);
          s.addressEnd = addressString(b.family, b.value);
        }
      }
    }
  } else if (s.addressPool === 'any') {
    s.addressStart = null;
    s.addressEnd = null;
  } else {
    problem('addressPool', `addressPool must be "any" or "range", got ${JSON.stringify(s.addressPool)}`);
  }
  intIn('portStart', 1024, 65535);
  intIn('portEnd', 1024, 65535);
  if (s.portStart > s.portEnd) problem('portStart', `portStart ${s.portStart} is after portEnd ${s.portEnd}`);
  if (s.transferRateBps !== null && (typeof s.transferRateBps !== 'number' || !(s.transferRateBps >= 1000))) {
    problem('transferRateBps', `transferRateBps must be at least 1000 bits/s, or null for unlimited; got ${JSON.stringify(s.transferRateBps)}`);
  }
  intIn('maxClients', 1, 100_000);
  intIn('minimumSessionSize', 1, 100_000);
  if (s.minimumSessionSize > s.maxClients) {
    problem('minimumSessionSize', `minimumSessionSize ${s.minimumSessionSize} is more than maxClients ${s.maxClients}: such a session could never fill; lower it or raise maxClients`);
  }
  if (typeof s.sessionStartDelaySeconds !== 'number' || !(s.sessionStartDelaySeconds >= 0 && s.sessionStartDelaySeconds <= 7 * 86400)) {
    problem('sessionStartDelaySeconds', `sessionStartDelaySeconds must be from 0 to ${7 * 86400} (a week), got ${JSON.stringify(s.sessionStartDelaySeconds)}`);
  }
  for (const key of ['multicastEnabled', 'scheduledMulticast', 'autoCast'] as const) {
    if (typeof s[key] !== 'boolean') problem(key, `${key} must be true or false`);
  }
  if (!['none', 'disconnect', 'slower-stream'].includes(s.slowClientHandling)) {
    problem('slowClientHandling', `slowClientHandling must be "none", "disconnect" or "slower-stream", got ${JSON.stringify(s.slowClientHandling)}`);
  } else if (s.slowClientHandling !== 'none') {
    if (typeof s.slowClientThresholdBps !== 'number' || !(s.slowClientThresholdBps >= 1000)) {
      problem('slowClientThresholdBps', `slowClientHandling "${s.slowClientHandling}" needs slowClientThresholdBps (at least 1000 bits/s), e.g. 10M`);
    } else if (s.transferRateBps !== null && s.slowClientThresholdBps >= s.transferRateBps) {
      problem('slowClientThresholdBps', `slowClientThresholdBps ${s.slowClientThresholdBps} must be below the transfer rate ${s.transferRateBps}, or every client is slow`);
    }
  }
  if (problems.length) throw new SettingsError(`invalid distribution point settings: ${problems.map((p) => p.message).join('; ')}`, problems);
  return s;
}

/** Applies a partial update to the current settings and validates the result. */
export function mergeDpSettings(current: DpSettings, changes: Partial<DpSettings>): DpSettings {
  const merged = { ...current, ...changes };
  // Switching the pool to 'any' forgets a range; giving a range implies 'range'.
  if ((changes.addressStart || changes.addressEnd) && changes.addressPool === undefined) merged.addressPool = 'range';
  return validateDpSettings(merged);
}

/** The settings as stored, cached in memory (the server is the only writer). */
export class DpSettingsStore {
  private current: DpSettings = DEFAULT_DP_SETTINGS;

  constructor(private readonly repo: { get(): Promise<Record<string, unknown> | undefined>; save(s: Record<string, unknown>): Promise<void> }) {}

  /** Reads the stored settings (defaults fill what an older version did not store). */
  async load(): Promise<DpSettings> {
    const stored = await this.repo.get();
    this.current = validateDpSettings({ ...DEFAULT_DP_SETTINGS, ...(stored as Partial<DpSettings> | undefined) });
    if (!stored) await this.repo.save({ ...this.current });
    return this.current;
  }

  get(): DpSettings {
    return this.current;
  }

  async update(changes: Partial<DpSettings>): Promise<DpSettings> {
    const next = mergeDpSettings(this.current, changes);
    await this.repo.save({ ...next });
    this.current = next;
    return next;
  }
}
