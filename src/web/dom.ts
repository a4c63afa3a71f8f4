// Building blocks of the console's pages, made with DOM calls (text is always text, never parsed as HTML, so
// names and messages from the server cannot inject markup, and the CSP needs no exceptions).

export type Child = Node | string | number | null | undefined | false | Child[];
type AttrValue = string | number | boolean | null | undefined;
type Attrs = Record<string, AttrValue | ((e: Event) => void)>;

/** An element: attributes (on* are listeners; true is a bare attribute; false/null/undefined are left out) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs | null = null, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (typeof value === 'function') el.addEventListener(name.slice(2).toLowerCase(), value);
    else if (value === true) el.setAttribute(name, '');
    else if (value !== false && value !== null && value !== undefined) el.setAttribute(name, String(value));
  }
  append(el, children);
  return el;
}

function append(el: Node, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
}

/** A link to a console page (the router handles the click). */
export const link = (href: string, ...children: Child[]) => h('a', { href }, ...children);

export interface Column<T> {
  label: string;
  cell: (row: T) => Child;
  /** Right-aligned (numbers). */
  numeric?: boolean;
}

/** A data table with a caption (read by screen readers; visually hidden when `hideCaption`). */
export function table<T>(caption: string, columns: Column<T>[], rows: T[], empty: string, hideCaption = true): HTMLElement {
  if (rows.length === 0) return h('p', { class: 'empty' }, empty);
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      null,
      h('caption', hideCaption ? { class: 'visually-hidden' } : null, caption),
      h('thead', null, h('tr', null, columns.map((c) => h('th', { scope: 'col', class: c.numeric ? 'num' : null }, c.label)))),
      h('tbody', null, rows.map((row) => h('tr', null, columns.map((c) => h('td', { class: c.numeric ? 'num' : null }, c.cell(row)))))),
    ),
  );
}

/** A definition list of label/value pairs; pairs with an undefined value are left out. */
export function facts(pairs: [string, Child][]): HTMLElement {
  return h('dl', { class: 'facts' }, pairs.filter(([, v]) => v !== undefined).map(([k, v]) => [h('dt', null, k), h('dd', null, v === null || v === '' ? '—' : v)]));
}

const BADGE_KINDS: Record<string, string> = {
  completed: 'ok',
  running: 'active',
  transferring: 'active',
  waiting: 'pending',
  scheduled: 'pending',
  admitted: 'pending',
  pending: 'pending',
  active: 'active',
  left: 'warn',
  failed: 'bad',
  aborted: 'bad',
  dropped: 'warn',
  cancelled: 'warn',
  'fell-back-to-unicast': 'warn',
  enabled: 'ok',
  disabled: 'warn',
};

/** A state shown as a coloured label (the text says it all; colour only helps). */
export const badge = (text: string) => h('span', { class: `badge ${BADGE_KINDS[text] ?? ''}` }, text);

/** A progress bar with its percentage as text beside it. */
export function progress(fraction: number, label: string): HTMLElement {
  const f = Math.max(0, Math.min(1, Number.isFinite(fraction) ? fraction : 0));
  return h('span', { class: 'progress' }, h('progress', { max: 1, value: f, 'aria-label': label }), h('span', null, `${(f * 100).toFixed(f > 0 && f < 0.1 ? 1 : 0)} %`));
}

/** A message box: 'error' is announced at once (role alert), the others politely (role status). */
export function notice(kind: 'error' | 'ok' | 'info', text: Child): HTMLElement {
  return h('div', { class: `notice ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text);
}

/** A page section with a heading (h2) labelling it. */
export function section(title: string, ...children: Child[]): HTMLElement {
  const id = `s-${title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
  return h('section', { 'aria-labelledby': id }, h('h2', { id }, title), ...children);
}

/** Asks for confirmation in a modal dialog (Escape or Cancel: no). Resolves true when confirmed. */
export function confirmDialog(title: string, message: string, confirmLabel: string, dismissLabel = 'Cancel'): Promise<boolean> {
  return new Promise((resolve) => {
    const dialog = h(
      'dialog',
      { 'aria-labelledby': 'confirm-title', 'aria-describedby': 'confirm-message' },
      h(
        'form',
        { method: 'dialog' },
        h('h2', { id: 'confirm-title' }, title),
        h('p', { id: 'confirm-message' }, message),
        h('div', { class: 'actions' }, h('button', { value: 'cancel', autofocus: true }, dismissLabel), h('button', { value: 'confirm', class: 'danger' }, confirmLabel)),
      ),
    );
    dialog.addEventListener('close', () => {
      resolve(dialog.returnValue === 'confirm');
      dialog.remove();
    });
    document.body.appendChild(dialog);
    dialog.showModal();
  });
}
