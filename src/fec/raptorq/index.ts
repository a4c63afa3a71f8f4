// RaptorQ (RFC 6330) fountain code for large source blocks. See docs/fec.md ("RaptorQ").
export { RaptorQEncoder, type RaptorQOptions } from './encoder.js';
export { RaptorQDecoder, type RaptorQDecodeStats } from './decoder.js';
export { MAX_ESI, MAX_SOURCE_SYMBOLS, MAX_SYMBOL_SIZE, raptorqParams, type RaptorQParams } from './params.js';
