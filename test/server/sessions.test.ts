// Multicast sessions end to end on loopback: `fleetcast fetch` processes against a real server. The schedule
// (minimum session size, start delay), maximum clients with unicast or waiting for multicast-only packages,
// encryption on the wire, and cancelling a session.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { privatePools, run, startServer, tempDir, until, type TestServer } from './helpers.js';

interface FetchSummary {
  ok: boolean;
  transport: string;
  exitCode: number;
  attempts: { transport: string; sessionId: number | null; ok: boolean; reason: string | null }[];
}

function fetchProcess(s: TestServer, image: string, out: string, name: string, extra: string[] = []) {
  return run(['fetch', '--server', s.url, '--image', image, '-o', out, '--interface', 'lo', '--name', name, '--json', ...extra]);
}

async function finished(p: ReturnType<typeof fetchProcess>): Promise<FetchSummary> {
  const r = await p.done;
  assert.ok(r.stdout, `fetch printed no summary (exit ${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout) as FetchSummary;
}

const liveSessions = (s: TestServer) => s.api('GET', '/api/v1/sessions?state=waiting').then((r) => r.body as { id: number; group: string; port: number; live: { clients: unknown[] } | null }[]);
const noLiveSessions = (s: TestServer) => until('every session to end', () => s.api('GET', '/api/v1/status'), (r) => r.body.liveSessions.length === 0);
const admitted = (s: TestServer, n: number) =>
  until(`${n} clients admitted to a session`, () => s.api('GET', '/api/v1/sessions?limit=1'), (r) => r.body[0]?.live?.clients.length === n).then((r) => r.body[0] as { id: number; state: string; group: string; port: number; params: { symbolSize: number } });

test('multicast sessions: schedule, max clients, multicast-only, encryption, cancel', async (t) => {
  const dir = tempDir(t, 'fc-sessions-');
  const s = await startServer(t, join(dir, 'data'));
  const image = randomBytes(3 * 1024 * 1024 + 777);
  const imagePath = join(dir, 'image.img');
  writeFileSync(imagePath, image);
  for (const [name, flags] of [
    ['img', []],
    ['img-only', ['--multicast-only']],
    ['img-enc', ['--encrypt']],
  ] as const) {
    const r = await s.cli(['image', 'import', imagePath, '--name', name, ...flags]);
    assert.equal(r.code, 0, r.stderr);
  }
  const dp = (changes: Record<string, unknown>) => s.api('PATCH', '/api/v1/dp', changes).then((r) => assert.equal(r.status, 200, JSON.stringify(r.body)));
  await dp({ ...privatePools(), scheduledMulticast: true, autoCast: false, maxClients: 10, minimumSessionSize: 3, sessionStartDelaySeconds: 600 });
  const out = (n: string) => join(dir, `${n}.img`);
  const same = (n: string) => assert.ok(readFileSync(out(n)).equals(image), `${n} got the exact image`);

  await t.test('three fetch processes join one session that starts only when the third arrives', async () => {
    const a = fetchProcess(s, 'img', out('a'), 'pc-a');
    const first = await admitted(s, 1);
    const b = fetchProcess(s, 'img', out('b'), 'pc-b');
    await admitted(s, 2);
    assert.equal((await s.api('GET', `/api/v1/sessions/${first.id}`)).body.state, 'waiting', 'two clients do not start the session');
    const c = fetchProcess(s, 'img', out('c'), 'pc-c');
    const results = await Promise.all([a, b, c].map(finished));
    for (const r of results) {
      assert.equal(r.exitCode, 0, JSON.stringify(r));
      assert.equal(r.transport, 'multicast');
      assert.deepEqual(r.attempts.map((x) => x.sessionId), [first.id]);
    }
    ['a', 'b', 'c'].forEach(same);
    await noLiveSessions(s);
    const session = (await s.api('GET', `/api/v1/sessions/${first.id}`)).body;
    assert.equal(session.state, 'completed');
    assert.equal(session.endReason, '3 of 3 clients completed');
    assert.ok(session.wireBytes >= image.length && session.sourcePackets > 0, JSON.stringify(session));
    const clients = (await s.api('GET', `/api/v1/clients?session=${first.id}`)).body as { clientName: string; outcome: string; admittedAt: string; bytes: number; repairsRequested: number | null }[];
    assert.deepEqual(clients.map((x) => x.clientName).sort(), ['pc-a', 'pc-b', 'pc-c']);
    assert.ok(clients.every((x) => x.outcome === 'completed' && x.bytes === image.length && x.repairsRequested !== null));
    const third = clients.find((x) => x.clientName === 'pc-c')!;
    assert.ok(session.startedAt >= third.admittedAt, `started ${session.startedAt}, third admitted ${third.admittedAt}`);
    assert.equal(session.clientCount, 3);
    assert.equal(session.clientsCompleted, 3);
    const listed = await s.cli(['session', 'list', '--state', 'completed']);
    assert.match(listed.stdout, new RegExp(`^${first.id}\\s.*\\s3/3 done\\s`, 'm'), listed.stdout);
    const shown = await s.cli(['session', 'show', String(first.id)]);
    assert.match(shown.stdout, /completed \(3 of 3 clients completed\)/);
    assert.match(shown.stdout, /pc-c\s+completed/);
  });

  await t.test('when the start delay expires, the session starts with the two clients it has', async () => {
    await dp({ sessionStartDelaySeconds: 2 });
    const results = await Promise.all([fetchProcess(s, 'img', out('d'), 'pc-d'), fetchProcess(s, 'img', out('e'), 'pc-e')].map(finished));
    assert.ok(results.every((r) => r.exitCode === 0 && r.transport === 'multicast'), JSON.stringify(results));
    assert.equal(results[0]!.attempts[0]!.sessionId, results[1]!.attempts[0]!.sessionId);
    ['d', 'e'].forEach(same);
    await noLiveSessions(s);
    const session = (await s.api('GET', `/api/v1/sessions/${results[0]!.attempts[0]!.sessionId}`)).body;
    assert.equal(session.endReason, '2 of 2 clients completed');
  });

  await t.test('max clients 2: the third client gets unicast; for a multicast-only package it waits for the next session', async () => {
    // Slow enough that the first two are still receiving when the third asks.
    await dp({ maxClients: 2, minimumSessionSize: 2, sessionStartDelaySeconds: 3, transferRateBps: 8e6 });
    const a = fetchProcess(s, 'img', out('f'), 'pc-f');
    const b = fetchProcess(s, 'img', out('g'), 'pc-g');
    await admitted(s, 2);
    const third = await finished(fetchProcess(s, 'img', out('h'), 'pc-h'));
    assert.equal(third.exitCode, 0, JSON.stringify(third));
    assert.equal(third.transport, 'unicast');
    assert.match(third.attempts[0]!.reason ?? '', /maximum of 2 multicast clients/);
    const pair = await Promise.all([a, b].map(finished));
    assert.ok(pair.every((r) => r.exitCode === 0 && r.transport === 'multicast'), JSON.stringify(pair));
    ['f', 'g', 'h'].forEach(same);
    await noLiveSessions(s);

    const c = fetchProcess(s, 'img-only', out('i'), 'pc-i');
    const d = fetchProcess(s, 'img-only', out('j'), 'pc-j');
    const firstSession = await admitted(s, 2);
    const waiter = await finished(fetchProcess(s, 'img-only', out('k'), 'pc-k'));
    assert.equal(waiter.exitCode, 0, JSON.stringify(waiter));
    assert.equal(waiter.transport, 'multicast');
    assert.equal(waiter.attempts[0]!.transport, 'wait');
    assert.match(waiter.attempts[0]!.reason ?? '', /multicast-only, so wait for the next session/);
    const last = waiter.attempts.at(-1)!;
    assert.ok(last.ok && last.sessionId !== null && last.sessionId !== firstSession.id, JSON.stringify(waiter.attempts));
    const pair2 = await Promise.all([c, d].map(finished));
    assert.ok(pair2.every((r) => r.exitCode === 0 && r.attempts.every((x) => x.sessionId === firstSession.id)), JSON.stringify(pair2));
    ['i', 'j', 'k'].forEach(same);
    await noLiveSessions(s);
  });

  await t.test('an encrypted package: packets on the wire hold no image bytes; a receiver without the key gets nothing', async (tt) => {
    await dp({ maxClients: 10, minimumSessionSize: 2, sessionStartDelaySeconds: 600, transferRateBps: null });
    const a = fetchProcess(s, 'img-enc', out('l'), 'pc-l');
    const session = await admitted(s, 1);
    assert.equal((await liveSessions(s))[0]!.id, session.id);
    const sniffer = dgram.createSocket({ type: 'udp4', reuseAddr: true });
    tt.after(() => sniffer.close());
    const seen: Buffer[] = [];
    sniffer.on('message', (m) => seen.push(m));
    await new Promise<void>((resolve) => sniffer.bind(session.port, session.group, resolve));
    sniffer.addMembership(session.group, '127.0.0.1');
    const plain = run(['receive', '--group', session.group, '--port', String(session.port), '--interface', 'lo', '--timeout', '6', '--json', '-o', out('plain')]);
    const b = fetchProcess(s, 'img-enc', out('m'), 'pc-m');
    const results = await Promise.all([a, b].map(finished));
    assert.ok(results.every((r) => r.exitCode === 0 && r.transport === 'multicast'), JSON.stringify(results));
    ['l', 'm'].forEach(same);
    assert.ok(seen.length > 100, `the sniffer saw ${seen.length} datagrams`);
    // Unencrypted, every source symbol travels verbatim: look for the first few symbols of the image.
    const symbol = session.params.symbolSize;
    for (let i = 0; i < 8; i++) {
      const window = image.subarray(i * symbol, i * symbol + 64);
      assert.ok(!seen.some((d) => d.includes(window)), `symbol ${i} of the image appears in clear on the wire`);
    }
    const keyless = await plain.done;
    assert.equal(keyless.code, 3, keyless.stderr);
    assert.match(keyless.stderr, /key/);
    await noLiveSessions(s);
  });

  await t.test('cancel a live session from the CLI: recorded as cancelled with the reason', async () => {
    await dp({ minimumSessionSize: 5 });
    const a = fetchProcess(s, 'img-only', out('n'), 'pc-n');
    const session = await admitted(s, 1);
    const r = await s.cli(['session', 'cancel', String(session.id), '--reason', 'maintenance', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const cancelled = JSON.parse(r.stdout);
    assert.equal(cancelled.state, 'cancelled');
    assert.equal(cancelled.endReason, 'cancelled by an administrator: maintenance');
    a.child.kill('SIGINT');
    const fetched = await a.done;
    assert.equal(fetched.code, 130, fetched.stderr);
    const client = (await s.api('GET', `/api/v1/clients?session=${session.id}`)).body[0];
    assert.equal(client.outcome, 'failed');
    const again = await s.cli(['session', 'cancel', String(session.id)]);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /not live/);
  });

  assert.equal(await s.stop(), 0);
});

test('a client the session drops (it stopped responding) falls back to unicast; both outcomes are recorded', async (t) => {
  const dir = tempDir(t, 'fc-slow-');
  const s = await startServer(t, join(dir, 'data'));
  const image = randomBytes(3 * 1024 * 1024);
  writeFileSync(join(dir, 'image.img'), image);
  assert.equal((await s.cli(['image', 'import', join(dir, 'image.img'), '--name', 'img'])).code, 0);
  assert.equal((await s.api('PATCH', '/api/v1/dp', privatePools())).status, 200);
  const set = await s.cli(['dp', 'set', '--scheduled', '--min-clients', '2', '--start-delay', '10m', '--rate', '8M']);
  assert.equal(set.code, 0, set.stderr);
  const healthy = fetchProcess(s, 'img', join(dir, 'a.img'), 'pc-fast');
  const slow = fetchProcess(s, 'img', join(dir, 'b.img'), 'pc-slow');
  const session = await admitted(s, 2);
  await until('the slow client to join', () => s.api('GET', `/api/v1/sessions/${session.id}`), (r) => r.body.live?.clients.some((c: { name: string; joined: boolean }) => c.name === 'pc-slow' && c.joined));
  // A stopped process says nothing: the sender drops it as silent.
  slow.child.kill('SIGSTOP');
  try {
    await until(
      'the slow client to be dropped',
      () => s.api('GET', `/api/v1/clients?session=${session.id}`),
      (r) => r.body.some((c: { clientName: string; outcome: string }) => c.clientName === 'pc-slow' && c.outcome === 'dropped'),
    );
  } finally {
    slow.child.kill('SIGCONT');
  }
  const [fast, fallback] = await Promise.all([healthy, slow].map(finished));
  assert.equal(fast.exitCode, 0, JSON.stringify(fast));
  assert.equal(fast.transport, 'multicast');
  assert.equal(fallback.exitCode, 0, JSON.stringify(fallback));
  assert.equal(fallback.transport, 'unicast');
  assert.ok(readFileSync(join(dir, 'b.img')).equals(image));
  const records = (await s.api('GET', '/api/v1/clients?image=img')).body as { clientName: string; transport: string; outcome: string; reason: string | null }[];
  const slowRecords = records.filter((c) => c.clientName === 'pc-slow');
  const multicast = slowRecords.find((c) => c.transport === 'multicast')!;
  assert.equal(multicast.outcome, 'fell-back-to-unicast');
  assert.match(multicast.reason ?? '', /silent for \d+ s/);
  assert.equal(slowRecords.find((c) => c.transport === 'unicast')?.outcome, 'completed');
  assert.equal(await s.stop(), 0);
});
