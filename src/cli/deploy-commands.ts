// Deployment commands: the admin side (device, collection, task-sequence, deployment — through the server's
// REST API) and the agent service (`fleetcast agent --server URL …`, `fleetcast agent run --deployment ID`).
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Command, Option } from 'commander';
// The agent itself (index.js, service.js) is loaded when an agent command runs: other commands start without it.
import type { AgentConfig } from '../agent/index.js';
import type { ServiceOutcome } from '../agent/service.js';
import { parseAssignment } from '../agent/variables.js';
import type { ApiClient } from '../client/api.js';
import type { CollectionRecord, CollectionRule, DeploymentRecord, DeviceDeploymentSummary, DeviceRecord, TaskSequenceRecord, TaskSequenceVersion } from '../db/deployment-repositories.js';
import type { FieldProblem } from '../server/api-types.js';
import { packageVersion } from '../version.js';
import { AgentExit, collect, ConsoleReporter } from './agent-commands.js';
import { AdminExit, adminAction, adminClient, adminOptions, orDash, print, table } from './server-commands.js';
import { checked, interruptSignal } from './shared.js';
import { formatBytes, formatRate, parseDuration, parseIntOption } from './units.js';

/** What the API returns for a device (routes-deploy.ts deviceView). */
type DeviceView = DeviceRecord & { online: boolean };
type CollectionView = CollectionRecord & { memberCount: number; evaluated?: { device: DeviceView; via: string }[] };
type SummaryView = DeviceDeploymentSummary & { deviceName: string };
interface StatusView {
  deployment: DeploymentRecord;
  counts: Record<DeviceDeploymentSummary['state'], number>;
  devices: SummaryView[];
}
type Issue = FieldProblem;

/** Exit code of `deployment status --watch` when a device failed (README "Deployments"). */
export const DEPLOYMENT_FAILED_EXIT = 4;

const positiveId = checked(parseIntOption('id', 1, Number.MAX_SAFE_INTEGER));

function variablesOf(assignments: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const a of assignments) {
    const [k, v] = parseAssignment(a);
    out[k] = v;
  }
  return out;
}

/** "now", "+15m" / "+2h" (from now), or an ISO 8601 time. */
export function parseWhen(text: string): string {
  if (text === 'now') return new Date().toISOString();
  if (text.startsWith('+')) return new Date(Date.now() + parseDuration('time', 'm')(text.slice(1)) * 1000).toISOString();
  const t = Date.parse(text);
  if (Number.isNaN(t)) throw new Error(`"${text}" is not a time: use now, +15m, +2h or an ISO time such as 2026-12-01T18:00:00Z`);
  return new Date(t).toISOString();
}

/** An id, or a name looked up in the list (commands accept either). */
async function resolveId(api: ApiClient, kind: 'collections' | 'task-sequences' | 'devices', ref: string): Promise<number> {
  if (/^\d+$/.test(ref)) return Number(ref);
  const list = await api.request<{ id: number; name: string }[]>('GET', `/api/v1/${kind}`);
  const found = list.filter((x) => x.name === ref);
  if (found.length === 1) return found[0]!.id;
  const what = kind.replace(/s$/, '').replace('-', ' ');
  throw new Error(found.length ? `${found.length} ${kind} are named "${ref}": give the id` : `no ${what} named "${ref}" (fleetcast ${kind.replace(/s$/, '')} list)`);
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`cannot read ${file} as JSON: ${(err as Error).message}`);
  }
}

function rulesFrom(o: { nameGlob: string[]; nameRegex: string[]; macPrefix: string[] }): CollectionRule[] {
  return [
    ...o.nameGlob.map((pattern): CollectionRule => ({ type: 'name-glob', pattern })),
    ...o.nameRegex.map((pattern): CollectionRule => ({ type: 'name-regex', pattern })),
    ...o.macPrefix.map((prefix): CollectionRule => ({ type: 'mac-prefix', prefix })),
  ];
}

