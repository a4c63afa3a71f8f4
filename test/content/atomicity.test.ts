// All or nothing: every way an import can fail leaves the library exactly as it was — listing and files alike.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { ContentError, ContentStore } from '../../src/content/index.js';
import { processStartTime } from '../../src/testlan/system.js';
import { filesOf, imageBytes, makeWim, requireTool, sha256Hex, snapshot, tempDir, zstdCompress } from './helpers.js';

const CONTENT_MODULE = fileURLToPath(new URL('../../src/content/index.js', import.meta.url));

/** A library that already holds one image, so "unchanged" means something. */
async function populated(dir: string): Promise<ContentStore> {
  writeFileSync(join(dir, 'existing.img'), imageBytes(200_000));
  const store = new ContentStore(join(dir, 'lib'));
  await store.import(join(dir, 'existing.img'));
  return store;
}

async function rejectsWith(p: Promise<unknown>, code: ContentError['code'], message?: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof ContentError, `expected a ContentError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (message) assert.match(e.message, message);
    return true;
  });
}

test('truncated gzip is corrupt; nothing is added', async (t) => {
  const dir = tempDir(t);
  const store = await populated(dir);
  const before = snapshot(store);
  const gz = gzipSync(imageBytes(1_500_000));
  writeFileSync(join(dir, 'cut.img.gz'), gz.subarray(0, gz.length - 1000));
  await rejectsWith(store.import(join(dir, 'cut.img.gz')), 'corrupt', /cut\.img\.gz/);
  before.unchanged();
});

test('truncated zstd and zstd with a damaged byte are corrupt; nothing is added', async (t) => {
  if (!requireTool(t, 'zstd', 'zstd')) return;
  const dir = tempDir(t);
  const store = await populated(dir);
  const before = snapshot(store);
  writeFileSync(join(dir, 'disk.img'), imageBytes(2_000_000, 500_000));
  zstdCompress(join(dir, 'disk.img'), join(dir, 'disk.zst'));
  const zst = readFileSync(join(dir, 'disk.zst'));
  writeFileSync(join(dir, 'cut.zst'), zst.subarray(0, zst.length - 5000));
  await rejectsWith(store.import(join(dir, 'cut.zst')), 'corrupt', /truncated/);
  // Random data is stored in raw blocks: a flipped byte there still decodes, only the frame checksum catches it.
  const damaged = Buffer.from(zst);
  damaged[1_000_000] ^= 0x40;
  writeFileSync(join(dir, 'damaged.zst'), damaged);
  await rejectsWith(store.import(join(dir, 'damaged.zst')), 'corrupt', /checksum/);
  before.unchanged();
});

test('a WIM wimlib cannot read is corrupt, an abort in wimverify is interrupted; nothing is added', async (t) => {
  if (!requireTool(t, 'wimcapture', 'wimtools')) return;
  const dir = tempDir(t);
  const store = await populated(dir);
  const before = snapshot(store);
  const wim = readFileSync(makeWim(dir));
  // Damage the compressed file data (past the 208-byte header): the header and XML still read, the data does not.
  const damaged = Buffer.from(wim);
  for (let i = 300; i < 340; i++) damaged[i] ^= 0xff;
  writeFileSync(join(dir, 'damaged.wim'), damaged);
  await rejectsWith(store.import(join(dir, 'damaged.wim')), 'corrupt', /damaged\.wim/);
  writeFileSync(join(dir, 'cut.wim'), wim.subarray(0, 4000));
  await rejectsWith(store.import(join(dir, 'cut.wim')), 'corrupt', /cut\.wim/);
  before.unchanged();

  writeFileSync(join(dir, 'good.wim'), wim);
  const controller = new AbortController();
  await rejectsWith(store.import(join(dir, 'good.wim'), { signal: controller.signal, onVerifyProgress: () => controller.abort() }), 'interrupted');
  before.unchanged();
});

test('without wimlib a WIM import is tool-missing, naming the package; nothing is added', async (t) => {
  const dir = tempDir(t);
  const store = await populated(dir);
  const before = snapshot(store);
  // Only the magic matters: the import stops where wimlib would be asked to read it.
  writeFileSync(join(dir, 'install.wim'), Buffer.concat([Buffer.from('MSWIM\0\0\0'), imageBytes(50_000)]));
  const savedPath = process.env.PATH;
  process.env.PATH = join(dir, 'no-tools-here');
  try {
    await rejectsWith(store.import(join(dir, 'install.wim')), 'tool-missing', /wiminfo is not installed.*apt-get install wimtools/);
  } finally {
    process.env.PATH = savedPath;
  }
  before.unchanged();
});

test('an unreadable source is refused; nothing is added', async (t) => {
  const dir = tempDir(t);
  const store = await populated(dir);
  const before = snapshot(store);
  await rejectsWith(store.import(join(dir, 'no-such.img')), 'unreadable', /no such file/);
  if (process.getuid?.() !== 0) {
    writeFileSync(join(dir, 'secret.img'), imageBytes(1000), { mode: 0o000 });
    await rejectsWith(store.import(join(dir, 'secret.img')), 'unreadable', /permission denied/);
  }
  before.unchanged();
});

test('a source that shrinks during the import is refused; nothing is added', async (t) => {
  const dir = tempDir(t);
  const store = await populated(dir);
  const before = snapshot(store);
  const source = join(dir, 'growing.img');
  writeFileSync(source, imageBytes(4_000_000));
  let shrunk = false;
  await rejectsWith(
    store.import(source, {
      onProgress: () => {
        if (!shrunk) truncateSync(source, 1_500_000);
        shrunk = true;
      },
    }),
    'unreadable',
    /changed during the import/,
  );
  assert.ok(shrunk);
  before.unchanged();
});

test('an abort signal mid-import interrupts it; nothing is added', async (t) => {
  const dir = tempDir(t);
  const store = await populated(dir);
  const before = snapshot(store);
  writeFileSync(join(dir, 'big.img'), imageBytes(4_000_000));
  const controller = new AbortController();
  let calls = 0;
  await rejectsWith(
    store.import(join(dir, 'big.img'), {
      signal: controller.signal,
      onProgress: () => {
        calls++;
        controller.abort();
      },
    }),
    'interrupted',
  );
  assert.equal(calls, 1, 'the copy stops at the next chunk');
  before.unchanged();
  await rejectsWith(store.import(join(dir, 'big.img'), { signal: AbortSignal.abort() }), 'interrupted');
  before.unchanged();
});

test('disk full, found up front or in mid-copy, is no-space; nothing is added (tmpfs in a private mount namespace)', async (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root to mount a small tmpfs (in its own mount namespace)');
  const probe = spawnSync('unshare', ['-m', 'true']);
  if (probe.status !== 0) return t.skip(`cannot create a mount namespace (unshare -m): ${probe.stderr?.toString().trim() || probe.error?.message}`);
  const dir = tempDir(t);
  const mountPoint = join(dir, 'small');
  mkdirSync(mountPoint);
  writeFileSync(join(dir, 'fits.img'), imageBytes(600_000));
  writeFileSync(join(dir, 'too-big.img'), imageBytes(5_000_000));
  writeFileSync(join(dir, 'tight.img'), imageBytes(1_800_000)); // passes the free-space check, two chunks
  // The child lives in its own mount namespace: the tmpfs vanishes with it, whatever happens to this test.
  const script = `
    import { ContentStore } from ${JSON.stringify(CONTENT_MODULE)};
    import { closeSync, openSync, rmSync, writeSync, readdirSync, statSync } from 'node:fs';
    import { join } from 'node:path';
    const [dir, lib] = process.argv.slice(1);
    const store = new ContentStore(lib);
    const outcome = async (p) => p.then(() => 'ok', (e) => e.code + ': ' + e.message);
    const fits = await outcome(store.import(join(dir, 'fits.img')));
    const before = JSON.stringify(store.list());
    const upFront = await outcome(store.import(join(dir, 'too-big.img')));
    // Something else fills the disk once the copy has started.
    const filler = join(lib, 'filler');
    let filled = false;
    const midCopy = await outcome(store.import(join(dir, 'tight.img'), { onProgress: () => {
      filled = true;
      const fd = openSync(filler, 'a');
      try { for (;;) writeSync(fd, Buffer.alloc(64 * 1024)); } catch {} finally { closeSync(fd); }
    } }));
    rmSync(filler, { force: true });
    const files = [];
    const walk = (d) => { for (const n of readdirSync(d)) { const p = join(d, n); statSync(p).isDirectory() ? walk(p) : files.push(p.slice(lib.length)); } };
    walk(lib);
    console.log(JSON.stringify({ fits, upFront, midCopy, filled, unchanged: JSON.stringify(store.list()) === before, listed: store.list().length, files }));
  `;
  const run = spawnSync('unshare', ['-m', 'sh', '-c', `mount -t tmpfs -o size=3m tmpfs "$1" && exec "$2" --input-type=module -e "$3" "$4" "$1/lib"`, 'sh', mountPoint, process.execPath, script, dir], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(run.status, 0, run.stderr);
  const r = JSON.parse(run.stdout);
  assert.equal(r.fits, 'ok');
  assert.match(r.upFront, /^no-space: .* bytes free but the image needs/);
  assert.equal(r.filled, true, 'the disk filled up during the copy');
  assert.match(r.midCopy, /^no-space: no space left in the content library/);
  assert.equal(r.unchanged, true);
  assert.equal(r.listed, 1);
  assert.equal(r.files.length, 2, `only the object and its metadata remain: ${r.files.join(', ')}`);
});

test('an import killed mid-copy leaves only a temp file, which the next opening of the library removes', async (t) => {
  const dir = tempDir(t);
  const store = await populated(dir);
  const before = snapshot(store);
  writeFileSync(join(dir, 'big.img'), imageBytes(3_000_000));
  // The child stops for good inside its first progress callback: the copy is half done when it is killed.
  const script = `
    import { ContentStore } from ${JSON.stringify(CONTENT_MODULE)};
    import { writeSync } from 'node:fs';
    const [lib, source] = process.argv.slice(1);
    await new ContentStore(lib).import(source, { onProgress: () => {
      writeSync(1, 'copying\\n');
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 120_000);
    } });
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, store.root, join(dir, 'big.img')], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => child.kill('SIGKILL'));
  const exited = once(child, 'exit');
  await once(child.stdout, 'data');
  child.kill('SIGKILL');
  await exited;
  const leftovers = readdirSync(join(store.root, 'tmp'));
  assert.equal(leftovers.length, 1, 'the killed import left its partial copy');
  assert.deepEqual(new ContentStore(store.root).list(), store.list());
  before.unchanged();
});

