// Sessions: every multicast session, newest first, filtered by state or image; refreshed while shown.
import { query } from '../api.js';
import type { Session, SessionState } from '../api-types.js';
import { h } from '../dom.js';
import { field } from '../forms.js';
import type { PageContext } from '../router.js';
import { sessionsTable } from '../views.js';

export const title = 'Sessions';

const STATES: SessionState[] = ['waiting', 'running', 'completed', 'failed', 'cancelled', 'aborted'];

export async function render(main: HTMLElement, ctx: PageContext): Promise<void> {
  const state = h('select', { name: 'state' }, h('option', { value: '' }, 'any'), STATES.map((s) => h('option', { value: s, selected: ctx.query.get('state') === s }, s)));
  const image = h('input', { type: 'search', name: 'image', value: ctx.query.get('image') ?? '', placeholder: 'image name' });
  const filters = h(
    'form',
    { class: 'filters', role: 'search', 'aria-label': 'Filter sessions' },
    field('State', state),
    field('Image', image),
    h('button', { type: 'submit' }, 'Filter'),
  );
  filters.addEventListener('submit', (e) => {
    e.preventDefault();
    ctx.navigate(`/console/sessions${query({ state: state.value, image: image.value.trim() })}`);
  });
  state.addEventListener('change', () => filters.requestSubmit());
  const list = h('div');
  main.append(h('h1', null, 'Sessions'), filters, list);
  ctx.every(2000, async () => {
    const sessions = await ctx.api.get<Session[]>(`/api/v1/sessions${query({ state: ctx.query.get('state'), image: ctx.query.get('image'), limit: 200 })}`, ctx.signal);
    list.replaceChildren(h('p', { class: 'count' }, `${sessions.length} session(s)${sessions.length === 200 ? ' (the newest 200)' : ''}`), sessionsTable(sessions, 'Sessions'));
  });
}
