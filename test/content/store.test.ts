// Store operations on stored content: deduplication, block hashes for the protocol, verification, removal.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { ContentError, ContentStore } from '../../src/content/index.js';
import { FecScheme } from '../../src/fec/scheme.js';
import { makeGeometry } from '../../src/protocol/geometry.js';
import { Sender } from '../../src/protocol/sender.js';
import { filesOf, imageBytes, tempDir } from './helpers.js';

/** Block hashes computed the obvious way, over the whole file in memory. */
function directBlockHashes(bytes: Uint8Array, blockBytes: number): Buffer {
  const out: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += blockBytes) out.push(createHash('sha256').update(bytes.subarray(at, at + blockBytes)).digest());
  return Buffer.concat(out);
}

test('the same content imported twice is stored once; the second import reports it and rewrites nothing', async (t) => {
  const dir = tempDir(t);
  const bytes = imageBytes(300_000);
  writeFileSync(join(dir, 'a.img'), bytes);
  writeFileSync(join(dir, 'copy-of-a.img'), bytes);
  const store = new ContentStore(join(dir, 'lib'));
  const first = await store.import(join(dir, 'a.img'));
  const files = filesOf(store.root);
  const second = await store.import(join(dir, 'copy-of-a.img'));
  assert.equal(first.deduplicated, false);
  assert.equal(second.deduplicated, true);
  assert.equal(second.digest, first.digest);
  assert.equal(second.importedAt, first.importedAt, 'the existing record is returned');
  assert.equal(second.sourceName, 'a.img');
  assert.deepEqual(filesOf(store.root), files);
  assert.equal(store.list().length, 1);

  // Concurrent imports of one content: one stores it, the other finds it stored.
  writeFileSync(join(dir, 'b.img'), imageBytes(500_000));
  const both = await Promise.all([store.import(join(dir, 'b.img')), store.import(join(dir, 'b.img'))]);
  assert.deepEqual(both.map((r) => r.deduplicated).sort(), [false, true]);
  assert.equal(store.list().length, 2);
  assert.deepEqual(filesOf(join(store.root, 'tmp')), []);
});

test('blockHashes equal a direct computation (short last block included), are cached and accepted by the Sender', async (t) => {
  const dir = tempDir(t);
  const bytes = imageBytes(1_000_003);
  writeFileSync(join(dir, 'disk.img'), bytes);
  const store = new ContentStore(join(dir, 'lib'));
  const { digest, path } = await store.import(join(dir, 'disk.img'));

  const geometry = makeGeometry(FecScheme.ReedSolomon, bytes.length, 1400, 128); // 179,200-byte blocks, last one short
  for (const blockBytes of [geometry.blockBytes, 4096, 1 << 20, 2_000_000]) {
    const hashes = await store.blockHashes(digest, blockBytes);
    assert.ok(Buffer.from(hashes).equals(directBlockHashes(bytes, blockBytes)), `blockBytes ${blockBytes}`);
    assert.ok(readFileSync(`${path}.blockhashes.${blockBytes}`).equals(hashes), 'cached beside the object');
  }
  const forSender = await store.blockHashes(digest, geometry.blockBytes);
  assert.equal(forSender.length, geometry.blockCount * 32);
  assert.doesNotThrow(() => new Sender({ sessionId: 1, imageSize: bytes.length, symbolSize: 1400, fec: FecScheme.ReedSolomon, blockSymbols: 128, blockHashes: forSender }, 0));

  // A second call reads the cache instead of the object: a planted cache is what comes back.
  const cache = `${path}.blockhashes.4096`;
  const planted = Buffer.alloc(readFileSync(cache).length, 0xab);
  chmodSync(cache, 0o644);
  writeFileSync(cache, planted);
  assert.ok(Buffer.from(await store.blockHashes(digest, 4096)).equals(planted));
  // A cache of the wrong length (a torn write by an old version, say) is not trusted.
  writeFileSync(cache, planted.subarray(0, 64));
  assert.ok(Buffer.from(await store.blockHashes(digest, 4096)).equals(directBlockHashes(bytes, 4096)));

  await assert.rejects(store.blockHashes(digest, 0), RangeError);
  await assert.rejects(store.blockHashes('0'.repeat(64), 4096), (e: ContentError) => e.code === 'not-found');
});

