// Where the agent gets images: a ContentProvider. The site server's client (multicast first, unicast when the
// package allows it) implements it once the agent talks to a server; DirectoryContentProvider serves images
// from a local folder with a manifest — like ConfigMgr's standalone media — for offline use and tests.
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import { join, resolve } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CHUNK_BYTES } from '../content/stream.js';
import { IMAGE_FORMATS, type ImageFormat } from '../content/formats.js';
import { StepFailure } from './report.js';

export interface ImageReference {
  name: string;
  /** null: the newest version the provider has. */
  version: number | null;
}

export function parseImageReference(text: string): ImageReference {
  const m = /^([^/\s]+)(?:\/(\d+))?$/.exec(text.trim());
  if (!m) throw new StepFailure('invalid-value', `bad image reference "${text}": use NAME or NAME/VERSION (e.g. win11 or win11/3)`);
  return { name: m[1]!, version: m[2] !== undefined ? Number(m[2]) : null };
}

export function formatImageReference(ref: ImageReference): string {
  return ref.version === null ? ref.name : `${ref.name}/${ref.version}`;
}

export interface FetchedContent {
  /** Where the content is now: destPath, or the provider's own copy when it already holds one locally. */
  path: string;
  format: ImageFormat;
  /** Bytes of the stored content (compressed for gzip/zstd). */
  size: number;
  /** SHA-256 hex of the stored bytes. */
  digest: string;
  /** gzip/zstd: bytes after decompression, when known. */
  uncompressedSize?: number;
}

export interface FetchOptions {
  signal?: AbortSignal;
  onProgress?: (doneBytes: number, totalBytes: number) => void;
}

/**
 * Resolves only with content whose bytes match `digest` (a provider verifies what it delivers). Failures are
 * StepFailures: content-not-found, content-unavailable, hash-mismatch, interrupted.
 */
export interface ContentProvider {
  fetch(image: ImageReference, destPath: string, opts?: FetchOptions): Promise<FetchedContent>;
}

export interface MediaManifestEntry {
  name: string;
  version: number;
  /** File name relative to the manifest's folder. */
  file: string;
  format: ImageFormat;
  sha256: string;
  size: number;
  uncompressedSize?: number;
}

export const MEDIA_MANIFEST = 'manifest.json';

/** Images in a local folder, listed in its manifest.json: { "formatVersion": 1, "images": [ … ] }. */
export class DirectoryContentProvider implements ContentProvider {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = resolve(dir);
  }

  async entries(): Promise<MediaManifestEntry[]> {
    const path = join(this.dir, MEDIA_MANIFEST);
    let text: string;
    try {
      text = await fs.readFile(path, 'utf8');
    } catch {
      throw new StepFailure('content-unavailable', `no ${MEDIA_MANIFEST} in the content folder ${this.dir}`);
    }
    let doc: { formatVersion?: unknown; images?: unknown };
    try {
      doc = JSON.parse(text);
    } catch (err) {
      throw new StepFailure('content-unavailable', `${path} is not valid JSON: ${(err as Error).message}`);
    }
    if (doc.formatVersion !== 1 || !Array.isArray(doc.images)) throw new StepFailure('content-unavailable', `${path}: expected { "formatVersion": 1, "images": [...] }`);
    return doc.images.map((e: Record<string, unknown>, i: number) => {
      const ok =
        typeof e.name === 'string' &&
        Number.isInteger(e.version) &&
        typeof e.file === 'string' &&
        IMAGE_FORMATS.includes(e.format as ImageFormat) &&
        typeof e.sha256 === 'string' &&
        /^[0-9a-f]{64}$/.test(e.sha256) &&
        Number.isInteger(e.size) &&
        (e.uncompressedSize === undefined || Number.isInteger(e.uncompressedSize));
      if (!ok) throw new StepFailure('content-unavailable', `${path}: images/${i} needs name, version (integer), file, format (${IMAGE_FORMATS.join('|')}), sha256 (64 hex digits), size`);
      return e as unknown as MediaManifestEntry;
    });
  }

  /** Serves the file in place (destPath unused): standalone media need no second copy. */
  async fetch(image: ImageReference, _destPath: string, opts: FetchOptions = {}): Promise<FetchedContent> {
    const entries = await this.entries();
    const candidates = entries.filter((e) => e.name === image.name && (image.version === null || e.version === image.version));
    const entry = candidates.sort((a, b) => b.version - a.version)[0];
    if (!entry) {
      const have = entries.map((e) => `${e.name}/${e.version}`).join(', ') || 'none';
      throw new StepFailure('content-not-found', `image ${formatImageReference(image)} is not in the content folder ${this.dir} (it has: ${have})`);
    }
    const path = resolve(this.dir, entry.file);
    const stat = await fs.stat(path).catch(() => null);
    if (!stat?.isFile()) throw new StepFailure('content-not-found', `image ${entry.name}/${entry.version}: its file ${path} is missing`);
    if (stat.size !== entry.size) throw new StepFailure('hash-mismatch', `image ${entry.name}/${entry.version}: ${path} has ${stat.size} bytes, the manifest says ${entry.size}`);
    const digest = await sha256File(path, opts);
    if (digest !== entry.sha256) throw new StepFailure('hash-mismatch', `image ${entry.name}/${entry.version}: SHA-256 of ${path} is ${digest}, the manifest says ${entry.sha256}`);
    return { path, format: entry.format, size: entry.size, digest, ...(entry.uncompressedSize !== undefined ? { uncompressedSize: entry.uncompressedSize } : {}) };
  }
}

export async function sha256File(path: string, opts: FetchOptions = {}): Promise<string> {
  const hash = createHash('sha256');
  const total = (await fs.stat(path)).size;
  let done = 0;
  try {
    await pipeline(createReadStream(path, { highWaterMark: CHUNK_BYTES }), new Transform({
      transform(chunk: Buffer, _enc, cb) {
        hash.update(chunk);
        done += chunk.length;
        opts.onProgress?.(done, total);
        cb();
      },
    }), { signal: opts.signal });
  } catch (err) {
    if (opts.signal?.aborted) throw new StepFailure('interrupted', 'interrupted while verifying content');
    throw new StepFailure('io', `cannot read ${path}: ${(err as Error).message}`);
  }
  return hash.digest('hex');
}