const ruleText = (r: CollectionRule) => `${r.type} ${r.type === 'mac-prefix' ? r.prefix : r.pattern}`;

function collectionText(c: CollectionView): string {
  const lines = [
    `${c.name} (collection ${c.id})${c.description ? ` — ${c.description}` : ''}`,
    `  static members   ${c.members.length ? c.members.join(', ') : '-'}`,
    `  rules            ${c.rules.length ? c.rules.map(ruleText).join('; ') : '-'}`,
    `  variables        ${Object.keys(c.variables).length ? Object.entries(c.variables).map(([k, v]) => `${k}=${v}`).join(' ') : '-'}`,
    `  members          ${c.memberCount}`,
  ];
  if (c.evaluated?.length) lines.push(table([['    ID', 'NAME', 'MACS', 'VIA'], ...c.evaluated.map((m) => [`    ${m.device.id}`, m.device.name, m.device.macAddresses.join(','), m.via])]));
  return lines.join('\n');
}

function deploymentText(d: DeploymentRecord): string {
  return [
    `deployment ${d.id}: ${d.name}`,
    `  task sequence    ${d.sequenceName} version ${d.sequenceVersion} (id ${d.sequenceId})`,
    `  collection       ${d.collectionName} (id ${d.collectionId})`,
    `  purpose          ${d.purpose}${d.deadline ? `, deadline ${d.deadline}` : ''}${d.availableFrom ? `, available from ${d.availableFrom}` : ''}`,
    `  content access   ${d.access}`,
    `  enabled          ${d.enabled ? 'yes' : 'no'}`,
    `  variables        ${Object.keys(d.variables).length ? Object.entries(d.variables).map(([k, v]) => `${k}=${v}`).join(' ') : '-'}`,
  ].join('\n');
}

function progressText(s: SummaryView): string {
  const p = s.progress;
  if (!p) return '-';
  const part = p.total ? `${Math.floor((p.done / p.total) * 100)} %` : p.unit === 'bytes' ? formatBytes(p.done) : `${p.done} %`;
  return `${p.phase} ${part}${p.unit === 'bytes' && p.total ? ` of ${formatBytes(p.total)}` : ''}${p.rateBps ? ` @ ${formatRate(p.rateBps)}` : ''}`;
}

function statusText(v: StatusView): string {
  const d = v.deployment;
  const counts = Object.entries(v.counts).filter(([, n]) => n > 0).map(([k, n]) => `${n} ${k}`).join(', ') || 'no devices';
  const rows = v.devices.map((s) => {
    const step = s.currentStep ? `${s.currentStep.ordinal !== null ? `${s.currentStep.ordinal}/${s.currentStep.total} ` : ''}${s.currentStep.name}` : s.state === 'succeeded' ? `${s.steps.length} steps done` : '-';
    const why = s.state === 'failed' ? `${s.reason ?? ''}: ${s.message ?? ''}` : s.state === 'restart-pending' ? 'restarting' : '';
    return [s.deviceName, s.state, step, progressText(s), orDash(s.lastMessageAt), why];
  });
  return [`deployment ${d.id} "${d.name}" (${d.sequenceName} v${d.sequenceVersion} → ${d.collectionName}, ${d.purpose}): ${counts}`, rows.length ? table([['DEVICE', 'STATE', 'STEP', 'PROGRESS', 'LAST MESSAGE', 'REASON'], ...rows]) : ''].join('\n');
}

function issuesText(issues: Issue[]): string {
  return issues.map((i) => `  ${i.path || '/'}: ${i.message}`).join('\n');
}

export function registerDeployCommands(program: Command): void {
  registerDeviceCommands(program);
  registerCollectionCommands(program);
  registerTaskSequenceCommands(program);
  registerDeploymentCommands(program);
  const agent = program.commands.find((c) => c.name() === 'agent');
  if (agent) registerAgentService(agent);
}

