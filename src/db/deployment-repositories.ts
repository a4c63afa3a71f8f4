// Storage interfaces of the deployment model: devices, collections, task sequences (versioned), deployments
// and what agents report. Same rules as repositories.ts: every method returns a Promise (a PostgreSQL
// implementation can follow), and where two writes must be atomic there is one method doing both.
import type { StatusMessage } from '../agent/report.js';
import type { ListFilter } from './repositories.js';

export type DeviceStatus = 'idle' | 'running' | 'restart-pending';

export interface DeviceRecord {
  id: number;
  name: string;
  /** Upper case with colons, sorted. */
  macAddresses: string[];
  smbiosUuid: string | null;
  serial: string | null;
  agentVersion: string | null;
  status: DeviceStatus;
  registeredAt: string;
  lastSeenAt: string;
  lastAddress: string | null;
}

export interface DeviceFacts {
  name: string;
  macAddresses: string[];
  smbiosUuid: string | null;
  serial: string | null;
  agentVersion: string | null;
  address: string | null;
}

export interface DeviceRepository {
  list(): Promise<DeviceRecord[]>;
  get(id: number): Promise<DeviceRecord | undefined>;
  byCredential(credentialSha256: string): Promise<DeviceRecord | undefined>;
  /**
   * Registration: the device with this SMBIOS UUID, else the one holding any of these MAC addresses, is
   * updated and gets the new credential (its old one stops working); otherwise a new device is created.
   * One transaction.
   */
  register(facts: DeviceFacts, credentialSha256: string, at: string): Promise<{ device: DeviceRecord; recognisedBy: 'uuid' | 'mac' | null }>;
  /** A policy poll: last seen, address, status, agent version. */
  touch(id: number, changes: { status?: DeviceStatus; agentVersion?: string | null; address?: string | null }, at: string): Promise<void>;
  delete(id: number): Promise<boolean>;
}

export type CollectionRule = { type: 'name-glob'; pattern: string } | { type: 'name-regex'; pattern: string } | { type: 'mac-prefix'; prefix: string };

export interface CollectionRecord {
  id: number;
  name: string;
  description: string | null;
  /** Static members: device ids. */
  members: number[];
  /** A device that matches any rule is a member too. */
  rules: CollectionRule[];
  variables: Record<string, string>;
  createdAt: string;
  updatedAt: string;
}

export type NewCollection = Pick<CollectionRecord, 'name' | 'description' | 'members' | 'rules' | 'variables'>;
export type CollectionChanges = Partial<NewCollection>;

export interface CollectionRepository {
  list(): Promise<CollectionRecord[]>;
  get(id: number): Promise<CollectionRecord | undefined>;
  byName(name: string): Promise<CollectionRecord | undefined>;
  /** Throws ConflictError for a taken name; unknown member ids are the caller's to check first. */
  create(c: NewCollection): Promise<CollectionRecord>;
  update(id: number, changes: CollectionChanges): Promise<CollectionRecord | undefined>;
  /** Throws ConflictError while a deployment targets it. */
  delete(id: number): Promise<boolean>;
}

export interface TaskSequenceVersion {
  sequenceId: number;
  version: number;
  /** The validated document, its "version" field set to this version. */
  document: Record<string, unknown>;
  /** SHA-256 of the document (the agent's state file is tied to it). */
  digest: string;
  /** Image references (NAME or NAME/VERSION) the document applies. */
  images: string[];
  comment: string | null;
  createdAt: string;
}

export interface TaskSequenceRecord {
  id: number;
  name: string;
  latestVersion: number;
  versions: number;
  createdAt: string;
  updatedAt: string;
}

export interface TaskSequenceRepository {
  list(): Promise<TaskSequenceRecord[]>;
  get(id: number): Promise<TaskSequenceRecord | undefined>;
  byName(name: string): Promise<TaskSequenceRecord | undefined>;
  /** Creates the sequence with version 1 (ConflictError for a taken name). */
  create(name: string, first: (version: number) => Omit<TaskSequenceVersion, 'sequenceId' | 'createdAt' | 'version'>): Promise<TaskSequenceRecord>;
  /** Adds the next version; `make` receives its number. One transaction. */
  addVersion(id: number, make: (version: number) => Omit<TaskSequenceVersion, 'sequenceId' | 'createdAt' | 'version'>): Promise<TaskSequenceVersion | undefined>;
  version(id: number, version: number): Promise<TaskSequenceVersion | undefined>;
  versions(id: number): Promise<TaskSequenceVersion[]>;
  /** Throws ConflictError while a deployment uses it. */
  delete(id: number): Promise<boolean>;
}

