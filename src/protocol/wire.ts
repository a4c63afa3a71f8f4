// Wire format of fleetcast protocol version 3. docs/protocol.md is the specification; keep both in step.
// Every datagram starts with the same 8-byte header; all integers are big-endian.

import { type FecScheme, isFecScheme, maxBlockSymbols } from '../fec/scheme.js';

export const MAGIC = 0x4643; // "FC"
/**
 * 2: ANNOUNCE names the FEC scheme (byte 14); with RaptorQ a block's transmission number is its symbol id.
 * 3: so it is with Reed-Solomon, whose ids past 255 are extension symbols (version 2 cycled through 0..255).
 */
export const VERSION = 3;
export const HEADER_BYTES = 8;
/** Type byte flag: the body is sealed with AES-256-GCM (nonce and tag around the ciphertext). */
export const ENCRYPTED_FLAG = 0x80;

export enum PacketType {
  Announce = 1,
  Data = 2,
  Hashes = 3,
  Join = 4,
  Status = 5,
  Nack = 6,
  Ack = 7,
  End = 8,
}

export const DATA_HEADER_BYTES = HEADER_BYTES + 12;
export const HASH_BYTES = 32;
export const NACK_ENTRY_BYTES = 12;
export const MAX_NAME_BYTES = 64;

export class WireError extends Error {}

export interface Header {
  type: PacketType;
  encrypted: boolean;
  sessionId: number;
}

export enum Phase {
  Waiting = 0,
  Transferring = 1,
  Ending = 2,
}

export const AnnounceFlag = {
  digestKnown: 1,
  sourcePassDone: 2,
} as const;

export interface Announce {
  phase: Phase;
  flags: number;
  fec: FecScheme;
  symbolSize: number;
  blockSymbols: number;
  imageSize: number;
  sourceFrontier: number;
  receivers: number;
  grttMicros: number;
  timestamp: number;
  statusIntervalMs: number;
  rateKbps: number;
  digest: Uint8Array | null;
}
const ANNOUNCE_BYTES = HEADER_BYTES + 40;

export interface DataPacket {
  seq: number;
  block: number;
  tsn: number;
  plannedEnd: number;
  payload: Uint8Array;
}

export interface HashesPacket {
  firstBlock: number;
  hashes: Uint8Array; // count * 32 bytes
}

export interface Echo {
  /** Last sender timestamp (µs, modulo 2^32) the receiver saw, 0 if none. */
  timestamp: number;
  /** Microseconds between seeing that timestamp and sending this packet. */
  delay: number;
}

export interface JoinPacket {
  nodeId: number;
  echo: Echo;
  name: string;
}

export enum ReceiverState {
  Receiving = 0,
  Complete = 1,
  Leaving = 2,
}

export interface StatusPacket {
  nodeId: number;
  state: ReceiverState;
  blocksComplete: number;
  echo: Echo;
  /** Data packets received in the last report interval. */
  received: number;
  /** Loss in the last report interval, parts per million. */
  lossPpm: number;
  /**
   * Loss events in that interval: runs of consecutive sequence numbers missing (saturates at 65535; 0 with loss
   * means not given). Loss in a few long runs varies far more from interval to interval than as many single losses.
   */
  lossEvents: number;
  /** Length of that interval in µs (0: not given), so the sender can tell the rate the receiver took in. */
  intervalMicros: number;
  digest: Uint8Array | null;
}
const STATUS_BYTES = HEADER_BYTES + 32;

export const NackFlag = { hashMissing: 1 } as const;

export interface NackEntry {
  block: number;
  /** Consecutive blocks, starting at `block`, that this entry stands for. */
  run: number;
  /** Symbols still lacking per block. */
  need: number;
  /** Highest transmission number seen for the block, plus one (0: none). */
  seen: number;
  flags: number;
}

export interface NackPacket {
  nodeId: number;
  echo: Echo;
  entries: NackEntry[];
}
const NACK_FIXED_BYTES = HEADER_BYTES + 16;

