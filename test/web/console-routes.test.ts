// The web console as the server serves it, against a real `fleetcast server` process: the page at / and every
// /console/ path (so that addresses can be reloaded), its modules with the right types, the CSP and cache
// headers, 404 for missing files and paths outside the console folder, and the admin API still behind its
// token, with per-field problems for forms.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { startWebServer } from './helpers.js';

/**
 * A GET sent exactly as given: fetch would normalize "..", and it makes a conditional request uncacheable
 * (Cache-Control: no-cache), which hides a 304.
 */
function rawGet(url: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/`, { path, method: 'GET', headers }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('web console routes', async (t) => {
  const { server: s } = await startWebServer(t, 'fc-web-routes-');

  await t.test('the page is served at / and at every console path, with a strict CSP and revalidation', async () => {
    for (const path of ['/', '/console/', '/console/images', '/console/images/win11', '/console/sessions/12', '/console/no/such/page']) {
      const res = await fetch(`${s.url}${path}`);
      assert.equal(res.status, 200, path);
      assert.match(res.headers.get('content-type') ?? '', /^text\/html/, path);
      const csp = res.headers.get('content-security-policy') ?? '';
      assert.match(csp, /default-src 'none'/);
      assert.match(csp, /script-src 'self'(;|$)/);
      assert.match(csp, /frame-ancestors 'none'/);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(res.headers.get('cache-control'), 'no-cache');
      assert.match(await res.text(), /<script type="module" src="\/console\/assets\/web\/main\.js">/);
    }
    const bare = await fetch(`${s.url}/console`, { redirect: 'manual' });
    assert.equal(bare.status, 302);
    assert.equal(bare.headers.get('location'), '/console/');
  });

  await t.test('every module the console imports is served as JavaScript; files revalidate with ETag', async () => {
    // Follow the import graph from the entry module: a module missing from the build breaks a page.
    const seen = new Set<string>();
    const queue = ['/console/assets/web/main.js'];
    while (queue.length) {
      const path = queue.shift()!;
      if (seen.has(path)) continue;
      seen.add(path);
      const res = await fetch(`${s.url}${path}`);
      assert.equal(res.status, 200, path);
      assert.match(res.headers.get('content-type') ?? '', /^(application|text)\/javascript/, path);
      assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'none'/, path);
      const code = await res.text();
      for (const m of code.matchAll(/(?:from\s*|import\s*\(\s*)'(\.{1,2}\/[^']+)'/g)) queue.push(new URL(m[1]!, `http://x${path}`).pathname);
    }
    for (const page of ['dashboard', 'images', 'image-detail', 'sessions', 'session-detail', 'clients', 'dp']) assert.ok(seen.has(`/console/assets/web/pages/${page}.js`), `${page} page is reachable`);
    // Only browser-safe modules are in the graph: nothing of the server's runtime.
    assert.deepEqual([...seen].filter((p) => /\/(server|db|content)\//.test(p) && !/api-types|repositories|details/.test(p)), []);

    const css = await fetch(`${s.url}/console/assets/console.css`);
    assert.equal(css.status, 200);
    assert.match(css.headers.get('content-type') ?? '', /^text\/css/);
    const etag = css.headers.get('etag');
    assert.ok(etag, 'assets carry an ETag');
    assert.equal((await rawGet(s.url, '/console/assets/console.css', { 'if-none-match': etag })).status, 304);
  });

  await t.test('missing assets are 404 (never the page), and nothing outside the console folder is served', async () => {
    const missing = await fetch(`${s.url}/console/assets/web/pages/nope.js`);
    assert.equal(missing.status, 404);
    assert.match(missing.headers.get('content-type') ?? '', /json/);
    for (const path of ['/console/assets/../../package.json', '/console/assets/..%2f..%2fpackage.json', '/console/assets/%2e%2e/%2e%2e/package.json', '/console/assets/../src/server/server.js']) {
      const res = await rawGet(s.url, path);
      assert.ok(res.status === 404 || res.status === 403 || res.status === 400, `${path}: ${res.status}`);
      assert.doesNotMatch(res.body, /"name": "fleetcast"|startServer/, path);
    }
    // The OpenAPI document describes the API only.
    const spec = (await (await fetch(`${s.url}/api/v1/openapi.json`)).json()) as { paths: Record<string, unknown> };
    assert.deepEqual(Object.keys(spec.paths).filter((p) => p === '/' || p.startsWith('/console')), []);
  });

  await t.test('the API still needs the token; its validation errors name the fields', async () => {
    assert.equal((await fetch(`${s.url}/api/v1/dp`)).status, 401);
    assert.equal((await fetch(`${s.url}/api/v1/dp`, { headers: { authorization: 'Bearer fct_wrong' } })).status, 401);
    assert.equal((await s.api('GET', '/api/v1/dp')).status, 200);

    const schema = await s.api('PATCH', '/api/v1/dp', { portStart: 80, bogus: 1 });
    assert.equal(schema.status, 400);
    assert.deepEqual(schema.body.errors.map((p: { path: string }) => p.path).sort(), ['/bogus', '/portStart']);
    const settings = await s.api('PATCH', '/api/v1/dp', { addressPool: 'range', addressStart: '10.0.0.1', addressEnd: 'ff15::1', minimumSessionSize: 500 });
    assert.equal(settings.status, 400);
    const byPath = Object.fromEntries(settings.body.errors.map((p: { path: string; message: string }) => [p.path, p.message]));
    assert.match(byPath['/addressStart'], /not an IPv4 multicast address/);
    assert.match(byPath['/minimumSessionSize'], /more than maxClients/);
    assert.match(settings.body.message, /not an IPv4 multicast address.*more than maxClients/);
    assert.equal((await s.api('GET', '/api/v1/dp')).body.minimumSessionSize, 20, 'nothing was saved');
  });
});