function registerDeviceCommands(program: Command): void {
  const device = program.command('device').description('devices registered by their agents');
  adminOptions(device.command('list').description('list devices')).action(
    adminAction(async (o) => {
      const list = await adminClient(o).request<DeviceView[]>('GET', '/api/v1/devices');
      print(o.json, list, () =>
        list.length
          ? table([['ID', 'NAME', 'MACS', 'UUID', 'STATUS', 'ONLINE', 'LAST SEEN', 'AGENT'], ...list.map((d) => [String(d.id), d.name, d.macAddresses.join(','), orDash(d.smbiosUuid), d.status, d.online ? 'yes' : 'no', d.lastSeenAt, orDash(d.agentVersion)])])
          : 'no devices yet: they appear when their agent registers (fleetcast agent --server URL ...)',
      );
    }),
  );
  adminOptions(device.command('show').description('one device').argument('<id|name>')).action(
    adminAction(async (ref: string, o) => {
      const api = adminClient(o);
      const d = await api.request<DeviceView>('GET', `/api/v1/devices/${await resolveId(api, 'devices', ref)}`);
      print(o.json, d, () => Object.entries(d).map(([k, v]) => `  ${k.padEnd(14)} ${Array.isArray(v) ? v.join(', ') : orDash(v)}`).join('\n'));
    }),
  );
  adminOptions(device.command('delete').description("forget a device (its agent registers again at its next poll)").argument('<id|name>')).action(
    adminAction(async (ref: string, o) => {
      const api = adminClient(o);
      const id = await resolveId(api, 'devices', ref);
      await api.request('DELETE', `/api/v1/devices/${id}`);
      print(o.json, { deleted: id }, () => `deleted device ${id}`);
    }),
  );
}

function collectionOptions(cmd: Command): Command {
  return cmd
    .option('--description <text>', 'description')
    .option('--member <device>', 'static member: device id (repeatable)', collect, [])
    .option('--name-glob <pattern>', 'rule: device names matching a glob, e.g. "lab-*" (repeatable)', collect, [])
    .option('--name-regex <regex>', 'rule: device names matching a regular expression (repeatable)', collect, [])
    .option('--mac-prefix <prefix>', 'rule: a MAC address starting with this, e.g. 52:54:00 (repeatable)', collect, [])
    .option('--var <NAME=VALUE>', 'collection variable (repeatable)', collect, []);
}

