// Streaming zstd decompression that checks what fzstd leaves unchecked: each frame's content checksum (XXH64) and
// declared content size. fzstd decodes; this file only walks the frame container (RFC 8878 §3.1) to know where
// frames and blocks end. Knowing frames, corruption inside literals (which still decodes) is caught; knowing
// blocks, at most one block (≤ 128 KiB) is decoded at a time, so a run of zeros that compressed a thousandfold
// cannot flood memory ahead of a slow reader.
import { Transform, type TransformCallback } from 'node:stream';
import { Decompress } from 'fzstd';
import xxhash from 'xxhash-wasm';
import { ContentError } from './errors.js';

const { create64 } = await xxhash();

const ZSTD_MAGIC = 0xfd2fb528;
const SKIPPABLE_MAGIC_MASK = 0xfffffff0;
const SKIPPABLE_MAGIC = 0x184d2a50;

type Stage =
  | { kind: 'magic' } // the 4-byte magic number of the next frame
  | { kind: 'frame-descriptor' } // the byte that tells how long the rest of the frame header is
  | { kind: 'frame-header'; need: number } // window descriptor, dictionary id, content size
  | { kind: 'skippable-size' } // the 4-byte length of a skippable frame
  | { kind: 'skip'; left: number } // inside a skippable frame
  | { kind: 'block-header' }
  | { kind: 'block-body'; left: number; last: boolean }
  | { kind: 'checksum' };

/** Bytes of the header field each collecting stage reads. */
const FIELD_BYTES = { magic: 4, 'frame-descriptor': 1, 'skippable-size': 4, 'block-header': 3, checksum: 4 } as const;

interface Frame {
  decoder: Decompress;
  descriptor: number;
  hasChecksum: boolean;
  contentSize: bigint | null;
  produced: bigint;
  hash: ReturnType<typeof create64>;
}

const corrupt = (message: string, cause?: unknown) => new ContentError('corrupt', `zstd data is corrupt: ${message}`, { cause });

/** Transform from zstd bytes (one or more frames, skippable frames allowed) to the decompressed bytes. */
export class ZstdDecoder extends Transform {
  private readonly frames = new ZstdFrames();
  /** Output of an input chunk not yet pushed because the reader is behind: the next piece, the rest, the callback. */
  private paused: { next: Buffer; output: Generator<Buffer>; callback: TransformCallback } | null = null;

  constructor() {
    super({ readableHighWaterMark: 1 << 20 });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const output = this.frames.feed(chunk);
    this.pushFrom(output, callback, () => output.next());
  }

  override _read(size: number): void {
    const paused = this.paused;
    if (!paused) return super._read(size);
    this.paused = null;
    this.pushFrom(paused.output, paused.callback, () => ({ done: false, value: paused.next }));
  }

