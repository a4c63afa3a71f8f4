// The deployment model over HTTP. Admin (/api/v1, bearer token): devices, collections, task sequences,
// deployments and their live status. Agent calls (/api/client, plus the enrollment secret when configured):
// register (issues the device credential), policy, status messages, image facts. With its credential a
// device can only read its own policy and report on deployments it is part of.
import { createHash, randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { parseSequence } from '../agent/sequence.js';
import { DEVICE_CREDENTIAL_HEADER } from '../client/api.js';
import type {
  CollectionRecord,
  CollectionRule,
  ContentAccess,
  DeploymentChanges,
  DeploymentRecord,
  DeviceRecord,
  DeviceStatus,
  NewCollection,
  ReceivedStatus,
} from '../db/deployment-repositories.js';
import { ConflictError } from '../db/repositories.js';
import { HttpError, type ServerContext } from './context.js';
import {
  applies,
  checkRules,
  checkVariables,
  deploymentVariables,
  foldStatus,
  imageNames,
  members,
  missingParameters,
  ModelError,
  normalizeMac,
  prepareVersion,
  waitingSummary,
} from './deployments.js';
import {
  clientImageSchema,
  collectionChangesSchema,
  collectionDetailSchema,
  collectionSchema,
  deploymentChangesSchema,
  deploymentSchema,
  deploymentStatusSchema,
  deviceSchema,
  newCollectionSchema,
  newDeploymentSchema,
  policyRequestSchema,
  policyResponseSchema,
  registerRequestSchema,
  registerResponseSchema,
  sequenceDocumentSchema,
  sequenceVersionSchema,
  statusBatchResultSchema,
  statusBatchSchema,
  storedMessageSchema,
  taskSequenceSchema,
  uploadResultSchema,
  validationResultSchema,
} from './deploy-schemas.js';
import { errorSchema, imageName } from './schemas.js';


const errors = { 400: errorSchema, 401: errorSchema, 404: errorSchema, 409: errorSchema };
const idParams = { type: 'object', properties: { id: { type: 'integer', minimum: 1 } }, required: ['id'] } as const;
const credentialDigest = (credential: string) => createHash('sha256').update(credential, 'utf8').digest('hex');

function notFound(message: string): never {
  throw new HttpError(404, message);
}

function conflict<T>(work: () => Promise<T>): Promise<T> {
  return work().catch((err: unknown) => {
    if (err instanceof ConflictError) throw new HttpError(409, err.message);
    throw err;
  });
}

/** Online: polled within three intervals (and a margin for jitter). */
function deviceView(ctx: ServerContext, d: DeviceRecord) {
  const interval = ctx.config.agentPollIntervalSeconds;
  return { ...d, online: Date.now() - Date.parse(d.lastSeenAt) < (3 * interval + 30) * 1000 };
}

async function findCollection(ctx: ServerContext, ref: number | string): Promise<CollectionRecord> {
  const c = typeof ref === 'number' ? await ctx.repos.collections.get(ref) : await ctx.repos.collections.byName(ref);
  return c ?? notFound(`no collection ${typeof ref === 'number' ? ref : `named "${ref}"`} (fleetcast collection list)`);
}

async function findSequence(ctx: ServerContext, ref: number | string) {
  const s = typeof ref === 'number' ? await ctx.repos.taskSequences.get(ref) : await ctx.repos.taskSequences.byName(ref);
  return s ?? notFound(`no task sequence ${typeof ref === 'number' ? ref : `named "${ref}"`} (fleetcast task-sequence list)`);
}

async function findDeployment(ctx: ServerContext, id: number): Promise<DeploymentRecord> {
  return (await ctx.repos.deployments.get(id)) ?? notFound(`no deployment ${id} (fleetcast deployment list)`);
}

async function checkMembers(ctx: ServerContext, ids: number[] | undefined): Promise<void> {
  if (!ids) return;
  const known = new Set((await ctx.repos.devices.list()).map((d) => d.id));
  const issues = ids.flatMap((id, i) => (known.has(id) ? [] : [{ path: `/members/${i}`, message: `no device ${id} (fleetcast device list)` }]));
  if (issues.length) throw new ModelError('invalid collection', issues);
}

function checkCollectionBody(body: Partial<NewCollection>): void {
  const issues = [...checkRules(body.rules ?? []), ...checkVariables(body.variables ?? {}, '/variables')];
  if (issues.length) throw new ModelError('invalid collection', issues);
}

/** Purpose, deadline, variables and content access of a deployment as it would be saved. */
async function checkDeployment(ctx: ServerContext, d: Omit<DeploymentRecord, 'id' | 'createdAt' | 'updatedAt' | 'sequenceName' | 'collectionName'>): Promise<void> {
  const issues = checkVariables(d.variables, '/variables');
  if (d.purpose === 'required' && !d.deadline) issues.push({ path: '/deadline', message: 'a required deployment needs a deadline (when it runs); use purpose "available" for one that runs on request' });
  if (d.deadline && d.availableFrom && Date.parse(d.deadline) < Date.parse(d.availableFrom)) issues.push({ path: '/deadline', message: `the deadline ${d.deadline} is before availableFrom ${d.availableFrom}` });
  const version = (await ctx.repos.taskSequences.version(d.sequenceId, d.sequenceVersion))!;
  const collection = (await ctx.repos.collections.get(d.collectionId))!;
  const missing = missingParameters(parseSequence(version.document), deploymentVariables(collection, d));
  if (missing.length) issues.push({ path: '/variables', message: `the task sequence needs parameter(s) ${missing.join(', ')}: give them as deployment or collection variables` });
  for (const name of imageNames(version)) {
    const image = await ctx.repos.images.byName(name);
    if (!image) issues.push({ path: '/sequence', message: `image "${name}" used by the task sequence is no longer in the library` });
    else if (d.access === 'unicast-only' && image.multicastOnly) issues.push({ path: '/access', message: `image "${name}" is multicast-only, so this deployment cannot be unicast-only` });
    else if (d.access === 'multicast-only' && !image.allowMulticast) issues.push({ path: '/access', message: `image "${name}" does not allow multicast, so this deployment cannot be multicast-only` });
  }
  if (issues.length) throw new ModelError('invalid deployment', issues);
}

const iso = (t: string | null | undefined) => (t ? new Date(t).toISOString() : (t ?? null));

export function deployAdminRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const { repos } = ctx;
  const tags = (t: string) => ({ tags: [t], security: [{ bearer: [] }] });

  // ---- devices --------------------------------------------------------------------------------------------
  app.get('/api/v1/devices', {
    schema: { ...tags('devices'), summary: 'devices registered by their agents', response: { 200: { type: 'array', items: deviceSchema } } },
    handler: async () => (await repos.devices.list()).map((d) => deviceView(ctx, d)),
  });

  app.get<{ Params: { id: number } }>('/api/v1/devices/:id', {
    schema: { ...tags('devices'), summary: 'one device', params: idParams, response: { 200: deviceSchema, ...errors } },
    handler: async (req) => deviceView(ctx, (await repos.devices.get(req.params.id)) ?? notFound(`no device ${req.params.id}`)),
  });

  app.delete<{ Params: { id: number } }>('/api/v1/devices/:id', {
    schema: { ...tags('devices'), summary: 'forget a device (its credential stops working; its agent registers anew)', params: idParams, response: { 204: { type: 'null' }, ...errors } },
    handler: async (req, reply) => {
      if (!(await repos.devices.delete(req.params.id))) notFound(`no device ${req.params.id}`);
      return reply.code(204).send();
    },
  });

  // ---- collections ----------------------------------------------------------------------------------------
  const collectionView = async (c: CollectionRecord, devices?: DeviceRecord[]) => ({ ...c, memberCount: members(c, devices ?? (await repos.devices.list())).length });

  app.get('/api/v1/collections', {
    schema: { ...tags('collections'), summary: 'collections with their evaluated member count', response: { 200: { type: 'array', items: collectionSchema } } },
    handler: async () => {
      const devices = await repos.devices.list();
      return Promise.all((await repos.collections.list()).map((c) => collectionView(c, devices)));
    },
  });

  app.post<{ Body: Partial<NewCollection> & { name: string } }>('/api/v1/collections', {
    schema: { ...tags('collections'), summary: 'create a collection (static members and/or rules)', body: newCollectionSchema, response: { 201: collectionSchema, ...errors } },
    handler: async (req, reply) => {
      checkCollectionBody(req.body);
      await checkMembers(ctx, req.body.members);
      const rules = (req.body.rules ?? []).map(normalizeRule);
      const c = await conflict(() => repos.collections.create({ name: req.body.name, description: req.body.description ?? null, members: req.body.members ?? [], rules, variables: req.body.variables ?? {} }));
      return reply.code(201).send(await collectionView(c));
    },
  });

  app.get<{ Params: { id: number } }>('/api/v1/collections/:id', {
    schema: { ...tags('collections'), summary: 'a collection with its evaluated membership', params: idParams, response: { 200: collectionDetailSchema, ...errors } },
    handler: async (req) => {
      const c = await findCollection(ctx, req.params.id);
      const evaluated = members(c, await repos.devices.list()).map((m) => ({ device: deviceView(ctx, m.device), via: m.via }));
      return { ...c, memberCount: evaluated.length, evaluated };
    },
  });

  app.patch<{ Params: { id: number }; Body: Partial<NewCollection> }>('/api/v1/collections/:id', {
    schema: { ...tags('collections'), summary: 'change name, description, members, rules or variables (lists and variables are replaced)', params: idParams, body: collectionChangesSchema, response: { 200: collectionSchema, ...errors } },
    handler: async (req) => {
      await findCollection(ctx, req.params.id);
      checkCollectionBody(req.body);
      await checkMembers(ctx, req.body.members);
      const changes = { ...req.body, ...(req.body.rules ? { rules: req.body.rules.map(normalizeRule) } : {}) };
      return collectionView((await conflict(() => repos.collections.update(req.params.id, changes)))!);
    },
  });

  app.delete<{ Params: { id: number } }>('/api/v1/collections/:id', {
    schema: { ...tags('collections'), summary: 'delete a collection (refused while a deployment targets it)', params: idParams, response: { 204: { type: 'null' }, ...errors } },
    handler: async (req, reply) => {
      if (!(await conflict(() => repos.collections.delete(req.params.id)))) notFound(`no collection ${req.params.id}`);
      return reply.code(204).send();
    },
  });

  // ---- task sequences -------------------------------------------------------------------------------------
  app.get('/api/v1/task-sequences', {
    schema: { ...tags('task sequences'), summary: 'task sequences (latest version and count)', response: { 200: { type: 'array', items: taskSequenceSchema } } },
    handler: async () => repos.taskSequences.list(),
  });

  const commentQuery = { type: 'object', properties: { comment: { type: 'string', maxLength: 500 } }, additionalProperties: false } as const;

  app.post<{ Body: Record<string, unknown>; Querystring: { comment?: string } }>('/api/v1/task-sequences', {
    schema: {
      ...tags('task sequences'),
      summary: 'upload a new task sequence (version 1): validated, its images checked against the library',
      body: sequenceDocumentSchema,
      querystring: commentQuery,
      response: { 201: uploadResultSchema, ...errors },
    },
    handler: async (req, reply) => {
      const library = await repos.images.list();
      const prepared = prepareVersion(req.body, 1, null, library, req.query.comment ?? null);
      const sequence = await conflict(() => repos.taskSequences.create(prepared.sequence.name, () => prepared.version));
      req.log.info({ sequence: sequence.name, id: sequence.id }, 'task sequence created');
      return reply.code(201).send({ sequence, version: (await repos.taskSequences.version(sequence.id, 1))!, warnings: prepared.warnings });
    },
  });

  app.post<{ Body: Record<string, unknown> }>('/api/v1/task-sequences/validate', {
    schema: { ...tags('task sequences'), summary: 'check a document as an upload would, without storing it', body: sequenceDocumentSchema, response: { 200: validationResultSchema } },
    handler: async (req) => {
      const existing = typeof req.body.name === 'string' ? await repos.taskSequences.byName(req.body.name) : undefined;
      try {
        const p = prepareVersion(req.body, (existing?.latestVersion ?? 0) + 1, null, await repos.images.list(), null);
        return { valid: true, errors: [], warnings: p.warnings };
      } catch (err) {
        if (err instanceof ModelError) return { valid: false, errors: err.errors, warnings: [] };
        throw err;
      }
    },
  });

  app.get<{ Params: { id: number } }>('/api/v1/task-sequences/:id', {
    schema: {
      ...tags('task sequences'),
      summary: 'a task sequence with every version',
      params: idParams,
      response: { 200: { type: 'object', properties: { ...taskSequenceSchema.properties, history: { type: 'array', items: sequenceVersionSchema } } }, ...errors },
    },
    handler: async (req) => {
      const s = await findSequence(ctx, req.params.id);
      return { ...s, history: await repos.taskSequences.versions(s.id) };
    },
  });

  app.put<{ Params: { id: number }; Body: Record<string, unknown>; Querystring: { comment?: string } }>('/api/v1/task-sequences/:id', {
    schema: {
      ...tags('task sequences'),
      summary: 'upload a new version (deployments keep the version they pinned)',
      params: idParams,
      body: sequenceDocumentSchema,
      querystring: commentQuery,
      response: { 200: uploadResultSchema, ...errors },
    },
    handler: async (req) => {
      const s = await findSequence(ctx, req.params.id);
      const library = await repos.images.list();
      // Validated against the next number first; the repository assigns the number inside its transaction.
      const first = prepareVersion(req.body, s.latestVersion + 1, s.name, library, req.query.comment ?? null);
      const version = await repos.taskSequences.addVersion(s.id, (n) => (n === s.latestVersion + 1 ? first.version : prepareVersion(req.body, n, s.name, library, req.query.comment ?? null).version));
      req.log.info({ sequence: s.name, version: version!.version }, 'task sequence version added');
      return { sequence: (await repos.taskSequences.get(s.id))!, version: version!, warnings: first.warnings };
    },
  });

  app.get<{ Params: { id: number; version: number } }>('/api/v1/task-sequences/:id/versions/:version', {
    schema: {
      ...tags('task sequences'),
      summary: 'one version of a task sequence',
      params: { type: 'object', properties: { id: { type: 'integer', minimum: 1 }, version: { type: 'integer', minimum: 1 } }, required: ['id', 'version'] },
      response: { 200: sequenceVersionSchema, ...errors },
    },
    handler: async (req) => (await repos.taskSequences.version(req.params.id, req.params.version)) ?? notFound(`task sequence ${req.params.id} has no version ${req.params.version}`),
  });

  app.delete<{ Params: { id: number } }>('/api/v1/task-sequences/:id', {
    schema: { ...tags('task sequences'), summary: 'delete a task sequence and its versions (refused while deployed)', params: idParams, response: { 204: { type: 'null' }, ...errors } },
    handler: async (req, reply) => {
      if (!(await conflict(() => repos.taskSequences.delete(req.params.id)))) notFound(`no task sequence ${req.params.id}`);
      return reply.code(204).send();
    },
  });

  // ---- deployments ----------------------------------------------------------------------------------------
  app.get('/api/v1/deployments', {
    schema: { ...tags('deployments'), summary: 'deployments', response: { 200: { type: 'array', items: deploymentSchema } } },
    handler: async () => repos.deployments.list(),
  });

  type NewDeploymentBody = Partial<DeploymentChanges> & { sequence: number | string; version?: number; collection: number | string; purpose: 'available' | 'required' };
  app.post<{ Body: NewDeploymentBody }>('/api/v1/deployments', {
    schema: { ...tags('deployments'), summary: 'deploy a task sequence version to a collection', body: newDeploymentSchema, response: { 201: deploymentSchema, ...errors } },
    handler: async (req, reply) => {
      const b = req.body;
      const sequence = await findSequence(ctx, b.sequence);
      const version = b.version ?? sequence.latestVersion;
      if (!(await repos.taskSequences.version(sequence.id, version))) throw new ModelError('invalid deployment', [{ path: '/version', message: `task sequence "${sequence.name}" has no version ${version} (latest: ${sequence.latestVersion})` }]);
      const collection = await findCollection(ctx, b.collection);
      const d = {
        name: b.name ?? `${sequence.name} → ${collection.name}`,
        sequenceId: sequence.id,
        sequenceVersion: version,
        collectionId: collection.id,
        purpose: b.purpose,
        availableFrom: iso(b.availableFrom),
        deadline: iso(b.deadline),
        access: b.access ?? ('multicast-first' as ContentAccess),
        enabled: b.enabled ?? true,
        variables: b.variables ?? {},
      };
      await checkDeployment(ctx, d);
      const created = await repos.deployments.create(d);
      req.log.info({ deployment: created.id, sequence: sequence.name, version, collection: collection.name, purpose: d.purpose }, 'deployment created');
      return reply.code(201).send(created);
    },
  });

  app.get<{ Params: { id: number } }>('/api/v1/deployments/:id', {
    schema: { ...tags('deployments'), summary: 'one deployment', params: idParams, response: { 200: deploymentSchema, ...errors } },
    handler: async (req) => findDeployment(ctx, req.params.id),
  });

  app.patch<{ Params: { id: number }; Body: DeploymentChanges }>('/api/v1/deployments/:id', {
    schema: { ...tags('deployments'), summary: 'enable/disable, reschedule, change access or variables', params: idParams, body: deploymentChangesSchema, response: { 200: deploymentSchema, ...errors } },
    handler: async (req) => {
      const current = await findDeployment(ctx, req.params.id);
      const changes = { ...req.body, ...('deadline' in req.body ? { deadline: iso(req.body.deadline) } : {}), ...('availableFrom' in req.body ? { availableFrom: iso(req.body.availableFrom) } : {}) };
      await checkDeployment(ctx, { ...current, ...changes });
      return (await repos.deployments.update(current.id, changes))!;
    },
  });

  app.delete<{ Params: { id: number } }>('/api/v1/deployments/:id', {
    schema: { ...tags('deployments'), summary: 'delete a deployment and its status records', params: idParams, response: { 204: { type: 'null' }, ...errors } },
    handler: async (req, reply) => {
      if (!(await repos.deployments.delete(req.params.id))) notFound(`no deployment ${req.params.id}`);
      return reply.code(204).send();
    },
  });

  app.get<{ Params: { id: number } }>('/api/v1/deployments/:id/status', {
    schema: {
      ...tags('deployments'),
      summary: 'per device: state, current step, progress (bytes, rate), failure reason, finished steps; members that have not reported are waiting',
      params: idParams,
      response: { 200: deploymentStatusSchema, ...errors },
    },
    handler: async (req) => deploymentStatus(ctx, await findDeployment(ctx, req.params.id)),
  });

  app.get<{ Params: { id: number }; Querystring: { device?: number; after?: number; limit?: number } }>('/api/v1/deployments/:id/messages', {
    schema: {
      ...tags('deployments'),
      summary: 'status messages of a deployment in the order received (progress messages only update the status)',
      params: idParams,
      querystring: {
        type: 'object',
        properties: { device: { type: 'integer', minimum: 1 }, after: { type: 'integer', minimum: 0, description: 'only messages after this seq' }, limit: { type: 'integer', minimum: 1, maximum: 10000, default: 1000 } },
        additionalProperties: false,
      },
      response: { 200: { type: 'array', items: storedMessageSchema }, ...errors },
    },
    handler: async (req) => {
      await findDeployment(ctx, req.params.id);
      return repos.deployments.messages(req.params.id, { deviceId: req.query.device, afterSeq: req.query.after, limit: req.query.limit });
    },
  });
}

