// Documents of the admin API (its JSON), shared by the server, the CLI and the web console. Types only, no
// runtime code and no Node modules: the browser build (tsconfig.web.json) reads them too.
import type { ImageRecord } from '../db/records.js';

/**
 * One problem of a request: the JSON pointer of what it concerns ('/portStart'; '' for the request as a whole)
 * and what is wrong. API errors list every problem (`errors`), so that forms show each next to its field.
 */
export interface FieldProblem {
  path: string;
  message: string;
}

export type SlowClientHandling = 'none' | 'disconnect' | 'slower-stream';

export interface DpSettings {
  multicastEnabled: boolean;
  /** 'any': the admin-scoped range 239.255.0.0/16; 'range': addressStart..addressEnd. */
  addressPool: 'any' | 'range';
  addressStart: string | null;
  addressEnd: string | null;
  portStart: number;
  portEnd: number;
  /** Client transfer rate: ceiling on the link rate in bits/s; null = unlimited (adapts to receivers' loss). */
  transferRateBps: number | null;
  /** Multicast clients admitted at once on this distribution point, over all its sessions. */
  maxClients: number;
  /** Scheduled multicast: a session starts when minimumSessionSize clients have joined or the delay expired. */
  scheduledMulticast: boolean;
  sessionStartDelaySeconds: number;
  minimumSessionSize: number;
  /** Auto-cast: clients may join a session already sending; they get what they missed in later passes. */
  autoCast: boolean;
  slowClientHandling: SlowClientHandling;
  /** Clients receiving slower than this are acted on (disconnect, or moved to the slower stream). */
  slowClientThresholdBps: number | null;
}

export interface LiveClientStatus {
  ticket: string;
  name: string;
  nodeId: number;
  joined: boolean;
  /** The engine's view of the receiver ('joined', 'completed', 'dropped' …), or 'admitted' before it joined. */
  outcome: string;
  reason: string | null;
  bytesComplete: number;
  progress: number;
  rttMs: number | null;
  lossPpm: number;
  repairsRequested: number;
}

export interface LiveSessionStatus {
  phase: 'scheduled' | 'waiting' | 'transferring' | 'ended';
  admitting: boolean;
  rateBps: number | null;
  wireBytes: number;
  firstPassBytes: number;
  imageSize: number;
  clients: LiveClientStatus[];
}

export type ImportState = 'running' | 'completed' | 'failed' | 'cancelled';

export interface ImportJob {
  id: string;
  name: string;
  source: string;
  state: ImportState;
  stage: 'copying' | 'hashing blocks' | 'recording' | 'done';
  doneBytes: number;
  totalBytes: number;
  startedAt: string;
  finishedAt: string | null;
  image: ImageRecord | null;
  error: { code: string; message: string } | null;
}

