// SQLite implementation of the repositories (better-sqlite3: synchronous, one writer: the server process).
import Database from 'better-sqlite3';
import { MIGRATIONS, type Migration } from './migrations.js';
import { sqliteDeploymentRepositories } from './sqlite-deployments.js';
import {
  ConflictError,
  type AdminTokenRepository,
  type ClientChanges,
  type ClientRecord,
  type ClientRepository,
  type DpSettingsRepository,
  type ImageChanges,
  type ImageRecord,
  type ImageRepository,
  type NewClient,
  type NewImage,
  type NewSession,
  type Repositories,
  type SessionChanges,
  type SessionRecord,
  type SessionRepository,
} from './repositories.js';

export type Row = Record<string, unknown>;
export type Db = Database.Database;

export const DEFAULT_LIMIT = 1000;

/** Opens (creating if needed) the database file and brings its schema up to date. */
export function openSqlite(path: string, migrations: Migration[] = MIGRATIONS): Repositories {
  const db = new Database(path);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    migrate(db, migrations);
  } catch (err) {
    db.close();
    throw err;
  }
  return {
    images: new SqliteImages(db),
    dpSettings: new SqliteDpSettings(db),
    sessions: new SqliteSessions(db),
    clients: new SqliteClients(db),
    adminTokens: new SqliteAdminTokens(db),
    ...sqliteDeploymentRepositories(db),
    describe: () => `SQLite ${path}`,
    close: async () => {
      db.close();
    },
  };
}

