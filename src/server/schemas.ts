// JSON schemas of the HTTP API: they validate requests (clear 400s) and generate the OpenAPI document.
export const str = { type: 'string' } as const;
export const nstr = { type: ['string', 'null'] } as const;
export const int = { type: 'integer' } as const;
export const nint = { type: ['integer', 'null'] } as const;
export const bool = { type: 'boolean' } as const;
export const obj = (properties: Record<string, unknown>, required: string[] = Object.keys(properties), extra: Record<string, unknown> = {}) =>
  ({ type: 'object', properties, required, additionalProperties: false, ...extra }) as const;

export const errorSchema = obj(
  { statusCode: int, error: str, message: str, errors: { type: 'array', items: obj({ path: str, message: str }), description: 'every problem, with its JSON-pointer path' } },
  ['message'],
);

export const imageName = { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' } as const;
export const digestSchema = { type: 'string', pattern: '^[0-9a-f]{64}$' } as const;

const packageSettings = {
  allowMulticast: { ...bool, description: 'allow this package to be transferred via multicast' },
  encryptMulticast: { ...bool, description: 'encrypt multicast packets (AES-256-GCM, a random key per session)' },
  multicastOnly: { ...bool, description: 'transfer this package only via multicast (no unicast fallback)' },
};

export const imageSchema = {
  ...obj({
    id: int,
    name: str,
    version: nstr,
    description: nstr,
    digest: { ...str, description: 'SHA-256 of the stored bytes' },
    format: { type: 'string', enum: ['raw', 'gzip', 'zstd', 'iso', 'wim'] },
    size: { ...int, description: 'stored bytes: what travels over multicast or HTTP' },
    uncompressedSize: { ...nint, description: 'gzip/zstd: bytes after decompression' },
    details: { type: 'object', additionalProperties: true, description: 'ISO volume id, WIM image list, import time' },
    ...packageSettings,
    createdAt: str,
    updatedAt: str,
  }),
};

export const imageChangesSchema = obj(
  { version: nstr, description: nstr, ...packageSettings },
  [],
  { minProperties: 1 },
);

export const importRequestSchema = obj(
  {
    path: { type: 'string', minLength: 1, description: 'absolute path of the image file on the server' },
    name: imageName,
    version: nstr,
    description: nstr,
    format: { type: 'string', enum: ['raw', 'gzip', 'zstd', 'iso', 'wim'], description: 'default: detected from the content' },
    ...packageSettings,
  },
  ['path', 'name'],
);

export const uploadQuerySchema = obj(
  {
    name: imageName,
    version: str,
    description: str,
    format: { type: 'string', enum: ['raw', 'gzip', 'zstd', 'iso', 'wim'] },
    ...packageSettings,
  },
  ['name'],
);

export const importJobSchema = obj({
  id: str,
  name: str,
  source: str,
  state: { type: 'string', enum: ['running', 'completed', 'failed', 'cancelled'] },
  stage: str,
  doneBytes: int,
  totalBytes: int,
  startedAt: str,
  finishedAt: nstr,
  image: { anyOf: [{ type: 'null' }, imageSchema] },
  error: { anyOf: [{ type: 'null' }, obj({ code: str, message: str })] },
});

const dpProperties = {
  multicastEnabled: { ...bool, description: 'enable multicast on this distribution point' },
  addressPool: { type: 'string', enum: ['any', 'range'], description: '"any": 239.255.0.0/16; "range": addressStart..addressEnd' },
  addressStart: { ...nstr, description: 'first multicast group of the pool (IPv4 or IPv6)' },
  addressEnd: { ...nstr, description: 'last multicast group of the pool' },
  portStart: { type: 'integer', minimum: 1024, maximum: 65535 },
  portEnd: { type: 'integer', minimum: 1024, maximum: 65535 },
  transferRateBps: { type: ['number', 'null'], description: 'client transfer rate: link-rate ceiling in bits/s; null: unlimited, adapts to loss' },
  maxClients: { type: 'integer', minimum: 1, description: 'multicast clients served at once over all sessions' },
  scheduledMulticast: { ...bool, description: 'start a session when minimumSessionSize clients joined or the start delay expired' },
  sessionStartDelaySeconds: { type: 'number', minimum: 0 },
  minimumSessionSize: { type: 'integer', minimum: 1 },
  autoCast: { ...bool, description: 'admit clients to a session already sending; they catch up in later passes' },
  slowClientHandling: { type: 'string', enum: ['none', 'disconnect', 'slower-stream'] },
  slowClientThresholdBps: { type: ['number', 'null'], description: 'below this rate a client is disconnected (falls back to unicast) or moved to the slower stream' },
};

export const dpSettingsSchema = obj(dpProperties);
export const dpChangesSchema = obj(dpProperties, [], { minProperties: 1 });

export const sessionStates = ['waiting', 'running', 'completed', 'failed', 'cancelled', 'aborted'] as const;

export const liveStatusSchema = obj({
  phase: { type: 'string', enum: ['scheduled', 'waiting', 'transferring', 'ended'] },
  admitting: bool,
  rateBps: { type: ['number', 'null'] },
  wireBytes: int,
  firstPassBytes: int,
  imageSize: int,
  clients: {
    type: 'array',
    items: obj({
      ticket: str,
      name: str,
      nodeId: int,
      joined: bool,
      outcome: str,
      reason: nstr,
      bytesComplete: int,
      progress: { type: 'number' },
      rttMs: { type: ['number', 'null'] },
      lossPpm: int,
      repairsRequested: int,
    }),
  },
});

export const sessionSchema = obj(
  {
    id: int,
    imageId: nint,
    imageName: str,
    imageDigest: str,
    group: str,
    port: int,
    state: { type: 'string', enum: sessionStates },
    createdAt: str,
    startedAt: nstr,
    endedAt: nstr,
    params: { type: 'object', additionalProperties: true },
    wireBytes: nint,
    sourcePackets: nint,
    parityPackets: nint,
    controlPackets: nint,
    durationMs: nint,
    endReason: nstr,
    clientCount: int,
    clientsCompleted: int,
    live: { anyOf: [{ type: 'null' }, liveStatusSchema] },
  },
  ['id', 'imageName', 'group', 'port', 'state', 'createdAt'],
);

export const clientOutcomes = ['pending', 'completed', 'failed', 'dropped', 'fell-back-to-unicast'] as const;

export const clientSchema = obj({
  id: { ...str, description: 'ticket the client quotes in its report' },
  sessionId: nint,
  imageId: nint,
  imageName: str,
  clientName: str,
  clientMac: nstr,
  clientUuid: nstr,
  clientAddress: nstr,
  nodeId: nint,
  transport: { type: 'string', enum: ['multicast', 'unicast'] },
  outcome: { type: 'string', enum: clientOutcomes },
  reason: nstr,
  bytes: nint,
  durationMs: nint,
  repairsRequested: nint,
  admittedAt: str,
  finishedAt: nstr,
});

export const locationRequestSchema = obj(
  {
    client: obj(
      {
        name: { type: 'string', minLength: 1, maxLength: 128 },
        mac: { type: 'string', pattern: '^[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}$' },
        uuid: { type: 'string', maxLength: 64 },
      },
      ['name'],
    ),
    image: imageName,
    version: str,
    retryOf: { type: 'string', format: 'uuid', description: 'ticket of an earlier attempt that failed (multicast dropped: fall back)' },
    access: { type: 'string', enum: ['multicast-first', 'unicast-only', 'multicast-only'], description: "a deployment's content access option; it narrows what the package allows (default multicast-first)" },
  },
  ['client', 'image'],
);

const geometrySchema = obj({ mtu: int, fec: { type: 'string', enum: ['raptorq', 'reed-solomon'], description: 'FEC scheme (docs/fec.md)' }, symbolSize: int, blockSymbols: int, blockBytes: int });

export const locationSchema = {
  oneOf: [
    obj({
      kind: { const: 'multicast' },
      ticket: str,
      sessionId: int,
      engineSessionId: int,
      nodeId: int,
      group: str,
      port: int,
      ttl: int,
      geometry: geometrySchema,
      imageSize: int,
      digest: str,
      blockHashes: { ...str, description: 'base64 of the per-block SHA-256 digests (blockCount * 32 bytes)' },
      key: { ...nstr, description: 'session key when the package is encrypted' },
      startsBy: nstr,
      unicastFallback: bool,
    }),
    obj({ kind: { const: 'unicast' }, ticket: str, url: str, size: int, digest: str, reason: str }),
    obj({ kind: { const: 'wait' }, retryAfterSeconds: int, reason: str }),
  ],
} as const;

export const reportSchema = obj(
  {
    ticket: { type: 'string', format: 'uuid' },
    outcome: { type: 'string', enum: ['completed', 'failed', 'dropped'] },
    reason: nstr,
    bytes: { type: ['integer', 'null'], minimum: 0 },
    durationMs: { type: ['integer', 'null'], minimum: 0 },
    repairsRequested: { type: ['integer', 'null'], minimum: 0 },
  },
  ['ticket', 'outcome'],
);
