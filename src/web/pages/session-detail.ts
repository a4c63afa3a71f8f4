// One session: what it sent (wire bytes, packets), the settings it ran with, each client's progress while it
// is live (refreshed every second) and each client's outcome; a live session can be cancelled.
import { ApiError, query } from '../api.js';
import type { ClientRecord, Session } from '../api-types.js';
import { badge, confirmDialog, facts, h, link, notice, section } from '../dom.js';
import { bytesOrDash, count, duration, formatRate, when } from '../format.js';
import type { PageContext } from '../router.js';
import { ClientRates, clientsTable, imageHref, liveSession } from '../views.js';

export const title = (params: Record<string, string>) => `Session #${params.id}`;

const LIVE_REFRESH_MS = 1000;
const isLive = (s: Session) => s.state === 'waiting' || s.state === 'running';

const yesNo = (v: unknown) => (v ? 'yes' : 'no');
const rateText = (v: unknown) => (v === null ? 'unlimited' : formatRate(Number(v)));

/** Labels and formats of the parameters a session records (src/server/session-manager.ts); others show as they are. */
const PARAMS: Record<string, [label: string, format?: (v: unknown) => string]> = {
  tier: ['Stream', (v) => (v === 'slow' ? 'slower stream (slow clients)' : 'normal')],
  rateBps: ['Transfer rate', rateText],
  encrypted: ['Encrypted', (v) => (v ? 'yes (AES-256-GCM)' : 'no')],
  autoCast: ['Auto-cast', yesNo],
  scheduledMulticast: ['Scheduled', yesNo],
  sessionStartDelaySeconds: ['Start delay', (v) => duration(Number(v) * 1000)],
  minimumSessionSize: ['Minimum session size'],
  slowClientHandling: ['Slow clients'],
  slowClientThresholdBps: ['Slow below', rateText],
  interface: ['Interface'],
  ttl: ['Multicast TTL'],
  mtu: ['MTU (bytes)'],
  fec: ['FEC scheme'],
  symbolSize: ['Symbol size (bytes)'],
  blockSymbols: ['Symbols per FEC block'],
  blockBytes: ['FEC block (bytes)', (v) => count(Number(v))],
  engineSessionId: ['Engine session id'],
};

function paramsFacts(params: Record<string, unknown>): HTMLElement {
  return facts(
    Object.entries(params).map(([key, v]) => {
      const [label, format] = PARAMS[key] ?? [key];
      return [label, v === null || v === undefined ? '—' : format ? format(v) : typeof v === 'object' ? JSON.stringify(v) : String(v)];
    }),
  );
}

export async function render(main: HTMLElement, ctx: PageContext): Promise<void> {
  const id = Number(ctx.params.id);
  if (!Number.isInteger(id) || id < 1) {
    main.append(h('h1', null, 'No such session'), notice('error', `"${ctx.params.id}" is not a session number.`));
    return;
  }
  const heading = h('h1', null, `Session #${id}`);
  const actions = h('div', { class: 'actions' });
  const status = h('div', { 'aria-live': 'polite' });
  const summary = h('div');
  const live = h('div');
  const clients = h('div');
  const params = h('div');
  main.append(heading, actions, status, section('Summary', summary), live, section('Clients', clients), section('Settings it ran with', params));

  const rates = new ClientRates();
  let cancelShown = false;
  let ended = false;
  const cancel = h('button', { type: 'button', class: 'danger' }, 'Cancel session');
  cancel.addEventListener('click', async () => {
    if (!(await confirmDialog(`Cancel session #${id}?`, 'Its clients are told at once; those that allow it fall back to unicast, the others fail. This cannot be undone.', 'Cancel the session', 'Keep it running'))) return;
    cancel.disabled = true;
    try {
      await ctx.api.request<Session>('POST', `/api/v1/sessions/${id}/cancel`, {}, ctx.signal);
      status.replaceChildren(notice('ok', `Session #${id} was cancelled.`));
      // The button goes with the live state: keep the keyboard's place on the page.
      heading.tabIndex = -1;
      heading.focus();
    } catch (err) {
      if (!(err instanceof ApiError) || err.status === 401) throw err;
      status.replaceChildren(notice('error', err.message));
    } finally {
      cancel.disabled = false;
    }
  });

  const refresh = async () => {
    const [s, outcomes] = await Promise.all([
      ctx.api.get<Session>(`/api/v1/sessions/${id}`, ctx.signal),
      ctx.api.get<ClientRecord[]>(`/api/v1/clients${query({ session: id, limit: 10000 })}`, ctx.signal),
    ]);
    if (isLive(s) && !cancelShown) {
      actions.replaceChildren(cancel);
      cancelShown = true;
    } else if (!isLive(s)) {
      actions.replaceChildren();
      ended = true;
    }
    summary.replaceChildren(
      facts([
        ['Image', s.imageId !== null ? link(imageHref(s.imageName), s.imageName) : `${s.imageName} (deleted)`],
        ['State', badge(s.state)],
        ['Group:port', h('code', null, `${s.group}:${s.port}`)],
        ['Created', when(s.createdAt)],
        ['Started', when(s.startedAt)],
        ['Ended', when(s.endedAt)],
        ['Duration', duration(s.durationMs)],
        ['Wire bytes', bytesOrDash(s.live ? s.live.wireBytes : s.wireBytes)],
        ['Source packets', count(s.sourcePackets)],
        ['Parity (repair) packets', count(s.parityPackets)],
        ['Control packets', count(s.controlPackets)],
        ['End reason', s.endReason ?? (isLive(s) ? 'live' : '')],
      ]),
    );
    if (s.live) {
      rates.update(s.live.clients);
      live.replaceChildren(section('Live progress', liveSession(s.live, rates, `Clients of session ${id}, live`)));
    } else live.replaceChildren();
    clients.replaceChildren(clientsTable(outcomes, `Clients of session ${id}`, false));
    params.replaceChildren(paramsFacts(s.params));
  };
  // The first load's failure (no such session) is the page's error; later ones are shown as a banner.
  await refresh();
  ctx.every(
    LIVE_REFRESH_MS,
    async () => {
      // An ended session no longer changes: one last refresh, then the page stays as it is.
      if (!ended) await refresh();
    },
    false,
  );
}
