// The content library: imports, stores and serves image content. Database-free; the server keeps the records.
export { ContentError, type ContentErrorCode } from './errors.js';
export { detectFormat, IMAGE_FORMATS, type ImageFormat } from './formats.js';
export type { IsoInfo } from './iso.js';
export { openImageStream } from './stream.js';
export { parseWimInfo, type WimImageInfo, type WimInfo } from './wim.js';
export { ContentStore, type ContentInfo, type ImportOptions, type ImportResult, type ReadOptions } from './store.js';
