// Views that several pages show: the tables of sessions, clients and a live session's clients, and the
// distribution point's settings in words.
import { ANY_POOL_TEXT, type ClientRecord, type DpSettings, type LiveClientStatus, type LiveSessionStatus, type Session } from './api-types.js';
import { badge, facts, h, link, progress, table } from './dom.js';
import { bytesOrDash, count, duration, formatBytes, formatRate, when } from './format.js';

export const sessionHref = (id: number) => `/console/sessions/${id}`;
export const imageHref = (name: string) => `/console/images/${encodeURIComponent(name)}`;

export function sessionsTable(sessions: Session[], caption: string): HTMLElement {
  return table(
    caption,
    [
      { label: 'Session', cell: (s) => link(sessionHref(s.id), `#${s.id}`) },
      { label: 'Image', cell: (s) => (s.imageId !== null ? link(imageHref(s.imageName), s.imageName) : s.imageName) },
      { label: 'State', cell: (s) => badge(s.live && s.state === 'running' ? s.live.phase : s.state) },
      { label: 'Group:port', cell: (s) => h('code', null, `${s.group}:${s.port}`) },
      { label: 'Clients', cell: (s) => (s.live ? String(s.live.clients.length) : `${s.clientsCompleted}/${s.clientCount} done`), numeric: true },
      { label: 'Created', cell: (s) => when(s.createdAt) },
      { label: 'Duration', cell: (s) => duration(s.durationMs), numeric: true },
      { label: 'Wire bytes', cell: (s) => bytesOrDash(s.live ? s.live.wireBytes : s.wireBytes), numeric: true },
      { label: 'End', cell: (s) => s.endReason ?? '' },
    ],
    sessions,
    'No sessions yet: a session starts when a client asks for an image that allows multicast.',
  );
}

export function clientsTable(clients: ClientRecord[], caption: string, withSession = true): HTMLElement {
  return table(
    caption,
    [
      { label: 'Client', cell: (c) => [c.clientName, c.clientMac ? h('span', { class: 'sub' }, c.clientMac) : null] },
      { label: 'Address', cell: (c) => c.clientAddress ?? '' },
      { label: 'Image', cell: (c) => (c.imageId !== null ? link(imageHref(c.imageName), c.imageName) : c.imageName) },
      ...(withSession ? [{ label: 'Session', cell: (c: ClientRecord) => (c.sessionId !== null ? link(sessionHref(c.sessionId), `#${c.sessionId}`) : '') }] : []),
      { label: 'Served by', cell: (c) => c.transport },
      { label: 'Outcome', cell: (c) => [badge(c.outcome), c.reason ? h('span', { class: 'sub' }, c.reason) : null] },
      { label: 'Bytes', cell: (c) => bytesOrDash(c.bytes), numeric: true },
      { label: 'Time', cell: (c) => duration(c.durationMs), numeric: true },
      { label: 'Repairs', cell: (c) => count(c.repairsRequested), numeric: true },
      { label: 'Admitted', cell: (c) => when(c.admittedAt) },
      { label: 'Finished', cell: (c) => when(c.finishedAt) },
    ],
    clients,
    'No clients served yet.',
  );
}

/** Receive rates of a live session's clients, from the bytes they had at successive refreshes. */
export class ClientRates {
  private readonly last = new Map<string, { bytes: number; at: number; rateBps: number | null }>();

  update(clients: LiveClientStatus[]): void {
    const now = performance.now();
    for (const c of clients) {
      const prev = this.last.get(c.ticket);
      let rateBps: number | null = prev?.rateBps ?? null;
      if (prev && now > prev.at) rateBps = ((c.bytesComplete - prev.bytes) * 8 * 1000) / (now - prev.at);
      // Only a receiver still taking data has a rate ('admitted': not joined yet).
      if (c.outcome !== 'active') rateBps = null;
      this.last.set(c.ticket, { bytes: c.bytesComplete, at: now, rateBps });
    }
  }

  of(ticket: string): number | null {
    return this.last.get(ticket)?.rateBps ?? null;
  }
}

/** A live session's state and its clients' progress. */
export function liveSession(live: LiveSessionStatus, rates: ClientRates, caption: string): HTMLElement {
  return h(
    'div',
    { class: 'live' },
    facts([
      ['Phase', badge(live.phase)],
      ['Admits clients', live.admitting ? 'yes' : 'no'],
      ['Sending at', live.rateBps === null ? '—' : formatRate(live.rateBps)],
      ['First pass', [progress(live.imageSize ? live.firstPassBytes / live.imageSize : 0, 'first pass sent'), ` ${formatBytes(live.firstPassBytes)} of ${formatBytes(live.imageSize)}`]],
      ['On the wire', formatBytes(live.wireBytes)],
    ]),
    table(
      caption,
      [
        { label: 'Client', cell: (c: LiveClientStatus) => c.name },
        { label: 'State', cell: (c) => [badge(c.outcome), c.reason ? h('span', { class: 'sub' }, c.reason) : null] },
        { label: 'Progress', cell: (c) => progress(c.progress, `${c.name} received`) },
        { label: 'Received', cell: (c) => formatBytes(c.bytesComplete), numeric: true },
        { label: 'Rate', cell: (c) => { const r = rates.of(c.ticket); return r === null ? '—' : formatRate(Math.max(0, r)); }, numeric: true },
        { label: 'Repairs', cell: (c) => count(c.repairsRequested), numeric: true },
        { label: 'Loss', cell: (c) => `${(c.lossPpm / 10_000).toFixed(2)} %`, numeric: true },
        { label: 'RTT', cell: (c) => (c.rttMs === null ? '—' : `${c.rttMs.toFixed(1)} ms`), numeric: true },
      ],
      live.clients,
      'No client admitted yet.',
    ),
  );
}

/** The distribution point's multicast settings in words. */
export function dpSummary(dp: DpSettings): HTMLElement {
  return facts([
    ['Multicast', badge(dp.multicastEnabled ? 'enabled' : 'disabled')],
    ['Address pool', dp.addressPool === 'any' ? `any (${ANY_POOL_TEXT})` : `${dp.addressStart} – ${dp.addressEnd}`],
    ['UDP ports', `${dp.portStart} – ${dp.portEnd}`],
    ['Transfer rate', dp.transferRateBps === null ? 'unlimited (adapts to loss)' : formatRate(dp.transferRateBps)],
    ['Maximum clients', String(dp.maxClients)],
    [
      'Start',
      dp.scheduledMulticast
        ? `scheduled: at ${dp.minimumSessionSize} clients or ${duration(dp.sessionStartDelaySeconds * 1000)} after the first asks`
        : 'as soon as the first client asks',
    ],
    ['Auto-cast', dp.autoCast ? 'on: late clients join a running session' : 'off'],
    [
      'Slow clients',
      dp.slowClientHandling === 'none'
        ? 'no special handling'
        : `${dp.slowClientHandling === 'disconnect' ? 'disconnected' : 'moved to a slower stream'} below ${formatRate(dp.slowClientThresholdBps ?? 0)}`,
    ],
  ]);
}
