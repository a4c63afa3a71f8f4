// UDP sockets for a multicast session, IPv4 and IPv6: interface selection, TTL, loopback, socket buffers.
import dgram from 'node:dgram';
import { lookup as dnsLookup } from 'node:dns';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';

export interface Endpoint {
  group: string;
  port: number;
  /** Interface name (eth0) or one of its addresses; default: the system's choice. */
  iface?: string;
  ttl?: number;
  loopback?: boolean;
  bufferBytes?: number;
}

/**
 * fleetcast only sends to address literals: answering them at once spares dgram a DNS call and a deferred tick
 * for every datagram (a measurable share of the sender's CPU at 100k datagrams/s). Names still resolve.
 */
function literalLookup(address: string, family: number, callback: (err: Error | null, address: string, family: number) => void): void {
  const literal = isIP(address);
  if (literal !== 0) callback(null, address, literal);
  else dnsLookup(address, family, callback as (err: NodeJS.ErrnoException | null, address: string, family: number) => void);
}

function createSocket(type: 'udp4' | 'udp6', reuseAddr = false): dgram.Socket {
  return dgram.createSocket({ type, reuseAddr, lookup: literalLookup as unknown as dgram.SocketOptions['lookup'] });
}

export interface ResolvedInterface {
  family: 4 | 6;
  /** Address for IPv4 membership/outgoing interface, or '::%name' style for IPv6. */
  address: string;
  name: string | null;
}

export class TransportError extends Error {}

export function familyOf(group: string): 4 | 6 {
  const family = isIP(group);
  if (family === 0) throw new TransportError(`"${group}" is not an IP address; give a multicast group such as 239.255.77.1 or ff15::77`);
  return family as 4 | 6;
}

export function checkMulticastGroup(group: string): void {
  const family = familyOf(group);
  const ok = family === 4 ? (Number(group.split('.')[0]) & 0xf0) === 0xe0 : group.toLowerCase().startsWith('ff');
  if (!ok) throw new TransportError(`${group} is not a multicast address (IPv4 224.0.0.0/4 or IPv6 ff00::/8)`);
}

/** Finds the interface by name or address; IPv6 multicast needs the interface name as scope. */
export function resolveInterface(iface: string | undefined, family: 4 | 6): ResolvedInterface | null {
  if (!iface) return null;
  const all = networkInterfaces();
  const wanted = family === 4 ? 'IPv4' : 'IPv6';
  const byName = all[iface];
  if (byName) {
    const addr = byName.find((a) => a.family === wanted);
    if (!addr) throw new TransportError(`interface ${iface} has no ${wanted} address`);
    return { family, address: family === 4 ? addr.address : `::%${iface}`, name: iface };
  }
  for (const [name, addrs] of Object.entries(all)) {
    for (const a of addrs ?? []) {
      if (a.address === iface) return { family, address: family === 4 ? a.address : `::%${name}`, name };
    }
  }
  const names = Object.keys(all).join(', ');
  throw new TransportError(`no interface named or addressed "${iface}" (interfaces here: ${names})`);
}

export function formatAddress(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

export function parseAddress(s: string): { address: string; port: number } {
  const m = /^\[(.*)\]:(\d+)$/.exec(s) ?? /^([^:]*):(\d+)$/.exec(s);
  if (!m) throw new TransportError(`bad address ${s}`);
  return { address: m[1]!, port: Number(m[2]) };
}

function bind(socket: dgram.Socket, port: number, address?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(new TransportError(`cannot bind UDP ${address ?? '*'}:${port}: ${err.message}`));
    socket.once('error', onError);
    socket.bind({ port, address, exclusive: false }, () => {
      socket.off('error', onError);
      resolve();
    });
  });
}

/** Applies the buffer size and returns a warning when the kernel capped it (Linux reports double). */
function sizeBuffers(socket: dgram.Socket, bytes: number): string | null {
  try {
    socket.setRecvBufferSize(bytes);
    socket.setSendBufferSize(bytes);
  } catch {
    /* capped below: reported next */
  }
  const got = Math.min(socket.getRecvBufferSize(), socket.getSendBufferSize());
  if (got < bytes) {
    return `socket buffers capped at ${Math.round(got / 1024)} KiB (asked ${Math.round(bytes / 1024)} KiB); raise net.core.rmem_max and net.core.wmem_max (sysctl) to avoid drops at high rates`;
  }
  return null;
}

export interface SenderSockets {
  socket: dgram.Socket;
  groupAddress: string;
  warnings: string[];
}

/** The sender's one socket: sends to the group, receives feedback on its own (ephemeral) port. */
export async function openSenderSocket(ep: Endpoint): Promise<SenderSockets> {
  checkMulticastGroup(ep.group);
  const family = familyOf(ep.group);
  const iface = resolveInterface(ep.iface, family);
  const socket = createSocket(family === 4 ? 'udp4' : 'udp6', true);
  await bind(socket, 0, family === 4 ? iface?.address : undefined);
  const warnings: string[] = [];
  const w = sizeBuffers(socket, ep.bufferBytes ?? 16 << 20);
  if (w) warnings.push(w);
  if (iface) socket.setMulticastInterface(iface.address);
  socket.setMulticastTTL(ep.ttl ?? 1);
  socket.setMulticastLoopback(ep.loopback ?? true);
  return { socket, groupAddress: ep.group, warnings };
}

export interface ReceiverSockets {
  /** Bound to the group's port and joined to it: the session's traffic arrives here. */
  data: dgram.Socket;
  /** Ephemeral socket for feedback to the sender and its unicast replies (distinct per receiver process). */
  feedback: dgram.Socket;
  warnings: string[];
}

export async function openReceiverSockets(ep: Endpoint): Promise<ReceiverSockets> {
  checkMulticastGroup(ep.group);
  const family = familyOf(ep.group);
  const iface = resolveInterface(ep.iface, family);
  const type = family === 4 ? 'udp4' : 'udp6';
  const data = createSocket(type, true);
  // Binding to the group address keeps other groups' traffic on the same port out of this socket.
  await bind(data, ep.port, family === 4 ? ep.group : '::');
  const warnings: string[] = [];
  const w = sizeBuffers(data, ep.bufferBytes ?? 32 << 20);
  if (w) warnings.push(w);
  try {
    data.addMembership(ep.group, iface?.address);
  } catch (err) {
    data.close();
    throw new TransportError(`cannot join ${ep.group}${iface ? ` on ${iface.name}` : ''}: ${(err as Error).message} (is there a multicast route? try --interface)`);
  }
  const feedback = createSocket(type);
  await bind(feedback, 0, family === 4 ? iface?.address : undefined);
  if (iface) feedback.setMulticastInterface(iface.address);
  return { data, feedback, warnings };
}