export enum AckKind {
  Joined = 1,
  DoneConfirmed = 2,
  Rejected = 3,
  Dropped = 4,
}

/** Why the sender dropped a receiver (ACK dropped). Unknown values read as Unspecified. */
export enum DropReason {
  Unspecified = 0,
  /** Not heard from within the receiver timeout. */
  Silent = 1,
  /** Took in less than the session's minimum receiver rate (slow-client handling). */
  TooSlow = 2,
  /** Removed by the operator or the application. */
  Removed = 3,
}

export interface AckPacket {
  nodeId: number;
  kind: AckKind;
  /** Only for kind Dropped (default Unspecified). */
  dropReason?: DropReason;
}

export enum EndReason {
  AllDone = 0,
  Cancelled = 1,
  Limit = 2,
  NoReceivers = 3,
}

export interface EndPacket {
  reason: EndReason;
  completed: number;
}

function writeHeader(buf: Buffer, type: PacketType, sessionId: number): void {
  buf.writeUInt16BE(MAGIC, 0);
  buf.writeUInt8(VERSION, 2);
  buf.writeUInt8(type, 3);
  buf.writeUInt32BE(sessionId >>> 0, 4);
}

/** Reads and checks the common header. Throws WireError for anything that is not a fleetcast v1 datagram. */
export function readHeader(buf: Uint8Array): Header {
  if (buf.length < HEADER_BYTES) throw new WireError(`truncated header (${buf.length} bytes)`);
  const b = asBuffer(buf);
  if (b.readUInt16BE(0) !== MAGIC) throw new WireError('bad magic');
  const version = b.readUInt8(2);
  if (version !== VERSION) throw new WireError(`unsupported version ${version}`);
  const typeByte = b.readUInt8(3);
  const type = typeByte & ~ENCRYPTED_FLAG;
  if (type < PacketType.Announce || type > PacketType.End) throw new WireError(`unknown packet type ${type}`);
  return { type, encrypted: (typeByte & ENCRYPTED_FLAG) !== 0, sessionId: b.readUInt32BE(4) };
}

export function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

function expectLength(body: Buffer, min: number, what: string): void {
  if (body.length < min) throw new WireError(`truncated ${what} (${body.length} < ${min} bytes)`);
}

// ---- Announce ---------------------------------------------------------------------------------------------

export function encodeAnnounce(sessionId: number, a: Announce): Buffer {
  const withDigest = a.digest !== null;
  const buf = Buffer.alloc(ANNOUNCE_BYTES + (withDigest ? HASH_BYTES : 0));
  writeHeader(buf, PacketType.Announce, sessionId);
  buf.writeUInt8(a.phase, 8);
  buf.writeUInt8((a.flags & ~AnnounceFlag.digestKnown) | (withDigest ? AnnounceFlag.digestKnown : 0), 9);
  buf.writeUInt16BE(a.symbolSize, 10);
  buf.writeUInt16BE(a.blockSymbols, 12);
  buf.writeUInt8(a.fec, 14);
  buf.writeUInt8(0, 15);
  buf.writeBigUInt64BE(BigInt(a.imageSize), 16);
  buf.writeUInt32BE(a.sourceFrontier >>> 0, 24);
  buf.writeUInt32BE(a.receivers >>> 0, 28);
  buf.writeUInt32BE(Math.min(a.grttMicros, 0xffffffff) >>> 0, 32);
  buf.writeUInt32BE(a.timestamp >>> 0, 36);
  buf.writeUInt32BE(a.statusIntervalMs >>> 0, 40);
  buf.writeUInt32BE(Math.min(a.rateKbps, 0xffffffff) >>> 0, 44);
  if (a.digest) buf.set(a.digest, ANNOUNCE_BYTES);
  return buf;
}

