// The storage interface the server codes against, one repository per entity. Every method returns a Promise
// so that a PostgreSQL implementation (a later issue: several distribution points sharing one site database)
// can be added next to the SQLite one without touching callers. Callers must not rely on two calls being
// atomic together; where that matters the repository offers one method that does both.

import type { CollectionRepository, DeploymentRepository, DeviceRepository, TaskSequenceRepository } from './deployment-repositories.js';

export type SessionState = 'waiting' | 'running' | 'completed' | 'failed' | 'cancelled' | 'aborted';
export const LIVE_SESSION_STATES: readonly SessionState[] = ['waiting', 'running'];

export type ClientOutcome = 'pending' | 'completed' | 'failed' | 'dropped' | 'fell-back-to-unicast';
export type ClientTransport = 'multicast' | 'unicast';

/** ConfigMgr's per-package distribution settings. */
export interface PackageSettings {
  allowMulticast: boolean;
  encryptMulticast: boolean;
  /** No unicast fallback: clients wait for a multicast session. */
  multicastOnly: boolean;
}

export interface ImageRecord extends PackageSettings {
  id: number;
  name: string;
  version: string | null;
  description: string | null;
  /** SHA-256 of the stored bytes: the content store's address. */
  digest: string;
  format: string;
  size: number;
  uncompressedSize: number | null;
  /** Format details from the import (ISO volume id, WIM image list ...). */
  details: Record<string, unknown>;
  createdAt: string;
  updatedAt: string;
}

export type NewImage = Omit<ImageRecord, 'id' | 'createdAt' | 'updatedAt'>;
export type ImageChanges = Partial<Pick<ImageRecord, 'version' | 'description' | 'allowMulticast' | 'encryptMulticast' | 'multicastOnly'>>;

export interface SessionCounters {
  wireBytes: number;
  sourcePackets: number;
  parityPackets: number;
  controlPackets: number;
  durationMs: number;
}

export interface SessionRecord extends Partial<Record<keyof SessionCounters, number | null>> {
  id: number;
  imageId: number | null;
  imageName: string;
  imageDigest: string;
  group: string;
  port: number;
  state: SessionState;
  createdAt: string;
  startedAt: string | null;
  endedAt: string | null;
  /** Settings the session ran with (rate, schedule, geometry, encryption flag; never the key). */
  params: Record<string, unknown>;
  endReason: string | null;
}

export type NewSession = Pick<SessionRecord, 'imageId' | 'imageName' | 'imageDigest' | 'group' | 'port' | 'params'>;
export type SessionChanges = Partial<Pick<SessionRecord, 'state' | 'startedAt' | 'endedAt' | 'endReason' | 'params'>> & Partial<SessionCounters>;

export interface ClientRecord {
  /** Random ticket: the client quotes it when it reports its outcome. */
  id: string;
  sessionId: number | null;
  imageId: number | null;
  imageName: string;
  clientName: string;
  clientMac: string | null;
  clientUuid: string | null;
  clientAddress: string | null;
  /** The client's node id inside the multicast session. */
  nodeId: number | null;
  transport: ClientTransport;
  outcome: ClientOutcome;
  reason: string | null;
  bytes: number | null;
  durationMs: number | null;
  repairsRequested: number | null;
  admittedAt: string;
  finishedAt: string | null;
}

export type NewClient = Omit<ClientRecord, 'outcome' | 'reason' | 'bytes' | 'durationMs' | 'repairsRequested' | 'finishedAt'>;
export type ClientChanges = Partial<Pick<ClientRecord, 'transport' | 'outcome' | 'reason' | 'bytes' | 'durationMs' | 'repairsRequested' | 'finishedAt' | 'sessionId'>>;

export interface ListFilter {
  limit?: number;
}

export interface ImageRepository {
  list(): Promise<ImageRecord[]>;
  byName(name: string): Promise<ImageRecord | undefined>;
  byId(id: number): Promise<ImageRecord | undefined>;
  /** Throws ConflictError when the name is taken. */
  create(image: NewImage): Promise<ImageRecord>;
  update(name: string, changes: ImageChanges): Promise<ImageRecord | undefined>;
  delete(name: string): Promise<boolean>;
  /** Images that share this content (content is stored once). */
  countByDigest(digest: string): Promise<number>;
}

/** One settings document for the distribution point; validated by the server before it is saved. */
export interface DpSettingsRepository {
  get(): Promise<Record<string, unknown> | undefined>;
  save(settings: Record<string, unknown>): Promise<void>;
}

export interface SessionRepository {
  create(session: NewSession): Promise<SessionRecord>;
  update(id: number, changes: SessionChanges): Promise<SessionRecord | undefined>;
  get(id: number): Promise<SessionRecord | undefined>;
  list(filter?: ListFilter & { state?: SessionState; imageName?: string }): Promise<SessionRecord[]>;
  /** Live sessions that use an image (a delete must be refused while there are any). */
  countLiveForImage(imageId: number): Promise<number>;
  /**
   * After a crash: every session still recorded as live is marked aborted with the reason, and its pending
   * clients failed. Returns the ids. One transaction.
   */
  abortLive(reason: string, at: string): Promise<number[]>;
}

export interface ClientRepository {
  create(client: NewClient): Promise<ClientRecord>;
  update(id: string, changes: ClientChanges): Promise<ClientRecord | undefined>;
  get(id: string): Promise<ClientRecord | undefined>;
  list(filter?: ListFilter & { sessionId?: number; imageName?: string; outcome?: ClientOutcome }): Promise<ClientRecord[]>;
}

export interface AdminTokenRepository {
  count(): Promise<number>;
  add(name: string, tokenSha256: string, at: string): Promise<void>;
  /** Finds a token by its hash and records its use. */
  use(tokenSha256: string, at: string): Promise<boolean>;
}

export interface Repositories {
  images: ImageRepository;
  dpSettings: DpSettingsRepository;
  sessions: SessionRepository;
  clients: ClientRepository;
  adminTokens: AdminTokenRepository;
  devices: DeviceRepository;
  collections: CollectionRepository;
  taskSequences: TaskSequenceRepository;
  deployments: DeploymentRepository;
  /** Where the data lives, for logs and `server` status. */
  describe(): string;
  close(): Promise<void>;
}

/** A unique constraint was violated (e.g. an image name already in use). */
export class ConflictError extends Error {}
