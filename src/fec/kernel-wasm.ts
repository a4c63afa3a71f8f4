// WebAssembly SIMD128 kernel (kernel.wat, assembled at build time). Loaded synchronously at module
// load; if kernel.wasm is missing, fails to compile (no SIMD) or fails its self-check, `wasmKernel`
// is null and the codec quietly uses the JS kernel instead.
//
// All data lives in the one wasm memory, shared by every Cauchy codec: calls are synchronous and
// the process is single-threaded, so each call may use the whole data area from DATA upwards.
// Coders that keep symbols in wasm memory between calls (RaptorQ) get an instance of their own
// from newKernelInstance().

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { nibbleTables } from './gf256.js';
import type { Kernel } from './kernel.js';

// Memory layout, mirrored in the header of kernel.wat.
const PTRS = 8192;
const COEFS = 9216;
const DATA = 16384;
/** Where symbol data may start in a kernel instance's memory (below: coefficient tables, scratch). */
export const KERNEL_DATA_OFFSET = DATA;
/** Where a kernel instance keeps the i32 offsets xor_many / xor_to_many read, and how many fit. */
export const KERNEL_PTRS_OFFSET = PTRS;
export const KERNEL_MAX_PTRS = 256;
const PAGE = 65536;

// tsconfig's lib is ES2023 without DOM and @types/node 20 has no WebAssembly typings, so declare
// the little this file uses (module scope: it shadows nothing if global typings appear later).
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { readonly exports: object };
};

/** A kernel instance's exports; every length is a multiple of 16 and every address 16-aligned. */
export interface KernelExports {
  memory: WasmMemory;
  /** dst ^= c * src */
  mul_xor(dst: number, src: number, len: number, c: number): void;
  /** dst ^= src */
  xor(dst: number, src: number, len: number): void;
  /** dst = c * dst */
  scale(dst: number, len: number, c: number): void;
  /** dst ^= the XOR of the n symbols whose offsets are the i32s at ptrs (n <= 256) */
  xor_many(dst: number, len: number, ptrs: number, n: number): void;
  /** each of the n symbols whose offsets are the i32s at ptrs ^= src (n <= 256) */
  xor_to_many(src: number, len: number, ptrs: number, n: number): void;
  /** z = 2 * z ^ y; a ^= z; b ^= z (GF(256); offset 0 for y, a or b: none) */
  alpha_step(z: number, y: number, a: number, b: number, len: number): void;
  dot(dst: number, len: number, ptrs: number, coefs: number, n: number): void;
  dot4(d0: number, d1: number, d2: number, d3: number, len: number, ptrs: number, coefs: number, n: number): void;
}

/** Symbol slots are padded to 16 bytes so the kernel never needs a scalar tail. */
function pad16(n: number): number {
  return (n + 15) & ~15;
}

class WasmKernel implements Kernel {
  readonly name = 'wasm-simd' as const;
  private mem: Uint8Array;
  private ptrs: Uint32Array;

  constructor(private readonly x: KernelExports) {
    this.mem = new Uint8Array(x.memory.buffer);
    this.ptrs = new Uint32Array(x.memory.buffer, PTRS, 256);
    this.mem.set(nibbleTables(), 0);
  }

  /** Make sure [0, bytes) is addressable; views are renewed because grow() detaches the old buffer. */
  private reserve(bytes: number): void {
    const have = this.x.memory.buffer.byteLength;
    if (bytes > have) this.x.memory.grow(Math.ceil((bytes - have) / PAGE));
    if (this.mem.buffer !== this.x.memory.buffer) {
      this.mem = new Uint8Array(this.x.memory.buffer);
      this.ptrs = new Uint32Array(this.x.memory.buffer, PTRS, 256);
    }
  }

