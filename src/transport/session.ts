// Sending and receiving an image file over a real multicast session: engine + sockets + file I/O.
import { constants as fsConstants, createReadStream, promises as fs, type Stats } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes, randomInt } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { PacketProtector, SEAL_OVERHEAD } from '../protocol/crypto.js';
import { blockLength, type Geometry } from '../protocol/geometry.js';
import { equalBytes, sha256 } from '../protocol/common.js';
import { Receiver, type FailureReason, type ReceiverEvent, type ReceiverStats } from '../protocol/receiver.js';
import { Sender, type SenderOptions, type SenderSummary, type SenderStats, type ReceiverRecord } from '../protocol/sender.js';
import { DATA_HEADER_BYTES, HASH_BYTES } from '../protocol/wire.js';
import { EngineLoop, clock } from './drive.js';
import { BlockThread, FEC_NICE, keptEncoders } from './block-thread.js';
import { holdPacingPriority } from './thread-priority.js';
import { FecScheme } from '../fec/scheme.js';
import { blockDeviceBytes, findBlockDevice } from './block-device.js';
import { type Endpoint, familyOf, openReceiverSockets, openSenderSocket } from './udp.js';
import { fileFlushRange } from './native.js';

/** Largest symbol that fits one datagram of a link with this MTU. */
export function symbolSizeFor(mtu: number, family: 4 | 6, encrypted: boolean): number {
  const size = mtu - (family === 4 ? 20 : 40) - 8 - DATA_HEADER_BYTES - (encrypted ? SEAL_OVERHEAD : 0);
  if (size < 64) throw new RangeError(`MTU ${mtu} is too small`);
  return size;
}

export function frameOverheadFor(family: 4 | 6): number {
  return 14 + (family === 4 ? 20 : 40) + 8;
}

export interface SendOptions {
  /** Image file to send. */
  path: string;
  endpoint: Endpoint;
  mtu?: number;
  key?: string;
  sender?: Partial<Omit<SenderOptions, 'imageSize' | 'symbolSize' | 'protector'>>;
  onWarning?: (message: string) => void;
  onProgress?: (stats: SenderStats, receivers: ReceiverRecord[], imageSize: number, firstPassBytes: number) => void;
  /** Called once the session exists, with the controls an embedder (the site server) may use while it runs. */
  onControl?: (control: SendControl) => void;
  signal?: AbortSignal;
  /**
   * Nice value the calling thread (the event loop, which paces) is raised to during the send, where permitted and
   * only from the default priority (thread-priority.ts). Default: left as it is. `fleetcast send` asks for
   * PACING_NICE; the site server does not (its event loop also serves HTTP, and the programs it starts, such as
   * the WIM tools of an import, would inherit the raise).
   */
  pacingNice?: number;
}

export interface SendControl {
  /** Drops an active receiver (it is told at once); false if unknown or no longer active. */
  dropReceiver(nodeId: number, reason: string): boolean;
}

/** Read buffers kept for reuse: the sender hands one back per block it evicts and asks for one per block read. */
const MAX_SPARE_READS = 4;
/**
 * Blocks read before the digest thread has loaded are hashed by the engine up to this size (1.3 ms at 1.6 GB/s):
 * the first blocks are wanted at once. Larger ones (RaptorQ's 18 MB blocks: 11-29 ms each, a stall in the
 * pacing) go out at once and their digests follow from the thread when it has loaded.
 */
const INLINE_DIGEST_MAX_BYTES = 2 * 2 ** 20;