function registerCollectionCommands(program: Command): void {
  const collection = program.command('collection').description('collections of devices: static members and rules (name pattern, MAC prefix), with variables');
  adminOptions(collection.command('list').description('list collections')).action(
    adminAction(async (o) => {
      const list = await adminClient(o).request<CollectionView[]>('GET', '/api/v1/collections');
      print(o.json, list, () =>
        list.length ? table([['ID', 'NAME', 'MEMBERS', 'STATIC', 'RULES'], ...list.map((c) => [String(c.id), c.name, String(c.memberCount), String(c.members.length), c.rules.map(ruleText).join('; ') || '-'])]) : 'no collections yet: fleetcast collection create NAME --name-glob "lab-*"',
      );
    }),
  );
  adminOptions(collectionOptions(collection.command('create').description('create a collection').argument('<name>'))).action(
    adminAction(async (name: string, o) => {
      const body = { name, ...(o.description ? { description: o.description } : {}), members: (o.member as string[]).map(Number), rules: rulesFrom(o), variables: variablesOf(o.var) };
      const c = await adminClient(o).request<CollectionView>('POST', '/api/v1/collections', body);
      print(o.json, c, () => collectionText(c));
    }),
  );
  adminOptions(collection.command('show').description('a collection with its evaluated members').argument('<id|name>')).action(
    adminAction(async (ref: string, o) => {
      const api = adminClient(o);
      const c = await api.request<CollectionView>('GET', `/api/v1/collections/${await resolveId(api, 'collections', ref)}`);
      print(o.json, c, () => collectionText(c));
    }),
  );
  adminOptions(
    collectionOptions(collection.command('set').description('change a collection: given lists (members, rules) and variables replace the current ones').argument('<id|name>'))
      .option('--rename <name>', 'new name')
      .option('--clear-members', 'no static members')
      .option('--clear-rules', 'no rules'),
  ).action(
    adminAction(async (ref: string, o) => {
      const api = adminClient(o);
      const rules = rulesFrom(o);
      const changes = {
        ...(o.rename ? { name: o.rename } : {}),
        ...(o.description !== undefined ? { description: o.description } : {}),
        ...(o.member.length || o.clearMembers ? { members: (o.member as string[]).map(Number) } : {}),
        ...(rules.length || o.clearRules ? { rules } : {}),
        ...(o.var.length ? { variables: variablesOf(o.var) } : {}),
      };
      if (Object.keys(changes).length === 0) {
        process.stderr.write('fleetcast: nothing to change (see fleetcast collection set --help)\n');
        process.exitCode = AdminExit.invalid;
        return;
      }
      const c = await api.request<CollectionView>('PATCH', `/api/v1/collections/${await resolveId(api, 'collections', ref)}`, changes);
      print(o.json, c, () => collectionText(c));
    }),
  );
  adminOptions(collection.command('delete').description('delete a collection (refused while a deployment targets it)').argument('<id|name>')).action(
    adminAction(async (ref: string, o) => {
      const api = adminClient(o);
      const id = await resolveId(api, 'collections', ref);
      await api.request('DELETE', `/api/v1/collections/${id}`);
      print(o.json, { deleted: id }, () => `deleted collection ${id}`);
    }),
  );
}

