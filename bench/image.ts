// The benchmark image: incompressible (random) data of the configured size, written once per run.

import { createHash, randomFillSync } from 'node:crypto';
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';

export interface Image {
  path: string;
  bytes: number;
  sha256: string;
}

export function createImage(path: string, bytes: number): Image {
  const hash = createHash('sha256');
  const chunk = Buffer.allocUnsafe(4 * 1024 * 1024);
  const fd = openSync(path, 'w');
  try {
    let left = bytes;
    while (left > 0) {
      const n = Math.min(left, chunk.length);
      const view = chunk.subarray(0, n);
      randomFillSync(view);
      hash.update(view);
      let off = 0;
      while (off < n) off += writeSync(fd, view, off, n - off);
      left -= n;
    }
    // On the disk before the first run: its write-back would otherwise compete with that run's receivers for
    // the disk (2 GiB takes 4 s at this machine's 535 MB/s).
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return { path, bytes, sha256: hash.digest('hex') };
}

export interface FileCheck {
  exists: boolean;
  bytes: number;
  sha256: string | null;
}

export async function checkFile(path: string): Promise<FileCheck> {
  let size: number;
  try {
    const st = await stat(path);
    if (!st.isFile()) return { exists: false, bytes: 0, sha256: null };
    size = st.size;
  } catch {
    return { exists: false, bytes: 0, sha256: null };
  }
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * 1024 * 1024 })) hash.update(chunk as Buffer);
  return { exists: true, bytes: size, sha256: hash.digest('hex') };
}