export async function sendImage(opts: SendOptions): Promise<SenderSummary> {
  const fh = await fs.open(opts.path, 'r');
  let fecThread: BlockThread | null = null;
  let digestThread: BlockThread | null = null;
  // (After the open: the file-system threads it starts keep the default priority.)
  const priority = opts.pacingNice === undefined ? null : holdPacingPriority(opts.pacingNice);
  try {
    const size = (await fh.stat()).size;
    const family = familyOf(opts.endpoint.group);
    const { socket, warnings } = await openSenderSocket(opts.endpoint);
    warnings.forEach((w) => opts.onWarning?.(w));
    const now = clock();
    const sender = new Sender(
      {
        sessionId: opts.sender?.sessionId ?? randomInt(1, 0xffffffff),
        imageSize: size,
        symbolSize: symbolSizeFor(opts.mtu ?? 1500, family, Boolean(opts.key)),
        frameOverhead: frameOverheadFor(family),
        // A RaptorQ encoder's set-up would stall the pacing: its parity is made on a BlockThread.
        asyncParity: opts.sender?.fec === FecScheme.RaptorQ,
        ...opts.sender,
        protector: opts.key ? new PacketProtector(opts.key) : undefined,
      },
      now,
    );
    const offThread = sender.asyncParity;
    return await new Promise<SenderSummary>((resolve, reject) => {
      let lastProgress = 0;
      const loop = new EngineLoop(sender, { group: socket, unicast: socket }, drain);
      // Read buffers are reused: a fresh one costs a page fault per 4 KiB, more than reading and hashing it.
      // One the sender handed back may still be in datagrams the socket holds, so it waits until none is held.
      let released: Uint8Array[] = [];
      const spare: Uint8Array[] = [];
      const fail = (err: Error): void => {
        loop.stop();
        socket.close();
        reject(err);
      };
      const g = sender.geometry;
      // Parity yields to the pacing by FEC_NICE; under a raised pacer that is nice 0, not below every other
      // process's work (the repairs wait on it).
      const parityNice = priority?.raised ? opts.pacingNice! + FEC_NICE : FEC_NICE;
      if (offThread) fecThread = new BlockThread(keptEncoders(g.blockBytes), fail, parityNice);
      // Blocks are hashed as they are read, off the event loop (and off the parity thread, whose set-ups can queue).
      // Until it has loaded, the sender hashes small ones itself and sends large ones before their digests
      // (INLINE_DIGEST_MAX_BYTES): the first blocks are wanted at once. Not at all when the digests were given
      // (the site server's content library has them).
      const digests = opts.sender?.blockHashes ? null : (digestThread = BlockThread.forDigests(fail));
      digests?.prestart();
      function drain(): void {
        let e;
        while ((e = sender.pollEvent())) {
          if (e.type === 'need-block') readBlock(e.block);
          else if (e.type === 'need-parity') {
            const { block, ids } = e;
            fecThread!.parity(g.fec, block, e.k, g.symbolSize, ids, e.data, (symbols) => {
              if (symbols) sender.supplyParity(block, ids, symbols);
              else sender.parityUnavailable(block);
              loop.schedulePump();
            });
          } else if (e.type === 'prepare-parity') fecThread!.prepare(g.fec, e.block, e.k, g.symbolSize, e.data);
          else if (e.type === 'block-released') {
            // (Not while a thread still reads it: then it is left to the garbage collector.)
            if (e.data.length === g.blockBytes && !fecThread?.holds(e.data) && !digests?.holds(e.data)) released.push(e.data);
          } else if (e.type === 'finished') {
            loop.stop();
            socket.close();
            resolve(e.summary);
          }
        }
        if (released.length > 0 && !socket.sendsPending()) {
          for (const buf of released) if (spare.length < MAX_SPARE_READS) spare.push(buf);
          released = [];
        }
        const t = clock();
        if (opts.onProgress && t - lastProgress > 200) {
          lastProgress = t;
          const stats = sender.getStats();
          opts.onProgress(stats, sender.getReceivers(), size, Math.min(size, stats.blocksFirstPassSent * sender.geometry.blockBytes));
        }
      }
      function readBlock(block: number): void {
        const length = blockLength(g, block);
        // Shared memory: the threads read blocks without a copy. The image's short last block goes in a reused
        // buffer too, zero-padded to whole symbols as the engine wants it (else it copies it).
        const padded = Math.ceil(length / g.symbolSize) * g.symbolSize;
        const buf = (spare.pop() ?? new Uint8Array(new SharedArrayBuffer(padded))).subarray(0, padded);
        buf.fill(0, length);
        const data = buf.subarray(0, length);
        fh.read(buf, 0, length, block * g.blockBytes)
          .then(({ bytesRead }) => {
            if (bytesRead !== length) throw new Error(`short read at block ${block}: the image changed while sending`);
            const supply = (digest?: Uint8Array | null): void => {
              sender.supplyBlock(block, buf, digest);
              loop.schedulePump();
            };
            if (!digests) supply(); // the engine has the digests
            else if (digests.ready) digests.digest(data, supply);
            else if (length <= INLINE_DIGEST_MAX_BYTES) supply();
            else {
              supply(null);
              digests.digest(data, (digest) => {
                sender.supplyDigest(block, digest);
                loop.schedulePump();
              });
            }
          })
          .catch((err: Error) => fail(new Error(`cannot read ${opts.path}: ${err.message}`)));
      }
      opts.signal?.addEventListener('abort', () => {
        sender.cancel(clock());
        loop.schedulePump();
      });
      socket.onError((err) => opts.onWarning?.(`socket error: ${err.message}`));
      opts.onControl?.({
        dropReceiver: (nodeId, reason) => {
          const dropped = sender.dropReceiver(clock(), nodeId, reason);
          loop.schedulePump();
          return dropped;
        },
      });
      loop.start();
    });
  } finally {
    await (fecThread as BlockThread | null)?.close();
    await (digestThread as BlockThread | null)?.close();
    priority?.release();
    await fh.close();
  }
}

