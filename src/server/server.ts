// `fleetcast server`: composes the database, content store, session manager and HTTP API into one process.
import { mkdirSync, rmSync } from 'node:fs';
import { packageVersion } from '../version.js';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { ContentStore } from '../content/index.js';
import type { ServerConfig } from '../config/server-config.js';
import { openSqlite } from '../db/sqlite.js';
import { AdminAuth } from './admin-auth.js';
import { buildApp } from './app.js';
import { UPLOADS_DIR, type ServerContext } from './context.js';
import { DpSettingsStore } from './dp-settings.js';
import { ImportJobs } from './imports.js';
import { SessionManager } from './session-manager.js';

export const DATABASE_FILE = 'fleetcast.db';
export const CONTENT_DIR = 'content';

export interface RunningServer {
  app: FastifyInstance;
  ctx: ServerContext;
  /** Base URL the server listens at, e.g. http://127.0.0.1:8080. */
  url: string;
  /** Graceful stop: no new requests or sessions, live sessions ended and recorded, database closed. */
  close(): Promise<void>;
}
export { packageVersion };

export async function startServer(
  config: ServerConfig,
  opts: { onFirstToken?: (token: string, file: string) => void } = {},
): Promise<RunningServer> {
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  // Uploads a crashed run was receiving are incomplete: they go (a running upload's spool is never reused).
  rmSync(join(config.dataDir, UPLOADS_DIR), { recursive: true, force: true });
  const repos = openSqlite(join(config.dataDir, DATABASE_FILE));
  let app: FastifyInstance | null = null;
  try {
    const store = new ContentStore(join(config.dataDir, CONTENT_DIR));
    const settings = new DpSettingsStore(repos.dpSettings);
    await settings.load();
    const ctx = {
      config,
      repos,
      store,
      settings,
      auth: new AdminAuth(repos.adminTokens, config.adminToken),
      startedAt: Date.now(),
      version: packageVersion(),
    } as ServerContext;
    app = await buildApp(ctx, { level: config.logLevel });
    ctx.sessions = new SessionManager({
      repos,
      content: store,
      settings: () => settings.get(),
      interface: config.interface,
      mtu: config.mtu,
      ttl: config.ttl,
      log: app.log.child({ component: 'sessions' }),
    });
    ctx.imports = new ImportJobs(store, repos, { mtu: config.mtu }, app.log.child({ component: 'imports' }));
    await ctx.sessions.recover();
    const first = await ctx.auth.ensureToken(config.dataDir);
    if (first) opts.onFirstToken?.(first.token, first.file);
    await app.listen({ host: config.listen.host, port: config.listen.port });
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : config.listen.port;
    const host = config.listen.host.includes(':') ? `[${config.listen.host}]` : config.listen.host;
    app.log.info({ dataDir: config.dataDir, database: repos.describe(), sources: config.sources, interface: config.interface }, `fleetcast server ${ctx.version} ready`);
    const running = app;
    let closing: Promise<void> | null = null;
    return {
      app,
      ctx,
      url: `http://${host}:${port}`,
      close: () =>
        (closing ??= (async () => {
          running.log.info('shutting down: ending live sessions and imports');
          const sessionsDone = ctx.sessions.close();
          await running.close();
          await sessionsDone;
          await ctx.imports.close();
          await repos.close();
        })()),
    };
  } catch (err) {
    await app?.close();
    await repos.close();
    throw err;
  }
}
