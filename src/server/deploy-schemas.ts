// JSON schemas of the deployment API (devices, collections, task sequences, deployments, agent calls): they
// validate requests and generate the OpenAPI document. Task sequence documents themselves are checked by the
// agent's validator (src/agent/sequence.ts), which reports every problem with its path.
import { CONTENT_ACCESS } from '../db/deployment-repositories.js';
import { STEP_TYPES } from '../agent/sequence.js';

import { bool, int, nint, nstr, obj, str } from './schemas.js';

export const macSchema = { type: 'string', pattern: '^[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}$' } as const;
const dateTime = { type: 'string', format: 'date-time' } as const;
const ndateTime = { type: ['string', 'null'], format: 'date-time' } as const;
export const variablesSchema = { type: 'object', additionalProperties: { type: 'string', maxLength: 8192 }, description: 'NAME: value; names as in task sequences' } as const;
export const entityName = { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9 ._-]*$' } as const;
/** An id, or a name (the CLI passes what the user typed). */
export const idOrName = { anyOf: [{ type: 'integer', minimum: 1 }, entityName] } as const;

export const deviceSchema = obj({
  id: int,
  name: str,
  macAddresses: { type: 'array', items: str },
  smbiosUuid: nstr,
  serial: nstr,
  agentVersion: nstr,
  status: { type: 'string', enum: ['idle', 'running', 'restart-pending'], description: 'what the agent said at its last poll' },
  online: { ...bool, description: 'polled within three poll intervals' },
  registeredAt: str,
  lastSeenAt: str,
  lastAddress: nstr,
});

export const ruleSchema = {
  oneOf: [
    obj({ type: { const: 'name-glob' }, pattern: { type: 'string', minLength: 1, maxLength: 256, description: 'shell glob over the device name: lab-* or pc-[0-9]?' } }),
    obj({ type: { const: 'name-regex' }, pattern: { type: 'string', minLength: 1, maxLength: 256, description: 'regular expression (case-insensitive) over the device name' } }),
    obj({ type: { const: 'mac-prefix' }, prefix: { type: 'string', pattern: '^[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){0,5}[:-]?$', description: 'e.g. 52:54:00' } }),
  ],
} as const;

const collectionFields = {
  name: entityName,
  description: nstr,
  members: { type: 'array', items: { type: 'integer', minimum: 1 }, uniqueItems: true, description: 'static members: device ids' },
  rules: { type: 'array', items: ruleSchema, maxItems: 100, description: 'a device matching any rule is a member' },
  variables: variablesSchema,
};

export const newCollectionSchema = obj(collectionFields, ['name']);
export const collectionChangesSchema = obj(collectionFields, [], { minProperties: 1 });

export const collectionSchema = obj({
  id: int,
  name: str,
  description: nstr,
  members: { type: 'array', items: int },
  rules: { type: 'array', items: ruleSchema },
  variables: variablesSchema,
  memberCount: { ...int, description: 'evaluated membership: static members and rule matches' },
  createdAt: str,
  updatedAt: str,
});

export const collectionDetailSchema = obj({
  ...collectionSchema.properties,
  evaluated: { type: 'array', items: obj({ device: deviceSchema, via: { ...str, description: '"static" or the rule that matched' } }) },
});

const issue = obj({ path: str, message: str });

export const taskSequenceSchema = obj({ id: int, name: str, latestVersion: int, versions: int, createdAt: str, updatedAt: str });

export const sequenceVersionSchema = obj({
  sequenceId: int,
  version: int,
  digest: str,
  images: { type: 'array', items: str },
  comment: nstr,
  createdAt: str,
  document: { type: 'object', additionalProperties: true, description: 'the validated task sequence document' },
});

export const uploadResultSchema = obj({ sequence: taskSequenceSchema, version: sequenceVersionSchema, warnings: { type: 'array', items: issue } });

export const sequenceDocumentSchema = { type: 'object', additionalProperties: true, description: 'a task sequence document (docs/task-sequences.md); its "version" is set by the server' } as const;

export const validationResultSchema = obj({ valid: bool, errors: { type: 'array', items: issue }, warnings: { type: 'array', items: issue } });

const deploymentFields = {
  name: entityName,
  purpose: { type: 'string', enum: ['available', 'required'] },
  availableFrom: { ...ndateTime, description: 'not offered before this time (null: at once)' },
  deadline: { ...ndateTime, description: 'required deployments run at the deadline' },
  access: { type: 'string', enum: CONTENT_ACCESS, description: 'multicast-first (unicast fallback when the package allows it), unicast-only, multicast-only' },
  enabled: bool,
  variables: variablesSchema,
};

export const newDeploymentSchema = obj(
  {
    ...deploymentFields,
    sequence: { ...idOrName, description: 'task sequence id or name' },
    version: { type: 'integer', minimum: 1, description: 'pinned task sequence version (default: the latest)' },
    collection: { ...idOrName, description: 'collection id or name' },
  },
  ['sequence', 'collection', 'purpose'],
);

export const deploymentChangesSchema = obj(deploymentFields, [], { minProperties: 1 });

