// The deployment model through the API of a real server process: task sequence uploads validated with
// precise paths (unknown step, group cycle, missing variable, unknown image), collection rules and evaluated
// membership, device registration and recognition, version pinning, deployment checks, status messages
// stored once and folded into the per-device summary, and the CLI's --json output.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, tempDir, type TestServer } from '../server/helpers.js';

const doc = (steps: unknown[], extra: Record<string, unknown> = {}) => ({ formatVersion: 1, name: 'Refresh', version: 1, steps, ...extra });
const applyRaw = (image = 'base') => ({ id: 'apply', type: 'apply-image', name: 'Apply', image, destination: { disk: 'disk0' } });

async function register(s: TestServer, name: string, macs: string[], uuid?: string) {
  const res = await fetch(`${s.url}/api/client/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name, macAddresses: macs, ...(uuid ? { smbiosUuid: uuid } : {}) }) });
  assert.equal(res.status, 200);
  return (await res.json()) as { deviceId: number; credential: string; recognisedBy: string | null; pollIntervalSeconds: number };
}

async function agentCall(s: TestServer, credential: string, path: string, body: unknown) {
  const res = await fetch(`${s.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-fleetcast-device': credential }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as any };
}

test('deployment model via the API', async (t) => {
  const dir = tempDir(t, 'fc-deploy-model-');
  const s = await startServer(t, join(dir, 'data'), ['--agent-poll-interval', '7']);
  const imagePath = join(dir, 'base.img');
  writeFileSync(imagePath, randomBytes(64 * 1024));
  assert.equal((await s.cli(['image', 'import', imagePath, '--name', 'base', '--version', '2'])).code, 0);

  await t.test('uploads are validated with JSON-pointer paths; nothing is stored on error', async () => {
    const bad = async (body: unknown) => {
      const r = await s.api('POST', '/api/v1/task-sequences', body);
      assert.equal(r.status, 400, JSON.stringify(r.body));
      return r.body.errors as { path: string; message: string }[];
    };
    const unknownStep = await bad(doc([{ type: 'format-floppy' }]));
    assert.ok(unknownStep.some((e) => e.path === '/steps/0/type' && /format-floppy/.test(e.message)), JSON.stringify(unknownStep));
    const cycle = await bad(doc([{ type: 'group', use: 'a' }], { groups: { a: { steps: [{ type: 'group', use: 'b' }] }, b: { steps: [{ type: 'group', use: 'a' }] } } }));
    assert.ok(cycle.some((e) => e.path.startsWith('/groups/') && /cycle/.test(e.message)), JSON.stringify(cycle));
    const missingVar = await bad(doc([{ type: 'run-command', command: 'echo %NotDefined%', successCodes: [0] }]));
    assert.ok(missingVar.some((e) => e.path === '/steps/0/command' && /NotDefined/.test(e.message)), JSON.stringify(missingVar));
    const unknownImage = await bad(doc([applyRaw('win95')]));
    assert.deepEqual(unknownImage.map((e) => e.path), ['/steps/0/image']);
    assert.match(unknownImage[0]!.message, /not in the content library.*fleetcast image import/);
    const wrongVersion = await bad(doc([{ type: 'group', steps: [applyRaw('base/7')] }]));
    assert.deepEqual(wrongVersion.map((e) => e.path), ['/steps/0/steps/0/image']);
    assert.equal((await s.api('GET', '/api/v1/task-sequences')).body.length, 0);
    const validate = await s.api('POST', '/api/v1/task-sequences/validate', doc([applyRaw('win95')]));
    assert.equal(validate.body.valid, false);
  });

  let sequenceId = 0;
  await t.test('versions: the server numbers them; deployments pin one', async () => {
    const v1 = await s.api('POST', '/api/v1/task-sequences?comment=first', doc([applyRaw('base/2')], { version: 42, parameters: ['Site'] }));
    assert.equal(v1.status, 201, JSON.stringify(v1.body));
    sequenceId = v1.body.sequence.id;
    assert.equal(v1.body.version.version, 1);
    assert.equal(v1.body.version.document.version, 1, 'the document carries the server version');
    assert.deepEqual(v1.body.version.images, ['base/2']);
    assert.equal((await s.api('POST', '/api/v1/task-sequences', doc([applyRaw()]))).status, 409, 'a second sequence with the same name');
    const renamed = await s.api('PUT', `/api/v1/task-sequences/${sequenceId}`, { ...doc([applyRaw()]), name: 'Other' });
    assert.equal(renamed.status, 400);
    assert.equal(renamed.body.errors[0].path, '/name');
    const v2 = await s.api('PUT', `/api/v1/task-sequences/${sequenceId}`, doc([applyRaw(), { type: 'set-variable', variable: 'X', value: '1' }], { parameters: ['Site'] }));
    assert.equal(v2.status, 200, JSON.stringify(v2.body));
    assert.equal(v2.body.version.version, 2);
    const shown = await s.cli(['task-sequence', 'show', 'Refresh', '--json']);
    assert.deepEqual(JSON.parse(shown.stdout).history.map((v: { version: number }) => v.version), [1, 2]);
  });

  const macs = { a: '52:54:00:00:01:01', b: '52:54:00:00:01:02', c: '02:00:00:00:01:03' };
  let devA = 0;
  let devC = 0;
  let credA = '';
  await t.test('registration, recognition by MAC and UUID, credentials', async () => {
    const a = await register(s, 'lab-pc-1', [macs.a]);
    assert.equal(a.recognisedBy, null);
    assert.equal(a.pollIntervalSeconds, 7);
    const again = await register(s, 'lab-pc-1', [macs.a.toLowerCase()]);
    assert.equal(again.deviceId, a.deviceId);
    assert.equal(again.recognisedBy, 'mac');
    assert.equal((await agentCall(s, a.credential, '/api/client/policy', {})).status, 401, 'the old credential stops working');
    credA = again.credential;
    devA = a.deviceId;
    const b = await register(s, 'lab-pc-2', [macs.b], '4c4c4544-0000-1111-2222-333344445555');
    const byUuid = await register(s, 'renamed-pc', ['52:54:00:00:09:09'], '4C4C4544-0000-1111-2222-333344445555');
    assert.equal(byUuid.deviceId, b.deviceId);
    assert.equal(byUuid.recognisedBy, 'uuid');
    devC = (await register(s, 'kiosk-3', [macs.c])).deviceId;
    assert.equal((await agentCall(s, 'fcd_nonsense', '/api/client/policy', {})).status, 401);
    const devices = JSON.parse((await s.cli(['device', 'list', '--json'])).stdout) as { name: string; online: boolean }[];
    assert.deepEqual(devices.map((d) => d.name).sort(), ['kiosk-3', 'lab-pc-1', 'renamed-pc']);
    assert.ok(devices.every((d) => d.online));
  });

  let collectionId = 0;
  await t.test('collections: static members and rules, evaluated membership, bad rules refused', async () => {
    const glob = await s.api('POST', '/api/v1/collections', { name: 'lab', rules: [{ type: 'name-glob', pattern: 'lab-pc-?' }], variables: { Site: 'hq' } });
    assert.equal(glob.status, 201, JSON.stringify(glob.body));
    collectionId = glob.body.id;
    const members = async (id: number) => ((await s.api('GET', `/api/v1/collections/${id}`)).body.evaluated as { device: { name: string }; via: string }[]).map((m) => `${m.device.name}:${m.via}`).sort();
    assert.deepEqual(await members(collectionId), ['lab-pc-1:rule 0: name-glob lab-pc-?']);
    const mixed = await s.cli(['collection', 'create', 'mixed', '--mac-prefix', '02-00-00', '--name-regex', '^renamed', '--member', String(devA), '--json']);
    assert.equal(mixed.code, 0, mixed.stderr);
    const mixedId = JSON.parse(mixed.stdout).id as number;
    assert.deepEqual(await members(mixedId), ['kiosk-3:rule 1: mac-prefix 02:00:00', 'lab-pc-1:static', 'renamed-pc:rule 0: name-regex ^renamed']);
    const badRegex = await s.api('POST', '/api/v1/collections', { name: 'bad', rules: [{ type: 'name-regex', pattern: '(' }] });
    assert.equal(badRegex.status, 400);
    assert.equal(badRegex.body.errors[0].path, '/rules/0/pattern');
    const badMember = await s.api('POST', '/api/v1/collections', { name: 'bad', members: [9999] });
    assert.equal(badMember.status, 400);
    assert.equal(badMember.body.errors[0].path, '/members/0');
    assert.equal((await s.api('POST', '/api/v1/collections', { name: 'lab' })).status, 409);
  });

  await t.test('deployments: checks, pinned version in the policy, status messages stored once', async () => {
    const noDeadline = await s.api('POST', '/api/v1/deployments', { sequence: sequenceId, collection: 'lab', purpose: 'required' });
    assert.equal(noDeadline.status, 400);
    assert.equal(noDeadline.body.errors[0].path, '/deadline');
    const collectionWithoutSite = await s.api('POST', '/api/v1/collections', { name: 'nosite', rules: [{ type: 'name-glob', pattern: '*' }] });
    const missingParam = await s.api('POST', '/api/v1/deployments', { sequence: 'Refresh', collection: collectionWithoutSite.body.id, purpose: 'available' });
    assert.equal(missingParam.status, 400);
    assert.match(missingParam.body.errors[0].message, /parameter\(s\) Site/);
    const d = await s.api('POST', '/api/v1/deployments', { sequence: 'Refresh', version: 1, collection: collectionId, purpose: 'required', deadline: new Date(Date.now() + 3600_000).toISOString(), access: 'multicast-only' });
    assert.equal(d.status, 201, JSON.stringify(d.body));
    assert.equal(d.body.sequenceVersion, 1);

    const policy = await agentCall(s, credA, '/api/client/policy', { status: 'idle', agentVersion: '0.1.0' });
    assert.equal(policy.status, 200);
    assert.equal(policy.body.deployments.length, 1);
    const offered = policy.body.deployments[0];
    assert.equal(offered.sequence.version, 1, 'the pinned version, not the latest (2)');
    assert.equal(offered.sequence.steps.length, 1);
    assert.deepEqual(offered.variables, { Site: 'hq' });
    assert.equal(offered.access, 'multicast-only');

    const base = { deploymentId: String(d.body.id), sequence: { name: 'Refresh', version: 1 } };
    const step = { path: '/steps/0', id: 'apply', name: 'Apply', type: 'apply-image' };
    const t0 = Date.now();
    const at = (ms: number) => new Date(t0 + ms).toISOString();
    const batch = [
      { id: randomUUID(), time: at(0), kind: 'sequence-started', message: 'running', ...base },
      { id: randomUUID(), time: at(1), kind: 'step-started', message: 'step 1 of 1', step, details: { ordinal: 1, total: 1 }, ...base },
      { id: randomUUID(), time: at(1000), kind: 'step-progress', message: 'p', step, progress: { phase: 'download', done: 1000, total: 4000, unit: 'bytes' }, ...base },
      { id: randomUUID(), time: at(2000), kind: 'step-progress', message: 'p', step, progress: { phase: 'download', done: 3000, total: 4000, unit: 'bytes' }, ...base },
    ];
    const first = await agentCall(s, credA, '/api/client/status', { messages: batch });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal(first.body.stored, 2, 'progress updates the summary without being stored');
    const running = (await s.api('GET', `/api/v1/deployments/${d.body.id}/status`)).body;
    assert.ok(running.devices, JSON.stringify(running));
    const row = running.devices.find((x: { deviceId: number }) => x.deviceId === devA);
    assert.equal(row.state, 'running');
    assert.equal(row.currentStep.name, 'Apply');
    assert.equal(row.progress.done, 3000);
    assert.equal(row.progress.rateBps, 16000, '2000 bytes in one second');
    assert.equal(running.counts.running, 1);

    const failed = { id: randomUUID(), time: at(3000), kind: 'step-failed', message: 'disk too small for the image', reason: 'disk-too-small', step, ...base };
    const end = { id: randomUUID(), time: at(3001), kind: 'sequence-failed', message: 'failed', reason: 'disk-too-small', ...base };
    const foreign = { ...end, id: randomUUID(), deploymentId: '9999' };
    const second = await agentCall(s, credA, '/api/client/status', { messages: [...batch.slice(0, 2), failed, end, foreign] });
    assert.equal(second.body.stored, 2, 'a retried message is stored once');
    assert.deepEqual(second.body.ignored.map((i: { id: string }) => i.id), [foreign.id]);
    const status = JSON.parse((await s.cli(['deployment', 'status', String(d.body.id), '--json'])).stdout);
    const done = status.devices.find((x: { deviceId: number }) => x.deviceId === devA);
    assert.equal(done.state, 'failed');
    assert.equal(done.reason, 'disk-too-small');
    assert.equal(done.message, 'disk too small for the image');
    assert.deepEqual(done.steps.map((x: { outcome: string }) => x.outcome), ['failed']);
    const messages = (await s.api('GET', `/api/v1/deployments/${d.body.id}/messages`)).body as { message: { kind: string } }[];
    assert.deepEqual(messages.map((m) => m.message.kind), ['sequence-started', 'step-started', 'step-failed', 'sequence-failed']);

    // kiosk-3 is not in "lab": it cannot report on this deployment, and its policy does not offer it.
    const kiosk = await register(s, 'kiosk-3', [macs.c]);
    assert.equal(kiosk.deviceId, devC);
    assert.equal((await agentCall(s, kiosk.credential, '/api/client/policy', {})).body.deployments.length, 0);
    assert.equal((await agentCall(s, kiosk.credential, '/api/client/status', { messages: [{ ...end, id: randomUUID() }] })).body.ignored.length, 1);

    assert.equal((await s.api('DELETE', `/api/v1/collections/${collectionId}`)).status, 409, 'a targeted collection stays');
    assert.equal((await s.api('DELETE', `/api/v1/task-sequences/${sequenceId}`)).status, 409, 'a deployed sequence stays');
    const disabled = await s.cli(['deployment', 'set', String(d.body.id), '--disable', '--json']);
    assert.equal(JSON.parse(disabled.stdout).enabled, false);
    assert.equal((await agentCall(s, credA, '/api/client/policy', {})).body.deployments.length, 0);
  });

  await t.test('the OpenAPI document describes the deployment API', async () => {
    const doc = (await s.api('GET', '/api/v1/openapi.json')).body as { paths: Record<string, unknown> };
    for (const p of ['/api/v1/devices', '/api/v1/collections/{id}', '/api/v1/task-sequences/{id}', '/api/v1/deployments/{id}/status', '/api/client/register', '/api/client/policy', '/api/client/status']) assert.ok(doc.paths[p], p);
  });
});