/**
 * Writes in pieces of at most 1 MiB: one pwrite of a whole RaptorQ block (9 MiB at MTU 9000) into fresh page cache
 * cost the receiver up to 7x the CPU of the same bytes in 1 MiB writes on the dev VM (the kernel's large-folio path).
 */
const WRITE_PIECE_BYTES = 1 << 20;

async function writeFully(fh: fs.FileHandle, data: Uint8Array, offset: number): Promise<void> {
  for (let at = 0; at < data.length; ) {
    const { bytesWritten } = await fh.write(data, at, Math.min(WRITE_PIECE_BYTES, data.length - at), offset + at);
    if (bytesWritten <= 0) throw new Error(`wrote nothing at byte ${offset + at}`);
    at += bytesWritten;
  }
}

/**
 * Reads a part file left by an earlier attempt block by block and reports each block whose bytes match its
 * expected digest (an unwritten block reads as zeros and matches only if the image has zeros there too).
 */
async function scanHeldBlocks(fh: fs.FileHandle, g: Geometry, hashes: Uint8Array, onHeld: (block: number) => void): Promise<void> {
  const buf = Buffer.allocUnsafe(g.blockBytes);
  for (let b = 0; b < g.blockCount; b++) {
    const length = blockLength(g, b);
    const { bytesRead } = await fh.read(buf, 0, length, b * g.blockBytes);
    if (bytesRead === length && equalBytes(sha256(buf.subarray(0, length)), hashes.subarray(b * HASH_BYTES, (b + 1) * HASH_BYTES))) onHeld(b);
  }
}

/** Opens a disk for writing; O_EXCL makes the kernel refuse (EBUSY) one that is mounted or otherwise in use. */
async function openDisk(path: string): Promise<fs.FileHandle> {
  return fs.open(path, fsConstants.O_RDWR | fsConstants.O_EXCL).catch((err: NodeJS.ErrnoException) => {
    throw err.code === 'EBUSY' ? new Error(`${path} is in use (mounted, or held by another program): unmount it first`) : err;
  });
}

/** Default of ReceiveOptions.writeBehindBytes with fdatasync (where the addon's flushRange is not available). */
// Small, so that little is left for the final fsync: receivers finishing together on one disk (the test LAN)
// were seen to spend 0.15-0.25 s flushing their last 32 MiB each.
export const WRITE_BEHIND_BYTES = 8 * 1024 * 1024;
/** The same with the addon's flushRange, which commits no journal and flushes no disk cache: about every block. */
export const RANGE_WRITE_BEHIND_BYTES = 1024 * 1024;
/**
 * Verified blocks waiting for the disk, at most (ReceiverOptions.maxUnwrittenBytes): beyond the kernel's own
 * write cache (vm.dirty_ratio, a fifth of memory by default), so a disk a little slower than the network costs
 * nobody anything, and one far slower slows the session instead of filling this machine's memory.
 */
