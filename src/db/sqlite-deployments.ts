// SQLite implementation of the deployment model's repositories (see deployment-repositories.ts).
import { ConflictError } from './repositories.js';
import type {
  CollectionChanges,
  CollectionRecord,
  CollectionRepository,
  DeploymentChanges,
  DeploymentRecord,
  DeploymentRepository,
  DeviceDeploymentSummary,
  DeviceFacts,
  DeviceRecord,
  DeviceRepository,
  DeviceStatus,
  NewCollection,
  NewDeployment,
  ReceivedStatus,
  StoredStatusMessage,
  TaskSequenceRecord,
  TaskSequenceRepository,
  TaskSequenceVersion,
} from './deployment-repositories.js';
import { bool, DEFAULT_LIMIT, isUniqueViolation, str, updateStatement, type Db, type Row } from './sqlite.js';

const json = <T>(v: unknown): T => JSON.parse(String(v)) as T;

/** SQLite reports ON DELETE RESTRICT as a trigger constraint, a missing parent as a foreign key one. */
function isForeignKeyViolation(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return e.code === 'SQLITE_CONSTRAINT_FOREIGNKEY' || (e.code === 'SQLITE_CONSTRAINT_TRIGGER' && /FOREIGN KEY/.test(e.message ?? ''));
}

export function sqliteDeploymentRepositories(db: Db) {
  return {
    devices: new SqliteDevices(db),
    collections: new SqliteCollections(db),
    taskSequences: new SqliteTaskSequences(db),
    deployments: new SqliteDeployments(db),
  };
}

class SqliteDevices implements DeviceRepository {
  constructor(private readonly db: Db) {}

  private from(r: Row): DeviceRecord {
    const macs = (this.db.prepare('SELECT mac FROM device_macs WHERE device_id = ? ORDER BY mac').all(r.id) as { mac: string }[]).map((m) => m.mac);
    return {
      id: Number(r.id),
      name: String(r.name),
      macAddresses: macs,
      smbiosUuid: str(r.smbios_uuid),
      serial: str(r.serial),
      agentVersion: str(r.agent_version),
      status: String(r.status) as DeviceStatus,
      registeredAt: String(r.registered_at),
      lastSeenAt: String(r.last_seen_at),
      lastAddress: str(r.last_address),
    };
  }

  async list(): Promise<DeviceRecord[]> {
    return (this.db.prepare('SELECT * FROM devices ORDER BY name, id').all() as Row[]).map((r) => this.from(r));
  }

  async get(id: number): Promise<DeviceRecord | undefined> {
    const r = this.db.prepare('SELECT * FROM devices WHERE id = ?').get(id) as Row | undefined;
    return r && this.from(r);
  }

  async byCredential(credentialSha256: string): Promise<DeviceRecord | undefined> {
    const r = this.db.prepare('SELECT * FROM devices WHERE credential_sha256 = ?').get(credentialSha256) as Row | undefined;
    return r && this.from(r);
  }

