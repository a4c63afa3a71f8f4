// The records the server stores and its API returns: plain types without runtime code, so that the web
// console (built for the browser) reads the same types as the repositories that write them.

export type SessionState = 'waiting' | 'running' | 'completed' | 'failed' | 'cancelled' | 'aborted';

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
  /** Clients admitted to the session, and how many of them completed (also once it has ended). */
  clientCount: number;
  clientsCompleted: number;
}

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