export const MAX_UNWRITTEN_BYTES = 256 * 1024 * 1024;

/**
 * Write-behind: gets the image onto the disk while it arrives, one flush at a time, each time another `every`
 * bytes were written (0: never, only the fsync at the end), so that the fsync before the rename has only the
 * tail left to write instead of the whole image at once. `flush` is given the span of what was written since
 * the last one: the addon's flushRange writes that and waits (sync_file_range), fdatasync the whole file's
 * dirty pages and commits the file system's journal too.
 */
class WriteBehind {
  private unflushed = 0;
  private from = Infinity;
  private to = 0;
  private inFlight: Promise<void> | null = null;
  private stopped = false;
  /** Kept: Linux reports a failed writeback once, so the final fsync could succeed after losing data. */
  private failure: Error | null = null;

  constructor(
    private readonly every: number,
    private readonly flush: (offset: number, length: number) => Promise<void>,
    private readonly onError: (err: Error) => void,
  ) {}

  written(offset: number, length: number): void {
    this.unflushed += length;
    this.from = Math.min(this.from, offset);
    this.to = Math.max(this.to, offset + length);
    this.flushIfDue();
  }

  private flushIfDue(): void {
    if (this.stopped || this.inFlight || this.every <= 0 || this.unflushed < this.every) return;
    const { from, to } = this;
    this.unflushed = 0;
    this.from = Infinity;
    this.to = 0;
    this.inFlight = this.flush(from, to - from).then(
      () => {
        this.inFlight = null;
        this.flushIfDue(); // what was written meanwhile may already be due
      },
      (err: Error) => {
        this.stopped = true;
        this.inFlight = null;
        this.failure = err;
        this.onError(err);
      },
    );
  }

  /** Starts no more flushes; once the one in flight is over, rejects if any flush failed. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.inFlight;
    if (this.failure) throw this.failure;
  }
}

export interface ReceiveOptions {
  /** Output path; '-' writes the verified image to stdout. */
  output: string;
  endpoint: Endpoint;
  key?: string;
  name?: string;
  nodeId?: number;
  sessionId?: number;
  /** Image digest and per-block digests known from a trusted source (the site server): checked against the session. */
  expectedDigest?: Uint8Array;
  blockHashes?: Uint8Array;
  /**
   * Keep OUTPUT.part when the transfer fails, and take up an existing one: its blocks that match the block
   * hashes (required: nothing else is trusted) are not received again.
   */
  resume?: boolean;
  startTimeoutMs?: number | null;
  idleTimeoutMs?: number;
  /**
   * Flush the written image to disk in the background (WriteBehind) every this many bytes (default
   * RANGE_WRITE_BEHIND_BYTES with the addon, else WRITE_BEHIND_BYTES); 0: only at the end.
   */
  writeBehindBytes?: number;
  onWarning?: (message: string) => void;
  onSession?: (imageSize: number, sender: string) => void;
  onProgress?: (bytesVerified: number, imageSize: number, stats: ReceiverStats) => void;
  signal?: AbortSignal;
}

export interface ReceiveResult {
  ok: boolean;
  reason: FailureReason | 'io' | null;
  message: string;
  imageSize: number | null;
  sender: string | null;
  /** ms from the session's first packet to a verified image. */
  durationMs: number | null;
  digest: string | null;
  confirmedBySender: boolean;
  /** Bytes taken from an earlier attempt's part file (resume). */
  resumedBytes: number;
  stats: ReceiverStats;
}

