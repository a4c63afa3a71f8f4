// Image formats the library stores, recognised by their magic bytes (never by the file name).
import { promises as fs } from 'node:fs';
import { ContentError, sourceReadError } from './errors.js';

export type ImageFormat = 'raw' | 'gzip' | 'zstd' | 'iso' | 'wim';
export const IMAGE_FORMATS: readonly ImageFormat[] = ['raw', 'gzip', 'zstd', 'iso', 'wim'];

/** ISO 9660 puts its first volume descriptor at sector 16 (2048-byte sectors); "CD001" follows its type byte. */
export const ISO_SECTOR_BYTES = 2048;
const ISO_MAGIC_OFFSET = 16 * ISO_SECTOR_BYTES + 1;
/** Enough of the file to recognise every format, ISO's descriptor included. */
export const DETECT_BYTES = ISO_MAGIC_OFFSET + 5;

const startsWith = (head: Uint8Array, magic: number[], at = 0) => magic.every((b, i) => head[at + i] === b);
const ascii = (s: string) => [...s].map((c) => c.charCodeAt(0));

/**
 * Containers a user may plausibly hand us that we do not unpack: refusing them beats storing them as a "raw"
 * disk that would write garbage onto every machine. Each names what to do instead.
 */
const UNSUPPORTED: { magic: number[]; at?: number; what: string }[] = [
  { magic: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], what: 'an xz archive: decompress it (xz -d) or recompress with zstd' },
  { magic: ascii('BZh'), what: 'a bzip2 archive: decompress it (bzip2 -d) or recompress with zstd' },
  { magic: [0x04, 0x22, 0x4d, 0x18], what: 'an lz4 archive: decompress it (lz4 -d) or recompress with zstd' },
  { magic: ascii('PK\x03\x04'), what: 'a zip archive: extract the image from it first' },
  { magic: ascii("7z\xbc\xaf'\x1c"), what: 'a 7-Zip archive: extract the image from it first' },
  { magic: ascii('QFI\xfb'), what: 'a qcow2 virtual disk: convert it with `qemu-img convert -O raw`' },
  { magic: ascii('vhdxfile'), what: 'a VHDX virtual disk: convert it with `qemu-img convert -O raw`' },
  { magic: ascii('conectix'), what: 'a VHD virtual disk: convert it with `qemu-img convert -O raw`' },
  { magic: ascii('KDMV'), what: 'a VMDK virtual disk: convert it with `qemu-img convert -O raw`' },
  { magic: ascii('<<< Oracle VM VirtualBox Disk Image >>>'), what: 'a VirtualBox VDI disk: convert it with `qemu-img convert -O raw`' },
];

/** Format of a file whose first bytes (at least DETECT_BYTES, or the whole file if shorter) are `head`. */
export function detectFormatOf(head: Uint8Array, name: string): ImageFormat {
  if (startsWith(head, [0x1f, 0x8b])) return 'gzip';
  if (startsWith(head, [0x28, 0xb5, 0x2f, 0xfd])) return 'zstd';
  // zstd skippable frame (magic 0x184D2A50..5F, little-endian) ahead of the first data frame.
  if ((head[0]! & 0xf0) === 0x50 && startsWith(head, [0x2a, 0x4d, 0x18], 1)) return 'zstd';
  if (startsWith(head, ascii('MSWIM\0\0\0')) || startsWith(head, ascii('WLPWM\0\0\0'))) return 'wim';
  if (startsWith(head, ascii('CD001'), ISO_MAGIC_OFFSET)) return 'iso';
  for (const u of UNSUPPORTED) {
    if (startsWith(head, u.magic, u.at)) {
      throw new ContentError('unsupported', `${name} is ${u.what}; or import it with format "raw" to store the bytes as they are`);
    }
  }
  return 'raw';
}

export async function readHead(fh: fs.FileHandle): Promise<Buffer> {
  const head = Buffer.alloc(DETECT_BYTES);
  let filled = 0;
  while (filled < head.length) {
    const { bytesRead } = await fh.read(head, filled, head.length - filled, filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return head.subarray(0, filled);
}

/** Detects the format of the file at `path` by its magic bytes. */
export async function detectFormat(path: string): Promise<ImageFormat> {
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(path, 'r');
  } catch (err) {
    throw sourceReadError(err, path);
  }
  try {
    return detectFormatOf(await readHead(fh).catch((err) => Promise.reject(sourceReadError(err, path))), path);
  } finally {
    await fh.close();
  }
}
