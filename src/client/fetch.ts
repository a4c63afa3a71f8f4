// `fleetcast fetch`: asks the distribution point where to get an image, receives it by multicast (block
// hashes and image digest from the server checked), falls back to resumable unicast HTTP when the package
// allows it, verifies the SHA-256 of the whole image, and reports the outcome to the server.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import { hostname, networkInterfaces } from 'node:os';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { imageDigest } from '../protocol/common.js';
import { receiveImage, type ReceiveResult } from '../transport/session.js';
import type { Location } from '../server/session-manager.js';
import type { ClientRecord } from '../db/repositories.js';
import type { ContentAccess } from '../db/deployment-repositories.js';
import { ApiClient, ApiError } from './api.js';

export type ContentLocation = Exclude<Location, { kind: 'unicast' }> | (Omit<Extract<Location, { kind: 'unicast' }>, 'path'> & { url: string });

export type FetchFailure = 'refused' | 'unreachable' | 'timeout' | 'integrity' | 'io' | 'interrupted' | 'multicast';

export interface FetchOptions {
  server: string;
  image: string;
  version?: string;
  output: string;
  iface?: string;
  clientName?: string;
  mac?: string;
  uuid?: string;
  clientSecret?: string;
  /** A deployment's content access option (default multicast-first); the package's settings still apply. */
  access?: ContentAccess;
  /** Give up after this long in total (waiting for sessions included); default: no limit. */
  timeoutMs?: number;
  /** Give up when a multicast sender falls silent this long. */
  idleTimeoutMs?: number;
  signal?: AbortSignal;
  onPhase?: (phase: 'waiting' | 'multicast' | 'unicast' | 'verifying', total: number, detail: string) => void;
  onProgress?: (done: number, total: number) => void;
}

export interface Attempt {
  transport: 'multicast' | 'unicast' | 'wait';
  ticket: string | null;
  sessionId: number | null;
  ok: boolean;
  reason: string | null;
}

export interface FetchResult {
  ok: boolean;
  failure: FetchFailure | null;
  /** Receive's failure reason for multicast attempts (maps to the same exit codes as `receive`). */
  receiveReason: ReceiveResult['reason'];
  message: string;
  transport: 'multicast' | 'unicast' | null;
  fellBack: boolean;
  bytes: number | null;
  durationMs: number | null;
  digest: string | null;
  attempts: Attempt[];
}

/** Multicast failures before a multicast-only client gives up. */
const MAX_MULTICAST_ATTEMPTS = 5;
/** Unicast download attempts (each resumes where the last stopped). */
const MAX_HTTP_ATTEMPTS = 5;
/** Beyond the session's announced start time, how long to wait for its first packet. */
const START_MARGIN_MS = 60_000;

function macOf(iface: string | undefined): string | undefined {
  if (!iface) return undefined;
  const mac = networkInterfaces()[iface]?.find((a) => a.mac && a.mac !== '00:00:00:00:00:00')?.mac;
  return mac;
}

export async function sha256File(path: string, onProgress?: (done: number) => void): Promise<string> {
  const hash = createHash('sha256');
  let done = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    done += chunk.length;
    onProgress?.(done);
  }
  return hash.digest('hex');
}