  async register(f: DeviceFacts, credentialSha256: string, at: string): Promise<{ device: DeviceRecord; recognisedBy: 'uuid' | 'mac' | null }> {
    return this.db.transaction(() => {
      let id: number | undefined;
      let recognisedBy: 'uuid' | 'mac' | null = null;
      if (f.smbiosUuid) {
        id = (this.db.prepare('SELECT id FROM devices WHERE smbios_uuid = ? ORDER BY last_seen_at DESC LIMIT 1').get(f.smbiosUuid) as { id: number } | undefined)?.id;
        if (id !== undefined) recognisedBy = 'uuid';
      }
      if (id === undefined && f.macAddresses.length) {
        const marks = f.macAddresses.map(() => '?').join(',');
        id = (this.db.prepare(`SELECT device_id AS id FROM device_macs WHERE mac IN (${marks}) LIMIT 1`).get(...f.macAddresses) as { id: number } | undefined)?.id;
        if (id !== undefined) recognisedBy = 'mac';
      }
      const values = { name: f.name, uuid: f.smbiosUuid, serial: f.serial, agentVersion: f.agentVersion, address: f.address, credential: credentialSha256, at };
      if (id === undefined) {
        id = Number(
          this.db
            .prepare(
              `INSERT INTO devices (name, smbios_uuid, serial, agent_version, status, credential_sha256, registered_at, last_seen_at, last_address)
               VALUES (@name, @uuid, @serial, @agentVersion, 'idle', @credential, @at, @at, @address)`,
            )
            .run(values).lastInsertRowid,
        );
      } else {
        this.db
          .prepare(
            `UPDATE devices SET name = @name, smbios_uuid = COALESCE(@uuid, smbios_uuid), serial = COALESCE(@serial, serial), agent_version = @agentVersion,
               credential_sha256 = @credential, last_seen_at = @at, last_address = @address WHERE id = @id`,
          )
          .run({ ...values, id });
      }
      const setMac = this.db.prepare('INSERT INTO device_macs (mac, device_id) VALUES (?, ?) ON CONFLICT (mac) DO UPDATE SET device_id = excluded.device_id');
      for (const mac of f.macAddresses) setMac.run(mac, id);
      const device = this.from(this.db.prepare('SELECT * FROM devices WHERE id = ?').get(id) as Row);
      return { device, recognisedBy };
    })();
  }

  async touch(id: number, c: { status?: DeviceStatus; agentVersion?: string | null; address?: string | null }, at: string): Promise<void> {
    const stmt = updateStatement('devices', 'id', { status: c.status, agent_version: c.agentVersion, last_address: c.address, last_seen_at: at });
    if (stmt) this.db.prepare(stmt.sql).run({ ...stmt.values, key: id });
  }

  async delete(id: number): Promise<boolean> {
    return this.db.prepare('DELETE FROM devices WHERE id = ?').run(id).changes > 0;
  }
}

class SqliteCollections implements CollectionRepository {
  constructor(private readonly db: Db) {}

  private from(r: Row): CollectionRecord {
    return {
      id: Number(r.id),
      name: String(r.name),
      description: str(r.description),
      members: (this.db.prepare('SELECT device_id FROM collection_members WHERE collection_id = ? ORDER BY device_id').all(r.id) as { device_id: number }[]).map((m) => m.device_id),
      rules: json(r.rules),
      variables: json(r.variables),
      createdAt: String(r.created_at),
      updatedAt: String(r.updated_at),
    };
  }

  async list(): Promise<CollectionRecord[]> {
    return (this.db.prepare('SELECT * FROM collections ORDER BY name').all() as Row[]).map((r) => this.from(r));
  }

  async get(id: number): Promise<CollectionRecord | undefined> {
    const r = this.db.prepare('SELECT * FROM collections WHERE id = ?').get(id) as Row | undefined;
    return r && this.from(r);
  }

  async byName(name: string): Promise<CollectionRecord | undefined> {
    const r = this.db.prepare('SELECT * FROM collections WHERE name = ?').get(name) as Row | undefined;
    return r && this.from(r);
  }

  private setMembers(id: number, members: number[]): void {
    this.db.prepare('DELETE FROM collection_members WHERE collection_id = ?').run(id);
    const add = this.db.prepare('INSERT OR IGNORE INTO collection_members (collection_id, device_id) VALUES (?, ?)');
    for (const m of members) add.run(id, m);
  }

  async create(c: NewCollection): Promise<CollectionRecord> {
    const now = new Date().toISOString();
    try {
      const id = this.db.transaction(() => {
        const id = Number(
          this.db
            .prepare('INSERT INTO collections (name, description, rules, variables, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)')
            .run(c.name, c.description, JSON.stringify(c.rules), JSON.stringify(c.variables), now, now).lastInsertRowid,
        );
        this.setMembers(id, c.members);
        return id;
      })();
      return (await this.get(id))!;
    } catch (err) {
      if (isUniqueViolation(err)) throw new ConflictError(`a collection named "${c.name}" already exists`);
      if (isForeignKeyViolation(err)) throw new ConflictError('a static member is not a known device');
      throw err;
    }
  }

