// Forms of the console: labelled controls whose `name` is the API field they edit, the API's problems shown
// next to those controls, and saving only what changed.
import { ApiError, type Api } from './api.js';
import type { FieldProblem } from './api-types.js';
import { h, notice } from './dom.js';

let fieldCounter = 0;

/**
 * A labelled form control with an optional hint and a place for its error. The control's `name` is the API
 * field it edits, so that the API's problems land next to it (showProblems).
 */
export function field(label: string, control: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement, hint?: string): HTMLElement {
  const id = control.id || `f${++fieldCounter}`;
  control.id = id;
  const hintEl = hint ? h('p', { class: 'hint', id: `${id}-hint` }, hint) : null;
  const errorEl = h('p', { class: 'field-error', id: `${id}-error`, hidden: true });
  control.setAttribute('aria-describedby', [hintEl?.id, errorEl.id].filter(Boolean).join(' '));
  const isCheck = control instanceof HTMLInputElement && (control.type === 'checkbox' || control.type === 'radio');
  const labelEl = h('label', { for: id }, label);
  return h('div', { class: isCheck ? 'field check' : 'field' }, isCheck ? [control, labelEl] : [labelEl, control], hintEl, errorEl);
}

/** A group of radio buttons with a legend. */
export function radios(legend: string, name: string, options: [value: string, label: string][], value: string, onChange?: (value: string) => void): HTMLElement {
  return h(
    'fieldset',
    { class: 'radios' },
    h('legend', null, legend),
    options.map(([v, l]) => field(l, h('input', { type: 'radio', name, value: v, checked: v === value, onchange: () => onChange?.(v) }))),
    h('p', { class: 'field-error', id: `${name}-radios-error`, hidden: true }),
  );
}

/** Clears the errors that showProblems put on a form. */
export function clearProblems(form: HTMLElement): void {
  for (const el of form.querySelectorAll<HTMLElement>('.field-error')) {
    el.hidden = true;
    el.textContent = '';
  }
  for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  form.querySelector('.form-problems')?.remove();
}

/**
 * Shows each problem next to the control its path names (several per field are joined); problems of no field,
 * or of a field the form does not show, go to a summary at the top. Focuses the first invalid control.
 */
export function showProblems(form: HTMLFormElement, problems: FieldProblem[], fallbackMessage: string): void {
  clearProblems(form);
  const unplaced: string[] = [];
  let first: HTMLElement | null = null;
  for (const p of problems.length ? problems : [{ path: '', message: fallbackMessage }]) {
    // The control named like the first step of the problem's JSON pointer ("/portStart" → portStart).
    const field = p.path.split('/')[1];
    const control = field ? form.querySelector<HTMLElement>(`[name="${CSS.escape(field)}"]`) : null;
    const errorEl = control ? (document.getElementById(`${control.id}-error`) ?? document.getElementById(`${field}-radios-error`)) : null;
    if (!control || !errorEl) {
      unplaced.push(p.message);
      continue;
    }
    control.setAttribute('aria-invalid', 'true');
    errorEl.textContent = errorEl.textContent ? `${errorEl.textContent} ${p.message}` : p.message;
    errorEl.hidden = false;
    first ??= control;
  }
  if (unplaced.length || !first) {
    const summary = notice('error', unplaced.length ? unplaced.join(' ') : fallbackMessage);
    summary.classList.add('form-problems');
    summary.tabIndex = -1;
    form.prepend(summary);
    first ??= summary;
  }
  first.focus();
}

/**
 * Saves a form's document with PATCH, sending only the fields that differ from `saved` ("Nothing changed" when
 * none). The API's problems are shown next to their fields. Resolves with the saved document, or null.
 */
export async function saveChanges<T extends object>(o: {
  api: Api;
  path: string;
  form: HTMLFormElement;
  status: HTMLElement;
  button: HTMLButtonElement;
  saved: T;
  draft: Partial<T>;
  signal: AbortSignal;
}): Promise<T | null> {
  o.status.replaceChildren();
  const changes = Object.fromEntries(Object.entries(o.draft).filter(([k, v]) => v !== o.saved[k as keyof T]));
  if (Object.keys(changes).length === 0) {
    clearProblems(o.form);
    o.status.replaceChildren(notice('info', 'Nothing changed.'));
    return null;
  }
  o.button.disabled = true;
  try {
    const result = await o.api.request<T>('PATCH', o.path, changes, o.signal);
    clearProblems(o.form);
    o.status.replaceChildren(notice('ok', 'Saved. The settings apply to sessions that start from now on.'));
    return result;
  } catch (err) {
    if (!(err instanceof ApiError) || err.status === 401) throw err;
    showProblems(o.form, err.problems, err.message);
    return null;
  } finally {
    o.button.disabled = false;
  }
}
