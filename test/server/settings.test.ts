// Unit tests: distribution point settings validation, multicast pool allocation, config precedence, Range
// parsing, schema migrations.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import Database from 'better-sqlite3';
import { DEFAULT_DP_SETTINGS, addressString, addressValue, mergeDpSettings, validateDpSettings, type DpSettings } from '../../src/server/dp-settings.js';
import { allocateGroupPort } from '../../src/server/address-pool.js';
import { loadServerConfig, parseListen } from '../../src/config/server-config.js';
import { parseRange } from '../../src/server/routes-client.js';
import { migrate, openSqlite } from '../../src/db/sqlite.js';
import { MIGRATIONS } from '../../src/db/migrations.js';

const rejects = (changes: Partial<DpSettings>, pattern: RegExp) => assert.throws(() => mergeDpSettings(DEFAULT_DP_SETTINGS, changes), pattern);

test('DP settings: defaults are valid; every bad value gets a clear error', () => {
  assert.deepEqual(validateDpSettings(DEFAULT_DP_SETTINGS), DEFAULT_DP_SETTINGS);
  rejects({ addressStart: '10.0.0.1', addressEnd: '10.0.0.9' }, /not an IPv4 multicast address/);
  rejects({ addressStart: '239.255.0.1', addressEnd: 'ff15::1' }, /mix IPv4 and IPv6/);
  rejects({ addressStart: '239.255.0.9', addressEnd: '239.255.0.1' }, /addressStart 239\.255\.0\.9 is after addressEnd/);
  rejects({ addressStart: '224.0.0.1', addressEnd: '224.0.0.9' }, /reserved for local network control/);
  rejects({ addressPool: 'range' }, /needs addressStart and addressEnd/);
  rejects({ addressStart: 'fe80::1', addressEnd: 'fe80::9' }, /not an IPv6 multicast address/);
  rejects({ portStart: 80 }, /portStart must be an integer from 1024 to 65535/);
  rejects({ portEnd: 70000 }, /portEnd must be an integer from 1024 to 65535/);
  rejects({ portStart: 64000, portEnd: 63000 }, /portStart 64000 is after portEnd 63000/);
  rejects({ minimumSessionSize: 30, maxClients: 20 }, /minimumSessionSize 30 is more than maxClients 20/);
  rejects({ transferRateBps: 10 }, /transferRateBps must be at least 1000/);
  rejects({ slowClientHandling: 'disconnect' }, /needs slowClientThresholdBps/);
  rejects({ slowClientHandling: 'disconnect', slowClientThresholdBps: 200e6, transferRateBps: 100e6 }, /must be below the transfer rate/);
  rejects({ sessionStartDelaySeconds: -1 }, /sessionStartDelaySeconds must be from 0/);
  // Several problems at once are all reported.
  assert.throws(() => mergeDpSettings(DEFAULT_DP_SETTINGS, { portStart: 1, maxClients: 0 }), /portStart.*; maxClients/);
  // A range implies the 'range' pool; addresses are normalized.
  const s = mergeDpSettings(DEFAULT_DP_SETTINGS, { addressStart: 'FF15:0:0::1', addressEnd: 'ff15::00ff' });
  assert.equal(s.addressPool, 'range');
  assert.equal(s.addressStart, 'ff15::1');
  assert.equal(s.addressEnd, 'ff15::ff');
  assert.equal(mergeDpSettings(s, { addressPool: 'any' }).addressStart, null);
});

test('addresses: string <-> value round trip (IPv4 and IPv6)', () => {
  fc.assert(
    fc.property(fc.oneof(fc.ipV4(), fc.ipV6().filter((a) => !a.includes('.'))), (address) => {
      const { family, value } = addressValue(address);
      assert.equal(addressValue(addressString(family, value)).value, value);
    }),
  );
});

test('pool allocation: never two live sessions on one group:port; exhaustion is null', () => {
  const settings = mergeDpSettings(DEFAULT_DP_SETTINGS, { addressStart: '239.255.1.1', addressEnd: '239.255.1.3', portStart: 40000, portEnd: 40001 });
  const inUse: { group: string; port: number }[] = [];
  for (let i = 0; i < 6; i++) {
    const slot = allocateGroupPort(settings, inUse);
    assert.ok(slot, `slot ${i}`);
    assert.ok(!inUse.some((u) => u.group === slot.group && u.port === slot.port));
    assert.match(slot.group, /^239\.255\.1\.[123]$/);
    assert.ok(slot.port === 40000 || slot.port === 40001);
    inUse.push(slot);
  }
  // Distinct ports and groups are preferred while there are any.
  assert.notEqual(inUse[0]!.port, inUse[1]!.port);
  assert.equal(allocateGroupPort(settings, inUse), null);
  // Any pool: huge range, random but valid.
  const any = allocateGroupPort(DEFAULT_DP_SETTINGS, [])!;
  assert.match(any.group, /^239\.255\.\d+\.\d+$/);
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 5 }), (seeds) => {
      const used: { group: string; port: number }[] = [];
      for (const s of seeds) {
        const slot = allocateGroupPort(settings, used, (n) => s % n);
        if (!slot) break;
        assert.ok(!used.some((u) => u.group === slot.group && u.port === slot.port));
        used.push(slot);
      }
    }),
  );
});