function normalizeRule(r: CollectionRule): CollectionRule {
  return r.type === 'mac-prefix' ? { type: 'mac-prefix', prefix: normalizeMac(r.prefix).replace(/:$/, '') } : r;
}

async function deploymentStatus(ctx: ServerContext, deployment: DeploymentRecord) {
  const devices = await ctx.repos.devices.list();
  const byId = new Map(devices.map((d) => [d.id, d]));
  const collection = (await ctx.repos.collections.get(deployment.collectionId))!;
  const reported = new Map((await ctx.repos.deployments.summaries(deployment.id)).map((s) => [s.deviceId, s]));
  const rows = members(collection, devices).map((m) => reported.get(m.device.id) ?? waitingSummary(m.device.id));
  // Devices that reported but have since left the collection stay visible.
  for (const s of reported.values()) if (!rows.some((r) => r.deviceId === s.deviceId)) rows.push(s);
  const counts = { waiting: 0, running: 0, succeeded: 0, failed: 0, 'restart-pending': 0 };
  for (const r of rows) counts[r.state]++;
  return { deployment, counts, devices: rows.map((r) => ({ ...r, deviceName: byId.get(r.deviceId)?.name ?? `(deleted device ${r.deviceId})` })) };
}

// ---- agent calls ------------------------------------------------------------------------------------------------

