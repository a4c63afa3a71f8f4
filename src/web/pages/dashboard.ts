// Dashboard: the distribution point's multicast status, live sessions with each client's progress (refreshed
// every 1.5 s), recent sessions and client outcomes.
import { query } from '../api.js';
import type { ClientRecord, DpSettings, ServerStatus, Session } from '../api-types.js';
import { facts, h, link, section } from '../dom.js';
import { duration } from '../format.js';
import type { PageContext } from '../router.js';
import { ClientRates, clientsTable, dpSummary, imageHref, liveSession, sessionHref, sessionsTable } from '../views.js';

export const title = 'Dashboard';

const REFRESH_MS = 1500;

export async function render(main: HTMLElement, ctx: PageContext): Promise<void> {
  const server = h('div');
  const dp = h('div');
  const live = h('div');
  const recent = h('div');
  const clients = h('div');
  main.append(
    h('h1', null, 'Dashboard'),
    h(
      'div',
      { class: 'cards' },
      section('Distribution point', dp, h('p', null, link('/console/dp', 'Change the settings'))),
      section('Server', server),
    ),
    section('Live sessions', live),
    section('Recent sessions', recent, h('p', null, link('/console/sessions', 'All sessions'))),
    section('Recent clients', clients, h('p', null, link('/console/clients', 'All clients'))),
  );
  const rates = new ClientRates();
  ctx.every(REFRESH_MS, async () => {
    const { api, signal } = ctx;
    const [status, settings, sessions, recentClients] = await Promise.all([
      api.get<ServerStatus>('/api/v1/status', signal),
      api.get<DpSettings>('/api/v1/dp', signal),
      api.get<Session[]>(`/api/v1/sessions${query({ limit: 10 })}`, signal),
      api.get<ClientRecord[]>(`/api/v1/clients${query({ limit: 10 })}`, signal),
    ]);
    // Live sessions may be older than the ten most recent ones.
    const liveSessions = await Promise.all(status.liveSessions.map((id) => sessions.find((s) => s.id === id) ?? api.get<Session>(`/api/v1/sessions/${id}`, signal)));
    server.replaceChildren(
      facts([
        ['Version', status.version],
        ['Up for', duration(status.uptimeSeconds * 1000)],
        ['Multicast interface', status.multicastInterface ?? 'the route to each group'],
        ['Imports running', status.runningImports ? link('/console/images', String(status.runningImports)) : '0'],
      ]),
    );
    dp.replaceChildren(dpSummary(settings));
    for (const s of liveSessions) if (s.live) rates.update(s.live.clients);
    live.replaceChildren(
      ...(liveSessions.length
        ? liveSessions.map((s) =>
            h(
              'article',
              { class: 'live-session', 'aria-labelledby': `live-${s.id}` },
              h('h3', { id: `live-${s.id}` }, link(sessionHref(s.id), `Session #${s.id}`), ' — ', link(imageHref(s.imageName), s.imageName), ' ', h('code', null, `${s.group}:${s.port}`)),
              s.live ? liveSession(s.live, rates, `Clients of session ${s.id}`) : h('p', null, 'The session just ended.'),
            ),
          )
        : [h('p', { class: 'empty' }, 'No session is live. A session starts when a client asks for an image that allows multicast.')]),
    );
    recent.replaceChildren(sessionsTable(sessions, 'Recent sessions'));
    clients.replaceChildren(clientsTable(recentClients, 'Recent clients'));
  });
}
