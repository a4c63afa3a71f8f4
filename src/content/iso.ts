// What an ISO 9660 image says about itself, read from its volume descriptors (ECMA-119 §8) and, when bootable, its
// El Torito boot catalog. The layout is fixed, so no external tool is needed.
import { promises as fs } from 'node:fs';
import { ContentError } from './errors.js';
import { ISO_SECTOR_BYTES } from './formats.js';
import type { IsoInfo } from './details.js';

export type { IsoInfo };

const FIRST_DESCRIPTOR_SECTOR = 16;
/** Real images have a handful of descriptors; a bound keeps a hostile image from making us read forever. */
const MAX_DESCRIPTORS = 64;
const TYPE_BOOT_RECORD = 0;
const TYPE_PRIMARY = 1;
const TYPE_SUPPLEMENTARY = 2;
const TYPE_TERMINATOR = 255;
const EL_TORITO = 'EL TORITO SPECIFICATION';
const PLATFORMS: Record<number, string> = { 0x00: 'bios', 0x01: 'powerpc', 0x02: 'mac', 0xef: 'uefi' };

const notIso = (path: string, why: string) => new ContentError('corrupt', `${path} is not a usable ISO 9660 image: ${why}`);

/** Reads the volume descriptors of the ISO image at `path` and checks the file holds the whole volume. */
export async function readIsoInfo(path: string, label = path): Promise<IsoInfo> {
  const fh = await fs.open(path, 'r');
  try {
    const fileBytes = (await fh.stat()).size;
    const sector = async (n: number): Promise<Buffer | null> => {
      const buf = Buffer.alloc(ISO_SECTOR_BYTES);
      const { bytesRead } = await fh.read(buf, 0, ISO_SECTOR_BYTES, n * ISO_SECTOR_BYTES);
      return bytesRead === ISO_SECTOR_BYTES ? buf : null;
    };

    let primary: Buffer | null = null;
    let bootCatalogSector: number | null = null;
    let joliet = false;
    let terminator: number | null = null;
    for (let n = FIRST_DESCRIPTOR_SECTOR; n < FIRST_DESCRIPTOR_SECTOR + MAX_DESCRIPTORS; n++) {
      const d = await sector(n);
      if (!d || d.toString('latin1', 1, 6) !== 'CD001') break;
      const type = d[0]!;
      if (type === TYPE_PRIMARY && !primary) primary = d;
      else if (type === TYPE_BOOT_RECORD && text(d, 7, 32) === EL_TORITO) bootCatalogSector = d.readUInt32LE(71);
      else if (type === TYPE_SUPPLEMENTARY && d[88] === 0x25 && d[89] === 0x2f && [0x40, 0x43, 0x45].includes(d[90]!)) joliet = true;
      else if (type === TYPE_TERMINATOR) {
        terminator = n;
        break;
      }
    }
    if (!primary) throw notIso(label, 'no primary volume descriptor at sector 16');

    const blockBytes = primary.readUInt16LE(128);
    const volumeBytes = primary.readUInt32LE(80) * blockBytes;
    if (blockBytes < 512 || (blockBytes & (blockBytes - 1)) !== 0) throw notIso(label, `invalid logical block size ${blockBytes}`);
    if (volumeBytes > fileBytes) {
      throw notIso(label, `the volume declares ${volumeBytes} bytes but the file has only ${fileBytes} (truncated download or copy?)`);
    }

    const first = await sector(0);
    const info: IsoInfo = {
      volumeId: text(primary, 40, 32),
      volumeBytes,
      bootPlatforms: bootCatalogSector === null ? [] : bootPlatforms(await sector(bootCatalogSector)),
      hybrid: first !== null && first[510] === 0x55 && first[511] === 0xaa,
      joliet,
      udf: terminator !== null && (await hasUdf(sector, terminator + 1)),
    };
    const optional: [keyof IsoInfo, number, number][] = [
      ['systemId', 8, 32],
      ['volumeSetId', 190, 128],
      ['publisherId', 318, 128],
      ['preparerId', 446, 128],
      ['applicationId', 574, 128],
    ];
    for (const [key, at, length] of optional) {
      const value = text(primary, at, length);
      if (value) info[key] = value;
    }
    const createdAt = isoDate(primary.subarray(813, 830));
    if (createdAt) info.createdAt = createdAt;
    return info;
  } finally {
    await fh.close();
  }
}

/** A descriptor's fixed-width text field: ASCII padded with spaces (or NULs). */
function text(buf: Buffer, at: number, length: number): string {
  return buf.toString('latin1', at, at + length).replace(/[\s\0]+$/, '');
}

/** ECMA-119 §8.4.26.1 date: 16 ASCII digits (YYYYMMDDhhmmsscc) and a signed offset from GMT in 15-minute units. */
function isoDate(field: Buffer): string | undefined {
  const digits = field.toString('latin1', 0, 16);
  if (!/^\d{16}$/.test(digits) || /^0+$/.test(digits)) return undefined;
  const n = (from: number, to: number) => Number(digits.slice(from, to));
  const local = Date.UTC(n(0, 4), n(4, 6) - 1, n(6, 8), n(8, 10), n(10, 12), n(12, 14), n(14, 16) * 10);
  const time = local - field.readInt8(16) * 15 * 60_000;
  return Number.isNaN(time) ? undefined : new Date(time).toISOString();
}

/** Platforms with a bootable entry in an El Torito boot catalog (validation entry, default entry, sections). */
function bootPlatforms(catalog: Buffer | null): string[] {
  if (!catalog || catalog[0] !== 0x01 || catalog[30] !== 0x55 || catalog[31] !== 0xaa) return [];
  const name = (id: number) => PLATFORMS[id] ?? `platform-0x${id.toString(16).padStart(2, '0')}`;
  const found = new Set<string>();
  let platform = catalog[1]!;
  if (catalog[32] === 0x88) found.add(name(platform));
  for (let at = 64; at + 32 <= catalog.length; at += 32) {
    const kind = catalog[at]!;
    if (kind === 0x90 || kind === 0x91) platform = catalog[at + 1]!;
    else if (kind === 0x88) found.add(name(platform));
    else if (kind !== 0x00 && kind !== 0x44) break; // 0x44: extension of the previous entry
    if (catalog.subarray(at, at + 32).every((b) => b === 0)) break;
  }
  return [...found];
}

/** ECMA-167 volume recognition sequence after the ISO 9660 terminator: "NSR02"/"NSR03" marks a UDF volume. */
async function hasUdf(sector: (n: number) => Promise<Buffer | null>, from: number): Promise<boolean> {
  for (let n = from; n < from + 16; n++) {
    const d = await sector(n);
    const id = d?.toString('latin1', 1, 6);
    if (id === 'NSR02' || id === 'NSR03') return true;
    if (!id || !['BEA01', 'BOOT2', 'CD001', 'CDW02', 'TEA01'].includes(id)) return false;
  }
  return false;
}
