// AES-256-GCM sealing of whole datagrams (confidentiality and authenticity). The 8-byte header stays in clear
// text (receivers must see the session id to pick the key) and is authenticated as additional data.
import { createCipheriv, createDecipheriv, hkdfSync, randomFillSync } from 'node:crypto';
import type { DropCounters } from './common.js';
import { ENCRYPTED_FLAG, HEADER_BYTES, WireError, asBuffer, readHeader, type Header } from './wire.js';

export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;
export const SEAL_OVERHEAD = NONCE_BYTES + TAG_BYTES;

/** Derives the per-session key from the pre-shared secret, so one secret can protect many sessions. */
export function deriveSessionKey(secret: string | Uint8Array, sessionId: number): Buffer {
  const info = Buffer.alloc(4);
  info.writeUInt32BE(sessionId >>> 0);
  return Buffer.from(hkdfSync('sha256', secret, 'fleetcast/1 session key', info, 32));
}

export class PacketProtector {
  private readonly keys = new Map<number, Buffer>();
  // Random nonces from a refilled pool: every sender and receiver seals with the same key, so counters
  // would collide between nodes; 96 random bits make a repeat negligible for any realistic session.
  private noncePool = Buffer.alloc(0);
  private nonceOffset = 0;

  constructor(private readonly secret: string | Uint8Array) {}

  private key(sessionId: number): Buffer {
    let key = this.keys.get(sessionId);
    if (!key) {
      key = deriveSessionKey(this.secret, sessionId);
      if (this.keys.size > 64) this.keys.clear();
      this.keys.set(sessionId, key);
    }
    return key;
  }

  private nonce(): Buffer {
    if (this.nonceOffset + NONCE_BYTES > this.noncePool.length) {
      this.noncePool = randomFillSync(Buffer.allocUnsafe(NONCE_BYTES * 512));
      this.nonceOffset = 0;
    }
    const n = this.noncePool.subarray(this.nonceOffset, this.nonceOffset + NONCE_BYTES);
    this.nonceOffset += NONCE_BYTES;
    return n;
  }

  /** Seals a plain datagram given as one or more parts (the first part begins with the header). */
  seal(parts: readonly Uint8Array[]): Buffer {
    const first = asBuffer(parts[0]!);
    const sessionId = first.readUInt32BE(4);
    const header = Buffer.from(first.subarray(0, HEADER_BYTES));
    header[3] = header[3]! | ENCRYPTED_FLAG;
    const nonce = this.nonce();
    const cipher = createCipheriv('aes-256-gcm', this.key(sessionId), nonce);
    cipher.setAAD(header);
    const chunks: Buffer[] = [header, nonce];
    chunks.push(cipher.update(first.subarray(HEADER_BYTES)));
    for (let i = 1; i < parts.length; i++) chunks.push(cipher.update(parts[i]!));
    chunks.push(cipher.final(), cipher.getAuthTag());
    return Buffer.concat(chunks);
  }

  /** Opens a sealed datagram; returns the plain datagram (flag cleared). Throws WireError when forged. */
  open(datagram: Uint8Array): Buffer {
    const buf = asBuffer(datagram);
    if (buf.length < HEADER_BYTES + SEAL_OVERHEAD) throw new WireError('truncated sealed datagram');
    const header = buf.subarray(0, HEADER_BYTES);
    const nonce = buf.subarray(HEADER_BYTES, HEADER_BYTES + NONCE_BYTES);
    const tag = buf.subarray(buf.length - TAG_BYTES);
    const decipher = createDecipheriv('aes-256-gcm', this.key(header.readUInt32BE(4)), nonce);
    decipher.setAAD(header);
    decipher.setAuthTag(tag);
    const plainHeader = Buffer.from(header);
    plainHeader[3] = plainHeader[3]! & ~ENCRYPTED_FLAG;
    try {
      const body = decipher.update(buf.subarray(HEADER_BYTES + NONCE_BYTES, buf.length - TAG_BYTES));
      decipher.final();
      return Buffer.concat([plainHeader, body]);
    } catch {
      throw new WireError('authentication failed (wrong key or forged datagram)');
    }
  }
}

/**
 * Checks a datagram's sealing against this side's key (a keyed side takes only sealed datagrams, an unkeyed one
 * only plain ones) and opens it. Null when it must be dropped (counted); throws WireError when it is forged.
 */
export function openDatagram(
  datagram: Uint8Array,
  header: Header,
  protector: PacketProtector | undefined,
  drops: Pick<DropCounters, 'encrypted' | 'unencrypted'>,
): { header: Header; buf: Buffer } | null {
  const buf = asBuffer(datagram);
  if (!protector) {
    if (!header.encrypted) return { header, buf };
    drops.encrypted++;
    return null;
  }
  if (!header.encrypted) {
    drops.unencrypted++;
    return null;
  }
  const opened = protector.open(buf);
  return { header: readHeader(opened), buf: opened };
}