export function decodeAnnounce(body: Buffer): Announce {
  expectLength(body, ANNOUNCE_BYTES, 'announce');
  const phase = body.readUInt8(8);
  if (phase > Phase.Ending) throw new WireError(`bad phase ${phase}`);
  const flags = body.readUInt8(9);
  const symbolSize = body.readUInt16BE(10);
  const blockSymbols = body.readUInt16BE(12);
  const fec = body.readUInt8(14);
  if (symbolSize === 0) throw new WireError('symbol size 0');
  if (!isFecScheme(fec)) throw new WireError(`unknown FEC scheme ${fec}`);
  if (blockSymbols === 0 || blockSymbols > maxBlockSymbols(fec)) throw new WireError(`bad block size ${blockSymbols} for FEC scheme ${fec}`);
  const imageSize = body.readBigUInt64BE(16);
  if (imageSize > BigInt(Number.MAX_SAFE_INTEGER)) throw new WireError('image size too large');
  let digest: Uint8Array | null = null;
  if (flags & AnnounceFlag.digestKnown) {
    expectLength(body, ANNOUNCE_BYTES + HASH_BYTES, 'announce digest');
    digest = Uint8Array.prototype.slice.call(body, ANNOUNCE_BYTES, ANNOUNCE_BYTES + HASH_BYTES);
  }
  return {
    phase,
    flags,
    fec,
    symbolSize,
    blockSymbols,
    imageSize: Number(imageSize),
    sourceFrontier: body.readUInt32BE(24),
    receivers: body.readUInt32BE(28),
    grttMicros: body.readUInt32BE(32),
    timestamp: body.readUInt32BE(36),
    statusIntervalMs: body.readUInt32BE(40),
    rateKbps: body.readUInt32BE(44),
    digest,
  };
}

// ---- Data ---------------------------------------------------------------------------------------------------

/** Header of a data packet; the symbol travels as a second buffer so source symbols are never copied. */
export function encodeDataHeader(sessionId: number, seq: number, block: number, tsn: number, plannedEnd: number): Buffer {
  const buf = Buffer.allocUnsafe(DATA_HEADER_BYTES);
  writeHeader(buf, PacketType.Data, sessionId);
  buf.writeUInt32BE(seq >>> 0, 8);
  buf.writeUInt32BE(block >>> 0, 12);
  buf.writeUInt16BE(tsn, 16);
  buf.writeUInt16BE(plannedEnd, 18);
  return buf;
}

export function decodeData(body: Buffer): DataPacket {
  expectLength(body, DATA_HEADER_BYTES + 1, 'data');
  return {
    seq: body.readUInt32BE(8),
    block: body.readUInt32BE(12),
    tsn: body.readUInt16BE(16),
    plannedEnd: body.readUInt16BE(18),
    payload: body.subarray(DATA_HEADER_BYTES),
  };
}

// ---- Hashes -------------------------------------------------------------------------------------------------

export function encodeHashes(sessionId: number, firstBlock: number, hashes: Uint8Array): Buffer {
  const count = hashes.length / HASH_BYTES;
  const buf = Buffer.allocUnsafe(HEADER_BYTES + 8 + hashes.length);
  writeHeader(buf, PacketType.Hashes, sessionId);
  buf.writeUInt32BE(firstBlock >>> 0, 8);
  buf.writeUInt16BE(count, 12);
  buf.writeUInt16BE(0, 14);
  buf.set(hashes, 16);
  return buf;
}

export function decodeHashes(body: Buffer): HashesPacket {
  expectLength(body, HEADER_BYTES + 8, 'hashes');
  const count = body.readUInt16BE(12);
  if (count === 0) throw new WireError('empty hashes packet');
  expectLength(body, HEADER_BYTES + 8 + count * HASH_BYTES, 'hashes');
  return { firstBlock: body.readUInt32BE(8), hashes: body.subarray(16, 16 + count * HASH_BYTES) };
}

// ---- Join ---------------------------------------------------------------------------------------------------

