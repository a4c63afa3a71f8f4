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
];
