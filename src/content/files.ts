// File plumbing of the store: sequential chunked reads, durable writes, and temp files that say who owns them.
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { processStartTime } from '../testlan/system.js';
import { interrupted } from './errors.js';

/**
 * Temp files are named `<pid>.<start ticks>.<random>.<what>`: a later store opening removes exactly those whose
 * process is gone (the start time guards against a recycled pid), never a live import of another process.
 */
const OWNER = `${process.pid}.${processStartTime(process.pid) ?? 0}`;

export function tempName(what: string): string {
  return `${OWNER}.${randomBytes(6).toString('hex')}.${what}`;
}

export function ownerAlive(tempFileName: string): boolean {
  const m = /^(\d+)\.(\d+)\./.exec(tempFileName);
  if (!m) return false;
  const start = processStartTime(Number(m[1]));
  return start !== undefined && String(start) === m[2];
}

export interface ChunkReadOptions {
  signal?: AbortSignal | undefined;
  /** What was interrupted, for the message when `signal` aborts. */
  activity: string;
  /** Turns a read failure into the error to throw. */
  readError: (err: unknown) => Error;
  /** The error to throw when the file ends before `size` bytes. */
  shortRead: (offset: number) => Error;
}

/**
 * Calls `onChunk` with consecutive chunks covering bytes [0, size) of `fh`, reading the next chunk while the
 * current one is processed. Each chunk is a fresh buffer, so `onChunk` may keep it.
 */
export async function readChunks(
  fh: fs.FileHandle,
  size: number,
  chunkBytes: number,
  onChunk: (chunk: Buffer, offset: number) => Promise<void> | void,
  opts: ChunkReadOptions,
): Promise<void> {
  const readAt = async (offset: number): Promise<Buffer> => {
    const length = Math.min(chunkBytes, size - offset);
    const buf = Buffer.allocUnsafe(length);
    for (let filled = 0; filled < length; ) {
      let bytesRead: number;
      try {
        ({ bytesRead } = await fh.read(buf, filled, length - filled, offset + filled));
      } catch (err) {
        throw opts.readError(err);
      }
      if (bytesRead === 0) throw opts.shortRead(offset + filled);
      filled += bytesRead;
    }
    return buf;
  };
  let next: Promise<Buffer> | null = size > 0 ? readAt(0) : null;
  for (let offset = 0; next; ) {
    const chunk = await next;
    const at = offset;
    offset += chunk.length;
    next = offset < size ? readAt(offset) : null;
    // A read-ahead failure is reported when its turn comes; until then it must not count as unhandled.
    next?.catch(() => {});
    if (opts.signal?.aborted) throw interrupted(opts.activity);
    await onChunk(chunk, at);
  }
}

/** Writes all of `data` at the handle's current position (a write may be partial). */
export async function writeAll(fh: fs.FileHandle, data: Uint8Array): Promise<void> {
  for (let done = 0; done < data.length; ) {
    const { bytesWritten } = await fh.write(data, done, data.length - done);
    done += bytesWritten;
  }
}

/** Makes a directory's entries (a rename or link just done in it) survive a crash. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await fs.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Creates `path` (which must not exist) with `data`, flushed to disk, read-only; removes it again on failure. */
export async function writeDurably(path: string, data: Uint8Array | string): Promise<void> {
  const fh = await fs.open(path, 'wx', 0o444);
  try {
    await writeAll(fh, typeof data === 'string' ? Buffer.from(data) : data);
    await fh.sync();
  } catch (err) {
    await fh.close();
    await fs.rm(path, { force: true });
    throw err;
  }
  await fh.close();
}
