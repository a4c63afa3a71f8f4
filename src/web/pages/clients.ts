// Clients: every client served, by multicast or unicast, and how it ended; filtered by outcome or image.
import { query } from '../api.js';
import type { ClientOutcome, ClientRecord } from '../api-types.js';
import { h } from '../dom.js';
import { field } from '../forms.js';
import type { PageContext } from '../router.js';
import { clientsTable } from '../views.js';

export const title = 'Clients';

const OUTCOMES: ClientOutcome[] = ['pending', 'completed', 'failed', 'dropped', 'fell-back-to-unicast'];

export async function render(main: HTMLElement, ctx: PageContext): Promise<void> {
  const outcome = h('select', { name: 'outcome' }, h('option', { value: '' }, 'any'), OUTCOMES.map((o) => h('option', { value: o, selected: ctx.query.get('outcome') === o }, o)));
  const image = h('input', { type: 'search', name: 'image', value: ctx.query.get('image') ?? '', placeholder: 'image name' });
  const filters = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter clients' }, field('Outcome', outcome), field('Image', image), h('button', { type: 'submit' }, 'Filter'));
  filters.addEventListener('submit', (e) => {
    e.preventDefault();
    ctx.navigate(`/console/clients${query({ outcome: outcome.value, image: image.value.trim() })}`);
  });
  outcome.addEventListener('change', () => filters.requestSubmit());
  const list = h('div');
  main.append(h('h1', null, 'Clients'), h('p', null, 'Every client the distribution point served, how (multicast or unicast) and how it ended, newest first.'), filters, list);
  ctx.every(3000, async () => {
    const clients = await ctx.api.get<ClientRecord[]>(`/api/v1/clients${query({ outcome: ctx.query.get('outcome'), image: ctx.query.get('image'), limit: 500 })}`, ctx.signal);
    list.replaceChildren(h('p', { class: 'count' }, `${clients.length} client(s)${clients.length === 500 ? ' (the newest 500)' : ''}`), clientsTable(clients, 'Clients'));
  });
}
