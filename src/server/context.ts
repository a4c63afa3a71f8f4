// Everything the HTTP routes work with, built once by the server (src/server/server.ts).
import type { ContentStore } from '../content/index.js';
import type { ServerConfig } from '../config/server-config.js';
import type { Repositories } from '../db/repositories.js';
import type { AdminAuth } from './admin-auth.js';
import type { FieldProblem } from './api-types.js';
import type { DpSettingsStore } from './dp-settings.js';
import type { ImportJobs } from './imports.js';
import type { SessionManager } from './session-manager.js';

/** Folder of the data folder where uploads are spooled before their import. */
export const UPLOADS_DIR = 'uploads';

export interface ServerContext {
  config: ServerConfig;
  repos: Repositories;
  store: ContentStore;
  settings: DpSettingsStore;
  sessions: SessionManager;
  imports: ImportJobs;
  auth: AdminAuth;
  startedAt: number;
  version: string;
}

/** An error with the HTTP status the API answers with. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    /** Every problem with its JSON-pointer path (sent as `errors`). */
    readonly errors: FieldProblem[] = [],
  ) {
    super(message);
  }
}
