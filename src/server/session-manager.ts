// Multicast sessions of the distribution point: admission of clients, group:port allocation, the schedule
// (minimum session size / start delay, auto-cast), the sender running in-process, slow-client handling, and
// the record of every session and every client's outcome.
import type { ContentAccess } from '../db/deployment-repositories.js';
import { randomBytes, randomInt, randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import type { ReceiverRecord, SenderStats, SenderSummary } from '../protocol/sender.js';
import { clock } from '../transport/drive.js';
import { sendImage, symbolSizeFor, type SendControl } from '../transport/session.js';
import { DropReason } from '../protocol/wire.js';
import { DEFAULT_FEC_SCHEME, FEC_SCHEME_NAMES, defaultBlockSymbols, parseFecScheme } from '../fec/scheme.js';
import { familyOf } from '../transport/udp.js';
import type { ClientOutcome, ClientRecord, ImageRecord, Repositories, SessionRecord, SessionState } from '../db/repositories.js';
import { allocateGroupPort } from './address-pool.js';
import { HttpError } from './context.js';
import type { DpSettings, LiveClientStatus, LiveSessionStatus } from './api-types.js';

export type { LiveClientStatus, LiveSessionStatus };

/** What the session manager needs of the content store (src/content's ContentStore provides it). */
export interface ContentLibrary {
  pathOf(digest: string): string;
  blockHashes(digest: string, blockBytes: number): Promise<Uint8Array>;
}

export interface ClientIdentity {
  name: string;
  mac?: string | null;
  uuid?: string | null;
  /** Where the request came from (recorded, not trusted for anything). */
  address?: string | null;
}

export interface SessionGeometry {
  mtu: number;
  /** The FEC scheme's name (docs/fec.md): raptorq or reed-solomon. */
  fec: string;
  symbolSize: number;
  blockSymbols: number;
  blockBytes: number;
}

export type Location =
  | {
      kind: 'multicast';
      ticket: string;
      sessionId: number;
      engineSessionId: number;
      nodeId: number;
      group: string;
      port: number;
      ttl: number;
      geometry: SessionGeometry;
      imageSize: number;
      digest: string;
      /** Per-block SHA-256 digests (blockCount * 32 bytes, base64): what the receiver checks each block against. */
      blockHashes: string;
      key: string | null;
      /** Latest time the session starts (scheduled multicast), ISO; null: as soon as the client joins. */
      startsBy: string | null;
      /** Whether the client may fall back to unicast if multicast fails. */
      unicastFallback: boolean;
    }
  | { kind: 'unicast'; ticket: string; path: string; size: number; digest: string; reason: string }
  | { kind: 'wait'; retryAfterSeconds: number; reason: string };

export interface ClientReport {
  outcome: 'completed' | 'failed' | 'dropped';
  reason?: string | null;
  bytes?: number | null;
  durationMs?: number | null;
  repairsRequested?: number | null;
}

type Tier = 'normal' | 'slow';

/** Source symbols per FEC block for server sessions (the engine's default). */
/** After a session starts its sender, admitted clients get this long (from the first JOIN) to join too. */
const JOIN_GRACE_MS = 5000;
/** A started session that no admitted client joined within this long is ended. */
const NO_SHOW_MS = 30_000;
const WAIT_RETRY_SECONDS = 3;
/** Drop a receiver silent this long (the engine's default). */
const RECEIVER_TIMEOUT_MS = 15_000;
/** End a transferring session when no client has been heard from this long. */
const SESSION_IDLE_MS = 60_000;

export function sessionGeometry(mtu: number, family: 4 | 6, encrypted: boolean): SessionGeometry {
  const symbolSize = symbolSizeFor(mtu, family, encrypted);
  const blockSymbols = defaultBlockSymbols(DEFAULT_FEC_SCHEME, symbolSize);
  return { mtu, fec: FEC_SCHEME_NAMES[DEFAULT_FEC_SCHEME], symbolSize, blockSymbols, blockBytes: symbolSize * blockSymbols };
}

interface LiveClient {
  ticket: string;
  name: string;
  nodeId: number;
  /** Counts against maxClients: admitted and not yet finished. */
  active: boolean;
  /** The client reported its own outcome: the sender's view no longer overrides it. */
  reported: boolean;
  receiver: ReceiverRecord | null;
}

interface LiveSession {
  id: number;
  engineSessionId: number;
  image: ImageRecord;
  tier: Tier;
  group: string;
  port: number;
  key: string | null;
  geometry: SessionGeometry;
  blockHashes: Uint8Array;
  rateBps: number | null;
  settings: DpSettings;
  state: 'waiting' | 'running';
  startsBy: number | null;
  startTimer: NodeJS.Timeout | null;
  launchedAt: number | null;
  clients: Map<number, LiveClient>;
  controller: AbortController;
  control: SendControl | null;
  stats: SenderStats | null;
  firstPassBytes: number;
  endRequest: { state: SessionState; reason: string } | null;
  done: Promise<void>;
  markDone: () => void;
}

export interface SessionManagerOptions {
  repos: Repositories;
  content: ContentLibrary;
  settings: () => DpSettings;
  interface: string | null;
  mtu: number;
  ttl: number;
  log: FastifyBaseLogger;
}

export class SessionManager {
  private readonly live = new Map<number, LiveSession>();
  /** Tickets dropped by the slow-client policy: their retry goes to the slower stream. */
  private readonly slowDropped = new Set<string>();
  private queue: Promise<unknown> = Promise.resolve();
  private closing = false;
  /** Bookkeeping writes in flight (outcomes recorded from engine callbacks), awaited on shutdown. */
  private readonly writes = new Set<Promise<unknown>>();

  constructor(private readonly o: SessionManagerOptions) {}

  /** After a crash, sessions recorded as live were not finished: say so. */
  async recover(): Promise<number[]> {
    const ids = await this.o.repos.sessions.abortLive('the server stopped (crash or kill) while the session was live', new Date().toISOString());
    if (ids.length) this.o.log.warn({ sessions: ids }, 'sessions left live by an earlier server run were marked aborted');
    return ids;
  }

  /** Where a client gets an image. Decisions are serialized, so two clients never race for one slot. */
  locate(image: ImageRecord, client: ClientIdentity, retryOf?: string, access: ContentAccess = 'multicast-first'): Promise<Location> {
    const run = this.queue.then(() => this.decide(image, client, retryOf, access));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async decide(image: ImageRecord, client: ClientIdentity, retryOf: string | undefined, access: ContentAccess): Promise<Location> {
    if (this.closing) throw new HttpError(503, 'the server is shutting down; try again shortly');
    const dp = this.o.settings();
    // A deployment's content access option narrows what the package allows, never widens it.
    if (access === 'unicast-only') {
      if (image.multicastOnly) throw new HttpError(409, `image "${image.name}" may only be transferred by multicast, but the deployment allows only unicast: change one of them (fleetcast image set ${image.name} --no-multicast-only, or the deployment's --access)`);
      return this.unicast(image, client, 'the deployment allows only unicast');
    }
    const unicastAllowed = !image.multicastOnly && access !== 'multicast-only';
    let tier: Tier = 'normal';
    if (retryOf) {
      const previous = await this.o.repos.clients.get(retryOf);
      if (previous && previous.imageId === image.id && previous.transport === 'multicast' && previous.outcome !== 'completed') {
        const why = previous.reason ?? 'multicast did not complete';
        if (this.slowDropped.has(retryOf) && dp.slowClientHandling === 'slower-stream' && dp.multicastEnabled && image.allowMulticast) {
          tier = 'slow';
        } else if (unicastAllowed) {
          await this.o.repos.clients.update(retryOf, { outcome: 'fell-back-to-unicast', reason: why, finishedAt: previous.finishedAt ?? new Date().toISOString() });
          return this.unicast(image, client, `falling back to unicast: ${why}`);
        }
      }
    }
    if (!image.allowMulticast) {
      if (!unicastAllowed) throw new HttpError(409, `image "${image.name}" does not allow multicast, but the deployment allows only multicast: change one of them (fleetcast image set ${image.name} --allow-multicast, or the deployment's --access)`);
      return this.unicast(image, client, 'the package does not allow multicast');
    }
    if (!dp.multicastEnabled) {
      if (unicastAllowed) return this.unicast(image, client, 'multicast is disabled on this distribution point');
      if (!image.multicastOnly) throw new HttpError(409, `the deployment allows only multicast, but multicast is disabled on this distribution point: enable it (fleetcast dp set --multicast) or change the deployment's --access`);
      throw new HttpError(
        409,
        `image "${image.name}" may only be transferred by multicast, but multicast is disabled on this distribution point: enable it (fleetcast dp set --multicast) or allow unicast for the package (fleetcast image set ${image.name} --no-multicast-only)`,
      );
    }
    if (this.activeClients() >= dp.maxClients) {
      return this.notNow(image, client, `the distribution point already serves its maximum of ${dp.maxClients} multicast clients`, unicastAllowed);
    }
    let session = [...this.live.values()].find((s) => s.image.id === image.id && s.tier === tier && this.admitting(s));
    if (!session) {
      const inUse = [...this.live.values()].map((s) => ({ group: s.group, port: s.port }));
      const slot = allocateGroupPort(dp, inUse);
      if (!slot) return this.notNow(image, client, `every multicast group:port of the pools is in use by ${inUse.length} live sessions`, unicastAllowed);
      session = await this.createSession(image, tier, slot, dp);
    }
    const location = await this.admit(session, client);
    return location.kind === 'multicast' && !unicastAllowed ? { ...location, unicastFallback: false } : location;
  }

  private notNow(image: ImageRecord, client: ClientIdentity, reason: string, unicastAllowed: boolean): Promise<Location> | Location {
    if (unicastAllowed) return this.unicast(image, client, reason);
    return { kind: 'wait', retryAfterSeconds: WAIT_RETRY_SECONDS, reason: `${reason}; the ${image.multicastOnly ? 'package' : 'deployment'} is multicast-only, so wait for the next session` };
  }

  private async unicast(image: ImageRecord, client: ClientIdentity, reason: string): Promise<Location> {
    const ticket = randomUUID();
    await this.o.repos.clients.create({
      id: ticket,
      sessionId: null,
      imageId: image.id,
      imageName: image.name,
      ...clientColumns(client),
      nodeId: null,
      transport: 'unicast',
      admittedAt: new Date().toISOString(),
    });
    return { kind: 'unicast', ticket, path: `/content/${image.digest}`, size: image.size, digest: image.digest, reason };
  }

  private activeClients(): number {
    let n = 0;
    for (const s of this.live.values()) for (const c of s.clients.values()) if (c.active) n++;
    return n;
  }

  private admitting(s: LiveSession): boolean {
    if (s.endRequest) return false;
    if (s.state === 'waiting') return true;
    // Auto-cast: late joiners are welcome while the session still sends.
    return s.settings.autoCast && s.stats?.phase !== 'ended';
  }

  private async createSession(image: ImageRecord, tier: Tier, slot: { group: string; port: number }, dp: DpSettings): Promise<LiveSession> {
    const encrypted = image.encryptMulticast;
    const geometry = sessionGeometry(this.o.mtu, familyOf(slot.group), encrypted);
    const blockHashes = await this.o.content.blockHashes(image.digest, geometry.blockBytes);
    const engineSessionId = randomInt(1, 0xffffffff);
    const rateBps = tier === 'slow' ? dp.slowClientThresholdBps : dp.transferRateBps;
    const scheduled = dp.scheduledMulticast && tier === 'normal';
    const record = await this.o.repos.sessions.create({
      imageId: image.id,
      imageName: image.name,
      imageDigest: image.digest,
      group: slot.group,
      port: slot.port,
      params: {
        tier,
        engineSessionId,
        rateBps,
        encrypted,
        autoCast: dp.autoCast,
        scheduledMulticast: scheduled,
        sessionStartDelaySeconds: scheduled ? dp.sessionStartDelaySeconds : null,
        minimumSessionSize: scheduled ? dp.minimumSessionSize : null,
        slowClientHandling: tier === 'slow' ? 'none' : dp.slowClientHandling,
        slowClientThresholdBps: dp.slowClientThresholdBps,
        interface: this.o.interface,
        ttl: this.o.ttl,
        ...geometry,
      },
    });
    let markDone!: () => void;
    const session: LiveSession = {
      id: record.id,
      engineSessionId,
      image,
      tier,
      group: slot.group,
      port: slot.port,
      key: encrypted ? randomBytes(32).toString('base64url') : null,
      geometry,
      blockHashes,
      rateBps,
      settings: { ...dp, ...(tier === 'slow' ? { slowClientHandling: 'none' as const } : {}), scheduledMulticast: scheduled },
      state: 'waiting',
      startsBy: scheduled ? Date.now() + dp.sessionStartDelaySeconds * 1000 : null,
      startTimer: null,
      launchedAt: null,
      clients: new Map(),
      controller: new AbortController(),
      control: null,
      stats: null,
      firstPassBytes: 0,
      endRequest: null,
      done: new Promise<void>((resolve) => (markDone = resolve)),
      markDone: () => markDone(),
    };
    this.live.set(session.id, session);
    if (scheduled) {
      session.startTimer = setTimeout(() => this.launch(session, 'the session start delay expired'), dp.sessionStartDelaySeconds * 1000);
    }
    this.o.log.info({ session: session.id, image: image.name, group: slot.group, port: slot.port, tier, scheduled, encrypted }, 'multicast session created');
    return session;
  }

  private async admit(session: LiveSession, client: ClientIdentity): Promise<Location> {
    let nodeId: number;
    do nodeId = randomInt(1, 0xffffffff);
    while (session.clients.has(nodeId));
    const ticket = randomUUID();
    await this.o.repos.clients.create({
      id: ticket,
      sessionId: session.id,
      imageId: session.image.id,
      imageName: session.image.name,
      ...clientColumns(client),
      nodeId,
      transport: 'multicast',
      admittedAt: new Date().toISOString(),
    });
    session.clients.set(nodeId, { ticket, name: client.name, nodeId, active: true, reported: false, receiver: null });
    this.o.log.info({ session: session.id, client: client.name, ticket, admitted: session.clients.size }, 'client admitted to a multicast session');
    if (session.state === 'waiting') {
      if (!session.settings.scheduledMulticast) this.launch(session, 'immediate start (no scheduled multicast)');
      else if (session.clients.size >= session.settings.minimumSessionSize) this.launch(session, `minimum session size of ${session.settings.minimumSessionSize} clients reached`);
    }
    return {
      kind: 'multicast',
      ticket,
      sessionId: session.id,
      engineSessionId: session.engineSessionId,
      nodeId,
      group: session.group,
      port: session.port,
      ttl: this.o.ttl,
      geometry: session.geometry,
      imageSize: session.image.size,
      digest: session.image.digest,
      blockHashes: Buffer.from(session.blockHashes).toString('base64'),
      key: session.key,
      startsBy: session.startsBy !== null && session.state === 'waiting' ? new Date(session.startsBy).toISOString() : null,
      unicastFallback: !session.image.multicastOnly,
    };
  }

  /** Starts the session's sender; it waits for the admitted clients to join (up to the grace time). */
  private launch(session: LiveSession, why: string): void {
    if (session.state !== 'waiting' || session.endRequest) return;
    if (session.startTimer) clearTimeout(session.startTimer);
    session.startTimer = null;
    session.state = 'running';
    session.launchedAt = clock();
    const admitted = [...session.clients.values()].filter((c) => c.active).length;
    this.o.log.info({ session: session.id, admitted, why }, 'multicast session starting');
    this.track(this.o.repos.sessions.update(session.id, { state: 'running', startedAt: new Date().toISOString() }));
    sendImage({
      path: this.o.content.pathOf(session.image.digest),
      endpoint: { group: session.group, port: session.port, iface: this.o.interface ?? undefined, ttl: this.o.ttl },
      mtu: session.geometry.mtu,
      key: session.key ?? undefined,
      signal: session.controller.signal,
      sender: {
        sessionId: session.engineSessionId,
        fec: parseFecScheme(session.geometry.fec),
        blockSymbols: session.geometry.blockSymbols,
        blockHashes: session.blockHashes,
        maxRateBps: session.rateBps ?? undefined,
        minReceivers: Math.max(1, admitted),
        maxWaitMs: JOIN_GRACE_MS,
        settleMs: session.settings.scheduledMulticast ? 0 : 500,
        maxReceivers: session.settings.maxClients,
        receiverTimeoutMs: RECEIVER_TIMEOUT_MS,
        idleTimeoutMs: SESSION_IDLE_MS,
        // Slow-client handling (disconnect or move to the slower stream): the engine keeps the session's pace
        // and drops receivers that take in less than the threshold.
        minReceiverRateBps: session.settings.slowClientHandling !== 'none' ? session.settings.slowClientThresholdBps : null,
      },
      onWarning: (w) => this.o.log.warn({ session: session.id }, w),
      onControl: (control) => (session.control = control),
      onProgress: (stats, receivers, _size, firstPassBytes) => this.onProgress(session, stats, receivers, firstPassBytes),
    }).then(
      (summary) => this.finish(session, summary, null),
      (err: Error) => this.finish(session, null, err),
    );
  }

  private onProgress(session: LiveSession, stats: SenderStats, receivers: ReceiverRecord[], firstPassBytes: number): void {
    session.stats = { ...stats, drops: { ...stats.drops } };
    session.firstPassBytes = firstPassBytes;
    const now = clock();
    for (const r of receivers) {
      const c = session.clients.get(r.nodeId);
      if (!c) {
        // Only clients the server admitted take part: this is how max clients and encryption keys are enforced.
        if (r.outcome === 'active') session.control?.dropReceiver(r.nodeId, 'not admitted by the distribution point: ask the server for a content location');
        continue;
      }
      c.receiver = { ...r };
      if (c.active && r.outcome !== 'active') {
        c.active = false;
        if (r.outcome === 'dropped' && r.dropReason === DropReason.TooSlow) {
          this.slowDropped.add(c.ticket);
          this.o.log.info({ session: session.id, client: c.name, reason: r.reason }, 'slow client disconnected');
        }
        if (!c.reported) this.track(this.recordFromSender(session, c, r));
      }
    }
    if (stats.phase === 'waiting' && receivers.length === 0 && session.launchedAt !== null && now - session.launchedAt > NO_SHOW_MS && !session.endRequest) {
      session.endRequest = { state: 'failed', reason: `no admitted client joined within ${NO_SHOW_MS / 1000} s` };
      session.controller.abort();
    }
  }

  private recordFromSender(session: LiveSession, c: LiveClient, r: ReceiverRecord): Promise<unknown> {
    const outcome: ClientOutcome = r.outcome === 'completed' ? 'completed' : r.outcome === 'dropped' ? 'dropped' : 'failed';
    return this.o.repos.clients.update(c.ticket, {
      outcome,
      reason: r.reason ?? (r.outcome === 'left' ? 'the client left the session' : null),
      repairsRequested: r.nacks,
      bytes: outcome === 'completed' ? session.image.size : null,
      finishedAt: new Date().toISOString(),
    });
  }

  private async finish(session: LiveSession, summary: SenderSummary | null, error: Error | null): Promise<void> {
    try {
      let state: SessionState;
      let endReason: string;
      // A session whose receivers were all done before it was ended (shut down while its END datagrams were
      // still going out) did complete: the end request changed nothing for any client.
      const allDone = summary?.endReason === 'AllDone';
      if (session.endRequest && !allDone) ({ state, reason: endReason } = session.endRequest);
      else if (error) {
        state = 'failed';
        endReason = error.message;
      } else {
        const s = summary!;
        const completed = s.receivers.filter((r) => r.outcome === 'completed' && session.clients.has(r.nodeId)).length;
        state = s.endReason === 'AllDone' ? 'completed' : s.endReason === 'Cancelled' ? 'cancelled' : 'failed';
        endReason =
          s.endReason === 'AllDone'
            ? `${completed} of ${session.clients.size} clients completed`
            : s.endReason === 'NoReceivers'
              ? 'no client completed'
              : s.endReason === 'Limit'
                ? `no client was heard from for ${SESSION_IDLE_MS / 1000} s`
                : 'cancelled';
      }
      const receivers = new Map((summary?.receivers ?? []).map((r) => [r.nodeId, r]));
      for (const c of session.clients.values()) {
        const r = receivers.get(c.nodeId) ?? c.receiver;
        const wasActive = c.active;
        c.active = false;
        if (c.reported) {
          if (r) this.track(this.o.repos.clients.update(c.ticket, { repairsRequested: r.nacks }));
        } else if (r && r.outcome !== 'active') {
          // An inactive, unreported client was recorded when the sender finished with it.
          if (wasActive) this.track(this.recordFromSender(session, c, r));
        } else {
          this.track(
            this.o.repos.clients.update(c.ticket, {
              outcome: 'failed',
              reason: r ? `session ended: ${endReason}` : `never joined the session (${endReason})`,
              repairsRequested: r?.nacks ?? null,
              finishedAt: new Date().toISOString(),
            }),
          );
        }
      }
      const st = summary?.stats ?? session.stats;
      await this.o.repos.sessions.update(session.id, {
        state,
        endReason,
        endedAt: new Date().toISOString(),
        wireBytes: st?.wireBytes,
        sourcePackets: st?.sourcePackets,
        parityPackets: st?.parityPackets,
        controlPackets: st?.controlPackets,
        durationMs: summary ? Math.round(summary.durationMs) : undefined,
      });
      await this.settle();
      this.o.log.info({ session: session.id, state, endReason, wireBytes: st?.wireBytes }, 'multicast session ended');
    } catch (err) {
      this.o.log.error({ session: session.id, err }, 'could not record the end of a session');
    } finally {
      this.live.delete(session.id);
      session.markDone();
    }
  }

  /** A client's own account of its transfer (the server records it; it changes nothing else). */
  async report(ticket: string, report: ClientReport): Promise<ClientRecord | undefined> {
    const record = await this.o.repos.clients.get(ticket);
    if (!record) return undefined;
    const session = record.sessionId !== null ? this.live.get(record.sessionId) : undefined;
    const c = session && record.nodeId !== null ? session.clients.get(record.nodeId) : undefined;
    if (c) {
      c.reported = true;
      c.active = false;
    }
    return this.o.repos.clients.update(ticket, {
      outcome: report.outcome,
      // The server's own reason for a drop (e.g. the slow-client policy) says more than the client can.
      reason: report.outcome === 'completed' ? null : record.outcome === 'dropped' && record.reason ? record.reason : (report.reason ?? record.reason),
      bytes: report.bytes ?? record.bytes,
      durationMs: report.durationMs ?? record.durationMs,
      repairsRequested: report.repairsRequested ?? record.repairsRequested,
      finishedAt: new Date().toISOString(),
    });
  }

  isLive(sessionId: number): boolean {
    return this.live.has(sessionId);
  }

  imageInUse(imageId: number): boolean {
    return [...this.live.values()].some((s) => s.image.id === imageId);
  }

  status(sessionId: number): LiveSessionStatus | undefined {
    const s = this.live.get(sessionId);
    if (!s) return undefined;
    const bb = s.geometry.blockBytes;
    return {
      phase: s.state === 'waiting' ? 'scheduled' : (s.stats?.phase ?? 'waiting'),
      admitting: this.admitting(s),
      rateBps: s.stats && Number.isFinite(s.stats.rateBps) ? s.stats.rateBps : null,
      wireBytes: s.stats?.wireBytes ?? 0,
      firstPassBytes: s.firstPassBytes,
      imageSize: s.image.size,
      clients: [...s.clients.values()].map((c) => {
        const r = c.receiver;
        const bytesComplete = r ? (r.outcome === 'completed' ? s.image.size : Math.min(s.image.size, r.blocksComplete * bb)) : 0;
        return {
          ticket: c.ticket,
          name: c.name,
          nodeId: c.nodeId,
          joined: r !== null,
          outcome: r?.outcome ?? 'admitted',
          reason: r?.reason ?? null,
          bytesComplete,
          progress: s.image.size > 0 ? bytesComplete / s.image.size : 1,
          rttMs: r?.rttMs ?? null,
          lossPpm: r?.lossPpm ?? 0,
          repairsRequested: r?.nacks ?? 0,
        };
      }),
    };
  }

  /** Ends a live session: receivers are told at once; the end is recorded before this resolves. */
  async cancel(sessionId: number, reason: string, state: SessionState = 'cancelled'): Promise<boolean> {
    const s = this.live.get(sessionId);
    if (!s) return false;
    s.endRequest ??= { state, reason };
    if (s.state === 'waiting') {
      if (s.startTimer) clearTimeout(s.startTimer);
      await this.finish(s, null, null);
    } else {
      s.controller.abort();
      await s.done;
    }
    return true;
  }

  /** Graceful shutdown: no new admissions; every live session ended and recorded. */
  async close(reason = 'the server shut down'): Promise<void> {
    this.closing = true;
    await this.queue;
    await Promise.all([...this.live.keys()].map((id) => this.cancel(id, reason)));
    await this.settle();
  }

  liveSessions(): SessionRecord['id'][] {
    return [...this.live.keys()];
  }

  private track(p: Promise<unknown>): void {
    const guarded = p.catch((err: Error) => this.o.log.error({ err }, 'could not record a session event'));
    this.writes.add(guarded);
    void guarded.finally(() => this.writes.delete(guarded));
  }

  private async settle(): Promise<void> {
    while (this.writes.size) await Promise.all([...this.writes]);
  }
}

function clientColumns(c: ClientIdentity): Pick<ClientRecord, 'clientName' | 'clientMac' | 'clientUuid' | 'clientAddress'> {
  return { clientName: c.name, clientMac: c.mac ?? null, clientUuid: c.uuid ?? null, clientAddress: c.address ?? null };
}