export function encodeJoin(sessionId: number, j: JoinPacket): Buffer {
  const name = Buffer.from(j.name, 'utf8').subarray(0, MAX_NAME_BYTES);
  const buf = Buffer.alloc(HEADER_BYTES + 16 + name.length);
  writeHeader(buf, PacketType.Join, sessionId);
  buf.writeUInt32BE(j.nodeId >>> 0, 8);
  buf.writeUInt32BE(j.echo.timestamp >>> 0, 12);
  buf.writeUInt32BE(j.echo.delay >>> 0, 16);
  buf.writeUInt16BE(name.length, 20);
  buf.set(name, 24);
  return buf;
}

export function decodeJoin(body: Buffer): JoinPacket {
  expectLength(body, HEADER_BYTES + 16, 'join');
  const nameLength = body.readUInt16BE(20);
  if (nameLength > MAX_NAME_BYTES) throw new WireError('join name too long');
  expectLength(body, HEADER_BYTES + 16 + nameLength, 'join name');
  return {
    nodeId: body.readUInt32BE(8),
    echo: { timestamp: body.readUInt32BE(12), delay: body.readUInt32BE(16) },
    name: body.toString('utf8', 24, 24 + nameLength),
  };
}

// ---- Status -------------------------------------------------------------------------------------------------

export function encodeStatus(sessionId: number, s: StatusPacket): Buffer {
  const buf = Buffer.alloc(STATUS_BYTES + (s.digest ? HASH_BYTES : 0));
  writeHeader(buf, PacketType.Status, sessionId);
  buf.writeUInt32BE(s.nodeId >>> 0, 8);
  buf.writeUInt8(s.state, 12);
  buf.writeUInt8(s.digest ? 1 : 0, 13);
  buf.writeUInt16BE(Math.min(Math.max(0, s.lossEvents), 0xffff), 14);
  buf.writeUInt32BE(s.blocksComplete >>> 0, 16);
  buf.writeUInt32BE(s.echo.timestamp >>> 0, 20);
  buf.writeUInt32BE(s.echo.delay >>> 0, 24);
  buf.writeUInt32BE(s.received >>> 0, 28);
  buf.writeUInt32BE(Math.min(s.lossPpm, 1_000_000) >>> 0, 32);
  buf.writeUInt32BE(Math.min(Math.max(0, Math.round(s.intervalMicros)), 0xffffffff), 36);
  if (s.digest) buf.set(s.digest, STATUS_BYTES);
  return buf;
}

export function decodeStatus(body: Buffer): StatusPacket {
  expectLength(body, STATUS_BYTES, 'status');
  const state = body.readUInt8(12);
  if (state > ReceiverState.Leaving) throw new WireError(`bad receiver state ${state}`);
  let digest: Uint8Array | null = null;
  if (body.readUInt8(13) & 1) {
    expectLength(body, STATUS_BYTES + HASH_BYTES, 'status digest');
    digest = Uint8Array.prototype.slice.call(body, STATUS_BYTES, STATUS_BYTES + HASH_BYTES);
  }
  const lossPpm = body.readUInt32BE(32);
  if (lossPpm > 1_000_000) throw new WireError('loss above 100 %');
  return {
    nodeId: body.readUInt32BE(8),
    state,
    blocksComplete: body.readUInt32BE(16),
    echo: { timestamp: body.readUInt32BE(20), delay: body.readUInt32BE(24) },
    received: body.readUInt32BE(28),
    lossPpm,
    lossEvents: body.readUInt16BE(14),
    intervalMicros: body.readUInt32BE(36),
    digest,
  };
}

// ---- Nack ---------------------------------------------------------------------------------------------------

/** Entries that fit one datagram of `maxBytes`. */
export function nackCapacity(maxBytes: number): number {
  return Math.max(1, Math.floor((maxBytes - NACK_FIXED_BYTES) / NACK_ENTRY_BYTES));
}

