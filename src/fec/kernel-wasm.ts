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

/**
 * The row operations RaptorQ uses (not the Cauchy codec) against the JS reference: xor and scale with every
 * coefficient, xor_many / xor_to_many over several symbols, alpha_step with and without each operand, on
 * lengths with and without a 64-byte tail.
 */
function selfCheckRowOps(x: KernelExports): boolean {
  const mem = new Uint8Array(x.memory.buffer);
  const ptrs = new Uint32Array(x.memory.buffer, PTRS, 8);
  const fill = (at: number, len: number, seed: number): Uint8Array => {
    const v = new Uint8Array(len);
    for (let i = 0; i < len; i++) v[i] = (i * 37 + seed * 11 + 5 + (i >> 4) * seed) & 255;
    mem.set(v, at);
    return v;
  };
  const same = (at: number, want: Uint8Array): boolean => want.every((v, i) => mem[at + i] === v);
  const xorOf = (...vs: Uint8Array[]): Uint8Array => vs.reduce((acc, v) => acc.map((b, i) => b ^ v[i]!));
  const times = (c: number, v: Uint8Array): Uint8Array => {
    const out = new Uint8Array(v.length);
    mulXor(out, 0, v, 0, v.length, c);
    return out;
  };
  for (let c = 0; c < 256; c++) {
    const len = 48;
    const src = fill(DATA, len, c);
    const dst = fill(DATA + len, len, c + 1);
    x.xor(DATA + len, DATA, len);
    x.scale(DATA + len, len, c);
    if (!same(DATA + len, times(c, xorOf(dst, src)))) return false;
  }
  for (const len of [16, 64, 112, 208]) {
    const slot = (i: number): number => DATA + i * len;
    const v = [0, 1, 2, 3, 4, 5].map((i) => fill(slot(i), len, i + 3));
    ptrs.set([slot(1), slot(2), slot(3), slot(4)]);
    x.xor_many(slot(0), len, PTRS, 4);
    if (!same(slot(0), xorOf(v[0]!, v[1]!, v[2]!, v[3]!, v[4]!))) return false;
    fill(slot(0), len, 3);
    ptrs.set([slot(1), slot(2), slot(3)]);
    x.xor_to_many(slot(5), len, PTRS, 3);
    if (![1, 2, 3].every((i) => same(slot(i), xorOf(v[i]!, v[5]!)))) return false;
    for (const [y, a, b] of [[4, 2, 3], [0, 2, 3], [4, 0, 0]] as const) {
      const z = fill(slot(1), len, 7);
      const yv = fill(slot(4), len, 8);
      const av = fill(slot(2), len, 9);
      const bv = fill(slot(3), len, 10);
      x.alpha_step(slot(1), y ? slot(y) : 0, a ? slot(a) : 0, b ? slot(b) : 0, len);
      const z2 = y ? xorOf(times(2, z), yv) : times(2, z);
      if (!same(slot(1), z2) || !same(slot(2), a ? xorOf(av, z2) : av) || !same(slot(3), b ? xorOf(bv, z2) : bv)) return false;
    }
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
