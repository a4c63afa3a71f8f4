// The admin API's JSON as the console reads it: the types the server writes it from (src/server/api-types.ts,
// the records of src/db/records.ts, the format details of src/content/details.ts), plus the status
// document. The OpenAPI document at /api/v1/openapi.json is the contract.
import type { SessionRecord } from '../db/records.js';
import type { LiveSessionStatus } from '../server/api-types.js';

export type { ClientOutcome, ClientRecord, ImageRecord, SessionState } from '../db/records.js';
export type { DpSettings, FieldProblem, ImportJob, LiveClientStatus, LiveSessionStatus, SlowClientHandling } from '../server/api-types.js';
export type { IsoInfo, WimImageInfo, WimInfo } from '../content/details.js';

export interface ServerStatus {
  version: string;
  uptimeSeconds: number;
  database: string;
  contentRoot: string;
  multicastInterface: string | null;
  liveSessions: number[];
  runningImports: number;
}

export interface Session extends SessionRecord {
  live: LiveSessionStatus | null;
}

/** The "any" address pool of the distribution point (src/server/dp-settings.ts ANY_POOL). */
export const ANY_POOL_TEXT = '239.255.0.1 – 239.255.255.254';