test('config precedence: defaults < config file < environment < flags', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fc-config-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const defaults = loadServerConfig({}, {}, dir);
  assert.equal(defaults.dataDir, join(dir, 'fleetcast-data'));
  assert.deepEqual(defaults.listen, { host: '127.0.0.1', port: 8080 });
  assert.equal(defaults.logLevel, 'info');

  const data = join(dir, 'data');
  mkdirSync(data);
  writeFileSync(join(dir, 'cfg.json'), JSON.stringify({ dataDir: data, listen: '0.0.0.0:9000', logLevel: 'warn', mtu: 9000, interface: 'eth1' }));
  const fromFile = loadServerConfig({ config: 'cfg.json' }, {}, dir);
  assert.equal(fromFile.dataDir, data);
  assert.deepEqual(fromFile.listen, { host: '0.0.0.0', port: 9000 });
  assert.equal(fromFile.mtu, 9000);

  const env = { FLEETCAST_CONFIG: join(dir, 'cfg.json'), FLEETCAST_LISTEN: '127.0.0.1:9100', FLEETCAST_MTU: '1500' };
  const fromEnv = loadServerConfig({}, env, dir);
  assert.deepEqual(fromEnv.listen, { host: '127.0.0.1', port: 9100 });
  assert.equal(fromEnv.mtu, 1500);
  assert.equal(fromEnv.logLevel, 'warn');
  assert.equal(fromEnv.interface, 'eth1');

  const fromFlags = loadServerConfig({ listen: '[::1]:9200', logLevel: 'debug' }, env, dir);
  assert.deepEqual(fromFlags.listen, { host: '::1', port: 9200 });
  assert.equal(fromFlags.logLevel, 'debug');
  assert.equal(fromFlags.interface, 'eth1');

  // The data folder's own config.json is read when no file is named.
  writeFileSync(join(data, 'config.json'), JSON.stringify({ listen: '127.0.0.1:9300' }));
  assert.deepEqual(loadServerConfig({ dataDir: data }, {}, dir).listen, { host: '127.0.0.1', port: 9300 });

  assert.throws(() => loadServerConfig({ config: 'missing.json' }, {}, dir), /cannot read the config file/);
  writeFileSync(join(dir, 'bad.json'), JSON.stringify({ listn: 'x' }));
  assert.throws(() => loadServerConfig({ config: 'bad.json' }, {}, dir), /unknown setting\(s\) listn/);
  assert.throws(() => loadServerConfig({ logLevel: 'loud' }, {}, dir), /log level "loud"/);
  assert.throws(() => loadServerConfig({ adminToken: 'short' }, {}, dir), /too short/);
  assert.throws(() => parseListen('example.com:80'), /must be ADDRESS:PORT/);
  assert.deepEqual(parseListen('8081'), { host: '127.0.0.1', port: 8081 });
});

test('HTTP Range: single ranges, suffixes, unsatisfiable', () => {
  assert.deepEqual(parseRange('bytes=0-99', 1000), [0, 99]);
  assert.deepEqual(parseRange('bytes=900-', 1000), [900, 999]);
  assert.deepEqual(parseRange('bytes=-100', 1000), [900, 999]);
  assert.deepEqual(parseRange('bytes=990-2000', 1000), [990, 999]);
  assert.equal(parseRange('bytes=1000-', 1000), null);
  assert.equal(parseRange('bytes=5-1', 1000), null);
  assert.equal(parseRange('bytes=0-1,5-9', 1000), null);
  assert.equal(parseRange('items=0-1', 1000), null);
});

test('migrations: applied once in order, recorded; a newer database is refused', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fc-db-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'test.db');
  const repos = openSqlite(path);
  void repos.close();
  const db = new Database(path);
  t.after(() => db.close());
  assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
  const applied = db.prepare('SELECT version FROM schema_migrations ORDER BY version').all() as { version: number }[];
  assert.deepEqual(applied.map((r) => r.version), MIGRATIONS.map((m) => m.version));
  assert.deepEqual(migrate(db, MIGRATIONS), []);
  // A failing migration leaves nothing half-applied.
  const broken = [...MIGRATIONS, { version: 99, name: 'broken', sql: 'CREATE TABLE half (x); SELECT * FROM no_such_table;' }];
  assert.throws(() => migrate(db, broken), /no such table/);
  assert.equal((db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'half'").get() as { n: number }).n, 0);
  db.prepare("INSERT INTO schema_migrations VALUES (999, 'future', 'x')").run();
  assert.throws(() => openSqlite(path), /newer than this fleetcast knows/);
});