async function authenticatedDevice(ctx: ServerContext, req: FastifyRequest): Promise<DeviceRecord> {
  const given = req.headers[DEVICE_CREDENTIAL_HEADER];
  if (typeof given !== 'string' || !given) throw new HttpError(401, `device credential required (header ${DEVICE_CREDENTIAL_HEADER}): register first (POST /api/client/register)`);
  const device = await ctx.repos.devices.byCredential(credentialDigest(given));
  if (!device) throw new HttpError(401, 'unknown device credential (the device was deleted or registered again elsewhere): register again');
  return device;
}

interface RegisterBody {
  name: string;
  macAddresses: string[];
  smbiosUuid?: string;
  serial?: string;
  agentVersion?: string;
}

export function deployClientRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const { repos } = ctx;
  const tags = ['agent'];
  const security = [{ deviceCredential: [] }];

  app.post<{ Body: RegisterBody }>('/api/client/register', {
    schema: {
      tags,
      summary: 'register this device (or be recognised again by SMBIOS UUID or MAC address) and get its credential',
      body: registerRequestSchema,
      response: { 200: registerResponseSchema, ...errors },
    },
    handler: async (req) => {
      const b = req.body;
      const credential = `fcd_${randomBytes(24).toString('base64url')}`;
      const { device, recognisedBy } = await repos.devices.register(
        {
          name: b.name,
          macAddresses: [...new Set(b.macAddresses.map(normalizeMac))].sort(),
          smbiosUuid: b.smbiosUuid?.toUpperCase() ?? null,
          serial: b.serial ?? null,
          agentVersion: b.agentVersion ?? null,
          address: req.ip,
        },
        credentialDigest(credential),
        new Date().toISOString(),
      );
      req.log.info({ device: device.id, name: device.name, recognisedBy }, recognisedBy ? 'device registered again' : 'device registered');
      return { deviceId: device.id, name: device.name, credential, recognisedBy, pollIntervalSeconds: ctx.config.agentPollIntervalSeconds };
    },
  });

  app.post<{ Body: { status?: DeviceStatus; agentVersion?: string } }>('/api/client/policy', {
    schema: { tags, security, summary: "this device's deployments (pinned task sequence, variables, schedule); records that it was seen", body: policyRequestSchema, response: { 200: policyResponseSchema, ...errors } },
    handler: async (req) => {
      const device = await authenticatedDevice(ctx, req);
      await repos.devices.touch(device.id, { status: req.body?.status, agentVersion: req.body?.agentVersion, address: req.ip }, new Date().toISOString());
      const now = Date.now();
      const collections = new Map((await repos.collections.list()).map((c) => [c.id, c]));
      const deployments = [];
      for (const d of await repos.deployments.list()) {
        const collection = collections.get(d.collectionId)!;
        if (!applies(d, collection, device, now)) continue;
        const version = (await repos.taskSequences.version(d.sequenceId, d.sequenceVersion))!;
        const summary = await repos.deployments.summary(d.id, device.id);
        deployments.push({
          id: d.id,
          name: d.name,
          purpose: d.purpose,
          availableFrom: d.availableFrom,
          deadline: d.deadline,
          access: d.access,
          state: summary?.state ?? 'waiting',
          sequence: version.document,
          sequenceDigest: version.digest,
          variables: deploymentVariables(collection, d),
        });
      }
      return { deviceId: device.id, name: device.name, serverTime: new Date(now).toISOString(), pollIntervalSeconds: ctx.config.agentPollIntervalSeconds, deployments };
    },
  });

  app.post<{ Body: { messages: ReceivedStatus[] } }>('/api/client/status', {
    schema: { tags, security, summary: 'status messages of this device (batched; a retried batch is stored once)', body: statusBatchSchema, response: { 200: statusBatchResultSchema, ...errors } },
    handler: async (req) => {
      const device = await authenticatedDevice(ctx, req);
      const now = Date.now();
      const accepted: { deploymentId: number; message: ReceivedStatus; store: boolean }[] = [];
      const ignored: { id: string; reason: string }[] = [];
      const allowed = new Map<string, boolean>();
      for (const m of req.body.messages) {
        if (!allowed.has(m.deploymentId)) allowed.set(m.deploymentId, await partOf(ctx, m.deploymentId, device, now));
        if (!allowed.get(m.deploymentId)) {
          ignored.push({ id: m.id, reason: `deployment ${m.deploymentId} does not exist or does not target this device` });
          continue;
        }
        accepted.push({ deploymentId: Number(m.deploymentId), message: m, store: m.kind !== 'step-progress' });
      }
      const at = new Date(now).toISOString();
      const stored = accepted.length ? await repos.deployments.recordMessages(device.id, accepted, (current, m) => foldStatus(device.id, current, m), at) : 0;
      const last = accepted.at(-1)?.message.kind;
      const status: DeviceStatus | undefined = last === undefined ? undefined : last === 'restart-requested' ? 'restart-pending' : last === 'sequence-succeeded' || last === 'sequence-failed' ? 'idle' : 'running';
      await repos.devices.touch(device.id, { status }, at);
      return { stored, ignored };
    },
  });

  app.get<{ Params: { name: string } }>('/api/client/images/:name', {
    schema: { tags, summary: 'facts about an image the agent is about to apply (format, sizes, digest)', params: { type: 'object', properties: { name: imageName }, required: ['name'] }, response: { 200: clientImageSchema, ...errors } },
    handler: async (req) => {
      const i = (await repos.images.byName(req.params.name)) ?? notFound(`the distribution point has no image named "${req.params.name}"`);
      return { name: i.name, version: i.version, format: i.format, size: i.size, digest: i.digest, uncompressedSize: i.uncompressedSize, allowMulticast: i.allowMulticast, multicastOnly: i.multicastOnly };
    },
  });
}

/** A device reports on a deployment that targets it now, or that it has already reported on. */
async function partOf(ctx: ServerContext, deploymentId: string, device: DeviceRecord, now: number): Promise<boolean> {
  if (!/^\d+$/.test(deploymentId)) return false;
  const d = await ctx.repos.deployments.get(Number(deploymentId));
  if (!d) return false;
  if (await ctx.repos.deployments.summary(d.id, device.id)) return true;
  const collection = await ctx.repos.collections.get(d.collectionId);
  return collection !== undefined && applies({ ...d, enabled: true }, collection, device, now);
}