function registerTaskSequenceCommands(program: Command): void {
  const ts = program.command('task-sequence').description('task sequences on the server: versioned, validated documents');
  adminOptions(ts.command('list').description('list task sequences')).action(
    adminAction(async (o) => {
      const list = await adminClient(o).request<TaskSequenceRecord[]>('GET', '/api/v1/task-sequences');
      print(o.json, list, () => (list.length ? table([['ID', 'NAME', 'LATEST', 'VERSIONS', 'UPDATED'], ...list.map((s) => [String(s.id), s.name, String(s.latestVersion), String(s.versions), s.updatedAt])]) : 'no task sequences yet: fleetcast task-sequence upload FILE'));
    }),
  );
  adminOptions(
    ts
      .command('upload')
      .description('upload a document: a new task sequence, or the next version of the one with its name (deployments keep their pinned version)')
      .argument('<file>', 'task sequence JSON')
      .option('--comment <text>', 'what changed'),
  ).action(
    adminAction(async (file: string, o) => {
      const api = adminClient(o);
      const doc = readJson(file) as { name?: unknown };
      const existing = typeof doc.name === 'string' ? (await api.request<TaskSequenceRecord[]>('GET', '/api/v1/task-sequences')).find((s) => s.name === doc.name) : undefined;
      const q = o.comment ? `?${new URLSearchParams({ comment: o.comment })}` : '';
      const r = await api.request<{ sequence: TaskSequenceRecord; version: TaskSequenceVersion; warnings: Issue[] }>(existing ? 'PUT' : 'POST', `/api/v1/task-sequences${existing ? `/${existing.id}` : ''}${q}`, doc);
      print(o.json, r, () =>
        [`${r.sequence.name} (task sequence ${r.sequence.id}): version ${r.version.version} stored; images ${r.version.images.join(', ') || '-'}`, ...(r.warnings.length ? ['warnings:', issuesText(r.warnings)] : [])].join('\n'),
      );
    }),
  );
  adminOptions(ts.command('validate').description("check a document as an upload would (the agent's validator, plus the server's image library)").argument('<file>')).action(
    adminAction(async (file: string, o) => {
      const r = await adminClient(o).request<{ valid: boolean; errors: Issue[]; warnings: Issue[] }>('POST', '/api/v1/task-sequences/validate', readJson(file));
      print(o.json, r, () => [r.valid ? `${file}: valid` : `${file}: ${r.errors.length} error(s)`, issuesText(r.errors), ...(r.warnings.length ? ['warnings:', issuesText(r.warnings)] : [])].filter(Boolean).join('\n'));
      if (!r.valid) process.exitCode = AdminExit.invalid;
    }),
  );
  adminOptions(ts.command('show').description('a task sequence: its versions, or one version\'s document').argument('<id|name>').option('--version <n>', 'print this version\'s document', checked(parseIntOption('version', 1, 1e9)))).action(
    adminAction(async (ref: string, o) => {
      const api = adminClient(o);
      const id = await resolveId(api, 'task-sequences', ref);
      if (o.version) {
        const v = await api.request<TaskSequenceVersion>('GET', `/api/v1/task-sequences/${id}/versions/${o.version}`);
        process.stdout.write(`${JSON.stringify(o.json ? v : v.document, null, 2)}\n`);
        return;
      }
      const s = await api.request<TaskSequenceRecord & { history: TaskSequenceVersion[] }>('GET', `/api/v1/task-sequences/${id}`);
      print(o.json, s, () => [`${s.name} (task sequence ${s.id}), latest version ${s.latestVersion}`, table([['  VERSION', 'CREATED', 'IMAGES', 'SHA256', 'COMMENT'], ...s.history.map((v) => [`  ${v.version}`, v.createdAt, v.images.join(', ') || '-', v.digest.slice(0, 16), orDash(v.comment)])])].join('\n'));
    }),
  );
  adminOptions(ts.command('delete').description('delete a task sequence with all its versions (refused while deployed)').argument('<id|name>')).action(
    adminAction(async (ref: string, o) => {
      const api = adminClient(o);
      const id = await resolveId(api, 'task-sequences', ref);
      await api.request('DELETE', `/api/v1/task-sequences/${id}`);
      print(o.json, { deleted: id }, () => `deleted task sequence ${id}`);
    }),
  );
}

function deploymentOptions(cmd: Command): Command {
  return cmd
    .option('--deadline <time>', 'when a required deployment runs: now, +15m, +2h or an ISO time', checked(parseWhen))
    .option('--available-from <time>', 'not offered before: now, +15m or an ISO time', checked(parseWhen))
    .addOption(new Option('--access <option>', 'content access: multicast first with unicast fallback if the package allows it, unicast only, multicast only').choices(['multicast-first', 'unicast-only', 'multicast-only']))
    .option('--var <NAME=VALUE>', 'deployment variable (repeatable; overrides collection variables)', collect, []);
}

