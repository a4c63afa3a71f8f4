// The content library: image files stored once each under their SHA-256, immutable, imported all or nothing.
//
// root/objects/ab/abcdef…                   the image bytes (read-only)
// root/objects/ab/abcdef….json              its metadata (ContentInfo)
// root/objects/ab/abcdef….blockhashes.N     cached per-block SHA-256 for blocks of N bytes
// root/tmp/                                 imports in progress (same file system, so commits are renames)
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, promises as fs } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { sha256 } from '../protocol/common.js';
import { ContentError, interrupted, sourceReadError, storeWriteError } from './errors.js';
import { fsyncDir, ownerAlive, readChunks, tempName, writeAll, writeDurably } from './files.js';
import { detectFormatOf, IMAGE_FORMATS, readHead, type ImageFormat } from './formats.js';
import { readIsoInfo, type IsoInfo } from './iso.js';
import { archiveCheck, CHUNK_BYTES, isCompressed } from './stream.js';
import { readWimInfo, verifyWim, type WimInfo } from './wim.js';

export interface ContentInfo {
  /** SHA-256 (hex) of the stored bytes: the content address. */
  digest: string;
  /** Stored bytes: what travels over multicast or unicast. */
  size: number;
  format: ImageFormat;
  /** gzip and zstd: bytes after decompression, i.e. what lands on the disk. */
  uncompressedSize?: number;
  iso?: IsoInfo;
  wim?: WimInfo;
  /** When the content was first imported (ISO 8601). */
  importedAt: string;
  /** File name it was first imported from. */
  sourceName?: string;
}

export interface ImportResult extends ContentInfo {
  /** Absolute path of the stored object. */
  path: string;
  /** The same bytes were already in the library: nothing was written, the existing record is returned. */
  deduplicated: boolean;
}

export interface ImportOptions {
  /** Overrides detection by magic bytes, e.g. 'raw' to store an archive as the bytes to write. */
  format?: ImageFormat;
  signal?: AbortSignal;
  /** Bytes copied (and hashed, and for gzip/zstd decompressed) so far, of the source's size; once per 1 MiB read. */
  onProgress?: (doneBytes: number, totalBytes: number) => void;
  /** WIM only: wimlib checking the copy after it is made, in bytes of file data. */
  onVerifyProgress?: (doneBytes: number, totalBytes: number) => void;
}

export interface ReadOptions {
  signal?: AbortSignal;
  onProgress?: (doneBytes: number, totalBytes: number) => void;
}

const DIGEST = /^[0-9a-f]{64}$/;
const HASH_BYTES = 32;

/** A copy in tmp/ with its digest, not yet part of the library. */
interface StagedCopy {
  temp: string;
  digest: string;
  size: number;
  format: ImageFormat;
  uncompressedSize?: number;
}

export class ContentStore {
  readonly root: string;
  private readonly objectsDir: string;
  private readonly tmpDir: string;
  /** Per-digest queue: an import's commit and a removal of the same digest never interleave. */
  private readonly locks = new Map<string, Promise<unknown>>();
  /** Block hash computations under way, so concurrent callers share one pass over the object. */
  private readonly hashing = new Map<string, Promise<Uint8Array>>();