test('a commit cut short by a crash (object without metadata) is removed; one under way in a live process is kept', async (t) => {
  const dir = tempDir(t);
  const store = await populated(dir);
  const before = snapshot(store);
  const plant = (bytes: Buffer, owner: string) => {
    const digest = sha256Hex(bytes);
    mkdirSync(join(store.root, 'objects', digest.slice(0, 2)), { recursive: true });
    writeFileSync(store.pathOf(digest), bytes, { mode: 0o444 });
    writeFileSync(join(store.root, 'tmp', `${owner}.0123456789ab.${digest}.json`), '{}');
    writeFileSync(`${store.pathOf(digest)}.blockhashes.4096`, Buffer.alloc(32));
    return digest;
  };
  const deadOwner = '4194305.1'; // above Linux's largest pid: never a live process
  const crashed = plant(imageBytes(10_000), deadOwner);
  const live = plant(imageBytes(10_000), `${process.pid}.${processStartTime(process.pid)}`);
  assert.equal(store.has(crashed), false, 'an object without metadata is not listed');

  const reopened = new ContentStore(store.root);
  assert.equal(existsSync(store.pathOf(crashed)), false);
  assert.equal(existsSync(`${store.pathOf(crashed)}.blockhashes.4096`), false);
  assert.equal(existsSync(store.pathOf(live)), true, 'a live import mid-commit is left alone');
  assert.equal(reopened.has(live), false);
  assert.ok(filesOf(store.root).some((f) => f.includes(`${live}.json`)));

  // Once that process is gone too (here: its files are dropped by hand), the library is as before.
  for (const f of filesOf(store.root).filter((f) => f.includes(live))) rmSync(join(store.root, f.split(' ')[0]!));
  before.unchanged();
});
