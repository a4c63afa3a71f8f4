// apply-image: raw images (decompressed while writing) to a whole disk or a partition; a WIM image index
// to a formatted partition with wimlib's wimapply.
import { createHash } from 'node:crypto';
import { constants, createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { formatImageReference, parseImageReference, type FetchedContent } from '../content.js';
import { writeAll } from '../../content/files.js';
import { decompressor, isCompressed } from '../../content/stream.js';
import { blockDeviceBytes } from '../../transport/block-device.js';
import { assertDiskNotInUse, assertPartitionNotInUse, filesystemType, runTool, syncPartitions, withMounted, type BlockDevice } from '../disk.js';
import { StepFailure } from '../report.js';
import type { ApplyImageStep } from '../sequence.js';
import { UndefinedVariableError } from '../variables.js';
import type { StepContext } from './context.js';

const CHUNK = 4 * 1024 * 1024;

interface Destination {
  device: BlockDevice;
  wholeDisk: boolean;
  label: string;
}

async function destination(step: ApplyImageStep, ctx: StepContext): Promise<Destination> {
  if ('disk' in step.destination) {
    const target = await ctx.targets.disk(ctx.text(step.destination.disk, 'destination/disk'), 'apply-image', ctx.signal);
    assertDiskNotInUse(target.device, 'apply-image');
    return { device: target.device, wholeDisk: true, label: `${target.name} (${target.device.path})` };
  }
  const variable = step.destination.partition;
  const path = ctx.variables.get(variable);
  if (path === undefined) throw new UndefinedVariableError(variable, `${ctx.path}/destination/partition`);
  const { device } = await ctx.targets.partition(path, 'apply-image', ctx.signal);
  assertPartitionNotInUse(device, 'apply-image');
  return { device, wholeDisk: false, label: `%${variable}% (${device.path})` };
}

export async function applyImage(step: ApplyImageStep, ctx: StepContext): Promise<void> {
  const ref = parseImageReference(ctx.text(step.image, 'image'));
  // The destination is checked before anything is downloaded: a refused target fails at once.
  const dest = await destination(step, ctx);
  const cachePath = join(ctx.workDir, 'content', `${ref.name}-${ref.version ?? 'latest'}`);
  ctx.note(`getting image ${formatImageReference(ref)}`);
  const content = await ctx.content.fetch(ref, cachePath, { signal: ctx.signal, onProgress: (done, total) => ctx.progress('download', done, total, 'bytes') });
  ctx.note(`image ${formatImageReference(ref)}: ${content.format}, ${content.size} bytes, sha256 ${content.digest}; applying to ${dest.label}`);
  if (content.format === 'wim') {
    if (dest.wholeDisk) throw new StepFailure('unsupported-image', `image ${formatImageReference(ref)} is a WIM (files, not a disk): apply it to a formatted partition ({ "partition": "VARIABLE" }), not a whole disk`);
    await applyWim(content, step.index ?? 1, dest.device, ctx);
  } else {
    if (step.index !== undefined) throw new StepFailure('unsupported-image', `"index" applies to WIM images; image ${formatImageReference(ref)} is ${content.format}`);
    await writeRaw(content, dest.device, ctx);
    // The image brought its own partition table: let the kernel see it.
    if (dest.wholeDisk) await syncPartitions(dest.device, null, ctx.signal);
  }
}

/** Streams stored bytes → hash → decompress → device, checking capacity and the digest. */
export async function writeRaw(content: FetchedContent, device: BlockDevice, ctx: StepContext): Promise<void> {
  const capacity = blockDeviceBytes(device);
  const imageBytes = isCompressed(content.format) ? content.uncompressedSize : content.size;
  if (imageBytes !== undefined && imageBytes > capacity) {
    throw new StepFailure('disk-too-small', `disk too small for the image: it needs ${imageBytes} bytes, ${device.path} has ${capacity}`, { imageBytes, capacity });
  }
  const hash = createHash('sha256');
  let read = 0;
  let written = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      read += chunk.length;
      ctx.progress('write', read, content.size, 'bytes');
      cb(null, chunk);
    },
  });
  const limit = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      written += chunk.length;
      if (written > capacity) return cb(new StepFailure('disk-too-small', `disk too small for the image: it decompresses to more than ${device.path}'s ${capacity} bytes`, { capacity }));
      cb(null, chunk);
    },
  });
  // O_EXCL on a block device fails with EBUSY while anything has it mounted: a last guard against writing
  // under a live filesystem.
  const fh = await open(device.path, constants.O_WRONLY | constants.O_EXCL).catch((err: NodeJS.ErrnoException) => {
    throw new StepFailure(err.code === 'EBUSY' ? 'target-in-use' : 'io', `cannot open ${device.path} for writing: ${err.message}`);
  });
  const decompress = isCompressed(content.format) ? decompressor(content.format) : null;
  try {
    const source = createReadStream(content.path, { highWaterMark: CHUNK });
    const sink = new Writable({
      highWaterMark: CHUNK,
      write(chunk: Buffer, _enc, cb) {
        writeAll(fh, chunk).then(() => cb(), cb);
      },
    });
    if (decompress) await pipeline(source, tap, decompress, limit, sink, { signal: ctx.signal });
    else await pipeline(source, tap, limit, sink, { signal: ctx.signal });
    await fh.sync();
  } catch (err) {
    if (err instanceof StepFailure) throw err;
    if (ctx.signal.aborted) throw new StepFailure('interrupted', `interrupted while writing ${device.path}`);
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOSPC') throw new StepFailure('disk-too-small', `disk too small for the image: ${device.path} is full after ${written} bytes`);
    // zlib's Z_* codes; the content library's zstd decoder says 'corrupt'.
    if (e.code?.startsWith('Z_') || e.code === 'corrupt') throw new StepFailure('corrupt-image', `the ${content.format} image data is corrupt: ${e.message}`);
    throw new StepFailure('io', `writing ${device.path} failed after ${written} bytes: ${e.message}`);
  } finally {
    await fh.close();
  }
  const digest = hash.digest('hex');
  if (digest !== content.digest) {
    throw new StepFailure('hash-mismatch', `hash mismatch: the bytes written to ${device.path} have SHA-256 ${digest}, the image's digest is ${content.digest}; the disk holds a corrupt image`);
  }
  ctx.log(`wrote ${written} bytes to ${device.path} (${read} bytes of ${content.format} content read and verified)`);
}

