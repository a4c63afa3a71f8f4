// WebAssembly SIMD128 kernel (kernel.wat, assembled at build time). Loaded synchronously at module
// load; if kernel.wasm is missing, fails to compile (no SIMD) or fails its self-check, `wasmKernel`
// is null and the codec quietly uses the JS kernel instead.
//
// All data lives in the one wasm memory, shared by every Cauchy codec: calls are synchronous and
// the process is single-threaded, so each call may use the whole data area from DATA upwards.
// Coders that keep symbols in wasm memory between calls (RaptorQ) get an instance of their own
// from newKernelInstance().

import { readFileSync } from 'node:fs';
import { nibbleTables } from './gf256.js';
import type { Kernel } from './kernel.js';
import { jsKernel, mulXor } from './kernel-js.js';

// Memory layout, mirrored in the header of kernel.wat.
const PTRS = 8192;
const COEFS = 9216;
const DATA = 16384;
/** Where symbol data may start in a kernel instance's memory (below: coefficient tables, scratch). */
export const KERNEL_DATA_OFFSET = DATA;
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
    if (selfCheck(kernel) && selfCheckRowOps(exports)) return kernel;
    unavailableReason = 'kernel.wasm disagrees with the JS kernel (self-check failed)';
  } catch (err) {
    unavailableReason = err instanceof Error ? err.message : String(err);
  }
  return null;
}

/** A stale or miscompiled kernel.wasm must never corrupt an image: compare with JS on every coefficient. */
function selfCheck(kernel: Kernel): boolean {
  const k = 256;
  const S = 37; // odd: exercises slot padding
  const block = new Uint8Array(k * S);
  for (let i = 0; i < block.length; i++) block[i] = (i * 131 + (i >> 8) * 17 + 7) & 255;
  const count = 5; // one dot4 group and one single dot
  const rows = new Uint8Array(count * k);
  for (let i = 0; i < rows.length; i++) rows[i] = (i * 97 + (i >> 8)) & 255; // each row: all of 0..255
  const a = kernel.encode(k, S, block, rows, count);
  const b = jsKernel.encode(k, S, block, rows, count);
  return a.every((p, i) => p.length === S && p.every((v, x) => v === b[i]![x]));
}

/** xor and scale (used by RaptorQ, not by the Cauchy codec) against the JS reference, every coefficient. */
function selfCheckRowOps(x: KernelExports): boolean {
  const len = 48;
  const mem = new Uint8Array(x.memory.buffer);
  const a = DATA;
  const b = DATA + len;
  for (let c = 0; c < 256; c++) {
    const src = new Uint8Array(len);
    const dst = new Uint8Array(len);
    for (let i = 0; i < len; i++) {
      src[i] = (i * 37 + c * 11 + 5) & 255;
      dst[i] = (i * 101 + c * 7 + 3) & 255;
    }
    mem.set(src, a);
    mem.set(dst, b);
    x.xor(b, a, len);
    x.scale(b, len, c);
    const want = dst.map((v, i) => v ^ src[i]!);
    const scaled = new Uint8Array(len);
    mulXor(scaled, 0, want, 0, len, c);
    for (let i = 0; i < len; i++) if (mem[b + i] !== scaled[i]) return false;
  }
  return true;
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