export async function receiveImage(opts: ReceiveOptions): Promise<ReceiveResult> {
  const toStdout = opts.output === '-';
  if (opts.resume && (toStdout || !opts.blockHashes)) {
    throw new Error(toStdout ? 'resume needs an output file, not stdout' : 'resume needs the block hashes in advance (from the site server)');
  }
  const finalPath = toStdout ? join(tmpdir(), `fleetcast-${randomBytes(6).toString('hex')}.img`) : opts.output;
  // A disk is written in place (there is nothing to rename); a file goes to FILE.part, renamed once verified.
  const device = toStdout ? null : findBlockDevice(finalPath);
  const partPath = device ? device.path : `${finalPath}.part`;
  const target = toStdout || device ? null : await fs.stat(finalPath).catch(() => null);
  if (target && !target.isFile()) {
    // The image is renamed over the output at the end: that would replace a device node (or fail on a folder).
    throw new Error(`${finalPath} exists and is neither a regular file nor a block device: give a file or a disk, or -o - to write the image to stdout`);
  }
  const capacity = device ? blockDeviceBytes(device) : undefined;
  if (device) await (await openDisk(device.path)).close(); // a disk in use fails now, not once a sender shows up
  const { data, feedback, warnings } = await openReceiverSockets(opts.endpoint);
  warnings.forEach((w) => opts.onWarning?.(w));
  const receiver = new Receiver(
    {
      nodeId: opts.nodeId ?? randomInt(1, 0xffffffff),
      name: opts.name ?? hostname(),
      sessionId: opts.sessionId,
      expectedDigest: opts.expectedDigest,
      blockHashes: opts.blockHashes,
      maxImageSize: capacity,
      protector: opts.key ? new PacketProtector(opts.key) : undefined,
      startTimeoutMs: opts.startTimeoutMs ?? null,
      idleTimeoutMs: opts.idleTimeoutMs,
      // A RaptorQ solve would stall reading, timers and replies: it runs on a BlockThread.
      asyncDecode: true,
      maxUnwrittenBytes: MAX_UNWRITTEN_BYTES,
      // The sender's summary says "completed" once the image is on this disk, not merely verified in memory.
      confirmWhenWritten: true,
    },
    clock(),
  );
  let fecThread: BlockThread | null = null;
  let fh: fs.FileHandle | null = null;
  let writeBehind: WriteBehind | null = null;
  let imageSize: number | null = null;
  let sender: string | null = null;
  let sessionStart: number | null = null;
  let verified = 0;
  let resumed = 0;
  let lastProgress = 0;
  const writes = new Set<Promise<void>>();
  let opened: Promise<void> = Promise.resolve();

  const result = await new Promise<ReceiveResult>((resolve) => {
    let settled = false;
    let completeAt: number | null = null;
    let digest: string | null = null;
    const loop = new EngineLoop(receiver, { group: data, unicast: feedback }, drain);

    function finish(ok: boolean, reason: ReceiveResult['reason'], message: string, confirmed = false): void {
      if (settled) return;
      settled = true;
      loop.stop();
      data.close();
      feedback.close();
      resolve({
        ok,
        reason,
        message,
        imageSize,
        sender,
        durationMs: completeAt !== null && sessionStart !== null ? completeAt - sessionStart : null,
        digest,
        confirmedBySender: confirmed,
        resumedBytes: resumed,
        stats: receiver.getStats(),
      });
    }
    const ioFailure = (what: string) => (err: Error) => {
      receiver.abort(clock(), `${what}: ${err.message}`);
      loop.schedulePump();
    };
    // (Its thread starts with the first solve: a transfer that needs none never starts it.)
    const solver = (fecThread = new BlockThread(0, ioFailure('decoding failed')));
    let finalizing: Promise<void> | null = null;

    function drain(): void {
      let e: ReceiverEvent | undefined;
      while ((e = receiver.pollEvent())) {
        switch (e.type) {
          case 'session': {
            imageSize = e.geometry.imageSize;
            sender = e.sender;
            sessionStart = clock();
            opts.onSession?.(imageSize, sender);
            const size = imageSize;
            const geometry = e.geometry;
            let existing: Stats | null = null;
            opened = (async () => {
              existing = opts.resume ? await fs.stat(partPath).catch(() => null) : null;
              let handle: fs.FileHandle;
              if (device) {
                handle = await openDisk(partPath);
              } else {
                const free = await fs.statfs(join(partPath, '..')).catch(() => null);
                const needed = size - (existing?.isFile() ? Math.min(existing.size, size) : 0);
                if (free && free.bavail * free.bsize < needed) {
                  throw new Error(`disk full: the image needs ${size} bytes, ${free.bavail * free.bsize} are free`);
                }
                handle = await fs.open(partPath, existing?.isFile() ? 'r+' : 'w');
                await handle.truncate(size);
              }
              fh = handle;
              const flushRange = fileFlushRange();
              writeBehind = new WriteBehind(
                opts.writeBehindBytes ?? (flushRange ? RANGE_WRITE_BEHIND_BYTES : WRITE_BEHIND_BYTES),
                flushRange ? (offset, length) => flushRange(handle.fd, offset, length) : () => handle.datasync(),
                ioFailure('cannot write the output'),
              );
            })();
            track(opened, 'cannot create the output');
            if (opts.resume) {
              // Alongside the transfer: blocks received meanwhile are written as usual (the same bytes).
              const scan = opened.then(async () => {
                if (!existing?.isFile() && !device) return;
                await scanHeldBlocks(fh!, geometry, opts.blockHashes!, (b) => {
                  if (settled || receiver.adoptBlocks(clock(), [b]) === 0) return;
                  resumed += blockLength(geometry, b);
                  verified += blockLength(geometry, b);
                  loop.schedulePump();
                });
              });
              track(scan, 'cannot read the part file to resume');
            }
            break;
          }
          case 'need-decode': {
            const { block, job } = e;
            solver.solve(job, (ok) => {
              receiver.supplyDecoded(clock(), block, ok);
              loop.schedulePump();
            });
            break;
          }
          case 'block': {
            const { offset, data: block } = e;
            const write = (async () => {
              await opened;
              await writeFully(fh!, block, offset);
              verified += block.length;
              receiver.recycleBlock(block);
              writeBehind!.written(offset, block.length);
            })();
            track(write, 'cannot write the output');
            break;
          }
          case 'complete':
            completeAt = clock();
            digest = Buffer.from(e.digest).toString('hex');
            finalizing = (async () => {
              await Promise.all([...writes]);
              await writeBehind!.stop();
              await fh!.sync();
              await fh!.close();
              fh = null;
              if (!device) await fs.rename(partPath, finalPath);
            })();
            finalizing.then(() => {
              receiver.written(clock());
              loop.schedulePump();
            }, ioFailure('cannot finish the output'));
            break;
          case 'closed': {
            const confirmed = e.confirmed;
            void (finalizing ?? Promise.resolve()).then(
              () => finish(true, null, 'image received and verified', confirmed),
              (err: Error) => finish(false, 'io', `cannot finish the output: ${err.message}`),
            );
            break;
          }
          case 'failed': {
            const { reason, message } = e;
            void Promise.allSettled([...writes]).then(() => finish(false, reason, message));
            break;
          }
        }
      }
      const t = clock();
      if (opts.onProgress && imageSize !== null && t - lastProgress > 200) {
        lastProgress = t;
        opts.onProgress(verified, imageSize, receiver.getStats());
      }
    }
    function track(p: Promise<void>, what: string): void {
      writes.add(p);
      p.then(
        () => writes.delete(p),
        (err: Error) => {
          writes.delete(p);
          ioFailure(what)(err);
        },
      );
    }
    opts.signal?.addEventListener('abort', () => {
      receiver.abort(clock(), 'interrupted');
      loop.schedulePump();
    });
    data.onError((err) => opts.onWarning?.(`socket error: ${err.message}`));
    feedback.onError((err) => opts.onWarning?.(`socket error: ${err.message}`));
    loop.start();
  });

  await (fecThread as BlockThread | null)?.close();
  if (!result.ok) {
    // Never leave a partial image where a complete one is expected (a kept one is named .part).
    const handle = fh as fs.FileHandle | null;
    await (writeBehind as WriteBehind | null)?.stop().catch(() => undefined);
    await handle?.sync().catch(() => undefined);
    await handle?.close().catch(() => undefined);
    if (!device && (!opts.resume || result.reason === 'hash-mismatch' || result.reason === 'too-large')) await fs.rm(partPath, { force: true });
  } else if (toStdout) {
    try {
      await pipeline(createReadStream(finalPath), process.stdout);
    } finally {
      await fs.rm(finalPath, { force: true });
    }
  }
  return result;
}