  constructor(root: string) {
    this.root = resolve(root);
    this.objectsDir = join(this.root, 'objects');
    this.tmpDir = join(this.root, 'tmp');
    try {
      mkdirSync(this.objectsDir, { recursive: true });
      mkdirSync(this.tmpDir, { recursive: true });
      this.removeLeftovers();
    } catch (err) {
      throw new ContentError('unreadable', `cannot open the content library at ${this.root}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Absolute path of the object with this digest (whether or not it is stored). */
  pathOf(digest: string): string {
    const d = normalizeDigest(digest);
    if (!d) throw new ContentError('not-found', `"${digest}" is not a SHA-256 digest (64 hex digits)`);
    return join(this.objectsDir, d.slice(0, 2), d);
  }

  has(digest: string): boolean {
    return this.info(digest) !== undefined;
  }

  /** Metadata of a stored object; undefined when absent or when its metadata is missing or does not match it. */
  info(digest: string): ContentInfo | undefined {
    const d = normalizeDigest(digest);
    if (!d) return undefined;
    const path = this.pathOf(d);
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(`${path}.json`, 'utf8'));
    } catch {
      return undefined;
    }
    if (!isContentInfo(parsed) || parsed.digest !== d) return undefined;
    try {
      return statSync(path).size === parsed.size ? parsed : undefined;
    } catch {
      return undefined;
    }
  }

  /** Every stored object with valid metadata, oldest import first. */
  list(): ContentInfo[] {
    const out: ContentInfo[] = [];
    for (const fan of readdirSync(this.objectsDir)) {
      let names: string[];
      try {
        names = readdirSync(join(this.objectsDir, fan));
      } catch {
        continue;
      }
      for (const name of names) {
        const m = /^([0-9a-f]{64})\.json$/.exec(name);
        const info = m ? this.info(m[1]!) : undefined;
        if (info) out.push(info);
      }
    }
    return out.sort((a, b) => a.importedAt.localeCompare(b.importedAt) || a.digest.localeCompare(b.digest));
  }

  /**
   * Copies `source` into the library, hashing it on the way (one read of the source) and checking it is a sound
   * image of its format. All or nothing: on any failure the library is as it was.
   */
  async import(source: string, opts: ImportOptions = {}): Promise<ImportResult> {
    if (opts.format !== undefined && !IMAGE_FORMATS.includes(opts.format)) {
      throw new ContentError('unsupported', `unknown image format "${opts.format}": use one of ${IMAGE_FORMATS.join(', ')}`);
    }
    if (opts.signal?.aborted) throw interrupted();
    const staged = await this.stage(source, opts);
    try {
      return await this.exclusive(staged.digest, async () => {
        const existing = this.info(staged.digest);
        if (existing) return { ...existing, path: this.pathOf(staged.digest), deduplicated: true };
        const info = await this.describe(staged, source, opts);
        await this.commit(staged.temp, info);
        return { ...info, path: this.pathOf(info.digest), deduplicated: false };
      });
    } finally {
      await fs.rm(staged.temp, { force: true });
    }
  }

  /** Removes an object, its metadata and its cached block hashes. Whether it may go is the caller's decision. */
  async remove(digest: string): Promise<void> {
    const path = this.pathOf(digest);
    const d = basename(path);
    await this.exclusive(d, async () => {
      const present = await Promise.all([path, `${path}.json`].map((p) => fs.stat(p).then(() => true, () => false)));
      if (!present.includes(true)) throw new ContentError('not-found', `no content ${d} in the library`);
      // Metadata first: from that moment the object is no longer listed, even if a crash stops us here.
      await fs.rm(`${path}.json`, { force: true });
      await fs.rm(path, { force: true });
      for (const name of await fs.readdir(dirname(path))) {
        if (name.startsWith(`${d}.blockhashes.`)) await fs.rm(join(dirname(path), name), { force: true });
      }
      await fs.rmdir(dirname(path)).catch(() => {}); // only when empty
    });
  }

  /** Re-reads the stored object and checks it still has its digest (and size). */
  async verify(digest: string, opts: ReadOptions = {}): Promise<boolean> {
    const info = this.require(digest);
    const hash = createHash('sha256');
    try {
      await this.readObject(info, CHUNK_BYTES, 'verification', (chunk) => void hash.update(chunk), opts);
    } catch (err) {
      if (err instanceof ShortObject) return false;
      throw err;
    }
    return hash.digest('hex') === info.digest;
  }

  /**
   * SHA-256 of each `blockBytes`-sized slice of the object (the last may be short), concatenated: exactly the
   * `blockHashes` the protocol's Sender and Receiver take for a geometry with that block size. Computed in one pass
   * and cached beside the object.
   */
  async blockHashes(digest: string, blockBytes: number, opts: ReadOptions = {}): Promise<Uint8Array> {
    if (!Number.isSafeInteger(blockBytes) || blockBytes < 1) throw new RangeError(`blockBytes must be a positive integer, got ${blockBytes}`);
    const info = this.require(digest);
    const cachePath = `${this.pathOf(info.digest)}.blockhashes.${blockBytes}`;
    const expected = Math.ceil(info.size / blockBytes) * HASH_BYTES;
    const cached = await fs.readFile(cachePath).catch(() => null);
    if (cached && cached.length === expected) return new Uint8Array(cached.buffer, cached.byteOffset, cached.length);

    const key = `${info.digest}/${blockBytes}`;
    let running = this.hashing.get(key);
    if (!running) {
      running = this.computeBlockHashes(info, blockBytes, cachePath, opts).finally(() => this.hashing.delete(key));
      this.hashing.set(key, running);
    }
    return running;
  }

  private async computeBlockHashes(info: ContentInfo, blockBytes: number, cachePath: string, opts: ReadOptions): Promise<Uint8Array> {
    const hashes = new Uint8Array(Math.ceil(info.size / blockBytes) * HASH_BYTES);
    let block = 0;
    const chunkBytes = blockBytes * Math.max(1, Math.floor(CHUNK_BYTES / blockBytes));
    await this.readObject(info, chunkBytes, 'block hashing', (chunk) => {
      for (let at = 0; at < chunk.length; at += blockBytes) {
        hashes.set(sha256(chunk.subarray(at, at + blockBytes)), block++ * HASH_BYTES);
      }
    }, opts);
    // The cache only saves work: failing to write it (disk full) must not fail the caller.
    const temp = join(this.tmpDir, tempName('blockhashes'));
    try {
      await writeDurably(temp, hashes);
      await fs.rename(temp, cachePath);
      // Removed while we hashed: do not leave a cache without its object.
      if (!this.info(info.digest)) await fs.rm(cachePath, { force: true });
    } catch {
      await fs.rm(temp, { force: true });
    }
    return hashes;
  }

  private require(digest: string): ContentInfo {
    const info = this.info(digest);
    if (!info) throw new ContentError('not-found', `no content ${digest} in the library`);
    return info;
  }

  private async readObject(info: ContentInfo, chunkBytes: number, activity: string, onChunk: (chunk: Buffer) => void, opts: ReadOptions): Promise<void> {
    const path = this.pathOf(info.digest);
    const fh = await fs.open(path, 'r').catch((err) => Promise.reject(new ContentError('not-found', `cannot open ${path}: ${(err as Error).message}`, { cause: err })));
    try {
      let done = 0;
      await readChunks(fh, info.size, chunkBytes, (chunk) => {
        onChunk(chunk);
        done += chunk.length;
        opts.onProgress?.(done, info.size);
      }, {
        signal: opts.signal,
        activity,
        readError: (err) => new ContentError('unreadable', `cannot read ${path}: ${(err as Error).message}`, { cause: err }),
        shortRead: () => new ShortObject(),
      });
    } finally {
      await fh.close();
    }
  }

  /** Copies the source into tmp/, hashing it and, for gzip/zstd, decompressing it to check it is whole. */
  private async stage(source: string, opts: ImportOptions): Promise<StagedCopy> {
    const src = await fs.open(source, 'r').catch((err) => Promise.reject(sourceReadError(err, source)));
    try {
      const before = await src.stat();
      if (!before.isFile()) {
        throw new ContentError('unsupported', `${source} is not a regular file: save the image to a file first (e.g. dd if=/dev/sdX | zstd > disk.img.zst)`);
      }
      if (before.size === 0) throw new ContentError('unsupported', `${source} is empty`);
      const head = await readHead(src).catch((err) => Promise.reject(sourceReadError(err, source)));
      const format = opts.format ?? detectFormatOf(head, source);
      await this.requireSpace(before.size);

      const temp = join(this.tmpDir, tempName('object'));
      const out = await fs.open(temp, 'wx', 0o600).catch((err) => Promise.reject(storeWriteError(err, this.root)));
      let outClosed = false;
      try {
        const hash = createHash('sha256');
        const check = isCompressed(format) ? archiveCheck(format) : null;
        let uncompressedSize: number | undefined;
        let done = 0;
        try {
          await readChunks(src, before.size, CHUNK_BYTES, async (chunk) => {
            hash.update(chunk);
            await Promise.all([writeAll(out, chunk).catch((err) => Promise.reject(storeWriteError(err, this.root))), check?.write(chunk)]);
            done += chunk.length;
            opts.onProgress?.(done, before.size);
          }, {
            signal: opts.signal,
            activity: 'import',
            readError: (err) => sourceReadError(err, source),
            shortRead: (at) => changed(source, `it ended after ${at} of ${before.size} bytes`),
          });
          const after = await src.stat();
          if (after.size !== before.size || after.mtimeMs !== before.mtimeMs) {
            throw changed(source, after.size !== before.size ? `its size went from ${before.size} to ${after.size} bytes` : 'it was modified');
          }
          uncompressedSize = await check?.end();
        } catch (err) {
          check?.destroy();
          throw check?.isVerdict(err) ? archiveError(err, format, source) : err;
        }
        await out.sync().catch((err) => Promise.reject(storeWriteError(err, this.root)));
        await out.close();
        outClosed = true;
        const staged: StagedCopy = { temp, digest: hash.digest('hex'), size: before.size, format };
        if (uncompressedSize !== undefined) staged.uncompressedSize = uncompressedSize;
        return staged;
      } catch (err) {
        if (!outClosed) await out.close().catch(() => {});
        await fs.rm(temp, { force: true });
        throw err;
      }
    } finally {
      await src.close();
    }
  }

  /** Format-specific checks and metadata, on the staged copy (the exact bytes that will be stored). */
  private async describe(staged: StagedCopy, source: string, opts: ImportOptions): Promise<ContentInfo> {
    const info: ContentInfo = {
      digest: staged.digest,
      size: staged.size,
      format: staged.format,
      importedAt: new Date().toISOString(),
      sourceName: basename(source),
    };
    if (staged.uncompressedSize !== undefined) info.uncompressedSize = staged.uncompressedSize;
    if (staged.format === 'iso') info.iso = await readIsoInfo(staged.temp, source);
    if (staged.format === 'wim') {
      info.wim = await readWimInfo(staged.temp, source, opts.signal);
      await verifyWim(staged.temp, source, opts.signal, opts.onVerifyProgress);
    }
    if (opts.signal?.aborted) throw interrupted();
    return info;
  }

  /**
   * Makes a staged copy part of the library. The metadata is staged first, so that an object without metadata is
   * always either mid-commit in a live process (its staged metadata says so) or a crash's leftover.
   */
  private async commit(temp: string, info: ContentInfo): Promise<void> {
    const objectPath = this.pathOf(info.digest);
    const fanDir = dirname(objectPath);
    const metaTemp = join(this.tmpDir, tempName(`${info.digest}.json`));
    let linked = false;
    let committed = false;
    try {
      await fs.mkdir(fanDir, { recursive: true });
      await writeDurably(metaTemp, `${JSON.stringify(info, null, 2)}\n`);
      await fs.chmod(temp, 0o444);
      try {
        // link, unlike rename, never replaces: an object already there (left by a crash) is the same bytes.
        await fs.link(temp, objectPath);
        linked = true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      await fs.rename(metaTemp, `${objectPath}.json`);
      committed = true;
      await fsyncDir(fanDir);
    } catch (err) {
      if (committed) await fs.rm(`${objectPath}.json`, { force: true });
      if (linked) await fs.rm(objectPath, { force: true });
      await fs.rm(metaTemp, { force: true });
      await fs.rmdir(fanDir).catch(() => {});
      throw storeWriteError(err, this.root);
    }
  }

  private async requireSpace(bytes: number): Promise<void> {
    const s = await fs.statfs(this.tmpDir);
    const free = s.bavail * s.bsize;
    if (free < bytes) {
      throw new ContentError('no-space', `the content library at ${this.root} has ${free} bytes free but the image needs ${bytes}: free some space (remove unused images) and import again`);
    }
  }

  private exclusive<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(key) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    const tail = run.catch(() => {});
    this.locks.set(key, tail);
    void tail.then(() => {
      if (this.locks.get(key) === tail) this.locks.delete(key);
    });
    return run;
  }

  /**
   * Clears what crashed processes left: their temp files, objects whose commit they did not finish, metadata and
   * block hash caches without an object. A live process's import in progress is left alone.
   */
  private removeLeftovers(): void {
    const pendingMeta = new Set<string>();
    for (const name of readdirSync(this.tmpDir)) {
      if (ownerAlive(name)) {
        const m = /\.([0-9a-f]{64})\.json$/.exec(name);
        if (m) pendingMeta.add(m[1]!);
      } else {
        rmSync(join(this.tmpDir, name), { recursive: true, force: true });
      }
    }
    for (const fan of readdirSync(this.objectsDir)) {
      const dir = join(this.objectsDir, fan);
      let names: string[];
      try {
        names = readdirSync(dir);
      } catch {
        continue;
      }
      const present = new Set(names);
      // Objects first, then what belongs to an object that is not (or no longer) there.
      for (const name of names) {
        if (DIGEST.test(name) && !present.has(`${name}.json`) && !pendingMeta.has(name)) {
          rmSync(join(dir, name), { force: true });
          present.delete(name);
        }
      }
      for (const name of names) {
        const m = /^([0-9a-f]{64})\.(json|blockhashes\.\d+)$/.exec(name);
        if (m && !present.has(m[1]!)) rmSync(join(dir, name), { force: true });
      }
    }
  }
}

/** An object shorter than its metadata says: it no longer has its digest. */
class ShortObject extends Error {}

function changed(source: string, how: string): ContentError {
  return new ContentError('unreadable', `${source} changed during the import (${how}): import it again once nothing writes to it`);
}

function archiveError(err: unknown, format: ImageFormat, source: string): ContentError {
  const code = err instanceof ContentError ? err.code : 'corrupt';
  return new ContentError(code, `${source} is not a sound ${format} file: ${(err as Error).message}`, { cause: err });
}

function normalizeDigest(digest: string): string | null {
  const d = typeof digest === 'string' ? digest.toLowerCase() : '';
  return DIGEST.test(d) ? d : null;
}

function isContentInfo(v: unknown): v is ContentInfo {
  const o = v as Record<string, unknown>;
  return (
    typeof o === 'object' && o !== null &&
    typeof o.digest === 'string' &&
    Number.isSafeInteger(o.size) && (o.size as number) > 0 &&
    IMAGE_FORMATS.includes(o.format as ImageFormat) &&
    typeof o.importedAt === 'string' &&
    (o.uncompressedSize === undefined || Number.isSafeInteger(o.uncompressedSize))
  );
}
