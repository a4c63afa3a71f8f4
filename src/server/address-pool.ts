// Picks a multicast group and UDP port for a new session from the distribution point's pools.
import { randomInt } from 'node:crypto';
import { type DpSettings, addressPoolOf, addressString, addressValue } from './dp-settings.js';

export interface GroupPort {
  group: string;
  port: number;
}

/**
 * A free group:port for a new session, never one a live session uses; null when the pools are exhausted.
 * Prefers a port and a group no live session uses at all, so that receivers of different sessions never
 * share a socket port (the kernel delivers a port's datagrams to every socket bound to it).
 */
export function allocateGroupPort(settings: DpSettings, inUse: GroupPort[], random = (n: number) => randomInt(n)): GroupPort | null {
  const pool = addressPoolOf(settings);
  const groupCount = pool.end - pool.start + 1n;
  const portCount = settings.portEnd - settings.portStart + 1;
  const key = (group: bigint, port: number) => `${group}:${port}`;
  const usedPairs = new Set<string>();
  const usedPorts = new Set<number>();
  const usedGroups = new Set<bigint>();
  for (const u of inUse) {
    const g = addressValue(u.group).value;
    usedPairs.add(key(g, u.port));
    usedPorts.add(u.port);
    usedGroups.add(g);
  }
  const offsetInto = (count: bigint) => (count > 2n ** 40n ? BigInt(random(2 ** 40)) : BigInt(random(Number(count))));
  // Only inUse.length groups can be taken on any port, so that many + 1 consecutive candidates hold a free one.
  const freeGroup = (taken: (g: bigint) => boolean): bigint | null => {
    const first = offsetInto(groupCount);
    const tries = BigInt(inUse.length + 1) < groupCount ? BigInt(inUse.length + 1) : groupCount;
    for (let i = 0n; i < tries; i++) {
      const g = pool.start + ((first + i) % groupCount);
      if (!taken(g)) return g;
    }
    return null;
  };
  const firstPort = random(portCount);
  for (let i = 0; i < portCount; i++) {
    const port = settings.portStart + ((firstPort + i) % portCount);
    if (usedPorts.has(port)) continue;
    const g = freeGroup((x) => usedGroups.has(x)) ?? freeGroup(() => false);
    if (g !== null) return { group: addressString(pool.family, g), port };
  }
  for (let i = 0; i < portCount; i++) {
    const port = settings.portStart + ((firstPort + i) % portCount);
    const g = freeGroup((x) => usedPairs.has(key(x, port)));
    if (g !== null) return { group: addressString(pool.family, g), port };
  }
  return null;
}