  /**
   * Output slot dsts[o] = sum_t coefs[o*n + t] * term t, the n terms being at this.ptrs[0..n).
   * Four outputs per dot4 call while at least four remain (shared source loads), then one each.
   */
  private run(dsts: readonly number[], stride: number, n: number, coefs: Uint8Array): void {
    const mem = this.mem;
    let o = 0;
    for (; o + 4 <= dsts.length; o += 4) {
      for (let q = 0; q < 4; q++) {
        const row = (o + q) * n;
        for (let t = 0; t < n; t++) mem[COEFS + 4 * t + q] = coefs[row + t]!;
      }
      this.x.dot4(dsts[o]!, dsts[o + 1]!, dsts[o + 2]!, dsts[o + 3]!, stride, PTRS, COEFS, n);
    }
    for (; o < dsts.length; o++) {
      mem.set(coefs.subarray(o * n, o * n + n), COEFS);
      this.x.dot(dsts[o]!, stride, PTRS, COEFS, n);
    }
  }

  encode(k: number, S: number, block: Uint8Array, rows: Uint8Array, count: number): Uint8Array[] {
    const stride = pad16(S);
    this.reserve(DATA + (k + count) * stride);
    const mem = this.mem;
    // The block goes into wasm memory once per call; every parity is computed from that copy.
    if (stride === S) mem.set(block, DATA);
    else for (let j = 0; j < k; j++) mem.set(block.subarray(j * S, j * S + S), DATA + j * stride);
    for (let j = 0; j < k; j++) this.ptrs[j] = DATA + j * stride;
    const dsts: number[] = [];
    for (let i = 0; i < count; i++) dsts.push(DATA + (k + i) * stride);
    this.run(dsts, stride, k, rows);
    return dsts.map((d) => mem.slice(d, d + S));
  }

  combine(S: number, inputs: readonly Uint8Array[], coefs: Uint8Array, missing: readonly number[], out: Uint8Array): void {
    const n = inputs.length;
    const stride = pad16(S);
    this.reserve(DATA + (n + missing.length) * stride);
    const mem = this.mem;
    for (let t = 0; t < n; t++) {
      mem.set(inputs[t]!, DATA + t * stride);
      this.ptrs[t] = DATA + t * stride;
    }
    const dsts: number[] = [];
    for (let m = 0; m < missing.length; m++) dsts.push(DATA + (n + m) * stride);
    this.run(dsts, stride, n, coefs);
    for (let m = 0; m < missing.length; m++) out.set(mem.subarray(dsts[m]!, dsts[m]! + S), missing[m]! * S);
  }
}

let unavailableReason: string | null = null;
let kernelModule: object | null = null;
let loaded: WasmKernel | null | undefined;

function load(): WasmKernel | null {
  try {
    const bytes = readFileSync(new URL('./kernel.wasm', import.meta.url));
    kernelModule = new WebAssembly.Module(bytes);
    const exports = new WebAssembly.Instance(kernelModule, {}).exports as unknown as KernelExports;
    const kernel = new WasmKernel(exports);
    if (kernelTranscript(kernel, exports) === KERNEL_KNOWN_ANSWER) return kernel;
    unavailableReason = 'kernel.wasm disagrees with the JS kernel (self-check failed)';
  } catch (err) {
    unavailableReason = err instanceof Error ? err.message : String(err);
  }
  return null;
}

/** The row operations the known-answer check runs: a kernel instance's exports, or (tests) an emulation of them. */
export type CheckedRowOps = Pick<KernelExports, 'memory' | 'xor' | 'scale' | 'xor_many' | 'xor_to_many' | 'alpha_step'>;

/**
 * The JS reference kernel's transcript (kernelTranscript with jsKernel; test/fec/kernel-check.test.ts computes it
 * afresh, so this cannot drift from the reference).
 */
export const KERNEL_KNOWN_ANSWER = '40ac09dc35c6e95c2fd3e244dd177f32fac14518ef499b91dad14f40d2e6a074';

