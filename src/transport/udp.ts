// UDP sockets for a multicast session, IPv4 and IPv6: interface selection, TTL, loopback, socket buffers.
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { batchAddon } from './native.js';
import { type DatagramSocket, type IoBackend, IO_BACKENDS, TransportError, createDatagramSocket } from './sockets.js';

export { type DatagramSocket, type IoBackend, IO_BACKENDS, TransportError, formatAddress, parseAddress } from './sockets.js';

export interface Endpoint {
  group: string;
  port: number;
  /** Interface name (eth0) or one of its addresses; default: the system's choice. */
  iface?: string;
  ttl?: number;
  loopback?: boolean;
  bufferBytes?: number;
  /** UDP I/O: default FLEETCAST_IO, else batch where the addon is available, else dgram (docs/io.md). */
  io?: IoBackend;
}

let fallbackWarned = false;

/**
 * The I/O backend for a session and, the first time dgram stands in for an unavailable batch backend, a warning.
 * Asking for batch where it is unavailable is an error that says what to do.
 */
export function chooseIo(asked?: IoBackend): { io: IoBackend; warning: string | null } {
  const fromEnv = process.env.FLEETCAST_IO;
  if (!asked && fromEnv) {
    if (!(IO_BACKENDS as readonly string[]).includes(fromEnv)) throw new TransportError(`FLEETCAST_IO must be ${IO_BACKENDS.join(' or ')}, not "${fromEnv}"`);
    asked = fromEnv as IoBackend;
  }
  if (asked === 'dgram') return { io: 'dgram', warning: null };
  const loaded = batchAddon();
  if (!('error' in loaded)) return { io: 'batch', warning: null };
  if (asked === 'batch') {
    throw new TransportError(
      `batched UDP I/O (--io batch) is not available: ${loaded.error}. It is built from source with node-gyp by \`npm ci\` or \`npm run build\` (Linux, a C compiler and Node's headers); or use --io dgram`,
    );
  }
  const warning = fallbackWarned ? null : `batched UDP I/O is not available: ${loaded.error}; using Node's dgram, which costs more CPU per datagram`;
  fallbackWarned = true;
  return { io: 'dgram', warning };
}

export interface ResolvedInterface {
  family: 4 | 6;
  /** Address for IPv4 membership/outgoing interface, or '::%name' style for IPv6. */
  address: string;
  name: string | null;
}

export function familyOf(group: string): 4 | 6 {
  const family = isIP(group);
  if (family === 0) throw new TransportError(`"${group}" is not an IP address; give a multicast group such as 239.255.77.1 or ff15::77`);
  return family as 4 | 6;
}

/** The first 16 bits of an IPv6 address (ff15 of ff15::77, 0x00ff of ff::1). */
function firstHextet(address: string): number {
  return parseInt(canonicalAddress(address).split(':')[0] || '0', 16);
}

export function checkMulticastGroup(group: string): void {
  const family = familyOf(group);
  const ok = family === 4 ? (Number(group.split('.')[0]) & 0xf0) === 0xe0 : (firstHextet(group) & 0xff00) === 0xff00;
  if (!ok) throw new TransportError(`${group} is not a multicast address (IPv4 224.0.0.0/4 or IPv6 ff00::/8)`);
}

/**
 * An address in one spelling, to compare: IPv6 compressed and lower case (2001:2:0::1 and 2001:2::1 are one
 * address), without a zone ("fe80::1%eth0": the interface is found by the address).
 */
function canonicalAddress(address: string): string {
  const bare = address.replace(/%.*$/, '');
  if (isIP(bare) !== 6) return bare;
  return new URL(`http://[${bare}]/`).hostname.slice(1, -1);
}

/**
 * Finds the interface by name or by one of its addresses (of either family: `--interface 2001:2::1` with an
 * IPv4 group uses that interface's IPv4 address); IPv6 multicast needs the interface name as scope.
 */
export function resolveInterface(iface: string | undefined, family: 4 | 6): ResolvedInterface | null {
  if (!iface) return null;
  const all = networkInterfaces();
  let name: string | undefined = all[iface] ? iface : undefined;
  if (name === undefined) {
    const wantedAddress = canonicalAddress(iface);
    name = Object.keys(all).find((n) => all[n]?.some((a) => canonicalAddress(a.address) === wantedAddress));
  }
  if (name === undefined) {
    const names = Object.keys(all).join(', ');
    throw new TransportError(`no interface named or addressed "${iface}" (interfaces here: ${names})`);
  }
  const wanted = family === 4 ? 'IPv4' : 'IPv6';
  const addr = all[name]!.find((a) => a.family === wanted);
  if (!addr) throw new TransportError(`interface ${name} has no ${wanted} address`);
  return { family, address: family === 4 ? addr.address : `::%${name}`, name };
}

