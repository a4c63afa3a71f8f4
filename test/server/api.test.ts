// The server's HTTP API against a real `fleetcast server` process and its SQLite file: authentication,
// validation, OpenAPI, imports of every format (CLI and API), all-or-nothing imports, unicast downloads with
// Range, image deletion rules, and a restart (graceful and after a crash) that keeps all state.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { privatePools, run, startServer, tempDir, until, type TestServer } from './helpers.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const has = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;

/** Every file under the content store and uploads folder (objects, sidecars, temp files). */
function libraryFiles(dataDir: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    if (!existsSync(dir)) return;
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(p.slice(dataDir.length));
    }
  };
  walk(join(dataDir, 'content'));
  walk(join(dataDir, 'uploads'));
  return out.sort();
}

async function importJob(s: TestServer, body: Record<string, unknown>) {
  const started = await s.api('POST', '/api/v1/imports', body);
  assert.equal(started.status, 202, JSON.stringify(started.body));
  return until('the import to end', () => s.api('GET', `/api/v1/imports/${started.body.id}`), (r) => r.body.state !== 'running');
}

test('server API: auth, validation, OpenAPI, imports of every format, unicast, deletion, restart', async (t) => {
  const dir = tempDir(t, 'fc-api-');
  const data = join(dir, 'data');
  const s = await startServer(t, data);
  assert.match(s.stderr(), /first start: created the admin token/);
  assert.equal(statSync(join(data, 'admin-token')).mode & 0o777, 0o600);
  assert.equal((await s.api('PATCH', '/api/v1/dp', privatePools())).status, 200);

  await t.test('admin calls need the token; the client API and the OpenAPI document do not', async () => {
    const bare = await fetch(`${s.url}/api/v1/images`);
    assert.equal(bare.status, 401);
    assert.match(((await bare.json()) as { message: string }).message, /admin token required/);
    const wrong = await fetch(`${s.url}/api/v1/images`, { headers: { authorization: 'Bearer fct_not-the-token' } });
    assert.equal(wrong.status, 401);
    const spec = (await (await fetch(`${s.url}/api/v1/openapi.json`)).json()) as { openapi: string; paths: Record<string, unknown> };
    assert.match(spec.openapi, /^3\./);
    for (const p of ['/api/v1/images', '/api/v1/dp', '/api/v1/sessions/{id}', '/api/v1/clients', '/api/client/content-location', '/content/{digest}']) {
      assert.ok(spec.paths[p], `OpenAPI documents ${p}`);
    }
    const location = await fetch(`${s.url}/api/client/content-location`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ client: { name: 'pc' }, image: 'nothing' }) });
    assert.equal(location.status, 404);
    assert.match(((await location.json()) as { message: string }).message, /no image named "nothing"/);
    // A client cannot reach admin routes with its enrollment header.
    assert.equal((await fetch(`${s.url}/api/v1/dp`, { method: 'PATCH', headers: { 'x-fleetcast-client-secret': 'x', 'content-type': 'application/json' }, body: '{"maxClients":1}' })).status, 401);
    const cli = await run(['image', 'list', '--server', s.url, '--token', 'fct_wrong']).done;
    assert.equal(cli.code, 2);
    assert.match(cli.stderr, /not valid for this server/);
  });

  await t.test('bad input gets a 400 that says what is wrong; nothing changes', async () => {
    const before = (await s.api('GET', '/api/v1/dp')).body;
    const cases: [unknown, RegExp][] = [
      [{ portStart: 80 }, /portStart must be >= 1024/],
      [{ bogus: 1 }, /must NOT have additional properties/],
      [{ minimumSessionSize: 500 }, /more than maxClients/],
      [{ addressStart: '239.255.0.1', addressEnd: 'ff15::1' }, /mix IPv4 and IPv6/],
      [{ slowClientHandling: 'disconnect' }, /needs slowClientThresholdBps/],
      [{}, /must NOT have fewer than 1 properties/],
    ];
    for (const [body, message] of cases) {
      const r = await s.api('PATCH', '/api/v1/dp', body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.match(r.body.message, message);
    }
    assert.deepEqual((await s.api('GET', '/api/v1/dp')).body, before);
    const relative = await s.api('POST', '/api/v1/imports', { path: 'img.raw', name: 'x' });
    assert.equal(relative.status, 400);
    assert.match(relative.body.message, /must be absolute/);
    assert.equal((await s.api('POST', '/api/v1/imports', { path: '/x', name: 'bad name!' })).status, 400);
    assert.equal((await s.api('POST', '/api/v1/imports', { path: '/x', name: 'x', multicastOnly: true, allowMulticast: false })).status, 400);
    const cli = await s.cli(['dp', 'set', '--address-pool', '10.0.0.1-10.0.0.9']);
    assert.equal(cli.code, 1);
    assert.match(cli.stderr, /not an IPv4 multicast address/);
    const ports = await s.cli(['dp', 'set', '--ports', '64000-63000']);
    assert.equal(ports.code, 1);
    assert.match(ports.stderr, /portStart 64000 is after portEnd 63000/);
  });

  const raw = randomBytes(1024 * 1024 + 4321);
  const rawPath = join(dir, 'disk.img');
  writeFileSync(rawPath, raw);
  let rawDigest = '';

  await t.test('import a raw image with the CLI (path), a gzip one by upload; dedupe', async () => {
    const r = await s.cli(['image', 'import', rawPath, '--name', 'disk', '--version', '1.0', '--description', 'test disk', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const job = JSON.parse(r.stdout);
    assert.equal(job.state, 'completed');
    assert.equal(job.image.format, 'raw');
    assert.equal(job.image.size, raw.length);
    assert.equal(job.image.digest, sha(raw));
    assert.equal(job.image.allowMulticast, true);
    rawDigest = job.image.digest;
    const gz = join(dir, 'disk.img.gz');
    writeFileSync(gz, gzipSync(raw));
    const up = await s.cli(['image', 'import', gz, '--name', 'disk-gz', '--upload', '--encrypt', '--json']);
    assert.equal(up.code, 0, up.stderr);
    const gzImage = JSON.parse(up.stdout).image;
    assert.equal(gzImage.format, 'gzip');
    assert.equal(gzImage.uncompressedSize, raw.length);
    assert.equal(gzImage.encryptMulticast, true);
    const again = await s.cli(['image', 'import', rawPath, '--name', 'disk-copy', '--json']);
    assert.equal(JSON.parse(again.stdout).image.digest, rawDigest);
    const dup = await s.cli(['image', 'import', rawPath, '--name', 'disk']);
    assert.equal(dup.code, 2);
    assert.match(dup.stderr, /already exists/);
    const show = await s.cli(['image', 'show', 'disk']);
    assert.match(show.stdout, /version 1\.0/);
    assert.match(show.stdout, new RegExp(rawDigest));
    // Deleting one of two images with the same content keeps the content.
    assert.equal((await s.cli(['image', 'delete', 'disk-copy'])).code, 0);
    assert.ok(existsSync(join(data, 'content', 'objects', rawDigest.slice(0, 2), rawDigest)));
  });

  await t.test('import zstd, ISO and WIM images through the API', async (tt) => {
    if (has('zstd')) {
      execFileSync('zstd', ['-q', '-f', rawPath, '-o', join(dir, 'disk.zst')]);
      const job = await importJob(s, { path: join(dir, 'disk.zst'), name: 'disk-zst' });
      assert.equal(job.body.state, 'completed', JSON.stringify(job.body));
      assert.equal(job.body.image.format, 'zstd');
      assert.equal(job.body.image.uncompressedSize, raw.length);
    } else tt.diagnostic('zstd not installed (apt-get install zstd): zstd import skipped');
    const tree = join(dir, 'tree');
    mkdirSync(join(tree, 'sub'), { recursive: true });
    writeFileSync(join(tree, 'a.txt'), 'hello fleetcast\n');
    writeFileSync(join(tree, 'sub', 'b.bin'), randomBytes(50_000));
    if (has('xorriso')) {
      execFileSync('xorriso', ['-as', 'mkisofs', '-quiet', '-V', 'FCTEST_ISO', '-o', join(dir, 'test.iso'), tree], { stdio: 'ignore' });
      const job = await importJob(s, { path: join(dir, 'test.iso'), name: 'iso', multicastOnly: true });
      assert.equal(job.body.state, 'completed', JSON.stringify(job.body));
      assert.equal(job.body.image.format, 'iso');
      assert.equal(job.body.image.details.iso.volumeId, 'FCTEST_ISO');
      assert.equal(job.body.image.multicastOnly, true);
    } else tt.diagnostic('xorriso not installed (apt-get install xorriso): ISO import skipped');
    if (has('wimcapture')) {
      const wim = join(dir, 'test.wim');
      execFileSync('wimcapture', [tree, wim, 'First image', 'the first'], { stdio: 'ignore' });
      execFileSync('wimappend', [join(tree, 'sub'), wim, 'Second image'], { stdio: 'ignore' });
      const job = await importJob(s, { path: wim, name: 'wim' });
      assert.equal(job.body.state, 'completed', JSON.stringify(job.body));
      assert.equal(job.body.image.format, 'wim');
      assert.deepEqual(
        job.body.image.details.wim.images.map((i: { index: number; name: string }) => [i.index, i.name]),
        [
          [1, 'First image'],
          [2, 'Second image'],
        ],
      );
      const show = await s.cli(['image', 'show', 'wim']);
      assert.match(show.stdout, /WIM image 2\s+Second image/);
    } else tt.diagnostic('wimtools not installed (apt-get install wimtools): WIM import skipped');
  });

  await t.test('failed, cancelled and interrupted imports leave the library as it was', async () => {
    const images = (await s.api('GET', '/api/v1/images')).body;
    const files = libraryFiles(data);
    const truncated = join(dir, 'broken.gz');
    const gz = gzipSync(randomBytes(200_000));
    writeFileSync(truncated, gz.subarray(0, gz.length - 100));
    const corrupt = await importJob(s, { path: truncated, name: 'broken' });
    assert.equal(corrupt.body.state, 'failed');
    assert.equal(corrupt.body.error.code, 'corrupt');
    const missing = await importJob(s, { path: join(dir, 'no-such-file'), name: 'missing' });
    assert.equal(missing.body.state, 'failed');
    assert.equal(missing.body.error.code, 'unreadable');
    const cli = await s.cli(['image', 'import', truncated, '--name', 'broken']);
    assert.equal(cli.code, 1);
    assert.match(cli.stderr, /import failed/);

    // An upload cut off mid-body: the spool goes, no job starts.
    await new Promise<void>((resolve) => {
      const req = request(`${s.url}/api/v1/imports/upload?name=cut`, { method: 'POST', headers: { authorization: `Bearer ${s.token}`, 'content-type': 'application/octet-stream', 'content-length': String(10_000_000) } });
      req.on('error', () => resolve());
      req.write(randomBytes(1_000_000), () => setTimeout(() => req.destroy(), 200));
    });
    await until('the spool of the cut upload to go', async () => libraryFiles(data), (f) => f.length === files.length);

    // A cancelled import, caught while it copies (a sparse file: quick to make, slow enough to copy).
    const big = join(dir, 'big.img');
    writeFileSync(big, 'x');
    truncateSync(big, 768 * 1024 * 1024);
    const started = await s.api('POST', '/api/v1/imports', { path: big, name: 'big' });
    const cancelled = await s.api('DELETE', `/api/v1/imports/${started.body.id}`);
    assert.equal(cancelled.body.state, 'cancelled', JSON.stringify(cancelled.body));
    assert.deepEqual((await s.api('GET', '/api/v1/images')).body, images);
    assert.deepEqual(libraryFiles(data), files);
  });

  await t.test('unicast: whole file, Range, HEAD, ETag; unknown digests are 404', async () => {
    const full = await fetch(`${s.url}/content/${rawDigest}`);
    assert.equal(full.status, 200);
    assert.equal(full.headers.get('etag'), `"${rawDigest}"`);
    assert.equal(full.headers.get('accept-ranges'), 'bytes');
    assert.equal(Number(full.headers.get('content-length')), raw.length);
    assert.ok(Buffer.from(await full.arrayBuffer()).equals(raw));
    const part = await fetch(`${s.url}/content/${rawDigest}`, { headers: { range: 'bytes=1000-1999' } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), `bytes 1000-1999/${raw.length}`);
    assert.ok(Buffer.from(await part.arrayBuffer()).equals(raw.subarray(1000, 2000)));
    const stale = await fetch(`${s.url}/content/${rawDigest}`, { headers: { range: 'bytes=0-9', 'if-range': '"other"' } });
    assert.equal(stale.status, 200);
    await stale.arrayBuffer();
    const bad = await fetch(`${s.url}/content/${rawDigest}`, { headers: { range: `bytes=${raw.length}-` } });
    assert.equal(bad.status, 416);
    assert.equal(bad.headers.get('content-range'), `bytes */${raw.length}`);
    const head = await fetch(`${s.url}/content/${rawDigest}`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(Number(head.headers.get('content-length')), raw.length);
    assert.equal((await fetch(`${s.url}/content/${'0'.repeat(64)}`)).status, 404);
    assert.equal((await fetch(`${s.url}/content/not-a-digest`)).status, 400);
  });

  await t.test('fetch by unicast (package without multicast): resumes a partial download, checks the digest', async () => {
    assert.equal((await s.cli(['image', 'set', 'disk', '--no-allow-multicast'])).code, 0);
    const out = join(dir, 'fetched.img');
    const partial = `${out}.${rawDigest.slice(0, 16)}.part`;
    // A partial with wrong bytes: resuming keeps them, so the digest check must catch it.
    writeFileSync(partial, randomBytes(500_000));
    const wrong = await run(['fetch', '--server', s.url, '--image', 'disk', '-o', out, '--json']).done;
    assert.equal(wrong.code, 4, wrong.stderr);
    assert.equal(JSON.parse(wrong.stdout).failure, 'integrity');
    assert.ok(!existsSync(out) && !existsSync(partial));
    writeFileSync(partial, raw.subarray(0, 500_000));
    const good = await run(['fetch', '--server', s.url, '--image', 'disk', '-o', out, '--name', 'unicast-pc', '--json']).done;
    assert.equal(good.code, 0, good.stderr);
    const summary = JSON.parse(good.stdout);
    assert.equal(summary.transport, 'unicast');
    assert.ok(readFileSync(out).equals(raw));
    assert.ok(!existsSync(partial));
    const clients = (await s.api('GET', '/api/v1/clients?image=disk')).body;
    const record = clients.find((c: { clientName: string }) => c.clientName === 'unicast-pc');
    assert.equal(record.outcome, 'completed');
    assert.equal(record.transport, 'unicast');
    assert.match(record.reason ?? '', /does not allow multicast|^$/);
    assert.equal((await s.cli(['image', 'set', 'disk', '--allow-multicast'])).code, 0);
  });

  let sessionId = 0;
  await t.test('an image in use by a live session cannot be deleted', async () => {
    assert.equal((await s.api('PATCH', '/api/v1/dp', { scheduledMulticast: true, minimumSessionSize: 5, sessionStartDelaySeconds: 3600 })).status, 200);
    const loc = await fetch(`${s.url}/api/client/content-location`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ client: { name: 'early', mac: '52:54:00:12:34:56' }, image: 'disk' }) });
    const location = (await loc.json()) as { kind: string; sessionId: number; startsBy: string; blockHashes: string };
    assert.equal(location.kind, 'multicast');
    assert.ok(location.startsBy);
    sessionId = location.sessionId;
    const del = await s.cli(['image', 'delete', 'disk']);
    assert.equal(del.code, 2);
    assert.match(del.stderr, /in use by a live multicast session/);
    const live = (await s.api('GET', `/api/v1/sessions/${sessionId}`)).body;
    assert.equal(live.state, 'waiting');
    assert.equal(live.live.phase, 'scheduled');
    assert.equal(live.live.clients.length, 1);
  });

  await t.test('restart after a crash: the live session is marked aborted; a graceful restart keeps everything', async () => {
    assert.equal(await s.stop('SIGKILL'), null);
    const s2 = await startServer(t, data);
    assert.doesNotMatch(s2.stderr(), /created the admin token/);
    const aborted = (await s2.api('GET', `/api/v1/sessions/${sessionId}`)).body;
    assert.equal(aborted.state, 'aborted');
    assert.match(aborted.endReason, /server stopped/);
    const early = (await s2.api('GET', `/api/v1/clients?session=${sessionId}`)).body;
    assert.equal(early[0].outcome, 'failed');
    assert.equal(early[0].clientMac, '52:54:00:12:34:56');
    const state = async (srv: TestServer) => ({
      images: (await srv.api('GET', '/api/v1/images')).body,
      dp: (await srv.api('GET', '/api/v1/dp')).body,
      sessions: (await srv.api('GET', '/api/v1/sessions')).body,
      clients: (await srv.api('GET', '/api/v1/clients')).body,
    });
    const before = await state(s2);
    assert.equal(await s2.stop('SIGTERM'), 0);
    const s3 = await startServer(t, data);
    assert.deepEqual(await state(s3), before);
    assert.equal(before.dp.minimumSessionSize, 5);
    assert.ok(before.images.some((i: { name: string }) => i.name === 'disk-gz'));
    // With the session gone the image can be deleted; the library forgets its content when no image uses it.
    const gz = before.images.find((i: { name: string }) => i.name === 'disk-gz');
    assert.equal((await s3.cli(['image', 'delete', 'disk-gz'])).code, 0);
    assert.ok(!existsSync(join(data, 'content', 'objects', gz.digest.slice(0, 2), gz.digest)));
    assert.equal(await s3.stop(), 0);
  });
});
