// Importing each image format made by the real tools: detection, sizes, metadata, stored bytes, decompressed stream.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ContentError, ContentStore, detectFormat, openImageStream, parseWimInfo } from '../../src/content/index.js';
import { imageBytes, makeIso, makeWim, requireTool, sha256Hex, tempDir, zstdCompress } from './helpers.js';

async function readStream(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

/** The stored object is the source's bytes, named by their SHA-256, and read-only. */
function assertStoredAs(path: string, bytes: Buffer, digest: string): void {
  assert.equal(digest, sha256Hex(bytes));
  assert.ok(path.endsWith(join('objects', digest.slice(0, 2), digest)), path);
  assert.ok(readFileSync(path).equals(bytes));
  assert.equal(statSync(path).mode & 0o222, 0, 'stored object must be read-only');
}

test('raw image: detected as raw, stored byte-exact under its digest, read-only, listed', async (t) => {
  const dir = tempDir(t);
  const raw = imageBytes(1_500_000, 100_000);
  raw[510] = 0x55;
  raw[511] = 0xaa; // an MBR disk image
  writeFileSync(join(dir, 'disk.img'), raw);
  const store = new ContentStore(join(dir, 'lib'));
  const progress: [number, number][] = [];
  const r = await store.import(join(dir, 'disk.img'), { onProgress: (done, total) => progress.push([done, total]) });
  assert.equal(await detectFormat(join(dir, 'disk.img')), 'raw');
  assert.equal(r.format, 'raw');
  assert.equal(r.size, raw.length);
  assert.equal(r.uncompressedSize, undefined);
  assert.equal(r.deduplicated, false);
  assert.equal(r.sourceName, 'disk.img');
  assertStoredAs(r.path, raw, r.digest);
  assert.deepEqual(progress.at(-1), [raw.length, raw.length]);
  assert.ok(progress.length >= 2, 'progress is reported per chunk');
  const { path: _path, deduplicated: _d, ...info } = r;
  assert.deepEqual(store.list(), [info]);
  assert.deepEqual(store.info(r.digest), info);
  assert.equal(store.has(r.digest.toUpperCase()), true);
  assert.equal(store.pathOf(r.digest), r.path);
});

test('gzip image: decompressed during import, uncompressedSize recorded, openImageStream gives the raw bytes', async (t) => {
  const dir = tempDir(t);
  const raw = imageBytes(700_000, 2_000_000);
  const gz = Buffer.concat([gzipSync(raw.subarray(0, 1_000_000)), gzipSync(raw.subarray(1_000_000))]); // two members, as pigz/concatenation make
  writeFileSync(join(dir, 'disk.img.gz'), gz);
  const store = new ContentStore(join(dir, 'lib'));
  const r = await store.import(join(dir, 'disk.img.gz'));
  assert.equal(r.format, 'gzip');
  assert.equal(r.size, gz.length);
  assert.equal(r.uncompressedSize, raw.length);
  assertStoredAs(r.path, gz, r.digest);
  assert.ok((await readStream(openImageStream(r.path, r.format))).equals(raw));
});

test('zstd image (several frames, a skippable frame): sizes recorded, openImageStream gives the raw bytes', async (t) => {
  if (!requireTool(t, 'zstd', 'zstd')) return;
  const dir = tempDir(t);
  const raw = imageBytes(600_000, 1_500_000);
  writeFileSync(join(dir, 'a.img'), raw.subarray(0, 800_000));
  writeFileSync(join(dir, 'b.img'), raw.subarray(800_000));
  zstdCompress(join(dir, 'a.img'), join(dir, 'a.zst'));
  zstdCompress(join(dir, 'b.img'), join(dir, 'b.zst'), ['--no-check', '-19']);
  const skippable = Buffer.from([0x5e, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3]);
  const zst = Buffer.concat([skippable, readFileSync(join(dir, 'a.zst')), readFileSync(join(dir, 'b.zst'))]);
  writeFileSync(join(dir, 'disk.img.zst'), zst);
  const store = new ContentStore(join(dir, 'lib'));
  const r = await store.import(join(dir, 'disk.img.zst'));
  assert.equal(await detectFormat(join(dir, 'disk.img.zst')), 'zstd');
  assert.equal(r.format, 'zstd');
  assert.equal(r.size, zst.length);
  assert.equal(r.uncompressedSize, raw.length);
  assertStoredAs(r.path, zst, r.digest);
  assert.ok((await readStream(openImageStream(r.path, r.format))).equals(raw));
});

test('tiny zstd frames (empty and a few bytes) decode exactly', async (t) => {
  if (!requireTool(t, 'zstd', 'zstd')) return;
  const dir = tempDir(t);
  const parts = [Buffer.alloc(0), Buffer.from('x'), Buffer.alloc(3000, 7)];
  const frames = parts.map((p, i) => {
    writeFileSync(join(dir, `p${i}`), p);
    zstdCompress(join(dir, `p${i}`), join(dir, `p${i}.zst`));
    return readFileSync(join(dir, `p${i}.zst`));
  });
  assert.ok(frames[1]!.length < 18, 'a frame shorter than the decoder buffers before decoding');
  writeFileSync(join(dir, 'tiny.zst'), Buffer.concat(frames));
  assert.ok((await readStream(openImageStream(join(dir, 'tiny.zst'), 'zstd'))).equals(Buffer.concat(parts)));
});

test('zstd of a long zero run decodes no further ahead of a slow reader than a block', async (t) => {
  if (!requireTool(t, 'zstd', 'zstd')) return;
  const dir = tempDir(t);
  const zeros = 32 << 20;
  writeFileSync(join(dir, 'zeros.zst'), execFileSync('zstd', ['-q', '-c'], { input: Buffer.alloc(zeros), maxBuffer: 1 << 20 }));
  const stream = openImageStream(join(dir, 'zeros.zst'), 'zstd') as Readable;
  let total = 0;
  let mostBuffered = 0;
  // Each read takes everything buffered: its size is how far decoding ran ahead of this (slow) reader.
  for await (const part of stream) {
    total += (part as Buffer).length;
    mostBuffered = Math.max(mostBuffered, (part as Buffer).length);
    await new Promise(setImmediate);
  }
  assert.equal(total, zeros);
  const block = 128 << 10;
  assert.ok(mostBuffered <= stream.readableHighWaterMark + 2 * block, `${mostBuffered} bytes were decoded ahead of the reader`);
});

test('ISO: volume id, declared size, El Torito BIOS and UEFI entries, Joliet', async (t) => {
  const dir = tempDir(t);
  const iso = makeIso(t, dir, 'FLEETCAST_TEST', true);
  if (!iso) return;
  const store = new ContentStore(join(dir, 'lib'));
  const r = await store.import(iso);
  assert.equal(await detectFormat(iso), 'iso');
  assert.equal(r.format, 'iso');
  assert.equal(r.size, statSync(iso).size);
  assert.equal(r.iso?.volumeId, 'FLEETCAST_TEST');
  assert.ok(r.iso.volumeBytes > 300_000 && r.iso.volumeBytes <= r.size);
  assert.deepEqual([...r.iso.bootPlatforms].sort(), ['bios', 'uefi']);
  assert.equal(r.iso.joliet, true);
  assert.match(String(r.iso.createdAt), /^\d{4}-\d\d-\d\dT/);
  assertStoredAs(r.path, readFileSync(iso), r.digest);

  const plain = makeIso(t, dir, 'DATA_ONLY', false)!;
  const p = await store.import(plain);
  assert.equal(p.iso?.volumeId, 'DATA_ONLY');
  assert.deepEqual(p.iso.bootPlatforms, []);
});

test('WIM: every image listed with name, description, sizes, file count and Windows properties', async (t) => {
  if (!requireTool(t, 'wimcapture', 'wimtools')) return;
  const dir = tempDir(t);
  const wim = makeWim(dir);
  const store = new ContentStore(join(dir, 'lib'));
  const verified: number[] = [];
  const r = await store.import(wim, { onVerifyProgress: (done) => verified.push(done) });
  assert.equal(await detectFormat(wim), 'wim');
  assert.equal(r.format, 'wim');
  assert.equal(r.size, statSync(wim).size);
  assertStoredAs(r.path, readFileSync(wim), r.digest);
  const [first, second] = r.wim!.images;
  assert.equal(r.wim!.images.length, 2);
  assert.deepEqual(
    { index: first!.index, name: first!.name, description: first!.description, totalBytes: first!.totalBytes, fileCount: first!.fileCount },
    { index: 1, name: 'Windows 10 Pro', description: 'Professional edition', totalBytes: 20_000, fileCount: 1 },
  );
  assert.equal(first!.architecture, 'x86_64');
  assert.equal(first!.editionId, 'Professional');
  assert.deepEqual(first!.languages, ['en-US']);
  assert.equal(first!.windowsVersion, '10.0.19045');
  assert.deepEqual(
    { index: second!.index, name: second!.name, description: second!.description, totalBytes: second!.totalBytes, fileCount: second!.fileCount },
    { index: 2, name: 'Data only', description: undefined, totalBytes: 50_012, fileCount: 3 },
  );
  assert.ok(verified.length > 0, 'wimverify progress is passed on');
});

test('wiminfo text: boot index marks the bootable image; a split WIM part is recognised', () => {
  const text = [
    'WIM Information:', '----------------', 'Path:           /srv/boot.wim', 'Image Count:    2', 'Compression:    LZX',
    'Part Number:    2/3', 'Boot Index:     2', '', 'Available Images:', '-----------------',
    'Index:                  1', 'Name:                   Microsoft Windows PE (amd64)', 'Description:            ', 'Total Bytes:            1699436425',
    '', 'Index:                  2', 'Name:                   Microsoft Windows Setup (amd64)', 'Description:            Setup: x64', 'File Count:             4011',
    'Architecture:           x86_64', 'Languages:              en-US de-DE ', '',
  ].join('\n');
  const { wim, part } = parseWimInfo(text);
  assert.deepEqual(part, { number: 2, count: 3 });
  assert.equal(wim.compression, 'LZX');
  assert.deepEqual(wim.images, [
    { index: 1, name: 'Microsoft Windows PE (amd64)', totalBytes: 1699436425 },
    { index: 2, name: 'Microsoft Windows Setup (amd64)', description: 'Setup: x64', fileCount: 4011, architecture: 'x86_64', languages: ['en-US', 'de-DE'], bootable: true },
  ]);
});

test('detection is by content, not name; containers we do not unpack are refused unless imported as raw', async (t) => {
  const dir = tempDir(t);
  const gz = gzipSync(imageBytes(1000));
  writeFileSync(join(dir, 'looks-raw.img'), gz);
  assert.equal(await detectFormat(join(dir, 'looks-raw.img')), 'gzip');
  const qcow = Buffer.concat([Buffer.from('QFI\xfb', 'latin1'), imageBytes(5000)]);
  writeFileSync(join(dir, 'vm.qcow2'), qcow);
  const store = new ContentStore(join(dir, 'lib'));
  await assert.rejects(store.import(join(dir, 'vm.qcow2')), (e: ContentError) => e.code === 'unsupported' && /qemu-img convert/.test(e.message));
  assert.deepEqual(store.list(), []);
  const forced = await store.import(join(dir, 'vm.qcow2'), { format: 'raw' });
  assert.equal(forced.format, 'raw');
  // Forcing a format still checks it: these bytes are not gzip.
  await assert.rejects(store.import(join(dir, 'vm.qcow2'), { format: 'gzip' }), (e: ContentError) => e.code === 'corrupt');
});

test('an empty file and a directory are refused with a reason', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'empty.img'), '');
  mkdirSync(join(dir, 'folder'));
  const store = new ContentStore(join(dir, 'lib'));
  await assert.rejects(store.import(join(dir, 'empty.img')), (e: ContentError) => e.code === 'unsupported' && /empty/.test(e.message));
  await assert.rejects(store.import(join(dir, 'folder')), (e: ContentError) => e.code === 'unsupported' && /not a regular file/.test(e.message));
  await assert.rejects(detectFormat(join(dir, 'missing.img')), (e: ContentError) => e.code === 'unreadable' && /no such file/.test(e.message));
});