/**
 * Where the receiver's data socket binds: the group itself, so that traffic to other groups on the same port
 * stays out of it (an IPv6 group of link or interface scope needs the interface as its zone). Without an
 * interface such an IPv6 group cannot be bound, and the socket takes the port on every address.
 */
export function groupBindAddress(group: string, iface: ResolvedInterface | null): string {
  if (familyOf(group) === 4) return group;
  if (iface?.name) return `${group}%${iface.name}`;
  const scope = firstHextet(group) & 0xf; // 1 interface, 2 link, 5 site, 8 organization, e global
  return scope <= 2 ? '::' : group;
}

/** Applies the buffer size and returns a warning when the kernel capped it (Linux reports double). */
function sizeBuffers(socket: DatagramSocket, bytes: number): string | null {
  const got = socket.setBuffers(bytes);
  if (got < bytes) {
    return `socket buffers capped at ${Math.round(got / 1024)} KiB (asked ${Math.round(bytes / 1024)} KiB); raise net.core.rmem_max and net.core.wmem_max (sysctl) to avoid drops at high rates`;
  }
  return null;
}

export interface SenderSockets {
  /** Sends to the group (send(parts, null)) and to receivers; receives their feedback on its own ephemeral port. */
  socket: DatagramSocket;
  warnings: string[];
}

function start(ep: Endpoint): { family: 4 | 6; iface: ResolvedInterface | null; io: IoBackend; warnings: string[] } {
  checkMulticastGroup(ep.group);
  const family = familyOf(ep.group);
  const iface = resolveInterface(ep.iface, family);
  const { io, warning } = chooseIo(ep.io);
  return { family, iface, io, warnings: warning ? [warning] : [] };
}

/** The sender's one socket: sends to the group, receives feedback on its own (ephemeral) port. */
export async function openSenderSocket(ep: Endpoint): Promise<SenderSockets> {
  const { family, iface, io, warnings } = start(ep);
  const socket = createDatagramSocket(io, family, { address: ep.group, port: ep.port }, true);
  try {
    await socket.bind(0, family === 4 ? iface?.address : undefined);
    const w = sizeBuffers(socket, ep.bufferBytes ?? 16 << 20);
    if (w) warnings.push(w);
    socket.setMulticast(iface?.address, ep.ttl ?? 1, ep.loopback ?? true);
  } catch (err) {
    socket.close();
    throw err;
  }
  return { socket, warnings };
}

/**
 * After a read empties the receiver's data socket, it is looked at again this many ms later (batch I/O, see
 * BatchOptions.coalesceMs): a fraction of the wakeups, for at most this much latency, which a bulk transfer
 * does not notice.
 */
const RECEIVE_COALESCE_MS = 2;

export interface ReceiverSockets {
  /** Bound to the group's port and joined to it: the session's traffic arrives here. */
  data: DatagramSocket;
  /** Ephemeral socket for feedback to the sender and its unicast replies (distinct per receiver process). */
  feedback: DatagramSocket;
  warnings: string[];
}

export async function openReceiverSockets(ep: Endpoint): Promise<ReceiverSockets> {
  const { family, iface, io, warnings } = start(ep);
  const group = { address: ep.group, port: ep.port };
  const data = createDatagramSocket(io, family, group, true, { coalesceMs: RECEIVE_COALESCE_MS });
  try {
    // Binding to the group address keeps other groups' traffic on the same port out of this socket.
    await data.bind(ep.port, groupBindAddress(ep.group, iface));
    const w = sizeBuffers(data, ep.bufferBytes ?? 32 << 20);
    if (w) warnings.push(w);
    try {
      data.addMembership(ep.group, iface?.address);
    } catch (err) {
      throw new TransportError(`cannot join ${ep.group}${iface ? ` on ${iface.name}` : ''}: ${(err as Error).message} (is there a multicast route? try --interface)`);
    }
  } catch (err) {
    data.close();
    throw err;
  }
  const feedback = createDatagramSocket(io, family, group, false);
  try {
    await feedback.bind(0, family === 4 ? iface?.address : undefined);
    feedback.setMulticast(iface?.address);
  } catch (err) {
    data.close();
    feedback.close();
    throw err;
  }
  return { data, feedback, warnings };
}