export function encodeNack(sessionId: number, n: NackPacket): Buffer {
  const buf = Buffer.alloc(NACK_FIXED_BYTES + n.entries.length * NACK_ENTRY_BYTES);
  writeHeader(buf, PacketType.Nack, sessionId);
  buf.writeUInt32BE(n.nodeId >>> 0, 8);
  buf.writeUInt32BE(n.echo.timestamp >>> 0, 12);
  buf.writeUInt32BE(n.echo.delay >>> 0, 16);
  buf.writeUInt16BE(n.entries.length, 20);
  buf.writeUInt16BE(0, 22);
  let o = NACK_FIXED_BYTES;
  for (const e of n.entries) {
    buf.writeUInt32BE(e.block >>> 0, o);
    buf.writeUInt16BE(e.run, o + 4);
    buf.writeUInt16BE(e.need, o + 6);
    buf.writeUInt16BE(e.seen, o + 8);
    buf.writeUInt16BE(e.flags, o + 10);
    o += NACK_ENTRY_BYTES;
  }
  return buf;
}

export function decodeNack(body: Buffer): NackPacket {
  expectLength(body, NACK_FIXED_BYTES, 'nack');
  const count = body.readUInt16BE(20);
  expectLength(body, NACK_FIXED_BYTES + count * NACK_ENTRY_BYTES, 'nack entries');
  const entries: NackEntry[] = [];
  let o = NACK_FIXED_BYTES;
  for (let i = 0; i < count; i++) {
    const run = body.readUInt16BE(o + 4);
    if (run === 0) throw new WireError('nack entry with empty run');
    entries.push({
      block: body.readUInt32BE(o),
      run,
      need: body.readUInt16BE(o + 6),
      seen: body.readUInt16BE(o + 8),
      flags: body.readUInt16BE(o + 10),
    });
    o += NACK_ENTRY_BYTES;
  }
  return {
    nodeId: body.readUInt32BE(8),
    echo: { timestamp: body.readUInt32BE(12), delay: body.readUInt32BE(16) },
    entries,
  };
}

// ---- Ack / End ----------------------------------------------------------------------------------------------

export function encodeAck(sessionId: number, a: AckPacket): Buffer {
  const buf = Buffer.alloc(HEADER_BYTES + 8);
  writeHeader(buf, PacketType.Ack, sessionId);
  buf.writeUInt32BE(a.nodeId >>> 0, 8);
  buf.writeUInt8(a.kind, 12);
  buf.writeUInt8(a.kind === AckKind.Dropped ? (a.dropReason ?? DropReason.Unspecified) : 0, 13);
  return buf;
}

export function decodeAck(body: Buffer): AckPacket {
  expectLength(body, HEADER_BYTES + 8, 'ack');
  const kind = body.readUInt8(12);
  if (kind < AckKind.Joined || kind > AckKind.Dropped) throw new WireError(`bad ack kind ${kind}`);
  const reason = body.readUInt8(13);
  if (kind !== AckKind.Dropped) return { nodeId: body.readUInt32BE(8), kind };
  return { nodeId: body.readUInt32BE(8), kind, dropReason: reason <= DropReason.Removed ? reason : DropReason.Unspecified };
}

export function encodeEnd(sessionId: number, e: EndPacket): Buffer {
  const buf = Buffer.alloc(HEADER_BYTES + 8);
  writeHeader(buf, PacketType.End, sessionId);
  buf.writeUInt8(e.reason, 8);
  buf.writeUInt32BE(e.completed >>> 0, 12);
  return buf;
}

export function decodeEnd(body: Buffer): EndPacket {
  expectLength(body, HEADER_BYTES + 8, 'end');
  const reason = body.readUInt8(8);
  if (reason > EndReason.NoReceivers) throw new WireError(`bad end reason ${reason}`);
  return { reason, completed: body.readUInt32BE(12) };
}
