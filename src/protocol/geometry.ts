// How an image is cut into blocks of source symbols. Shared by sender, receiver, server and simulator.
import { FEC_SCHEME_NAMES, type FecScheme, maxBlockSymbols } from '../fec/scheme.js';

export interface Geometry {
  /** The code that protects each block. */
  readonly fec: FecScheme;
  readonly imageSize: number;
  readonly symbolSize: number;
  /** Source symbols in a full block (k). */
  readonly blockSymbols: number;
  readonly blockBytes: number;
  readonly blockCount: number;
}

export function makeGeometry(fec: FecScheme, imageSize: number, symbolSize: number, blockSymbols: number): Geometry {
  if (!Number.isSafeInteger(imageSize) || imageSize < 0) throw new RangeError(`bad image size ${imageSize}`);
  if (!Number.isInteger(symbolSize) || symbolSize < 1 || symbolSize > 65535) {
    throw new RangeError(`symbol size must be 1..65535 bytes, got ${symbolSize}`);
  }
  const max = maxBlockSymbols(fec);
  if (!Number.isInteger(blockSymbols) || blockSymbols < 1 || blockSymbols > max) {
    throw new RangeError(`block size must be 1..${max} symbols with ${FEC_SCHEME_NAMES[fec]}, got ${blockSymbols}`);
  }
  const blockBytes = symbolSize * blockSymbols;
  return { fec, imageSize, symbolSize, blockSymbols, blockBytes, blockCount: Math.ceil(imageSize / blockBytes) };
}

/** Bytes of image data in block b (the last block may be short). */
export function blockLength(g: Geometry, block: number): number {
  return Math.min(g.blockBytes, g.imageSize - block * g.blockBytes);
}

/** Source symbols in block b (k' <= k for the last block). */
export function sourceSymbols(g: Geometry, block: number): number {
  return Math.ceil(blockLength(g, block) / g.symbolSize);
}

/** Wire length of source symbol `id` of block b: full symbols, except the image's very last one. */
export function sourceSymbolLength(g: Geometry, block: number, id: number): number {
  return Math.min(g.symbolSize, blockLength(g, block) - id * g.symbolSize);
}