export function migrate(db: Db, migrations: Migration[]): number[] {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`);
  const applied = new Set((db.prepare('SELECT version FROM schema_migrations').all() as { version: number }[]).map((r) => r.version));
  const known = Math.max(0, ...migrations.map((m) => m.version));
  const newest = Math.max(0, ...applied);
  if (newest > known) {
    throw new Error(`the database has schema version ${newest}, newer than this fleetcast knows (${known}): upgrade fleetcast`);
  }
  const done: number[] = [];
  for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
    if (applied.has(m.version)) continue;
    db.transaction(() => {
      db.exec(m.sql);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, new Date().toISOString());
    })();
    done.push(m.version);
  }
  return done;
}

export const bool = (v: unknown): boolean => v === 1 || v === true;
export const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
export const str = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

export function isUniqueViolation(err: unknown): boolean {
  return (err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE';
}

/** UPDATE ... SET for the given columns; values are bound by name. */
export function updateStatement(table: string, key: string, columns: Record<string, unknown>): { sql: string; values: Row } | null {
  const entries = Object.entries(columns).filter(([, v]) => v !== undefined);
  if (entries.length === 0) return null;
  return {
    sql: `UPDATE ${table} SET ${entries.map(([c]) => `${c} = @${c}`).join(', ')} WHERE ${key} = @key`,
    values: Object.fromEntries(entries.map(([c, v]) => [c, typeof v === 'boolean' ? Number(v) : v])),
  };
}

function imageFrom(r: Row): ImageRecord {
  return {
    id: Number(r.id),
    name: String(r.name),
    version: str(r.version),
    description: str(r.description),
    digest: String(r.digest),
    format: String(r.format),
    size: Number(r.size),
    uncompressedSize: num(r.uncompressed_size),
    details: JSON.parse(String(r.details)) as Record<string, unknown>,
    allowMulticast: bool(r.allow_multicast),
    encryptMulticast: bool(r.encrypt_multicast),
    multicastOnly: bool(r.multicast_only),
    createdAt: String(r.created_at),
    updatedAt: String(r.updated_at),
  };
}

class SqliteImages implements ImageRepository {
  constructor(private readonly db: Db) {}

  async list(): Promise<ImageRecord[]> {
    return (this.db.prepare('SELECT * FROM images ORDER BY name').all() as Row[]).map(imageFrom);
  }

  async byName(name: string): Promise<ImageRecord | undefined> {
    const r = this.db.prepare('SELECT * FROM images WHERE name = ?').get(name) as Row | undefined;
    return r && imageFrom(r);
  }

  async byId(id: number): Promise<ImageRecord | undefined> {
    const r = this.db.prepare('SELECT * FROM images WHERE id = ?').get(id) as Row | undefined;
    return r && imageFrom(r);
  }

  async create(image: NewImage): Promise<ImageRecord> {
    const now = new Date().toISOString();
    try {
      const info = this.db
        .prepare(
          `INSERT INTO images (name, version, description, digest, format, size, uncompressed_size, details,
             allow_multicast, encrypt_multicast, multicast_only, created_at, updated_at)
           VALUES (@name, @version, @description, @digest, @format, @size, @uncompressedSize, @details,
             @allowMulticast, @encryptMulticast, @multicastOnly, @now, @now)`,
        )
        .run({
          ...image,
          details: JSON.stringify(image.details),
          allowMulticast: Number(image.allowMulticast),
          encryptMulticast: Number(image.encryptMulticast),
          multicastOnly: Number(image.multicastOnly),
          now,
        });
      return (await this.byId(Number(info.lastInsertRowid)))!;
    } catch (err) {
      if (isUniqueViolation(err)) throw new ConflictError(`an image named "${image.name}" already exists`);
      throw err;
    }
  }

  async update(name: string, changes: ImageChanges): Promise<ImageRecord | undefined> {
    const stmt = updateStatement('images', 'name', {
      version: changes.version,
      description: changes.description,
      allow_multicast: changes.allowMulticast,
      encrypt_multicast: changes.encryptMulticast,
      multicast_only: changes.multicastOnly,
    });
    if (stmt) this.db.prepare(stmt.sql.replace(' WHERE', ', updated_at = @updatedAt WHERE')).run({ ...stmt.values, updatedAt: new Date().toISOString(), key: name });
    return this.byName(name);
  }

  async delete(name: string): Promise<boolean> {
    return this.db.prepare('DELETE FROM images WHERE name = ?').run(name).changes > 0;
  }

  async countByDigest(digest: string): Promise<number> {
    return (this.db.prepare('SELECT count(*) AS n FROM images WHERE digest = ?').get(digest) as { n: number }).n;
  }
}

class SqliteDpSettings implements DpSettingsRepository {
  constructor(private readonly db: Db) {}

  async get(): Promise<Record<string, unknown> | undefined> {
    const r = this.db.prepare('SELECT settings FROM dp_settings WHERE id = 1').get() as { settings: string } | undefined;
    return r && (JSON.parse(r.settings) as Record<string, unknown>);
  }

  async save(settings: Record<string, unknown>): Promise<void> {
    this.db
      .prepare('INSERT INTO dp_settings (id, settings, updated_at) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET settings = excluded.settings, updated_at = excluded.updated_at')
      .run(JSON.stringify(settings), new Date().toISOString());
  }
}

function sessionFrom(r: Row): SessionRecord {
  return {
    id: Number(r.id),
    imageId: num(r.image_id),
    imageName: String(r.image_name),
    imageDigest: String(r.image_digest),
    group: String(r.group_address),
    port: Number(r.port),
    state: String(r.state) as SessionRecord['state'],
    createdAt: String(r.created_at),
    startedAt: str(r.started_at),
    endedAt: str(r.ended_at),
    params: JSON.parse(String(r.params)) as Record<string, unknown>,
    wireBytes: num(r.wire_bytes),
    sourcePackets: num(r.source_packets),
    parityPackets: num(r.parity_packets),
    controlPackets: num(r.control_packets),
    durationMs: num(r.duration_ms),
    endReason: str(r.end_reason),
    clientCount: Number(r.client_count ?? 0),
    clientsCompleted: Number(r.clients_completed ?? 0),
  };
}

/** A session row with its client counts (session_clients is indexed by session). */
const SESSION_SELECT = `SELECT s.*,
  (SELECT count(*) FROM session_clients c WHERE c.session_id = s.id) AS client_count,
  (SELECT count(*) FROM session_clients c WHERE c.session_id = s.id AND c.outcome = 'completed') AS clients_completed
  FROM multicast_sessions s`;

class SqliteSessions implements SessionRepository {
  constructor(private readonly db: Db) {}

  async create(s: NewSession): Promise<SessionRecord> {
    const info = this.db
      .prepare(
        `INSERT INTO multicast_sessions (image_id, image_name, image_digest, group_address, port, state, created_at, params)
         VALUES (?, ?, ?, ?, ?, 'waiting', ?, ?)`,
      )
      .run(s.imageId, s.imageName, s.imageDigest, s.group, s.port, new Date().toISOString(), JSON.stringify(s.params));
    return (await this.get(Number(info.lastInsertRowid)))!;
  }

  async update(id: number, c: SessionChanges): Promise<SessionRecord | undefined> {
    const stmt = updateStatement('multicast_sessions', 'id', {
      state: c.state,
      started_at: c.startedAt,
      ended_at: c.endedAt,
      end_reason: c.endReason,
      params: c.params && JSON.stringify(c.params),
      wire_bytes: c.wireBytes,
      source_packets: c.sourcePackets,
      parity_packets: c.parityPackets,
      control_packets: c.controlPackets,
      duration_ms: c.durationMs,
    });
    if (stmt) this.db.prepare(stmt.sql).run({ ...stmt.values, key: id });
    return this.get(id);
  }

  async get(id: number): Promise<SessionRecord | undefined> {
    const r = this.db.prepare(`${SESSION_SELECT} WHERE s.id = ?`).get(id) as Row | undefined;
    return r && sessionFrom(r);
  }

  async list(filter: { limit?: number; state?: string; imageName?: string } = {}): Promise<SessionRecord[]> {
    const rows = this.db
      .prepare(
        `${SESSION_SELECT}
         WHERE (@state IS NULL OR s.state = @state) AND (@imageName IS NULL OR s.image_name = @imageName)
         ORDER BY s.id DESC LIMIT @limit`,
      )
      .all({ state: filter.state ?? null, imageName: filter.imageName ?? null, limit: filter.limit ?? DEFAULT_LIMIT }) as Row[];
    return rows.map(sessionFrom);
  }

  async countLiveForImage(imageId: number): Promise<number> {
    return (this.db.prepare(`SELECT count(*) AS n FROM multicast_sessions WHERE image_id = ? AND state IN ('waiting','running')`).get(imageId) as { n: number }).n;
  }

  async abortLive(reason: string, at: string): Promise<number[]> {
    return this.db.transaction(() => {
      const ids = (this.db.prepare(`SELECT id FROM multicast_sessions WHERE state IN ('waiting','running')`).all() as { id: number }[]).map((r) => r.id);
      for (const id of ids) {
        this.db.prepare(`UPDATE multicast_sessions SET state = 'aborted', ended_at = ?, end_reason = ? WHERE id = ?`).run(at, reason, id);
        this.db
          .prepare(`UPDATE session_clients SET outcome = 'failed', reason = ?, finished_at = ? WHERE session_id = ? AND outcome = 'pending' AND transport = 'multicast'`)
          .run(reason, at, id);
      }
      return ids;
    })();
  }
}

function clientFrom(r: Row): ClientRecord {
  return {
    id: String(r.id),
    sessionId: num(r.session_id),
    imageId: num(r.image_id),
    imageName: String(r.image_name),
    clientName: String(r.client_name),
    clientMac: str(r.client_mac),
    clientUuid: str(r.client_uuid),
    clientAddress: str(r.client_address),
    nodeId: num(r.node_id),
    transport: String(r.transport) as ClientRecord['transport'],
    outcome: String(r.outcome) as ClientRecord['outcome'],
    reason: str(r.reason),
    bytes: num(r.bytes),
    durationMs: num(r.duration_ms),
    repairsRequested: num(r.repairs_requested),
    admittedAt: String(r.admitted_at),
    finishedAt: str(r.finished_at),
  };
}

class SqliteClients implements ClientRepository {
  constructor(private readonly db: Db) {}

  async create(c: NewClient): Promise<ClientRecord> {
    this.db
      .prepare(
        `INSERT INTO session_clients (id, session_id, image_id, image_name, client_name, client_mac, client_uuid, client_address,
           node_id, transport, outcome, admitted_at)
         VALUES (@id, @sessionId, @imageId, @imageName, @clientName, @clientMac, @clientUuid, @clientAddress,
           @nodeId, @transport, 'pending', @admittedAt)`,
      )
      .run(c);
    return (await this.get(c.id))!;
  }

  async update(id: string, c: ClientChanges): Promise<ClientRecord | undefined> {
    const stmt = updateStatement('session_clients', 'id', {
      session_id: c.sessionId,
      transport: c.transport,
      outcome: c.outcome,
      reason: c.reason,
      bytes: c.bytes,
      duration_ms: c.durationMs,
      repairs_requested: c.repairsRequested,
      finished_at: c.finishedAt,
    });
    if (stmt) this.db.prepare(stmt.sql).run({ ...stmt.values, key: id });
    return this.get(id);
  }

  async get(id: string): Promise<ClientRecord | undefined> {
    const r = this.db.prepare('SELECT * FROM session_clients WHERE id = ?').get(id) as Row | undefined;
    return r && clientFrom(r);
  }

  async list(filter: { limit?: number; sessionId?: number; imageName?: string; outcome?: string } = {}): Promise<ClientRecord[]> {
    const rows = this.db
      .prepare(
        `SELECT * FROM session_clients
         WHERE (@sessionId IS NULL OR session_id = @sessionId) AND (@imageName IS NULL OR image_name = @imageName)
           AND (@outcome IS NULL OR outcome = @outcome)
         ORDER BY admitted_at DESC, rowid DESC LIMIT @limit`,
      )
      .all({ sessionId: filter.sessionId ?? null, imageName: filter.imageName ?? null, outcome: filter.outcome ?? null, limit: filter.limit ?? DEFAULT_LIMIT }) as Row[];
    return rows.map(clientFrom);
  }
}

class SqliteAdminTokens implements AdminTokenRepository {
  constructor(private readonly db: Db) {}

  async count(): Promise<number> {
    return (this.db.prepare('SELECT count(*) AS n FROM admin_tokens').get() as { n: number }).n;
  }

  async add(name: string, tokenSha256: string, at: string): Promise<void> {
    this.db.prepare('INSERT INTO admin_tokens (name, token_sha256, created_at) VALUES (?, ?, ?)').run(name, tokenSha256, at);
  }

  async use(tokenSha256: string, at: string): Promise<boolean> {
    return this.db.prepare('UPDATE admin_tokens SET last_used_at = ? WHERE token_sha256 = ?').run(at, tokenSha256).changes > 0;
  }
}