test('property: blockHashes match a direct computation for any image size and block size', async (t) => {
  const dir = tempDir(t);
  const store = new ContentStore(join(dir, 'lib'));
  let n = 0;
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 1, max: 300_000 }), fc.integer({ min: 64, max: 120_000 }), async (size, blockBytes) => {
      const bytes = imageBytes(size);
      const source = join(dir, `img${n++}`);
      writeFileSync(source, bytes);
      const { digest } = await store.import(source);
      const hashes = await store.blockHashes(digest, blockBytes);
      assert.equal(hashes.length, Math.ceil(size / blockBytes) * 32);
      assert.ok(Buffer.from(hashes).equals(directBlockHashes(bytes, blockBytes)));
    }),
    { numRuns: 25 },
  );
});

test('verify re-hashes the object: true when intact, false once its bytes changed', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'disk.img'), imageBytes(2_500_000));
  const store = new ContentStore(join(dir, 'lib'));
  const { digest, path } = await store.import(join(dir, 'disk.img'));
  const seen: number[] = [];
  assert.equal(await store.verify(digest, { onProgress: (done) => seen.push(done) }), true);
  assert.equal(seen.at(-1), 2_500_000);

  chmodSync(path, 0o644);
  const damaged = readFileSync(path);
  damaged[1_234_567] ^= 1;
  writeFileSync(path, damaged);
  assert.equal(await store.verify(digest), false);
  await assert.rejects(store.verify(digest, { signal: AbortSignal.abort() }), (e: ContentError) => e.code === 'interrupted');
  await assert.rejects(store.verify('f'.repeat(64)), (e: ContentError) => e.code === 'not-found');
});

test('remove deletes the object, its metadata and cached hashes; removing again is not-found; bad digests are refused', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'keep.img'), imageBytes(100_000));
  writeFileSync(join(dir, 'drop.img'), imageBytes(100_000));
  const store = new ContentStore(join(dir, 'lib'));
  const keep = await store.import(join(dir, 'keep.img'));
  const drop = await store.import(join(dir, 'drop.img'));
  await store.blockHashes(drop.digest, 8192);
  await store.remove(drop.digest);
  assert.equal(store.has(drop.digest), false);
  assert.deepEqual(store.list().map((c) => c.digest), [keep.digest]);
  assert.deepEqual(filesOf(store.root).filter((f) => f.includes(drop.digest)), []);
  assert.equal(existsSync(drop.path), false);
  await assert.rejects(store.remove(drop.digest), (e: ContentError) => e.code === 'not-found');
  assert.throws(() => store.pathOf('../../etc/passwd'), (e: ContentError) => e.code === 'not-found');
  assert.equal(store.info('../x'), undefined);

  // Reimporting removed content stores it again.
  const again = await store.import(join(dir, 'drop.img'));
  assert.equal(again.deduplicated, false);
  assert.equal(store.list().length, 2);
});

test('metadata that does not match its object hides the object', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'disk.img'), imageBytes(50_000));
  const store = new ContentStore(join(dir, 'lib'));
  const { digest, path } = await store.import(join(dir, 'disk.img'));
  chmodSync(`${path}.json`, 0o644);
  const meta = JSON.parse(readFileSync(`${path}.json`, 'utf8'));
  writeFileSync(`${path}.json`, JSON.stringify({ ...meta, size: meta.size + 1 }));
  assert.equal(store.has(digest), false);
  writeFileSync(`${path}.json`, '{"digest": "trunc');
  assert.deepEqual(store.list(), []);
});

test('a library root that cannot be created is a clear error', (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'a-file'), 'x');
  assert.throws(() => new ContentStore(join(dir, 'a-file', 'lib')), (e: ContentError) => e.code === 'unreadable' && /cannot open the content library/.test(e.message));
});
