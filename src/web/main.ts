// The console's entry point: sign-in with the admin token, then the pages. A page per API resource is one
// module in pages/ and one line in `routes`.
import { Api, ApiError, tokenStore } from './api.js';
import type { ServerStatus } from './api-types.js';
import { h, notice } from './dom.js';
import { field } from './forms.js';
import { Router, type Route } from './router.js';

const routes: Route[] = [
  { path: '/console/', nav: 'Dashboard', load: () => import('./pages/dashboard.js') },
  { path: '/console/images', nav: 'Images', load: () => import('./pages/images.js') },
  { path: '/console/images/:name', load: () => import('./pages/image-detail.js') },
  { path: '/console/sessions', nav: 'Sessions', load: () => import('./pages/sessions.js') },
  { path: '/console/sessions/:id', load: () => import('./pages/session-detail.js') },
  { path: '/console/clients', nav: 'Clients', load: () => import('./pages/clients.js') },
  { path: '/console/dp', nav: 'Distribution point', load: () => import('./pages/dp.js') },
];

const main = document.getElementById('main')!;
const nav = document.getElementById('nav')!;
const account = document.getElementById('account')!;
let router: Router | null = null;

const api = new Api(tokenStore.get, (message) => signOut(`Signed out: ${message}. Sign in again with a valid admin token.`));

function signOut(message?: string, kind: 'error' | 'ok' = 'error'): void {
  tokenStore.clear();
  router?.stop();
  router = null;
  nav.replaceChildren();
  account.replaceChildren();
  showSignIn(message, kind);
}

function showSignIn(message?: string, kind: 'error' | 'ok' = 'error'): void {
  document.title = 'Sign in — fleetcast console';
  const input = h('input', { type: 'password', name: 'token', required: true, autocomplete: 'current-password', spellcheck: 'false' });
  const problem = h('div', { class: 'sign-in-problem' }, message ? notice(kind, message) : null);
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const form = h(
    'form',
    { class: 'sign-in', 'aria-labelledby': 'sign-in-title' },
    h('h1', { id: 'sign-in-title', tabindex: -1 }, 'Sign in to the distribution point'),
    h('p', null, 'Give the admin token: the server printed it at its first start and keeps it in the file admin-token of its data folder. It is kept only in this browser tab, until you sign out or close the tab.'),
    problem,
    field('Admin token', input),
    h('div', { class: 'actions' }, submit),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const token = input.value.trim();
    submit.disabled = true;
    // The token is checked with a real call before the console opens.
    fetch('/api/v1/status', { headers: { authorization: `Bearer ${token}`, accept: 'application/json' } })
      .then(async (res) => {
        if (res.ok) {
          tokenStore.set(token);
          startConsole((await res.json()) as ServerStatus);
          return;
        }
        const body = (await res.json().catch(() => ({}))) as { message?: string };
        throw new ApiError(res.status, res.status === 401 ? 'That token is not valid for this server: check it and try again.' : (body.message ?? `the server answered ${res.status}`));
      })
      .catch((err: Error) => {
        const text = err instanceof ApiError ? err.message : `Cannot reach the server (${err.message}).`;
        problem.replaceChildren(notice('error', text));
        input.setAttribute('aria-invalid', 'true');
        input.focus();
      })
      .finally(() => (submit.disabled = false));
  });
  main.replaceChildren(form);
  (message ? form.querySelector<HTMLElement>('h1') : input)?.focus();
}

function startConsole(status?: ServerStatus): void {
  const version = h('span', { class: 'version' }, status ? `fleetcast ${status.version}` : '');
  account.replaceChildren(version, h('button', { type: 'button', onclick: () => signOut('You signed out.', 'ok') }, 'Sign out'));
  // A token kept from earlier in this tab is checked too: a refused one returns to the sign-in.
  if (!status) void api.get<ServerStatus>('/api/v1/status').then((s) => (version.textContent = `fleetcast ${s.version}`), () => undefined);
  router = new Router(routes, main, nav, api);
  router.start();
}

if (tokenStore.get()) startConsole();
else showSignIn();