export type DeploymentPurpose = 'available' | 'required';
/** ConfigMgr's content access options for a deployment; the package's own settings still apply. */
export type ContentAccess = 'multicast-first' | 'unicast-only' | 'multicast-only';
export const CONTENT_ACCESS: readonly ContentAccess[] = ['multicast-first', 'unicast-only', 'multicast-only'];

export interface DeploymentRecord {
  id: number;
  name: string;
  sequenceId: number;
  sequenceName: string;
  sequenceVersion: number;
  collectionId: number;
  collectionName: string;
  purpose: DeploymentPurpose;
  availableFrom: string | null;
  deadline: string | null;
  access: ContentAccess;
  enabled: boolean;
  variables: Record<string, string>;
  createdAt: string;
  updatedAt: string;
}

export type NewDeployment = Omit<DeploymentRecord, 'id' | 'sequenceName' | 'collectionName' | 'createdAt' | 'updatedAt'>;
export type DeploymentChanges = Partial<Pick<DeploymentRecord, 'name' | 'availableFrom' | 'deadline' | 'access' | 'enabled' | 'variables' | 'purpose'>>;

export type DeviceDeploymentState = 'waiting' | 'running' | 'succeeded' | 'failed' | 'restart-pending';

export interface StepOutcome {
  path: string;
  name: string;
  type: string;
  outcome: 'succeeded' | 'failed' | 'skipped';
  reason?: string;
  message?: string;
  at: string;
}

/** Where one device is in one deployment, folded from its status messages. */
export interface DeviceDeploymentSummary {
  deviceId: number;
  state: DeviceDeploymentState;
  currentStep: { path: string; name: string; type: string; ordinal: number | null; total: number | null } | null;
  progress: { phase: string; done: number; total: number | null; unit: 'bytes' | 'percent'; rateBps: number | null; at: string } | null;
  /** Failure reason (FailureReason of the agent) and message. */
  reason: string | null;
  message: string | null;
  /** Finished steps, in the order they finished. */
  steps: StepOutcome[];
  restarts: number;
  startedAt: string | null;
  finishedAt: string | null;
  lastMessageAt: string | null;
}

/** A status message as received: the agent's message plus its id (retries deliver the same id again). */
export type ReceivedStatus = StatusMessage & { id: string };

export interface StoredStatusMessage {
  seq: number;
  deploymentId: number;
  deviceId: number;
  receivedAt: string;
  message: ReceivedStatus;
}

export interface DeploymentRepository {
  list(filter?: { collectionId?: number }): Promise<DeploymentRecord[]>;
  get(id: number): Promise<DeploymentRecord | undefined>;
  create(d: NewDeployment): Promise<DeploymentRecord>;
  update(id: number, changes: DeploymentChanges): Promise<DeploymentRecord | undefined>;
  delete(id: number): Promise<boolean>;
  /** Per-device summaries of devices that reported (members that did not are "waiting": the caller adds them). */
  summaries(deploymentId: number): Promise<DeviceDeploymentSummary[]>;
  summary(deploymentId: number, deviceId: number): Promise<DeviceDeploymentSummary | undefined>;
  /**
   * Stores a batch of one device's messages (those already stored, by id, are skipped) and folds each new
   * one into that deployment's summary with `fold`. One transaction. Returns how many were new and stored.
   */
  recordMessages(
    deviceId: number,
    messages: { deploymentId: number; message: ReceivedStatus; store: boolean }[],
    fold: (current: DeviceDeploymentSummary | undefined, m: ReceivedStatus) => DeviceDeploymentSummary,
    at: string,
  ): Promise<number>;
  messages(deploymentId: number, filter?: ListFilter & { deviceId?: number; afterSeq?: number }): Promise<StoredStatusMessage[]>;
}
