// Distribution point settings: every multicast setting (ConfigMgr's multicast tab plus WDS's auto-cast and
// slow-client handling) in one form. Only changed settings are sent; the API checks them as a whole and each
// problem it reports is shown next to its field.
import type { DpSettings, FieldProblem, SlowClientHandling } from '../api-types.js';
import { ANY_POOL_TEXT } from '../api-types.js';
import { h } from '../dom.js';
import { clearProblems, field, radios, saveChanges, showProblems } from '../forms.js';
import { parseRateInput, rateInput } from '../format.js';
import type { PageContext } from '../router.js';

export const title = 'Distribution point';

const RATE_PROFILES = ['unlimited', '10 Mbps', '100 Mbps', '1 Gbps', '10 Gbps'];

const numberInput = (name: keyof DpSettings, min: number, step = '1') => h('input', { type: 'number', name, min, step, inputmode: 'numeric', required: true });
const textInput = (name: keyof DpSettings, extra: Record<string, string> = {}) => h('input', { type: 'text', name, spellcheck: 'false', ...extra });
const checkbox = (name: keyof DpSettings) => h('input', { type: 'checkbox', name });

export async function render(main: HTMLElement, ctx: PageContext): Promise<void> {
  let saved = await ctx.api.get<DpSettings>('/api/v1/dp', ctx.signal);

  const c = {
    multicastEnabled: checkbox('multicastEnabled'),
    addressStart: textInput('addressStart', { placeholder: '239.255.0.1' }),
    addressEnd: textInput('addressEnd', { placeholder: '239.255.0.255' }),
    portStart: numberInput('portStart', 1024),
    portEnd: numberInput('portEnd', 1024),
    transferRateBps: textInput('transferRateBps', { list: 'rate-profiles' }),
    maxClients: numberInput('maxClients', 1),
    scheduledMulticast: checkbox('scheduledMulticast'),
    sessionStartDelaySeconds: numberInput('sessionStartDelaySeconds', 0, 'any'),
    minimumSessionSize: numberInput('minimumSessionSize', 1),
    autoCast: checkbox('autoCast'),
    slowClientHandling: h(
      'select',
      { name: 'slowClientHandling' },
      h('option', { value: 'none' }, 'none'),
      h('option', { value: 'disconnect' }, 'disconnect slow clients (they fall back to unicast)'),
      h('option', { value: 'slower-stream' }, 'move slow clients to a slower stream'),
    ),
    slowClientThresholdBps: textInput('slowClientThresholdBps', { placeholder: '10M' }),
  };
  let pool: DpSettings['addressPool'] = saved.addressPool;
  const poolRadios = radios('Multicast address pool', 'addressPool', [['any', `Use any available address (${ANY_POOL_TEXT})`], ['range', 'Use addresses in this range']], pool, (v) => {
    pool = v as DpSettings['addressPool'];
    syncEnabled();
  });

  const syncEnabled = () => {
    c.addressStart.disabled = c.addressEnd.disabled = pool !== 'range';
    c.sessionStartDelaySeconds.disabled = c.minimumSessionSize.disabled = !c.scheduledMulticast.checked;
    c.slowClientThresholdBps.disabled = c.slowClientHandling.value === 'none';
  };

  const fill = (s: DpSettings) => {
    c.multicastEnabled.checked = s.multicastEnabled;
    pool = s.addressPool;
    for (const r of poolRadios.querySelectorAll<HTMLInputElement>('input[type=radio]')) r.checked = r.value === pool;
    c.addressStart.value = s.addressStart ?? '';
    c.addressEnd.value = s.addressEnd ?? '';
    c.portStart.value = String(s.portStart);
    c.portEnd.value = String(s.portEnd);
    c.transferRateBps.value = rateInput(s.transferRateBps);
    c.maxClients.value = String(s.maxClients);
    c.scheduledMulticast.checked = s.scheduledMulticast;
    c.sessionStartDelaySeconds.value = String(+(s.sessionStartDelaySeconds / 60).toFixed(2));
    c.minimumSessionSize.value = String(s.minimumSessionSize);
    c.autoCast.checked = s.autoCast;
    c.slowClientHandling.value = s.slowClientHandling;
    c.slowClientThresholdBps.value = s.slowClientThresholdBps === null ? '' : rateInput(s.slowClientThresholdBps);
    syncEnabled();
  };

  /** The form as settings, with the problems found before asking the server (unreadable numbers, rates). */
  const read = (): { draft: DpSettings; problems: FieldProblem[] } => {
    const problems: FieldProblem[] = [];
    const num = (name: keyof DpSettings, input: HTMLInputElement, scale = 1): number => {
      const text = input.value.trim();
      const n = Number(text);
      if (text === '' || !Number.isFinite(n)) problems.push({ path: `/${name}`, message: `give a number (got "${input.value}")` });
      return n * scale;
    };
    const rate = (name: keyof DpSettings, input: HTMLInputElement, allowUnlimited: boolean): number | null => {
      try {
        return parseRateInput(input.value, allowUnlimited);
      } catch (err) {
        problems.push({ path: `/${name}`, message: (err as Error).message });
        return null;
      }
    };
    const slowClientHandling = c.slowClientHandling.value as SlowClientHandling;
    const draft: DpSettings = {
      multicastEnabled: c.multicastEnabled.checked,
      addressPool: pool,
      addressStart: pool === 'range' ? c.addressStart.value.trim() || null : null,
      addressEnd: pool === 'range' ? c.addressEnd.value.trim() || null : null,
      portStart: num('portStart', c.portStart),
      portEnd: num('portEnd', c.portEnd),
      transferRateBps: rate('transferRateBps', c.transferRateBps, true),
      maxClients: num('maxClients', c.maxClients),
      scheduledMulticast: c.scheduledMulticast.checked,
      sessionStartDelaySeconds: c.scheduledMulticast.checked ? num('sessionStartDelaySeconds', c.sessionStartDelaySeconds, 60) : saved.sessionStartDelaySeconds,
      minimumSessionSize: c.scheduledMulticast.checked ? num('minimumSessionSize', c.minimumSessionSize) : saved.minimumSessionSize,
      autoCast: c.autoCast.checked,
      slowClientHandling,
      slowClientThresholdBps: slowClientHandling === 'none' ? saved.slowClientThresholdBps : rate('slowClientThresholdBps', c.slowClientThresholdBps, true),
    };
    return { draft, problems };
  };

  const status = h('div', { 'aria-live': 'polite' });
  const save = h('button', { type: 'submit', class: 'primary' }, 'Save');
  const form = h(
    'form',
    { class: 'settings', novalidate: true, 'aria-labelledby': 'dp-title' },
    h('fieldset', null, h('legend', null, 'Multicast'), field('Enable multicast to simultaneously send data to multiple clients', c.multicastEnabled, 'When off, every client is served by unicast (multicast-only packages wait).')),
    h(
      'fieldset',
      null,
      h('legend', null, 'Multicast address settings'),
      poolRadios,
      h('div', { class: 'row' }, field('From', c.addressStart, 'IPv4 (224.0.0.0/4) or IPv6 (ff00::/8)'), field('To', c.addressEnd)),
      h('div', { class: 'row' }, field('UDP port range: from', c.portStart), field('to', c.portEnd, '1024 – 65535')),
    ),
    h(
      'fieldset',
      null,
      h('legend', null, 'Clients'),
      h(
        'div',
        { class: 'row' },
        field('Client transfer rate', c.transferRateBps, 'bits/s, e.g. 100M or 1 Gbps; "unlimited" adapts to the clients\' loss'),
        field('Maximum clients', c.maxClients, 'served by multicast at once, over all sessions; others get unicast'),
      ),
      h('datalist', { id: 'rate-profiles' }, RATE_PROFILES.map((p) => h('option', { value: p }))),
    ),
    h(
      'fieldset',
      null,
      h('legend', null, 'Scheduled multicast'),
      field('Enable scheduled multicast', c.scheduledMulticast, 'A session waits for enough clients, or for the start delay, before it starts.'),
      h('div', { class: 'row' }, field('Session start delay (minutes)', c.sessionStartDelaySeconds), field('Minimum session size (clients)', c.minimumSessionSize)),
    ),
    h(
      'fieldset',
      null,
      h('legend', null, 'Transfer (WDS)'),
      field('Auto-cast: clients may join a session that is already sending', c.autoCast, 'They get what they missed in later passes.'),
      h('div', { class: 'row' }, field('Slow clients', c.slowClientHandling), field('Slow below (bits/s)', c.slowClientThresholdBps, 'e.g. 10M; below the transfer rate')),
    ),
    h('div', { class: 'actions' }, save, h('button', { type: 'button', onclick: () => (clearProblems(form), status.replaceChildren(), fill(saved)) }, 'Undo changes')),
  );
  for (const el of [c.scheduledMulticast, c.slowClientHandling]) el.addEventListener('change', syncEnabled);

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const { draft, problems } = read();
    if (problems.length) {
      status.replaceChildren();
      showProblems(form, problems, 'Some settings could not be read.');
      return;
    }
    const result = await saveChanges({ api: ctx.api, path: '/api/v1/dp', form, status, button: save, saved, draft, signal: ctx.signal });
    if (result) fill((saved = result));
  });

  fill(saved);
  main.append(h('h1', { id: 'dp-title' }, 'Distribution point settings'), h('p', null, 'Multicast settings of this distribution point. Changes apply to new sessions; running sessions keep the settings they started with.'), status, form);
}
