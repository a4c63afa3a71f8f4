// The agent service without disks (no root needed): available deployments run on request — in the foreground
// when no service runs on the data folder, handed to the running service otherwise — with the reports on the
// server, a failing command's exact reason and exit code, and a clean stop.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, startServer, tempDir, until } from '../server/helpers.js';

interface StatusView {
  counts: Record<string, number>;
  devices: { deviceName: string; state: string; reason: string | null; message: string | null; steps: { path: string; outcome: string }[] }[];
}

test('agent service: available deployments on request, foreground or handed to the service', async (t) => {
  const dir = tempDir(t, 'fc-deploy-service-');
  const s = await startServer(t, join(dir, 'data'), ['--agent-poll-interval', '1']);
  const agentArgs = (n: number) => ['--server', s.url, '--data', join(dir, `agent-${n}`), '--name', `svc-${n}`, '--mac', `52:54:00:aa:00:0${n}`];

  const inventory = {
    formatVersion: 1,
    name: 'Inventory',
    version: 1,
    parameters: ['OutDir', 'Site'],
    steps: [
      { id: 'site', type: 'set-variable', variable: 'Where', value: '%Site%' },
      { id: 'write', type: 'run-command', name: 'Write inventory', command: ['sh', '-c', 'echo "%_DeviceName% %Where% %_DeploymentID%" > "%OutDir%/%_DeviceName%.txt"'], successCodes: [0] },
    ],
  };
  const failing = { formatVersion: 1, name: 'Failing', version: 1, steps: [{ id: 'fail', type: 'run-command', name: 'Exit 7', command: 'exit 7', successCodes: [0] }] };
  for (const doc of [inventory, failing]) {
    const r = await s.api('POST', '/api/v1/task-sequences', doc);
    assert.equal(r.status, 201, JSON.stringify(r.body));
  }
  // Devices appear when their agents register; a rule-based collection takes them in.
  assert.equal((await s.api('POST', '/api/v1/collections', { name: 'svc', rules: [{ type: 'name-glob', pattern: 'svc-*' }], variables: { Site: 'branch' } })).status, 201);
  const deploy = async (sequence: string, variables: Record<string, string> = {}) => {
    const r = await s.api('POST', '/api/v1/deployments', { sequence, collection: 'svc', purpose: 'available', variables });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body.id as number;
  };
  const inv = await deploy('Inventory', { OutDir: dir });
  const fail = await deploy('Failing');
  const status = (id: number) => s.api<StatusView>('GET', `/api/v1/deployments/${id}/status`).then((r) => r.body);

  await t.test('foreground: runs the deployment, reports it, exits 0', async () => {
    const r = await run(['agent', 'run', '--deployment', String(inv), ...agentArgs(1)]).done;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(readFileSync(join(dir, 'svc-1.txt'), 'utf8'), `svc-1 branch ${inv}\n`);
    const v = await status(inv);
    const row = v.devices.find((d) => d.deviceName === 'svc-1')!;
    assert.equal(row.state, 'succeeded');
    assert.deepEqual(row.steps.map((x) => `${x.path} ${x.outcome}`), ['/steps/0 succeeded', '/steps/1 succeeded']);
    const again = await run(['agent', 'run', '--deployment', String(inv), ...agentArgs(1)]).done;
    assert.equal(again.code, 0);
    assert.match(again.stderr, /already ran on this machine/);
  });

  await t.test('a failing command: exit 2 here, the exact reason on the server', async () => {
    const r = await run(['agent', 'run', '--deployment', String(fail), ...agentArgs(1)]).done;
    assert.equal(r.code, 2, r.stderr);
    const row = (await status(fail)).devices.find((d) => d.deviceName === 'svc-1')!;
    assert.equal(row.state, 'failed');
    assert.equal(row.reason, 'exit-code');
    assert.match(row.message ?? '', /7/);
  });

  await t.test('with a service running: the request is handed to it', async () => {
    const service = run(['agent', ...agentArgs(2)], { timeoutMs: 120_000 });
    t.after(() => {
      if (service.child.exitCode === null) service.child.kill('SIGKILL');
    });
    await until('svc-2 registered', () => s.api('GET', '/api/v1/devices'), (r) => r.body.some((d: { name: string }) => d.name === 'svc-2'));
    // Available deployments do not run by themselves.
    assert.equal((await status(inv)).devices.find((d) => d.deviceName === 'svc-2')!.state, 'waiting');
    const asked = await run(['agent', 'run', '--deployment', String(inv), '--data', join(dir, 'agent-2')]).done;
    assert.equal(asked.code, 0, asked.stderr);
    assert.match(asked.stderr, /asked the agent service \(pid \d+\)/);
    await until('svc-2 succeeded', () => status(inv), (v) => v.devices.find((d) => d.deviceName === 'svc-2')?.state === 'succeeded');
    assert.equal(readFileSync(join(dir, 'svc-2.txt'), 'utf8'), `svc-2 branch ${inv}\n`);
    const second = run(['agent', ...agentArgs(2)]);
    const refused = await second.done;
    assert.equal(refused.code, 1, 'a second service on the same data folder is refused');
    assert.match(refused.stderr, /already runs on the data folder/);
    service.child.kill('SIGTERM');
    assert.equal((await service.done).code, 0);
  });

  await t.test('bad options: exit 1 with what to do', async () => {
    const r = await run(['agent', '--data', join(dir, 'agent-3')], { env: { FLEETCAST_SERVER: '' } }).done;
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--server URL/);
  });
});
