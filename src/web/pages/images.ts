// Images: the content library, imports (a file on the server by its path, or an upload from this computer
// with its progress), and the import jobs since the server started with their progress; a running import
// can be cancelled (nothing of it stays in the library).
import { ApiError, query } from '../api.js';
import type { ImageRecord, ImportJob } from '../api-types.js';
import { badge, h, link, notice, progress, section, table } from '../dom.js';
import { clearProblems, field, radios, showProblems } from '../forms.js';
import { bytesOrDash, formatBytes, when } from '../format.js';
import type { PageContext } from '../router.js';
import { imageHref } from '../views.js';

export const title = 'Images';

const FORMATS = ['raw', 'gzip', 'zstd', 'iso', 'wim'];
const NAME_PATTERN = '[A-Za-z0-9][A-Za-z0-9._\\-]*';

/** The package's multicast settings in a few words. */
export function multicastText(i: ImageRecord): string {
  if (!i.allowMulticast) return 'unicast only';
  return ['multicast', i.encryptMulticast ? 'encrypted' : null, i.multicastOnly ? 'multicast only' : null].filter(Boolean).join(', ');
}

/** A name the library accepts, made from a file name ("Win 11 (x64).wim" → "Win-11-x64"). */
function nameFromFile(fileName: string): string {
  return fileName
    .replace(/\.(img|raw|gz|zst|iso|wim)$/gi, '')
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 128);
}