  async update(id: number, c: CollectionChanges): Promise<CollectionRecord | undefined> {
    try {
      this.db.transaction(() => {
        const stmt = updateStatement('collections', 'id', {
          name: c.name,
          description: c.description,
          rules: c.rules && JSON.stringify(c.rules),
          variables: c.variables && JSON.stringify(c.variables),
          updated_at: new Date().toISOString(),
        });
        if (stmt) this.db.prepare(stmt.sql).run({ ...stmt.values, key: id });
        if (c.members) this.setMembers(id, c.members);
      })();
    } catch (err) {
      if (isUniqueViolation(err)) throw new ConflictError(`a collection named "${c.name}" already exists`);
      if (isForeignKeyViolation(err)) throw new ConflictError('a static member is not a known device');
      throw err;
    }
    return this.get(id);
  }

  async delete(id: number): Promise<boolean> {
    try {
      return this.db.prepare('DELETE FROM collections WHERE id = ?').run(id).changes > 0;
    } catch (err) {
      if (isForeignKeyViolation(err)) throw new ConflictError(`collection ${id} is the target of a deployment: delete the deployment first`);
      throw err;
    }
  }
}

class SqliteTaskSequences implements TaskSequenceRepository {
  constructor(private readonly db: Db) {}

  private from(r: Row): TaskSequenceRecord {
    return {
      id: Number(r.id),
      name: String(r.name),
      latestVersion: Number(r.latest_version),
      versions: Number(r.versions),
      createdAt: String(r.created_at),
      updatedAt: String(r.updated_at),
    };
  }

  private readonly select = `SELECT s.*, (SELECT max(version) FROM task_sequence_versions v WHERE v.sequence_id = s.id) AS latest_version,
      (SELECT count(*) FROM task_sequence_versions v WHERE v.sequence_id = s.id) AS versions FROM task_sequences s`;

  private versionFrom(r: Row): TaskSequenceVersion {
    return {
      sequenceId: Number(r.sequence_id),
      version: Number(r.version),
      document: json(r.document),
      digest: String(r.digest),
      images: json(r.images),
      comment: str(r.comment),
      createdAt: String(r.created_at),
    };
  }

  async list(): Promise<TaskSequenceRecord[]> {
    return (this.db.prepare(`${this.select} ORDER BY s.name`).all() as Row[]).map((r) => this.from(r));
  }

  async get(id: number): Promise<TaskSequenceRecord | undefined> {
    const r = this.db.prepare(`${this.select} WHERE s.id = ?`).get(id) as Row | undefined;
    return r && this.from(r);
  }

  async byName(name: string): Promise<TaskSequenceRecord | undefined> {
    const r = this.db.prepare(`${this.select} WHERE s.name = ?`).get(name) as Row | undefined;
    return r && this.from(r);
  }

