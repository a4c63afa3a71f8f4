// One image: what it is (sizes, digest, the ISO volume or the WIM's images), its package distribution settings
// (editable), its sessions, and deletion (refused by the API while a live session uses it).
import { ApiError } from '../api.js';
import type { ImageRecord, IsoInfo, WimImageInfo, WimInfo } from '../api-types.js';
import { confirmDialog, facts, h, link, notice, section, table } from '../dom.js';
import { field, saveChanges } from '../forms.js';
import { bytesOrDash, count, formatBytes, when } from '../format.js';
import type { PageContext } from '../router.js';

export const title = (params: Record<string, string>) => `Image ${params.name}`;

function isoSection(iso: IsoInfo): HTMLElement {
  return section(
    'ISO volume',
    facts([
      ['Volume id', iso.volumeId],
      ['System id', iso.systemId],
      ['Volume set', iso.volumeSetId],
      ['Publisher', iso.publisherId],
      ['Preparer', iso.preparerId],
      ['Application', iso.applicationId],
      ['Created', iso.createdAt ? when(iso.createdAt) : undefined],
      ['Volume size', formatBytes(iso.volumeBytes)],
      ['Boots on', iso.bootPlatforms.length ? iso.bootPlatforms.join(', ') : 'not bootable'],
      ['Hybrid (writable to a disk as is)', iso.hybrid ? 'yes' : 'no'],
      ['Joliet names', iso.joliet ? 'yes' : 'no'],
      ['UDF', iso.udf ? 'yes' : 'no'],
    ]),
  );
}

function wimSection(wim: WimInfo): HTMLElement {
  return section(
    'WIM images',
    wim.compression ? h('p', null, `Compression: ${wim.compression}`) : null,
    table(
      'Images in the WIM file',
      [
        { label: 'Index', cell: (i: WimImageInfo) => String(i.index), numeric: true },
        { label: 'Name', cell: (i) => [i.displayName ?? i.name, i.description ? h('span', { class: 'sub' }, i.description) : null] },
        { label: 'Edition', cell: (i) => i.editionId ?? '' },
        { label: 'Architecture', cell: (i) => i.architecture ?? '' },
        { label: 'Windows', cell: (i) => i.windowsVersion ?? '' },
        { label: 'Languages', cell: (i) => (i.languages ?? []).join(', ') },
        { label: 'Applied size', cell: (i) => bytesOrDash(i.totalBytes), numeric: true },
        { label: 'Files', cell: (i) => count(i.fileCount), numeric: true },
      ],
      wim.images,
      'The WIM file has no images.',
    ),
  );
}

function editForm(ctx: PageContext, image: ImageRecord, onSaved: (image: ImageRecord) => void): HTMLElement {
  const version = h('input', { type: 'text', name: 'version', value: image.version ?? '' });
  const description = h('input', { type: 'text', name: 'description', value: image.description ?? '' });
  const allowMulticast = h('input', { type: 'checkbox', name: 'allowMulticast', checked: image.allowMulticast });
  const encryptMulticast = h('input', { type: 'checkbox', name: 'encryptMulticast', checked: image.encryptMulticast });
  const multicastOnly = h('input', { type: 'checkbox', name: 'multicastOnly', checked: image.multicastOnly });
  const status = h('div', { 'aria-live': 'polite' });
  const save = h('button', { type: 'submit', class: 'primary' }, 'Save');
  const syncMulticast = () => {
    multicastOnly.disabled = !allowMulticast.checked;
    if (!allowMulticast.checked) multicastOnly.checked = false;
  };
  allowMulticast.addEventListener('change', syncMulticast);
  syncMulticast();
  const form = h(
    'form',
    { novalidate: true, 'aria-label': 'Image settings' },
    h('div', { class: 'row' }, field('Version', version), field('Description', description)),
    h(
      'fieldset',
      null,
      h('legend', null, 'Distribution settings'),
      field('Allow this package to be transferred via multicast', allowMulticast),
      field('Encrypt multicast packages', encryptMulticast, 'AES-256-GCM with a random key per session, given only to admitted clients.'),
      field('Transfer this package only via multicast', multicastOnly, 'No unicast fallback: clients wait for a session.'),
    ),
    status,
    h('div', { class: 'actions' }, save),
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const draft = {
      version: version.value.trim() || null,
      description: description.value.trim() || null,
      allowMulticast: allowMulticast.checked,
      encryptMulticast: encryptMulticast.checked,
      multicastOnly: multicastOnly.checked,
    };
    const saved = await saveChanges({ api: ctx.api, path: `/api/v1/images/${encodeURIComponent(image.name)}`, form, status, button: save, saved: image, draft, signal: ctx.signal });
    if (saved) onSaved((image = saved));
  });
  return form;
}

export async function render(main: HTMLElement, ctx: PageContext): Promise<void> {
  const name = ctx.params.name!;
  const image = await ctx.api.get<ImageRecord>(`/api/v1/images/${encodeURIComponent(name)}`, ctx.signal);
  const summary = h('div');
  const showSummary = (i: ImageRecord) =>
    summary.replaceChildren(
      facts([
        ['Name', i.name],
        ['Version', i.version],
        ['Description', i.description],
        ['Format', i.format],
        ['Size (as sent)', formatBytes(i.size)],
        ['Uncompressed size', i.uncompressedSize === null ? undefined : formatBytes(i.uncompressedSize)],
        ['SHA-256', h('code', { class: 'digest' }, i.digest)],
        ['Imported', when(i.createdAt)],
        ['Changed', when(i.updatedAt)],
      ]),
    );
  showSummary(image);

  const deleteStatus = h('div', { 'aria-live': 'assertive' });
  const del = h('button', { type: 'button', class: 'danger' }, 'Delete image');
  del.addEventListener('click', async () => {
    if (!(await confirmDialog(`Delete ${name}?`, 'The image leaves the library; its content is removed when no other image uses it. Clients can no longer get it.', 'Delete'))) return;
    del.disabled = true;
    try {
      await ctx.api.request<void>('DELETE', `/api/v1/images/${encodeURIComponent(name)}`, undefined, ctx.signal);
      ctx.navigate('/console/images', `Image ${name} was deleted.`);
    } catch (err) {
      if (!(err instanceof ApiError) || err.status === 401) throw err;
      deleteStatus.replaceChildren(notice('error', err.status === 409 ? `Not deleted: ${err.message}` : err.message));
      del.disabled = false;
    }
  });

  const iso = image.details.iso as IsoInfo | undefined;
  const wim = image.details.wim as WimInfo | undefined;
  main.append(
    h('h1', null, `Image ${name}`),
    h('p', null, link('/console/images', 'All images'), ' · ', link(`/console/sessions?image=${encodeURIComponent(name)}`, 'Its sessions'), ' · ', link(`/console/clients?image=${encodeURIComponent(name)}`, 'Its clients')),
    section('Summary', summary),
    ...(iso ? [isoSection(iso)] : []),
    ...(wim ? [wimSection(wim)] : []),
    section('Settings', editForm(ctx, image, showSummary)),
    section('Delete', h('p', null, 'Refused while a live multicast session sends this image.'), deleteStatus, del),
  );
}