function registerDeploymentCommands(program: Command): void {
  const dep = program.command('deployment').description('deployments of task sequences to collections, and their live status');
  adminOptions(dep.command('list').description('list deployments')).action(
    adminAction(async (o) => {
      const list = await adminClient(o).request<DeploymentRecord[]>('GET', '/api/v1/deployments');
      print(o.json, list, () =>
        list.length
          ? table([['ID', 'NAME', 'SEQUENCE', 'COLLECTION', 'PURPOSE', 'DEADLINE', 'ACCESS', 'ENABLED'], ...list.map((d) => [String(d.id), d.name, `${d.sequenceName} v${d.sequenceVersion}`, d.collectionName, d.purpose, orDash(d.deadline), d.access, d.enabled ? 'yes' : 'no'])])
          : 'no deployments yet: fleetcast deployment create --sequence NAME --collection NAME --purpose required --deadline now',
      );
    }),
  );
  adminOptions(
    deploymentOptions(
      dep
        .command('create')
        .description('deploy a task sequence version to a collection')
        .requiredOption('--sequence <id|name>', 'task sequence')
        .option('--version <n>', 'pin this version (default: the latest)', checked(parseIntOption('version', 1, 1e9)))
        .requiredOption('--collection <id|name>', 'target collection')
        .addOption(new Option('--purpose <purpose>', 'required: runs at the deadline; available: runs on request (fleetcast agent run --deployment ID)').choices(['required', 'available']).makeOptionMandatory())
        .option('--name <name>', 'deployment name (default "SEQUENCE → COLLECTION")')
        .option('--disabled', 'create it disabled'),
    ),
  ).action(
    adminAction(async (o) => {
      const api = adminClient(o);
      const ref = (s: string) => (/^\d+$/.test(s) ? Number(s) : s);
      const body = {
        sequence: ref(o.sequence),
        collection: ref(o.collection),
        purpose: o.purpose,
        ...(o.version ? { version: o.version } : {}),
        ...(o.name ? { name: o.name } : {}),
        ...(o.deadline ? { deadline: o.deadline } : {}),
        ...(o.availableFrom ? { availableFrom: o.availableFrom } : {}),
        ...(o.access ? { access: o.access } : {}),
        ...(o.disabled ? { enabled: false } : {}),
        variables: variablesOf(o.var),
      };
      const d = await api.request<DeploymentRecord>('POST', '/api/v1/deployments', body);
      print(o.json, d, () => deploymentText(d));
    }),
  );
  adminOptions(dep.command('show').description('one deployment').argument('<id>', 'deployment id', positiveId)).action(
    adminAction(async (id: number, o) => {
      const d = await adminClient(o).request<DeploymentRecord>('GET', `/api/v1/deployments/${id}`);
      print(o.json, d, () => deploymentText(d));
    }),
  );
  adminOptions(
    deploymentOptions(dep.command('set').description('enable, disable, reschedule, change access or variables').argument('<id>', 'deployment id', positiveId))
      .option('--enable', 'enable')
      .option('--disable', 'disable (agents stop being offered it; runs in progress finish)')
      .option('--no-deadline', 'remove the deadline (available deployments)'),
  ).action(
    adminAction(async (id: number, o) => {
      const changes = {
        ...(o.enable ? { enabled: true } : {}),
        ...(o.disable ? { enabled: false } : {}),
        ...(typeof o.deadline === 'string' ? { deadline: o.deadline } : o.deadline === false ? { deadline: null } : {}),
        ...(o.availableFrom ? { availableFrom: o.availableFrom } : {}),
        ...(o.access ? { access: o.access } : {}),
        ...(o.var.length ? { variables: variablesOf(o.var) } : {}),
      };
      if (Object.keys(changes).length === 0) {
        process.stderr.write('fleetcast: nothing to change (see fleetcast deployment set --help)\n');
        process.exitCode = AdminExit.invalid;
        return;
      }
      const d = await adminClient(o).request<DeploymentRecord>('PATCH', `/api/v1/deployments/${id}`, changes);
      print(o.json, d, () => deploymentText(d));
    }),
  );
  adminOptions(dep.command('delete').description('delete a deployment and its status records').argument('<id>', 'deployment id', positiveId)).action(
    adminAction(async (id: number, o) => {
      await adminClient(o).request('DELETE', `/api/v1/deployments/${id}`);
      print(o.json, { deleted: id }, () => `deleted deployment ${id}`);
    }),
  );
  adminOptions(
    dep
      .command('status')
      .description('per device: state, step, progress and rate, failure reason')
      .argument('<id>', 'deployment id', positiveId)
      .option('-w, --watch', `refresh until no device is waiting, running or restarting (exit ${DEPLOYMENT_FAILED_EXIT} if one failed)`)
      .option('--interval <seconds>', 'refresh interval with --watch', checked(parseIntOption('interval', 1, 3600)), 2),
  ).action(
    adminAction(async (id: number, o) => {
      const api = adminClient(o);
      const get = () => api.request<StatusView>('GET', `/api/v1/deployments/${id}/status`);
      let v = await get();
      if (!o.watch) return print(o.json, v, () => statusText(v));
      const controller = interruptSignal();
      const live = (s: StatusView) => s.devices.length === 0 || s.devices.some((d) => d.state !== 'succeeded' && d.state !== 'failed');
      for (;;) {
        if (!o.json) process.stdout.write(`${process.stdout.isTTY ? '\x1b[H\x1b[2J' : ''}${statusText(v)}\n${process.stdout.isTTY ? '' : '\n'}`);
        if (!live(v) || controller.signal.aborted) break;
        await sleep(o.interval * 1000, undefined, { signal: controller.signal }).catch(() => undefined);
        if (controller.signal.aborted) break;
        v = await get();
      }
      if (o.json) process.stdout.write(`${JSON.stringify(v, null, 2)}\n`);
      process.exitCode = controller.signal.aborted ? AdminExit.interrupted : v.counts.failed > 0 ? DEPLOYMENT_FAILED_EXIT : AdminExit.ok;
    }),
  );
  adminOptions(
    dep
      .command('messages')
      .description('status messages of a deployment, in the order received')
      .argument('<id>', 'deployment id', positiveId)
      .option('--device <id>', 'only this device', checked(parseIntOption('device', 1, Number.MAX_SAFE_INTEGER))),
  ).action(
    adminAction(async (id: number, o) => {
      const q = o.device ? `?device=${o.device}` : '';
      const list = await adminClient(o).request<{ seq: number; deviceId: number; message: { time: string; kind: string; step?: { path: string; name: string }; reason?: string; message: string } }[]>('GET', `/api/v1/deployments/${id}/messages${q}`);
      print(o.json, list, () => list.map((m) => `${m.message.time} device ${m.deviceId} ${m.message.kind}${m.message.step ? ` [${m.message.step.path} ${m.message.step.name}]` : ''}${m.message.reason ? ` (${m.message.reason})` : ''}: ${m.message.message}`).join('\n') || 'no messages yet');
    }),
  );
}