  private insertVersion(id: number, version: number, v: Omit<TaskSequenceVersion, 'sequenceId' | 'createdAt' | 'version'>, at: string): void {
    this.db
      .prepare('INSERT INTO task_sequence_versions (sequence_id, version, document, digest, images, comment, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(id, version, JSON.stringify(v.document), v.digest, JSON.stringify(v.images), v.comment, at);
  }

  async create(name: string, first: (version: number) => Omit<TaskSequenceVersion, 'sequenceId' | 'createdAt' | 'version'>): Promise<TaskSequenceRecord> {
    const at = new Date().toISOString();
    try {
      const id = this.db.transaction(() => {
        const id = Number(this.db.prepare('INSERT INTO task_sequences (name, created_at, updated_at) VALUES (?, ?, ?)').run(name, at, at).lastInsertRowid);
        this.insertVersion(id, 1, first(1), at);
        return id;
      })();
      return (await this.get(id))!;
    } catch (err) {
      if (isUniqueViolation(err)) throw new ConflictError(`a task sequence named "${name}" already exists: upload a new version of it instead`);
      throw err;
    }
  }

  async addVersion(id: number, make: (version: number) => Omit<TaskSequenceVersion, 'sequenceId' | 'createdAt' | 'version'>): Promise<TaskSequenceVersion | undefined> {
    const at = new Date().toISOString();
    const version = this.db.transaction(() => {
      if (!this.db.prepare('SELECT 1 FROM task_sequences WHERE id = ?').get(id)) return undefined;
      const next = Number((this.db.prepare('SELECT coalesce(max(version), 0) + 1 AS v FROM task_sequence_versions WHERE sequence_id = ?').get(id) as { v: number }).v);
      this.insertVersion(id, next, make(next), at);
      this.db.prepare('UPDATE task_sequences SET updated_at = ? WHERE id = ?').run(at, id);
      return next;
    })();
    return version === undefined ? undefined : this.version(id, version);
  }

  async version(id: number, version: number): Promise<TaskSequenceVersion | undefined> {
    const r = this.db.prepare('SELECT * FROM task_sequence_versions WHERE sequence_id = ? AND version = ?').get(id, version) as Row | undefined;
    return r && this.versionFrom(r);
  }

  async versions(id: number): Promise<TaskSequenceVersion[]> {
    return (this.db.prepare('SELECT * FROM task_sequence_versions WHERE sequence_id = ? ORDER BY version').all(id) as Row[]).map((r) => this.versionFrom(r));
  }

  async delete(id: number): Promise<boolean> {
    try {
      return this.db.transaction(() => {
        this.db.prepare('DELETE FROM task_sequence_versions WHERE sequence_id = ?').run(id);
        return this.db.prepare('DELETE FROM task_sequences WHERE id = ?').run(id).changes > 0;
      })();
    } catch (err) {
      if (isForeignKeyViolation(err)) throw new ConflictError(`task sequence ${id} is used by a deployment: delete the deployment first`);
      throw err;
    }
  }
}

class SqliteDeployments implements DeploymentRepository {
  constructor(private readonly db: Db) {}

  private readonly select = `SELECT d.*, s.name AS sequence_name, c.name AS collection_name FROM deployments d
      JOIN task_sequences s ON s.id = d.sequence_id JOIN collections c ON c.id = d.collection_id`;

  private from(r: Row): DeploymentRecord {
    return {
      id: Number(r.id),
      name: String(r.name),
      sequenceId: Number(r.sequence_id),
      sequenceName: String(r.sequence_name),
      sequenceVersion: Number(r.sequence_version),
      collectionId: Number(r.collection_id),
      collectionName: String(r.collection_name),
      purpose: String(r.purpose) as DeploymentRecord['purpose'],
      availableFrom: str(r.available_from),
      deadline: str(r.deadline),
      access: String(r.access) as DeploymentRecord['access'],
      enabled: bool(r.enabled),
      variables: json(r.variables),
      createdAt: String(r.created_at),
      updatedAt: String(r.updated_at),
    };
  }

  async list(filter: { collectionId?: number } = {}): Promise<DeploymentRecord[]> {
    return (this.db.prepare(`${this.select} WHERE (@c IS NULL OR d.collection_id = @c) ORDER BY d.id`).all({ c: filter.collectionId ?? null }) as Row[]).map((r) => this.from(r));
  }

  async get(id: number): Promise<DeploymentRecord | undefined> {
    const r = this.db.prepare(`${this.select} WHERE d.id = ?`).get(id) as Row | undefined;
    return r && this.from(r);
  }