function wimField(text: string, field: string): string | undefined {
  return new RegExp(`^${field}:\\s*(.*)$`, 'm').exec(text)?.[1]?.trim();
}

async function applyWim(content: FetchedContent, index: number, part: BlockDevice, ctx: StepContext): Promise<void> {
  const all = await runTool('wiminfo', [content.path], { signal: ctx.signal });
  const count = Number(wimField(all.stdout, 'Image Count'));
  if (!(index >= 1 && index <= count)) throw new StepFailure('invalid-value', `the WIM has image${count === 1 ? ' 1' : `s 1-${count}`}; the step asks for index ${index}`);
  const one = await runTool('wiminfo', [content.path, String(index)], { signal: ctx.signal });
  const totalBytes = Number(wimField(one.stdout, 'Total Bytes'));
  const capacity = blockDeviceBytes(part);
  if (totalBytes > capacity) throw new StepFailure('disk-too-small', `disk too small for the image: WIM image ${index} holds ${totalBytes} bytes of files, ${part.path} has ${capacity}`, { imageBytes: totalBytes, capacity });
  const fsType = await filesystemType(part, ctx.signal);
  if (!fsType) throw new StepFailure('invalid-value', `${part.path} has no filesystem: format it first (partition-disk with "filesystem": "ntfs")`);
  const apply = (to: string) =>
    runTool('wimapply', [content.path, String(index), to], {
      signal: ctx.signal,
      onOutput: (text) => {
        const percent = /\((\d+)%\) done/.exec(text.split('\r').filter(Boolean).pop() ?? '');
        if (percent) ctx.progress('apply', Number(percent[1]), 100, 'percent');
      },
    });
  ctx.note(`applying WIM image ${index} (${wimField(one.stdout, 'Name') ?? ''}, ${totalBytes} bytes) to ${part.path} (${fsType})`);
  try {
    // wimlib writes NTFS volumes directly (keeping Windows security descriptors and attributes), unmounted.
    if (fsType === 'ntfs') await apply(part.path);
    else await withMounted(part, fsType, (dir) => apply(dir), ctx.signal);
  } catch (err) {
    if (err instanceof StepFailure && /no space left|not enough space/i.test(err.message)) throw new StepFailure('disk-too-small', `disk too small for the image: ${part.path} ran out of space while applying WIM image ${index}`);
    throw err;
  }
}