export const deploymentSchema = obj({
  id: int,
  name: str,
  sequenceId: int,
  sequenceName: str,
  sequenceVersion: int,
  collectionId: int,
  collectionName: str,
  purpose: { type: 'string', enum: ['available', 'required'] },
  availableFrom: nstr,
  deadline: nstr,
  access: { type: 'string', enum: CONTENT_ACCESS },
  enabled: bool,
  variables: variablesSchema,
  createdAt: str,
  updatedAt: str,
});

const deviceStates = ['waiting', 'running', 'succeeded', 'failed', 'restart-pending'] as const;

export const deviceSummarySchema = obj({
  deviceId: int,
  deviceName: str,
  state: { type: 'string', enum: deviceStates },
  currentStep: { anyOf: [{ type: 'null' }, obj({ path: str, name: str, type: str, ordinal: nint, total: nint }, ['path', 'name', 'type'])] },
  progress: {
    anyOf: [
      { type: 'null' },
      obj({ phase: str, done: { type: 'number' }, total: { type: ['number', 'null'] }, unit: { type: 'string', enum: ['bytes', 'percent'] }, rateBps: { type: ['number', 'null'], description: 'bits/s' }, at: str }),
    ],
  },
  reason: { ...nstr, description: 'why it failed: content-not-found, hash-mismatch, disk-too-small, exit-code …' },
  message: nstr,
  steps: {
    type: 'array',
    description: 'finished steps in the order they finished',
    items: obj({ path: str, name: str, type: str, outcome: { type: 'string', enum: ['succeeded', 'failed', 'skipped'] }, reason: str, message: str, at: str }, ['path', 'name', 'type', 'outcome', 'at']),
  },
  restarts: int,
  startedAt: nstr,
  finishedAt: nstr,
  lastMessageAt: nstr,
});

export const deploymentStatusSchema = obj({
  deployment: deploymentSchema,
  counts: obj(Object.fromEntries(deviceStates.map((s) => [s, int]))),
  devices: { type: 'array', items: deviceSummarySchema },
});

const statusMessageSchema = {
  type: 'object',
  required: ['id', 'time', 'kind', 'deploymentId', 'sequence', 'message'],
  additionalProperties: true,
  properties: {
    id: { type: 'string', minLength: 8, maxLength: 64, description: 'unique per message: a retried batch is stored once' },
    time: dateTime,
    kind: {
      type: 'string',
      enum: ['sequence-started', 'sequence-resumed', 'step-started', 'step-progress', 'step-log', 'step-succeeded', 'step-failed', 'step-skipped', 'restart-requested', 'sequence-succeeded', 'sequence-failed'],
    },
    deploymentId: str,
    sequence: obj({ name: str, version: int }),
    step: obj({ path: str, id: str, name: str, type: { type: 'string', enum: STEP_TYPES } }),
    message: { type: 'string', maxLength: 65536 },
    reason: str,
  },
} as const;

export const storedMessageSchema = obj({ seq: int, deploymentId: int, deviceId: int, receivedAt: str, message: { type: 'object', additionalProperties: true } });

// ---- agent calls (/api/client) --------------------------------------------------------------------------------

export const registerRequestSchema = obj(
  {
    name: { type: 'string', minLength: 1, maxLength: 128 },
    macAddresses: { type: 'array', items: macSchema, maxItems: 64 },
    smbiosUuid: { type: 'string', maxLength: 64 },
    serial: { type: 'string', maxLength: 128 },
    agentVersion: { type: 'string', maxLength: 64 },
  },
  ['name', 'macAddresses'],
);

export const registerResponseSchema = obj({
  deviceId: int,
  name: str,
  credential: { ...str, description: 'the device credential: send it as X-Fleetcast-Device on agent calls; shown only now' },
  recognisedBy: { type: ['string', 'null'], enum: ['uuid', 'mac', null] },
  pollIntervalSeconds: int,
});

export const policyRequestSchema = obj({ status: { type: 'string', enum: ['idle', 'running', 'restart-pending'] }, agentVersion: str }, []);

export const policyResponseSchema = obj({
  deviceId: int,
  name: str,
  serverTime: str,
  pollIntervalSeconds: int,
  deployments: {
    type: 'array',
    items: obj({
      id: int,
      name: str,
      purpose: { type: 'string', enum: ['available', 'required'] },
      availableFrom: nstr,
      deadline: nstr,
      access: { type: 'string', enum: CONTENT_ACCESS },
      state: { type: 'string', enum: deviceStates, description: "this device's state in the deployment, as the server knows it" },
      sequence: { type: 'object', additionalProperties: true, description: 'the pinned task sequence version' },
      sequenceDigest: str,
      variables: variablesSchema,
    }),
  },
});

export const statusBatchSchema = obj({ messages: { type: 'array', items: statusMessageSchema, minItems: 1, maxItems: 1000 } });
export const statusBatchResultSchema = obj({
  stored: { ...int, description: 'new messages (a retried batch stores nothing twice)' },
  ignored: { type: 'array', items: obj({ id: str, reason: str }), description: 'messages for deployments this device is not part of' },
});

export const clientImageSchema = obj({ name: str, version: nstr, format: str, size: int, digest: str, uncompressedSize: nint, allowMulticast: bool, multicastOnly: bool });