function importForm(ctx: PageContext, onStarted: () => void): HTMLElement {
  let source: 'path' | 'upload' = 'path';
  const path = h('input', { type: 'text', name: 'path', spellcheck: 'false', placeholder: '/srv/images/win11.wim' });
  const file = h('input', { type: 'file', name: 'file' });
  const name = h('input', { type: 'text', name: 'name', required: true, pattern: NAME_PATTERN, maxlength: 128, spellcheck: 'false' });
  const version = h('input', { type: 'text', name: 'version' });
  const description = h('input', { type: 'text', name: 'description' });
  const format = h('select', { name: 'format' }, h('option', { value: '' }, 'detect from the content'), FORMATS.map((f) => h('option', { value: f }, f)));
  const allowMulticast = h('input', { type: 'checkbox', name: 'allowMulticast', checked: true });
  const encryptMulticast = h('input', { type: 'checkbox', name: 'encryptMulticast' });
  const multicastOnly = h('input', { type: 'checkbox', name: 'multicastOnly' });
  const pathField = field('Path of the file on the server', path, 'Read by the server itself: the server\'s user must be able to read it. Raw, .gz, .zst, ISO or WIM.');
  const fileField = field('File to upload', file, 'Sent to the server over HTTP, then imported.');
  const uploadStatus = h('div', { 'aria-live': 'polite' });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Import');
  const cancelUpload = h('button', { type: 'button', hidden: true }, 'Cancel upload');
  let uploading: AbortController | null = null;

  const syncSource = () => {
    pathField.hidden = source !== 'path';
    fileField.hidden = source !== 'upload';
  };
  const syncMulticast = () => {
    // ConfigMgr greys out "multicast only" unless multicast is allowed.
    multicastOnly.disabled = !allowMulticast.checked;
    if (!allowMulticast.checked) multicastOnly.checked = false;
  };
  allowMulticast.addEventListener('change', syncMulticast);
  file.addEventListener('change', () => {
    const f = file.files?.[0];
    if (f && !name.value) name.value = nameFromFile(f.name);
  });
  cancelUpload.addEventListener('click', () => uploading?.abort());

  const form = h(
    'form',
    { class: 'import', novalidate: true, 'aria-label': 'Import an image' },
    radios('Source', 'source', [['path', 'A file on the server'], ['upload', 'Upload from this computer']], source, (v) => {
      source = v as typeof source;
      syncSource();
    }),
    pathField,
    fileField,
    h('div', { class: 'row' }, field('Name', name, 'Letters, digits, dot, dash, underscore; how clients ask for the image'), field('Version', version), field('Format', format)),
    field('Description', description),
    h(
      'fieldset',
      null,
      h('legend', null, 'Distribution settings'),
      field('Allow this package to be transferred via multicast', allowMulticast),
      field('Encrypt multicast packages', encryptMulticast),
      field('Transfer this package only via multicast', multicastOnly, 'No unicast fallback: clients wait for a session.'),
    ),
    uploadStatus,
    h('div', { class: 'actions' }, submit, cancelUpload),
  );
  syncSource();
  syncMulticast();

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearProblems(form);
    uploadStatus.replaceChildren();
    const problems = [];
    if (!name.value.trim()) problems.push({ path: '/name', message: 'Give the image a name.' });
    else if (!new RegExp(`^${NAME_PATTERN}$`).test(name.value.trim())) problems.push({ path: '/name', message: 'A name starts with a letter or digit and has only letters, digits, dot, dash and underscore.' });
    if (source === 'path' && !path.value.trim()) problems.push({ path: '/path', message: 'Give the path of the image file on the server.' });
    const chosen = file.files?.[0];
    if (source === 'upload' && !chosen) problems.push({ path: '/file', message: 'Choose the file to upload.' });
    if (problems.length) {
      showProblems(form, problems, '');
      return;
    }
    const settings = {
      name: name.value.trim(),
      ...(version.value.trim() ? { version: version.value.trim() } : {}),
      ...(description.value.trim() ? { description: description.value.trim() } : {}),
      ...(format.value ? { format: format.value } : {}),
      allowMulticast: allowMulticast.checked,
      encryptMulticast: encryptMulticast.checked,
      multicastOnly: multicastOnly.checked,
    };
    submit.disabled = true;
    try {
      if (source === 'path') {
        await ctx.api.request<ImportJob>('POST', '/api/v1/imports', { path: path.value.trim(), ...settings }, ctx.signal);
      } else {
        uploading = new AbortController();
        const stop = () => uploading?.abort();
        ctx.signal.addEventListener('abort', stop, { once: true });
        cancelUpload.hidden = false;
        const bar = h('div');
        uploadStatus.replaceChildren(bar);
        const show = (sent: number, total: number) => bar.replaceChildren(h('p', null, `Uploading ${chosen!.name}: ${formatBytes(sent)} of ${formatBytes(total)}`), progress(total ? sent / total : 0, 'upload'));
        show(0, chosen!.size);
        try {
          await ctx.api.upload<ImportJob>(`/api/v1/imports/upload${query(settings)}`, chosen!, show, uploading.signal);
        } finally {
          ctx.signal.removeEventListener('abort', stop);
          uploading = null;
          cancelUpload.hidden = true;
        }
      }
      uploadStatus.replaceChildren(notice('ok', `Import of ${settings.name} started: its progress is under Imports.`));
      form.reset();
      // reset() puts the source radios back to their first state: keep the source the administrator chose.
      for (const r of form.querySelectorAll<HTMLInputElement>('input[name=source]')) r.checked = r.value === source;
      syncSource();
      syncMulticast();
      onStarted();
    } catch (err) {
      if ((err as Error).name === 'AbortError') {
        uploadStatus.replaceChildren(notice('info', 'Upload cancelled: nothing was imported.'));
        return;
      }
      if (!(err instanceof ApiError) || err.status === 401) throw err;
      // A taken name is a conflict (409) about the name field.
      showProblems(form, err.status === 409 ? [{ path: '/name', message: err.message }] : err.problems, err.message);
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

function importsTable(jobs: ImportJob[], onCancel: (job: ImportJob) => void): HTMLElement {
  return table(
    'Imports since the server started',
    [
      { label: 'Name', cell: (j: ImportJob) => (j.state === 'completed' && j.image ? link(imageHref(j.name), j.name) : j.name) },
      { label: 'Source', cell: (j) => h('span', { class: 'path' }, j.source) },
      { label: 'State', cell: (j) => [badge(j.state), j.error ? h('span', { class: 'sub' }, j.error.message) : null] },
      {
        label: 'Progress',
        cell: (j) => (j.state === 'running' ? [progress(j.totalBytes ? j.doneBytes / j.totalBytes : 0, `import of ${j.name}`), h('span', { class: 'sub' }, `${j.stage}: ${formatBytes(j.doneBytes)} of ${formatBytes(j.totalBytes)}`)] : formatBytes(j.totalBytes)),
      },
      { label: 'Started', cell: (j) => when(j.startedAt) },
      { label: '', cell: (j) => (j.state === 'running' ? h('button', { type: 'button', onclick: () => onCancel(j), 'aria-label': `Cancel the import of ${j.name}` }, 'Cancel') : null) },
    ],
    [...jobs].sort((a, b) => b.startedAt.localeCompare(a.startedAt)),
    'No import since the server started.',
  );
}

export async function render(main: HTMLElement, ctx: PageContext): Promise<void> {
  const library = h('div');
  const imports = h('div');
  const importStatus = h('div', { 'aria-live': 'polite' });
  let wake: (() => void) | null = null;
  main.append(
    h('h1', null, 'Images'),
    section('Library', library),
    section(
      'Import an image',
      importForm(ctx, () => wake?.()),
    ),
    section('Imports', importStatus, imports),
  );
  const cancel = async (job: ImportJob) => {
    try {
      await ctx.api.request<ImportJob>('DELETE', `/api/v1/imports/${job.id}`, undefined, ctx.signal);
      importStatus.replaceChildren(notice('ok', `The import of ${job.name} was cancelled: the library is as it was.`));
    } catch (err) {
      if (!(err instanceof ApiError) || err.status === 401) throw err;
      importStatus.replaceChildren(notice('error', err.message));
    }
  };
  let lastCompleted = -1;
  let images: ImageRecord[] = [];
  const refresh = async () => {
    const jobs = await ctx.api.get<ImportJob[]>('/api/v1/imports', ctx.signal);
    const completed = jobs.filter((j) => j.state === 'completed').length;
    // The library changes when an import completes (or another administrator deletes): fetched each time it may have.
    if (completed !== lastCompleted || jobs.every((j) => j.state !== 'running')) {
      images = await ctx.api.get<ImageRecord[]>('/api/v1/images', ctx.signal);
      lastCompleted = completed;
    }
    imports.replaceChildren(importsTable(jobs, (j) => void cancel(j)));
    library.replaceChildren(
      table(
        'The content library',
        [
          { label: 'Name', cell: (i: ImageRecord) => link(imageHref(i.name), i.name) },
          { label: 'Version', cell: (i) => i.version ?? '' },
          { label: 'Format', cell: (i) => i.format },
          { label: 'Size', cell: (i) => [formatBytes(i.size), i.uncompressedSize !== null ? h('span', { class: 'sub' }, `${bytesOrDash(i.uncompressedSize)} uncompressed`) : null], numeric: true },
          { label: 'Distribution', cell: (i) => multicastText(i) },
          { label: 'Description', cell: (i) => i.description ?? '' },
          { label: 'Imported', cell: (i) => when(i.createdAt) },
        ],
        images,
        'The library is empty: import an image below.',
      ),
    );
  };
  // Import jobs are followed closely while one runs, less often otherwise.
  await refresh();
  let idleRounds = 0;
  ctx.every(
    1000,
    async () => {
      const running = imports.querySelector('progress') !== null;
      if (running || ++idleRounds >= 5) {
        idleRounds = 0;
        await refresh();
      }
    },
    false,
  );
  wake = () => {
    idleRounds = 5;
  };
}
