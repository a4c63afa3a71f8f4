// Loads the optional batched-UDP addon (native/fastudp.c, built by scripts/build-native.mjs); docs/io.md.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** The addon's socket, as native/fastudp.c defines it (src/transport/sockets.ts BatchSocket is its only user). */
export interface NativeUdpSocket {
  /** uint32 [count, address epoch, length × batch, source id × batch, ring offset × batch], filled by read(). */
  readonly meta: ArrayBuffer;
  /** batch × slotBytes: read() receives into it, overwriting the previous batch. */
  readonly ring: ArrayBuffer;
  /** Binds (null: any address); returns the bound port. */
  bind(address: string | null, port: number, reuseAddr: boolean): number;
  /** Asks for receive and send buffers; returns what the kernel granted [receive, send] (Linux reports double). */
  setBuffers(receiveBytes: number, sendBytes: number): [number, number];
  /** Outgoing interface (IPv4 address or "::%name"), TTL, loopback (0/1); null and -1 leave one as it is. */
  setMulticast(iface: string | null, ttl: number, loopback: number): void;
  addMembership(group: string, iface: string | null): void;
  /** Starts watching for datagrams: onReady(1) when some are waiting. */
  start(): void;
  /** Stops the readable notices until start() again; datagrams queue in the kernel meanwhile. */
  pause(): void;
  /** onReady(2) once the socket can take datagrams again. */
  wantWritable(): void;
  /** One recvmmsg into the ring: how many datagrams it took (0 when none is waiting, or the socket is closed). */
  read(): number;
  /** sendmmsg of n gathered datagrams: parts flat, partCounts[i] parts each, to interned address destIds[i]. */
  send(parts: readonly Uint8Array[], partCounts: Uint8Array, destIds: Uint32Array, n: number): number;
  /** Why the last send stopped short: null when the socket would block. */
  sendError(): string | null;
  intern(address: string, port: number): number;
  addressName(id: number): string;
  stats(): { datagrams: number; truncated: number; receiveErrors: number; lastReceiveError: string | null };
  close(): void;
}

export interface NativeAddon {
  UdpSocket: new (family: 4 | 6, onReady: (events: number) => void, batch: number, slotBytes: number) => NativeUdpSocket;
  /**
   * sync_file_range(fd, offset, length, WAIT_BEFORE | WRITE | WAIT_AFTER) on the libuv pool: resolves once the
   * range's dirty pages are on the disk (no journal commit, no disk cache flush). Absent from older builds.
   */
  flushRange?: (fd: number, offset: number, length: number) => Promise<void>;
}

/** dist/src/transport/native.js -> native/build/Release/fastudp.node at the package root. */
export const ADDON_PATH = fileURLToPath(new URL('../../../native/build/Release/fastudp.node', import.meta.url));

let loaded: { addon: NativeAddon } | { error: string } | undefined;

/** The addon, or why it cannot be used here (loaded once per process). */
export function batchAddon(): { addon: NativeAddon } | { error: string } {
  if (loaded) return loaded;
  if (process.platform !== 'linux') {
    loaded = { error: `it needs Linux (recvmmsg/sendmmsg), this is ${process.platform}` };
    return loaded;
  }
  try {
    const addon = createRequire(import.meta.url)(ADDON_PATH) as NativeAddon;
    if (typeof addon.UdpSocket !== 'function') throw new Error(`${ADDON_PATH} is not fleetcast's addon`);
    loaded = { addon };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    loaded = { error: e.code === 'MODULE_NOT_FOUND' ? `the addon was not built (${ADDON_PATH} is missing)` : `the addon does not load: ${e.message}` };
  }
  return loaded;
}

/** The addon's flushRange (receivers' write-behind, session.ts), or null where it is not available. */
export function fileFlushRange(): ((fd: number, offset: number, length: number) => Promise<void>) | null {
  const loaded = batchAddon();
  if (!('addon' in loaded)) return null;
  const { addon } = loaded;
  return typeof addon.flushRange === 'function' ? (fd, offset, length) => addon.flushRange!(fd, offset, length) : null;
}