  override _flush(callback: TransformCallback): void {
    try {
      this.frames.end();
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  /**
   * Pushes decoded blocks until the chunk is done (then calls back) or the reader's buffer is full (then waits for
   * _read). It pauses only with a piece in hand, so a resumed _read always pushes: Readable calls _read again only
   * after a push.
   */
  private pushFrom(output: Generator<Buffer>, callback: TransformCallback, first: () => IteratorResult<Buffer>): void {
    try {
      for (let next = first(); !next.done; ) {
        const more = this.push(next.value);
        next = output.next();
        if (!more && !next.done) {
          this.paused = { next: next.value, output, callback };
          return;
        }
      }
    } catch (err) {
      return callback(err as Error);
    }
    callback();
  }
}

class ZstdFrames {
  private stage: Stage = { kind: 'magic' };
  /** Bytes of a header field being collected across chunk boundaries. */
  private field: number[] = [];
  private frame: Frame | null = null;
  private frames = 0;
  /** Output of the last decoder call: one block at most. */
  private decoded: Buffer[] = [];

  /** Decompressed pieces of `chunk`, handed out one block at a time (the caller's pace sets ours). */
  *feed(chunk: Uint8Array): Generator<Buffer> {
    try {
      for (let i = 0; i < chunk.length; ) {
        i = this.step(chunk, i);
        if (this.decoded.length > 0) {
          const out = this.decoded;
          this.decoded = [];
          yield* out;
        }
      }
    } catch (err) {
      throw err instanceof ContentError ? err : corrupt((err as Error).message, err);
    }
  }

  end(): void {
    if (this.stage.kind !== 'magic' || this.field.length > 0) throw corrupt('the data ends inside a frame (truncated file?)');
    if (this.frames === 0) throw corrupt('no zstd frame found');
  }

  /** Consumes one header field or one block's body (or as much of it as `chunk` holds) from `i`; returns the new index. */
  private step(chunk: Uint8Array, i: number): number {
    const s = this.stage;
    if (s.kind === 'skip' || s.kind === 'block-body') {
      const n = Math.min(s.left, chunk.length - i);
      s.left -= n;
      if (s.kind === 'block-body') this.decode(chunk.subarray(i, i + n), s.left === 0 && s.last && !this.frame!.hasChecksum);
      if (s.left === 0) this.bodyDone(s);
      return i + n;
    }
    const need = s.kind === 'frame-header' ? s.need : FIELD_BYTES[s.kind];
    const n = Math.min(need - this.field.length, chunk.length - i);
    for (let k = 0; k < n; k++) this.field.push(chunk[i + k]!);
    // Everything of a zstd frame goes to its decoder; the last checksum byte ends it.
    if (s.kind !== 'magic' && s.kind !== 'skippable-size') {
      this.decode(chunk.subarray(i, i + n), s.kind === 'checksum' && this.field.length === need);
    }
    if (this.field.length === need) {
      const field = this.field;
      this.field = [];
      this.fieldDone(s, field);
    }
    return i + n;
  }

  private bodyDone(s: Stage & { kind: 'skip' | 'block-body' }): void {
    if (s.kind === 'skip') this.stage = { kind: 'magic' };
    else if (!s.last) this.stage = { kind: 'block-header' };
    else if (this.frame!.hasChecksum) this.stage = { kind: 'checksum' };
    else this.endFrame(null);
  }

  private fieldDone(s: Stage, f: number[]): void {
    const u32 = (at: number) => (f[at]! | (f[at + 1]! << 8) | (f[at + 2]! << 16) | (f[at + 3]! << 24)) >>> 0;
    switch (s.kind) {
      case 'magic': {
        const magic = u32(0);
        if ((magic & SKIPPABLE_MAGIC_MASK) >>> 0 === SKIPPABLE_MAGIC) this.stage = { kind: 'skippable-size' };
        else if (magic === ZSTD_MAGIC) this.startFrame(Uint8Array.from(f));
        else throw corrupt(this.frames === 0 ? 'not zstd data (bad magic number)' : 'unexpected bytes after the last frame');
        return;
      }
      case 'skippable-size':
        this.stage = u32(0) === 0 ? { kind: 'magic' } : { kind: 'skip', left: u32(0) };
        return;
      case 'frame-descriptor': {
        const descriptor = f[0]!;
        if (descriptor & 0x08) throw corrupt('reserved bit set in a frame header');
        this.frame!.descriptor = descriptor;
        this.frame!.hasChecksum = ((descriptor >> 2) & 1) === 1;
        const { windowBytes, dictionaryBytes, sizeBytes } = headerLayout(descriptor);
        const need = windowBytes + dictionaryBytes + sizeBytes;
        this.stage = need > 0 ? { kind: 'frame-header', need } : { kind: 'block-header' };
        return;
      }
      case 'frame-header': {
        const { windowBytes, dictionaryBytes, sizeBytes, sizeFlag } = headerLayout(this.frame!.descriptor);
        let at = windowBytes;
        let dictionary = 0;
        for (let k = 0; k < dictionaryBytes; k++) dictionary += f[at + k]! * 2 ** (8 * k);
        at += dictionaryBytes;
        if (dictionary !== 0) {
          throw new ContentError('unsupported', 'the zstd data needs a dictionary (zstd -D): recompress it without one');
        }
        let size = 0n;
        for (let k = 0; k < sizeBytes; k++) size |= BigInt(f[at + k]!) << BigInt(8 * k);
        this.frame!.contentSize = sizeBytes === 0 ? null : sizeFlag === 1 ? size + 256n : size;
        this.stage = { kind: 'block-header' };
        return;
      }
      case 'block-header': {
        const header = f[0]! | (f[1]! << 8) | (f[2]! << 16);
        const last = (header & 1) === 1;
        const type = (header >> 1) & 3;
        if (type === 3) throw corrupt('reserved block type');
        const body = type === 1 ? 1 : header >>> 3; // an RLE block stores its one byte
        if (body > 0) this.stage = { kind: 'block-body', left: body, last };
        else if (!last) this.stage = { kind: 'block-header' };
        else if (this.frame!.hasChecksum) this.stage = { kind: 'checksum' };
        else this.endFrame(null, true);
        return;
      }
      case 'checksum':
        this.endFrame(u32(0));
        return;
      default:
        return;
    }
  }

  private startFrame(magic: Uint8Array): void {
    const decoder = new Decompress((data) => this.output(data));
    this.frame = { decoder, descriptor: 0, hasChecksum: false, contentSize: null, produced: 0n, hash: create64(0n) };
    this.decode(magic, false);
    this.stage = { kind: 'frame-descriptor' };
  }

  private decode(bytes: Uint8Array, final: boolean): void {
    if (bytes.length === 0 && !final) return;
    try {
      this.frame!.decoder.push(bytes, final);
    } catch (err) {
      if (err instanceof ContentError) throw err;
      if ((err as { code?: number }).code === 1) {
        throw new ContentError('unsupported', 'the zstd data uses a window over 2 GB (zstd --long=31): recompress it with a smaller window', { cause: err });
      }
      throw corrupt((err as Error).message, err);
    }
  }

  private output(data: Uint8Array): void {
    if (data.length === 0) return;
    const frame = this.frame!;
    frame.produced += BigInt(data.length);
    frame.hash.update(data);
    this.decoded.push(Buffer.from(data.buffer, data.byteOffset, data.length));
  }

  private endFrame(checksum: number | null, flushDecoder = false): void {
    const frame = this.frame!;
    if (flushDecoder) this.decode(new Uint8Array(0), true);
    if (frame.contentSize !== null && frame.produced !== frame.contentSize) {
      throw corrupt(`a frame declares ${frame.contentSize} bytes but decodes to ${frame.produced}`);
    }
    if (checksum !== null && Number(frame.hash.digest() & 0xffffffffn) !== checksum) {
      throw corrupt('a frame checksum does not match its contents');
    }
    this.frame = null;
    this.frames++;
    this.stage = { kind: 'magic' };
  }
}

/** Lengths of the optional frame header fields (RFC 8878 §3.1.1.1), from the frame header descriptor. */
function headerLayout(descriptor: number) {
  const singleSegment = (descriptor >> 5) & 1;
  const sizeFlag = descriptor >> 6;
  return {
    windowBytes: singleSegment ? 0 : 1,
    dictionaryBytes: [0, 1, 2, 4][descriptor & 3]!,
    sizeBytes: sizeFlag === 0 ? singleSegment : 1 << sizeFlag,
    sizeFlag,
  };
}
