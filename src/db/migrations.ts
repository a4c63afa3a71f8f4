// Numbered schema migrations, applied in order at startup inside one transaction each. Never edit a
// migration that has shipped: add the next number instead.
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'initial schema: images, distribution point settings, sessions, client outcomes, admin tokens',
    sql: `
      CREATE TABLE images (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        version TEXT,
        description TEXT,
        digest TEXT NOT NULL,
        format TEXT NOT NULL,
        size INTEGER NOT NULL,
        uncompressed_size INTEGER,
        details TEXT NOT NULL DEFAULT '{}',
        allow_multicast INTEGER NOT NULL DEFAULT 1,
        encrypt_multicast INTEGER NOT NULL DEFAULT 0,
        multicast_only INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        CHECK (NOT (multicast_only AND NOT allow_multicast))
      );
      CREATE INDEX images_digest ON images(digest);

      CREATE TABLE dp_settings (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        settings TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );

      CREATE TABLE multicast_sessions (
        id INTEGER PRIMARY KEY,
        image_id INTEGER REFERENCES images(id) ON DELETE SET NULL,
        image_name TEXT NOT NULL,
        image_digest TEXT NOT NULL,
        group_address TEXT NOT NULL,
        port INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('waiting','running','completed','failed','cancelled','aborted')),
        created_at TEXT NOT NULL,
        started_at TEXT,
        ended_at TEXT,
        params TEXT NOT NULL DEFAULT '{}',
        wire_bytes INTEGER,
        source_packets INTEGER,
        parity_packets INTEGER,
        control_packets INTEGER,
        duration_ms INTEGER,
        end_reason TEXT
      );
      CREATE INDEX multicast_sessions_state ON multicast_sessions(state);
      CREATE INDEX multicast_sessions_image ON multicast_sessions(image_id);

      CREATE TABLE session_clients (
        id TEXT PRIMARY KEY,
        session_id INTEGER REFERENCES multicast_sessions(id) ON DELETE CASCADE,
        image_id INTEGER REFERENCES images(id) ON DELETE SET NULL,
        image_name TEXT NOT NULL,
        client_name TEXT NOT NULL,
        client_mac TEXT,
        client_uuid TEXT,
        client_address TEXT,
        node_id INTEGER,
        transport TEXT NOT NULL CHECK (transport IN ('multicast','unicast')),
        outcome TEXT NOT NULL CHECK (outcome IN ('pending','completed','failed','dropped','fell-back-to-unicast')),
        reason TEXT,
        bytes INTEGER,
        duration_ms INTEGER,
        repairs_requested INTEGER,
        admitted_at TEXT NOT NULL,
        finished_at TEXT
      );
      CREATE INDEX session_clients_session ON session_clients(session_id);
      CREATE INDEX session_clients_image ON session_clients(image_id);

      CREATE TABLE admin_tokens (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        token_sha256 TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        last_used_at TEXT
      );
    `,
  },
  {
    version: 2,
    name: 'devices, collections, task sequences (versioned), deployments, per-device deployment status, status messages',
    sql: `
      CREATE TABLE devices (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        smbios_uuid TEXT,
        serial TEXT,
        agent_version TEXT,
        status TEXT NOT NULL DEFAULT 'idle' CHECK (status IN ('idle','running','restart-pending')),
        credential_sha256 TEXT NOT NULL UNIQUE,
        registered_at TEXT NOT NULL,
        last_seen_at TEXT NOT NULL,
        last_address TEXT
      );
      CREATE INDEX devices_uuid ON devices(smbios_uuid);
      CREATE INDEX devices_name ON devices(name);

      -- A MAC address belongs to one device (a network card moved to another machine moves with it).
      CREATE TABLE device_macs (
        mac TEXT PRIMARY KEY,
        device_id INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE
      );
      CREATE INDEX device_macs_device ON device_macs(device_id);

      CREATE TABLE collections (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        description TEXT,
        rules TEXT NOT NULL DEFAULT '[]',
        variables TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );

      CREATE TABLE collection_members (
        collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
        device_id INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
        PRIMARY KEY (collection_id, device_id)
      );

      CREATE TABLE task_sequences (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );

      CREATE TABLE task_sequence_versions (
        sequence_id INTEGER NOT NULL REFERENCES task_sequences(id) ON DELETE CASCADE,
        version INTEGER NOT NULL,
        document TEXT NOT NULL,
        digest TEXT NOT NULL,
        images TEXT NOT NULL DEFAULT '[]',
        comment TEXT,
        created_at TEXT NOT NULL,
        PRIMARY KEY (sequence_id, version)
      );

      CREATE TABLE deployments (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        sequence_id INTEGER NOT NULL REFERENCES task_sequences(id) ON DELETE RESTRICT,
        sequence_version INTEGER NOT NULL,
        collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE RESTRICT,
        purpose TEXT NOT NULL CHECK (purpose IN ('available','required')),
        available_from TEXT,
        deadline TEXT,
        access TEXT NOT NULL CHECK (access IN ('multicast-first','unicast-only','multicast-only')),
        enabled INTEGER NOT NULL DEFAULT 1,
        variables TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        FOREIGN KEY (sequence_id, sequence_version) REFERENCES task_sequence_versions(sequence_id, version) ON DELETE RESTRICT,
        CHECK (purpose = 'available' OR deadline IS NOT NULL)
      );
      CREATE INDEX deployments_collection ON deployments(collection_id);

      CREATE TABLE deployment_devices (
        deployment_id INTEGER NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
        device_id INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
        state TEXT NOT NULL CHECK (state IN ('waiting','running','succeeded','failed','restart-pending')),
        summary TEXT NOT NULL,
        last_message_at TEXT,
        PRIMARY KEY (deployment_id, device_id)
      );

      CREATE TABLE status_messages (
        id INTEGER PRIMARY KEY,
        message_id TEXT NOT NULL UNIQUE,
        deployment_id INTEGER NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
        device_id INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
        time TEXT NOT NULL,
        received_at TEXT NOT NULL,
        kind TEXT NOT NULL,
        body TEXT NOT NULL
      );
      CREATE INDEX status_messages_deployment ON status_messages(deployment_id, device_id, id);
    `,
  },
];
