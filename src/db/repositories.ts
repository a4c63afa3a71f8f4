// The storage interface the server codes against, one repository per entity. Every method returns a Promise
// so that a PostgreSQL implementation (a later issue: several distribution points sharing one site database)
// can be added next to the SQLite one without touching callers. Callers must not rely on two calls being
// atomic together; where that matters the repository offers one method that does both.

import type { CollectionRepository, DeploymentRepository, DeviceRepository, TaskSequenceRepository } from './deployment-repositories.js';
import type { ClientOutcome, ClientRecord, ImageRecord, SessionCounters, SessionRecord, SessionState } from './records.js';

export type { ClientOutcome, ClientRecord, ClientTransport, ImageRecord, PackageSettings, SessionCounters, SessionRecord, SessionState } from './records.js';

export const LIVE_SESSION_STATES: readonly SessionState[] = ['waiting', 'running'];

export type NewImage = Omit<ImageRecord, 'id' | 'createdAt' | 'updatedAt'>;
export type ImageChanges = Partial<Pick<ImageRecord, 'version' | 'description' | 'allowMulticast' | 'encryptMulticast' | 'multicastOnly'>>;

export type NewSession = Pick<SessionRecord, 'imageId' | 'imageName' | 'imageDigest' | 'group' | 'port' | 'params'>;
export type SessionChanges = Partial<Pick<SessionRecord, 'state' | 'startedAt' | 'endedAt' | 'endReason' | 'params'>> & Partial<SessionCounters>;

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