export async function fetchImage(o: FetchOptions): Promise<FetchResult> {
  const api = new ApiClient({ server: o.server, clientSecret: o.clientSecret });
  const client = { name: o.clientName ?? hostname(), ...((o.mac ?? macOf(o.iface)) ? { mac: o.mac ?? macOf(o.iface) } : {}), ...(o.uuid ? { uuid: o.uuid } : {}) };
  const deadline = o.timeoutMs !== undefined ? Date.now() + o.timeoutMs : Infinity;
  const attempts: Attempt[] = [];
  let retryOf: string | undefined;
  let multicastFailures = 0;
  let fellBack = false;
  const result = (r: Omit<FetchResult, 'attempts' | 'fellBack' | 'receiveReason'> & { receiveReason?: ReceiveResult['reason'] }): FetchResult => ({
    receiveReason: null,
    ...r,
    fellBack,
    attempts,
  });
  const fail = (failure: FetchFailure, message: string, receiveReason: ReceiveResult['reason'] = null) =>
    result({ ok: false, failure, receiveReason, message, transport: null, bytes: null, durationMs: null, digest: null });
  const report = async (ticket: string, body: Record<string, unknown>) => {
    // The outcome matters to the server's records, not to this machine's image: never fail for it.
    await api.request<ClientRecord>('POST', '/api/client/report', { ticket, ...body }).catch(() => undefined);
  };

  for (;;) {
    if (o.signal?.aborted) return fail('interrupted', 'interrupted');
    if (Date.now() > deadline) return fail('timeout', `no image within the ${Math.round((o.timeoutMs ?? 0) / 1000)} s timeout`);
    let loc: ContentLocation;
    try {
      loc = await api.request<ContentLocation>('POST', '/api/client/content-location', { client, image: o.image, ...(o.version ? { version: o.version } : {}), ...(retryOf ? { retryOf } : {}), ...(o.access ? { access: o.access } : {}) }, o.signal);
    } catch (err) {
      if (o.signal?.aborted) return fail('interrupted', 'interrupted');
      if (err instanceof ApiError) return fail(err.status === 0 ? 'unreachable' : 'refused', err.message);
      throw err;
    }

    if (loc.kind === 'wait') {
      attempts.push({ transport: 'wait', ticket: null, sessionId: null, ok: false, reason: loc.reason });
      o.onPhase?.('waiting', 0, loc.reason);
      try {
        await sleep(Math.min(loc.retryAfterSeconds * 1000, Math.max(0, deadline - Date.now())), undefined, { signal: o.signal });
      } catch {
        return fail('interrupted', 'interrupted');
      }
      continue;
    }

    if (loc.kind === 'multicast') {
      const hashes = Buffer.from(loc.blockHashes, 'base64');
      const startsIn = loc.startsBy ? Math.max(0, Date.parse(loc.startsBy) - Date.now()) : 0;
      o.onPhase?.('multicast', loc.imageSize, `session ${loc.sessionId} on ${loc.group}:${loc.port}${loc.key ? ', encrypted' : ''}${loc.startsBy ? `, starts by ${loc.startsBy}` : ''}`);
      const started = Date.now();
      const r = await receiveImage({
        output: o.output,
        endpoint: { group: loc.group, port: loc.port, iface: o.iface },
        key: loc.key ?? undefined,
        name: client.name,
        nodeId: loc.nodeId,
        sessionId: loc.engineSessionId,
        expectedDigest: imageDigest(hashes),
        blockHashes: hashes,
        // OUTPUT.part of an earlier, interrupted attempt: its verified blocks are not received again.
        resume: true,
        startTimeoutMs: Math.min(startsIn + START_MARGIN_MS, Math.max(1000, deadline - Date.now())),
        idleTimeoutMs: o.idleTimeoutMs,
        signal: o.signal,
        onProgress: (verified, size) => o.onProgress?.(verified, size),
      });
      const repairsRequested = r.stats.nackPackets;
      if (r.ok) {
        const check = await verify(o, loc.digest, loc.imageSize, o.output);
        if (!check.ok) {
          await fs.rm(o.output, { force: true });
          await report(loc.ticket, { outcome: 'failed', reason: check.message, repairsRequested });
          attempts.push({ transport: 'multicast', ticket: loc.ticket, sessionId: loc.sessionId, ok: false, reason: check.message });
          return fail('integrity', check.message);
        }
        await report(loc.ticket, { outcome: 'completed', bytes: loc.imageSize, durationMs: r.durationMs !== null ? Math.round(r.durationMs) : Date.now() - started, repairsRequested });
        attempts.push({ transport: 'multicast', ticket: loc.ticket, sessionId: loc.sessionId, ok: true, reason: null });
        return result({ ok: true, failure: null, message: 'image received by multicast and verified', transport: 'multicast', bytes: loc.imageSize, durationMs: Date.now() - started, digest: loc.digest });
      }
      const interrupted = o.signal?.aborted ?? false;
      await report(loc.ticket, { outcome: r.reason === 'dropped' ? 'dropped' : 'failed', reason: interrupted ? 'interrupted on the client' : `${r.reason}: ${r.message}`, repairsRequested });
      attempts.push({ transport: 'multicast', ticket: loc.ticket, sessionId: loc.sessionId, ok: false, reason: `${r.reason}: ${r.message}` });
      if (interrupted) return fail('interrupted', 'interrupted', r.reason);
      // Local failures (disk full, corrupt data) are not cured by another transport.
      if (r.reason === 'io' || r.reason === 'aborted' || r.reason === 'hash-mismatch' || r.reason === 'too-large') {
        return fail(r.reason === 'hash-mismatch' ? 'integrity' : 'io', r.message, r.reason);
      }
      multicastFailures++;
      if (!loc.unicastFallback && multicastFailures >= MAX_MULTICAST_ATTEMPTS) {
        return fail('multicast', `multicast failed ${multicastFailures} times (last: ${r.message}) and the package is multicast-only`, r.reason);
      }
      retryOf = loc.ticket;
      continue;
    }

    // Unicast: resumable download, then the digest.
    fellBack = retryOf !== undefined;
    o.onPhase?.('unicast', loc.size, loc.reason);
    const started = Date.now();
    try {
      await download(api, o, loc.url, loc.size, loc.digest);
    } catch (err) {
      const interrupted = o.signal?.aborted ?? false;
      const message = interrupted ? 'interrupted' : (err as Error).message;
      await report(loc.ticket, { outcome: 'failed', reason: `unicast: ${message}` });
      attempts.push({ transport: 'unicast', ticket: loc.ticket, sessionId: null, ok: false, reason: message });
      if (interrupted) return fail('interrupted', 'interrupted');
      return fail(err instanceof IntegrityError ? 'integrity' : err instanceof ApiError ? (err.status === 0 ? 'unreachable' : 'refused') : 'io', message);
    }
    await report(loc.ticket, { outcome: 'completed', bytes: loc.size, durationMs: Date.now() - started });
    await fs.rm(`${o.output}.part`, { force: true }); // what a failed multicast attempt left for resuming
    attempts.push({ transport: 'unicast', ticket: loc.ticket, sessionId: null, ok: true, reason: loc.reason });
    return result({ ok: true, failure: null, message: `image downloaded by unicast (${loc.reason}) and verified`, transport: 'unicast', bytes: loc.size, durationMs: Date.now() - started, digest: loc.digest });
  }
}