// ---- agent service -------------------------------------------------------------------------------------------

function serviceOptions(cmd: Command): Command {
  return cmd
    .option('--server <url>', 'site server URL (or FLEETCAST_SERVER)')
    .option('-t, --target <device|image|NAME=PATH>', 'a disk destructive steps may write to (repeatable; unnamed ones are disk0, disk1 …); a regular file is attached as a loop device', collect, [])
    .option('--config <file>', 'agent config JSON with "targets" (and "dataDir", "logFile")')
    .option('--data <dir>', 'device credential, state files, queued status messages, content (default ./fleetcast-agent or $FLEETCAST_AGENT_DIR)')
    .option('-i, --interface <name>', 'network interface for multicast content')
    .option('--client-secret <secret>', 'enrollment secret, when the server requires one (or FLEETCAST_CLIENT_SECRET)')
    .option('--name <name>', 'device name (default: the hostname)')
    .option('--mac <address>', 'MAC address reported instead of the interfaces\' (repeatable)', collect, [])
    .option('--uuid <uuid>', 'SMBIOS UUID reported instead of the firmware\'s')
    .option('--serial <serial>', 'serial number reported instead of the firmware\'s')
    .option('-q, --quiet', 'no step output on stderr');
}

async function serviceConfig(o: Record<string, any>): Promise<{ config: AgentConfig; server: string }> {
  const server = o.server ?? process.env.FLEETCAST_SERVER;
  if (!server) throw new Error('give the site server: --server URL (or FLEETCAST_SERVER)');
  const { checkTargetConfigs, defaultAgentConfig, loadAgentConfig, parseTargetOption } = await import('../agent/index.js');
  const config = o.config ? loadAgentConfig(o.config) : defaultAgentConfig();
  if (o.data) {
    config.dataDir = resolve(o.data);
    if (!o.config) config.logFile = join(config.dataDir, 'agent.log');
  }
  config.targets = [...config.targets, ...(o.target as string[]).map((t, i) => parseTargetOption(t, config.targets.length + i))];
  checkTargetConfigs(config.targets);
  return { config, server };
}

