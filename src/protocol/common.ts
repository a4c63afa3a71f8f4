// Types and helpers shared by the sender and receiver state machines.
import { createHash } from 'node:crypto';
import type { Echo } from './wire.js';

/** A datagram to put on the network: `to` null means the session's multicast group. */
export interface Transmit {
  to: string | null;
  /** Gathered into one datagram (header and symbol travel as separate buffers, so symbols are not copied). */
  parts: Uint8Array[];
  bytes: number;
}

/** Datagrams dropped, by reason. Nothing a peer sends can do more than raise one of these. */
export interface DropCounters {
  malformed: number;
  otherSession: number;
  encrypted: number;
  unencrypted: number;
  unexpected: number;
  unknownReceiver: number;
  beforeAnnounce: number;
  duplicate: number;
}

export function newDropCounters(): DropCounters {
  return {
    malformed: 0,
    otherSession: 0,
    encrypted: 0,
    unencrypted: 0,
    unexpected: 0,
    unknownReceiver: 0,
    beforeAnnounce: 0,
    duplicate: 0,
  };
}

/** Wire timestamps are microseconds modulo 2^32. */
export function microsOf(nowMs: number): number {
  return Math.floor(nowMs * 1000) >>> 0;
}

/** Round-trip time in ms from an echoed sender timestamp, or null when absent or implausible. */
export function rttFromEcho(nowMs: number, echo: Echo): number | null {
  if (echo.timestamp === 0) return null;
  const micros = (microsOf(nowMs) - echo.timestamp - echo.delay) >>> 0;
  if (micros > 10_000_000) return null;
  return micros / 1000;
}

/** How long a receiver lets a block's symbols stop arriving before it asks for what it lacks (ms). */
export function nackQuietMs(grttMs: number): number {
  return Math.max(3, 2 * grttMs);
}

/** The window a receiver draws its request back-off from (ms): about four group round trips (NORM, RFC 5740). */
export function nackBackoffWindowMs(grttMs: number): number {
  return Math.min(500, Math.max(4, 4 * grttMs));
}

export function sha256(data: Uint8Array): Buffer {
  return createHash('sha256').update(data).digest();
}

/** The image digest: SHA-256 over the concatenated per-block SHA-256 digests. */
export function imageDigest(blockHashes: Uint8Array): Buffer {
  return sha256(blockHashes);
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