/**
 * SHA-256 (hex) of the outputs of a fixed run of a kernel on fixed data: Cauchy encoding with every coefficient,
 * xor and scale with every coefficient, xor_many / xor_to_many over several symbols, alpha_step with and without
 * each operand, on lengths with and without a 64-byte tail. A stale or miscompiled kernel.wasm must never corrupt
 * an image: its transcript must be the JS reference's (KERNEL_KNOWN_ANSWER). Known answers, not the reference run
 * alongside: the reference's cold JavaScript made the check 8.5 ms, a stall in the pacing at a send's first loss.
 */
export function kernelTranscript(kernel: Kernel, x: CheckedRowOps): string {
  const hash = createHash('sha256');
  const k = 256;
  const S = 37; // odd: exercises slot padding
  const block = new Uint8Array(k * S);
  for (let i = 0; i < block.length; i++) block[i] = (i * 131 + (i >> 8) * 17 + 7) & 255;
  const count = 5; // one dot4 group and one single dot
  const rows = new Uint8Array(count * k);
  for (let i = 0; i < rows.length; i++) rows[i] = (i * 97 + (i >> 8)) & 255; // each row: all of 0..255
  for (const parity of kernel.encode(k, S, block, rows, count)) hash.update(parity);

  const mem = new Uint8Array(x.memory.buffer);
  const ptrs = new Uint32Array(x.memory.buffer, PTRS, 8);
  // Fixed bytes (no two windows alike), copied rather than computed: cold JavaScript loops cost most of the check.
  const pattern = block.subarray(0, 8192);
  const fill = (at: number, len: number, seed: number): void => mem.set(pattern.subarray(seed * 29, seed * 29 + len), at);
  const record = (at: number, len: number): void => void hash.update(mem.subarray(at, at + len));
  for (let c = 0; c < 256; c++) {
    const len = 48;
    fill(DATA, len, c);
    fill(DATA + len, len, c + 1);
    x.xor(DATA + len, DATA, len);
    x.scale(DATA + len, len, c);
    record(DATA + len, len);
  }
  for (const len of [16, 64, 112, 208]) {
    const slot = (i: number): number => DATA + i * len;
    for (let i = 0; i < 6; i++) fill(slot(i), len, i + 3);
    ptrs.set([slot(1), slot(2), slot(3), slot(4)]);
    x.xor_many(slot(0), len, PTRS, 4);
    record(slot(0), len);
    ptrs.set([slot(1), slot(2), slot(3)]);
    x.xor_to_many(slot(5), len, PTRS, 3);
    record(slot(1), 3 * len);
    for (const [y, a, b] of [[4, 2, 3], [0, 2, 3], [4, 0, 0]] as const) {
      for (let i = 1; i <= 4; i++) fill(slot(i), len, i + 6);
      x.alpha_step(slot(1), y ? slot(y) : 0, a ? slot(a) : 0, b ? slot(b) : 0, len);
      record(slot(1), 3 * len);
    }
  }
  return hash.digest('hex');
}

/**
 * The wasm SIMD kernel, or null where it cannot be used. Compiled and self-checked on first use, not at
 * import: a session that loses nothing never codes, and every process start pays for what it loads.
 */
export function wasmKernel(): Kernel | null {
  if (loaded === undefined) loaded = load();
  return loaded;
}

/** Why the wasm kernel is not in use (null when it is): for diagnostics and tests, never thrown. */
export function wasmUnavailableReason(): string | null {
  wasmKernel();
  return unavailableReason;
}

/**
 * A fresh kernel instance with its own memory, coefficient tables in place, for a coder that keeps
 * symbols in wasm memory across calls. Null when the wasm kernel is unavailable (see
 * wasmUnavailableReason); the caller then uses the JS row operations.
 */
export function newKernelInstance(): KernelExports | null {
  if (!wasmKernel() || !kernelModule) return null;
  const x = new WebAssembly.Instance(kernelModule, {}).exports as unknown as KernelExports;
  new Uint8Array(x.memory.buffer).set((nibbles ??= nibbleTables()), 0);
  return x;
}
let nibbles: Uint8Array | undefined;
