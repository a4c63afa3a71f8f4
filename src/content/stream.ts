// The bytes of an image as they go onto a disk: compressed images are decompressed on the fly.
import { createReadStream } from 'node:fs';
import { pipeline, type Duplex } from 'node:stream';
import { finished } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { ImageFormat } from './formats.js';
import { ZstdDecoder } from './zstd.js';

/** Read size for images: large enough that syscalls and hashing calls do not dominate. */
export const CHUNK_BYTES = 1 << 20;

export type CompressedFormat = 'gzip' | 'zstd';

export function isCompressed(format: ImageFormat): format is CompressedFormat {
  return format === 'gzip' || format === 'zstd';
}

/**
 * A fresh decompressing stream; both check their own integrity (gzip CRC-32 and length, zstd XXH64 and size) and
 * both decompress only as fast as their output is read.
 */
export function decompressor(format: CompressedFormat): Duplex {
  return format === 'gzip' ? createGunzip({ chunkSize: 256 * 1024 }) : new ZstdDecoder();
}

/**
 * The image file at `path` as the bytes that land on a disk: gzip and zstd are decompressed, raw, ISO and WIM
 * pass through unchanged. Read and decompression errors are emitted by the returned stream.
 */
export function openImageStream(path: string, format: ImageFormat): NodeJS.ReadableStream {
  const file = createReadStream(path, { highWaterMark: CHUNK_BYTES });
  if (!isCompressed(format)) return file;
  // pipeline() destroys both on an error, so a read error reaches whoever reads the decompressed side.
  return pipeline(file, decompressor(format), () => {});
}

/**
 * Checks an archive while it is copied: every chunk written goes through the decompressor, whose output is only
 * counted. `end()` resolves with the decompressed size; `isVerdict(err)` tells the decompressor's own complaint
 * (the archive is bad) from anything else that went wrong meanwhile.
 */
export function archiveCheck(format: CompressedFormat) {
  const inflate = decompressor(format);
  let size = 0;
  let verdict: unknown = null;
  const failed = new Promise<never>((_, reject) => inflate.once('error', (err) => reject((verdict = err))));
  failed.catch(() => {}); // observed through write() and end()
  inflate.on('data', (data: Buffer) => (size += data.length));
  return {
    /** Resolves once the chunk is decompressed (so memory stays flat), rejects if the archive is bad. */
    write: (chunk: Buffer) => Promise.race([new Promise<void>((resolve) => inflate.write(chunk, () => resolve())), failed]),
    end: async (): Promise<number> => {
      inflate.end();
      await Promise.race([finished(inflate), failed]);
      return size;
    },
    destroy: () => inflate.destroy(),
    isVerdict: (err: unknown) => err !== null && err === verdict,
  };
}