  async create(d: NewDeployment): Promise<DeploymentRecord> {
    const now = new Date().toISOString();
    const id = Number(
      this.db
        .prepare(
          `INSERT INTO deployments (name, sequence_id, sequence_version, collection_id, purpose, available_from, deadline, access, enabled, variables, created_at, updated_at)
           VALUES (@name, @sequenceId, @sequenceVersion, @collectionId, @purpose, @availableFrom, @deadline, @access, @enabled, @variables, @now, @now)`,
        )
        .run({ ...d, enabled: Number(d.enabled), variables: JSON.stringify(d.variables), now }).lastInsertRowid,
    );
    return (await this.get(id))!;
  }

  async update(id: number, c: DeploymentChanges): Promise<DeploymentRecord | undefined> {
    const stmt = updateStatement('deployments', 'id', {
      name: c.name,
      purpose: c.purpose,
      available_from: c.availableFrom,
      deadline: c.deadline,
      access: c.access,
      enabled: c.enabled,
      variables: c.variables && JSON.stringify(c.variables),
      updated_at: new Date().toISOString(),
    });
    if (stmt) this.db.prepare(stmt.sql).run({ ...stmt.values, key: id });
    return this.get(id);
  }

  async delete(id: number): Promise<boolean> {
    return this.db.prepare('DELETE FROM deployments WHERE id = ?').run(id).changes > 0;
  }

  async summaries(deploymentId: number): Promise<DeviceDeploymentSummary[]> {
    return (this.db.prepare('SELECT summary FROM deployment_devices WHERE deployment_id = ? ORDER BY device_id').all(deploymentId) as Row[]).map((r) => json(r.summary));
  }

  async summary(deploymentId: number, deviceId: number): Promise<DeviceDeploymentSummary | undefined> {
    const r = this.db.prepare('SELECT summary FROM deployment_devices WHERE deployment_id = ? AND device_id = ?').get(deploymentId, deviceId) as Row | undefined;
    return r && json(r.summary);
  }

  async recordMessages(
    deviceId: number,
    messages: { deploymentId: number; message: ReceivedStatus; store: boolean }[],
    fold: (current: DeviceDeploymentSummary | undefined, m: ReceivedStatus) => DeviceDeploymentSummary,
    at: string,
  ): Promise<number> {
    const insert = this.db.prepare(
      'INSERT INTO status_messages (message_id, deployment_id, device_id, time, received_at, kind, body) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (message_id) DO NOTHING',
    );
    const read = this.db.prepare('SELECT summary FROM deployment_devices WHERE deployment_id = ? AND device_id = ?');
    const save = this.db.prepare(
      `INSERT INTO deployment_devices (deployment_id, device_id, state, summary, last_message_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (deployment_id, device_id) DO UPDATE SET state = excluded.state, summary = excluded.summary, last_message_at = excluded.last_message_at`,
    );
    return this.db.transaction(() => {
      let fresh = 0;
      for (const { deploymentId, message, store } of messages) {
        if (store) {
          if (insert.run(message.id, deploymentId, deviceId, message.time, at, message.kind, JSON.stringify(message)).changes === 0) continue;
          fresh++;
        }
        const current = read.get(deploymentId, deviceId) as Row | undefined;
        const next = fold(current && json(current.summary), message);
        save.run(deploymentId, deviceId, next.state, JSON.stringify(next), next.lastMessageAt);
      }
      return fresh;
    })();
  }

  async messages(deploymentId: number, filter: { limit?: number; deviceId?: number; afterSeq?: number } = {}): Promise<StoredStatusMessage[]> {
    const rows = this.db
      .prepare(
        `SELECT id, deployment_id, device_id, received_at, body FROM status_messages
         WHERE deployment_id = @deploymentId AND (@deviceId IS NULL OR device_id = @deviceId) AND id > @after
         ORDER BY id LIMIT @limit`,
      )
      .all({ deploymentId, deviceId: filter.deviceId ?? null, after: filter.afterSeq ?? 0, limit: filter.limit ?? DEFAULT_LIMIT }) as Row[];
    return rows.map((r) => ({ seq: Number(r.id), deploymentId: Number(r.deployment_id), deviceId: Number(r.device_id), receivedAt: String(r.received_at), message: json(r.body) }));
  }
}