function say(line: string): void {
  process.stderr.write(`fleetcast agent: ${line}\n`);
}

const OUTCOME_EXIT: Record<ServiceOutcome, number> = { stopped: AgentExit.ok, failed: AgentExit.stepFailed, 'restart-requested': AgentExit.restartRequested, interrupted: AgentExit.interrupted };

async function runService(o: Record<string, any>, only?: number): Promise<void> {
  let setup;
  try {
    setup = await serviceConfig(o);
  } catch (err) {
    say((err as Error).message);
    process.exitCode = AgentExit.usage;
    return;
  }
  const { config, server } = setup;
  const { AgentService, lockDataDir } = await import('../agent/service.js');
  const lock = lockDataDir(config.dataDir);
  if (lock.holder !== null) {
    say(`an agent (pid ${lock.holder}) already runs on the data folder ${config.dataDir}${only !== undefined ? '' : '; stop it first or use another --data'}`);
    process.exitCode = AgentExit.usage;
    return;
  }
  const controller = new AbortController();
  const onSignal = () => {
    if (controller.signal.aborted) process.exit(AgentExit.interrupted);
    say('stopping (a step that is running stops and runs again at the next start)');
    controller.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const service = new AgentService({
      server,
      dataDir: config.dataDir,
      logFile: config.logFile,
      targets: config.targets,
      clientSecret: o.clientSecret ?? process.env.FLEETCAST_CLIENT_SECRET,
      iface: o.interface,
      identity: { deviceName: o.name, macAddresses: o.mac, serialNumber: o.serial, uuid: o.uuid },
      agentVersion: packageVersion(),
      signal: controller.signal,
      say: o.quiet ? undefined : say,
      reporter: new ConsoleReporter(Boolean(o.quiet)),
    });
    if (only === undefined) say(`agent service for ${server}; data ${config.dataDir}; targets ${config.targets.map((t) => `${t.name}=${t.path}`).join(', ') || 'none (destructive steps are refused)'}`);
    const outcome = await service.run(only);
    if (outcome === 'restart-requested') say(`restart requested: exiting with code ${AgentExit.restartRequested}; restart the machine (or start the agent again) to continue at the next step`);
    process.exitCode = OUTCOME_EXIT[outcome];
  } catch (err) {
    say((err as Error).message);
    process.exitCode = AgentExit.usage;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    lock.release();
  }
}

function registerAgentService(agent: Command): void {
  // `fleetcast agent --server URL …` runs the service; its subcommands (validate, run-sequence, run) keep theirs.
  agent.enablePositionalOptions();
  serviceOptions(agent).action(async (o) => runService(o));
  serviceOptions(
    agent
      .command('run')
      .description('run an available (or required) deployment now: handed to the agent service when one runs on this data folder, else run here')
      .requiredOption('--deployment <id>', 'deployment id', positiveId),
  ).action(async (o) => {
    const [{ defaultAgentConfig, loadAgentConfig }, { AgentService, lockHolder }] = await Promise.all([import('../agent/index.js'), import('../agent/service.js')]);
    const dataDir = o.config ? loadAgentConfig(o.config).dataDir : o.data ? resolve(o.data) : defaultAgentConfig().dataDir;
    const holder = lockHolder(dataDir);
    if (holder !== null) {
      AgentService.request(dataDir, o.deployment);
      say(`asked the agent service (pid ${holder}) to run deployment ${o.deployment}; follow it with: fleetcast deployment status ${o.deployment} --watch`);
      return;
    }
    await runService(o, o.deployment);
  });
}