class IntegrityError extends Error {}

async function verify(o: FetchOptions, digest: string, size: number, path: string): Promise<{ ok: boolean; message: string }> {
  o.onPhase?.('verifying', size, 'SHA-256 of the whole image');
  const got = await sha256File(path, (done) => o.onProgress?.(done, size));
  return got === digest ? { ok: true, message: 'verified' } : { ok: false, message: `SHA-256 of the image is ${got}, the server's is ${digest}` };
}

/**
 * Downloads into a partial file named after the content (OUTPUT.<digest prefix>.part), so that a later run
 * resumes only the same content; each retry continues with a Range request (If-Range: the digest ETag).
 */
async function download(api: ApiClient, o: FetchOptions, url: string, size: number, digest: string): Promise<void> {
  const part = `${o.output}.${digest.slice(0, 16)}.part`;
  const path = new URL(url).pathname;
  const target = new URL(url);
  const client = target.origin === api.base ? api : new ApiClient({ server: target.origin, clientSecret: o.clientSecret });
  let lastError: Error | null = null;
  for (let attempt = 1; attempt <= MAX_HTTP_ATTEMPTS; attempt++) {
    const have = await fs.stat(part).then((s) => s.size, () => 0);
    if (have > size) await fs.rm(part, { force: true });
    const from = have > size ? 0 : have;
    if (from < size) {
      try {
        const res = await client.send(path, {
          headers: client.headers(from > 0 ? { range: `bytes=${from}-`, 'if-range': `"${digest}"` } : {}),
          signal: o.signal,
        });
        const resumed = res.status === 206;
        let done = resumed ? from : 0;
        const count = new Transform({
          transform(chunk: Buffer, _enc, cb) {
            done += chunk.length;
            o.onProgress?.(done, size);
            cb(null, chunk);
          },
        });
        await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), count, createWriteStream(part, { flags: resumed ? 'a' : 'w' }), { signal: o.signal });
      } catch (err) {
        if (o.signal?.aborted) throw err;
        if (err instanceof ApiError && err.status >= 400 && err.status !== 416) throw err;
        lastError = err as Error;
        await sleep(Math.min(8000, 500 * 2 ** attempt));
        continue;
      }
    }
    const check = await verify(o, digest, size, part);
    if (!check.ok) {
      await fs.rm(part, { force: true });
      throw new IntegrityError(check.message);
    }
    await fs.rename(part, o.output);
    return;
  }
  throw new Error(`download failed after ${MAX_HTTP_ATTEMPTS} attempts (the partial file ${part} is kept; run again to resume): ${lastError?.message}`);
}
