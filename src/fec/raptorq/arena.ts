// Symbol storage and whole-symbol arithmetic for the RaptorQ solver: a row of "slots", each one
// symbol padded to 16 bytes, and the three row operations Gaussian elimination needs (XOR,
// multiply-add, scale). With the wasm SIMD kernel the slots live in a kernel instance of this
// arena's own (symbols stay there between calls, so no shared-memory juggling); without it, in a
// plain Uint8Array worked on by the JS kernel's multiply-add.

import { MUL } from '../gf256.js';
import { mulXor } from '../kernel-js.js';
import {
  KERNEL_DATA_OFFSET,
  KERNEL_MAX_PTRS,
  KERNEL_PTRS_OFFSET,
  newKernelInstance,
  wasmUnavailableReason,
  type KernelExports,
} from '../kernel-wasm.js';

const PAGE = 65536;

export type ArenaKernel = 'wasm' | 'js';

export class SymbolArena {
  /** Bytes between slots: symbolSize rounded up to 16 (the wasm kernel has no scalar tail). */
  private stride: number;
  readonly kernelName: 'wasm-simd' | 'js';
  private readonly x: KernelExports | null;
  private readonly base: number;
  private mem: Uint8Array;
  private words: Uint32Array;
  /** The kernel's offset list (xor_many, xor_to_many), over the instance's memory. */
  private ptrs: Int32Array;
  private capacity = 0;

  /** kernel: default the wasm SIMD kernel when available, else JS; 'wasm' insists (throws if unavailable). */
  constructor(private size: number, slots: number, kernel?: ArenaKernel) {
    this.stride = (size + 15) & ~15;
    this.x = kernel === 'js' ? null : newKernelInstance();
    if (kernel === 'wasm' && !this.x) {
      throw new Error(`raptorq: the wasm SIMD kernel is not available: ${wasmUnavailableReason() ?? 'unknown reason'}`);
    }
    this.kernelName = this.x ? 'wasm-simd' : 'js';
    this.base = this.x ? KERNEL_DATA_OFFSET : 0;
    this.mem = this.x ? new Uint8Array(this.x.memory.buffer) : new Uint8Array(0);
    this.words = new Uint32Array(this.mem.buffer, 0, this.mem.length >>> 2);
    this.ptrs = new Int32Array(this.mem.buffer, this.x ? KERNEL_PTRS_OFFSET : 0, this.x ? KERNEL_MAX_PTRS : 0);
    this.reserve(slots);
  }

  get symbolSize(): number {
    return this.size;
  }

  get slots(): number {
    return this.capacity;
  }

  /** Reuse this arena's memory (already paged in) for symbols of another size; contents are undefined. */
  reset(symbolSize: number, slots: number): void {
    this.size = symbolSize;
    this.stride = (symbolSize + 15) & ~15;
    this.capacity = Math.floor((this.mem.length - this.base) / this.stride);
    this.reserve(slots);
  }

  /** Room for at least `slots` slots; existing contents are kept. */
  reserve(slots: number): void {
    if (slots <= this.capacity) return;
    const bytes = this.base + slots * this.stride;
    if (this.x) {
      const have = this.x.memory.buffer.byteLength;
      if (bytes > have) this.x.memory.grow(Math.ceil((bytes - have) / PAGE));
      this.mem = new Uint8Array(this.x.memory.buffer);
      this.ptrs = new Int32Array(this.mem.buffer, KERNEL_PTRS_OFFSET, KERNEL_MAX_PTRS);
    } else {
      const grown = new Uint8Array(bytes);
      grown.set(this.mem);
      this.mem = grown;
    }
    this.words = new Uint32Array(this.mem.buffer, 0, this.mem.length >>> 2);
    this.capacity = slots;
  }

  private at(slot: number): number {
    return this.base + slot * this.stride;
  }

  /** Copies a symbol of exactly symbolSize bytes into a slot. */
  load(slot: number, data: Uint8Array): void {
    this.mem.set(data, this.at(slot));
  }

  zero(slot: number): void {
    const o = this.at(slot);
    this.mem.fill(0, o, o + this.stride);
  }

  copy(dst: number, src: number): void {
    const s = this.at(src);
    this.mem.copyWithin(this.at(dst), s, s + this.stride);
  }

  /** The slot's symbol in place (no copy); valid until the arena grows or is released. */
  view(slot: number): Uint8Array {
    const o = this.at(slot);
    return this.mem.subarray(o, o + this.size);
  }

  /** The slot's symbol as a fresh Uint8Array. */
  read(slot: number): Uint8Array {
    const o = this.at(slot);
    return this.mem.slice(o, o + this.size);
  }

  /** Copies the slot's symbol into out at outOffset. */
  readInto(slot: number, out: Uint8Array, outOffset: number): void {
    const o = this.at(slot);
    out.set(this.mem.subarray(o, o + this.size), outOffset);
  }

  /** slot dst ^= slot src */
  xor(dst: number, src: number): void {
    if (this.x) {
      this.x.xor(this.at(dst), this.at(src), this.stride);
      return;
    }
    const w = this.words;
    const d = this.at(dst) >>> 2;
    const s = this.at(src) >>> 2;
    for (let i = 0, n = this.stride >>> 2; i < n; i++) w[d + i]! ^= w[s + i]!;
  }

  /** slot dst ^= slot srcs[0] ^ ... ^ slot srcs[count-1]: one pass over dst (it must not be among srcs). */
  xorMany(dst: number, srcs: ArrayLike<number>, count: number): void {
    if (!this.x) {
      for (let i = 0; i < count; i++) this.xor(dst, srcs[i]!);
      return;
    }
    for (let from = 0; from < count; from += KERNEL_MAX_PTRS) {
      const n = Math.min(KERNEL_MAX_PTRS, count - from);
      for (let i = 0; i < n; i++) this.ptrs[i] = this.at(srcs[from + i]!);
      this.x.xor_many(this.at(dst), this.stride, KERNEL_PTRS_OFFSET, n);
    }
  }

  /** slot dsts[i] ^= slot src for i < count (distinct slots, src not among them): src is read once. */
  xorToMany(src: number, dsts: ArrayLike<number>, count: number): void {
    if (!this.x) {
      for (let i = 0; i < count; i++) this.xor(dsts[i]!, src);
      return;
    }
    for (let from = 0; from < count; from += KERNEL_MAX_PTRS) {
      const n = Math.min(KERNEL_MAX_PTRS, count - from);
      for (let i = 0; i < n; i++) this.ptrs[i] = this.at(dsts[from + i]!);
      this.x.xor_to_many(this.at(src), this.stride, KERNEL_PTRS_OFFSET, n);
    }
  }

  /**
   * One column of the HDPC running sum: slot z = alpha * z (alpha = 2) ^ slot y, then slots a and b ^= z.
   * -1 for y, a or b: none. Distinct slots.
   */
  alphaStep(z: number, y: number, a: number, b: number): void {
    if (this.x) {
      this.x.alpha_step(this.at(z), y < 0 ? 0 : this.at(y), a < 0 ? 0 : this.at(a), b < 0 ? 0 : this.at(b), this.stride);
      return;
    }
    this.scale(z, 2);
    if (y >= 0) this.xor(z, y);
    if (a >= 0) this.xor(a, z);
    if (b >= 0) this.xor(b, z);
  }

  /** slot dst += c * slot src (GF(256)) */
  mulXor(dst: number, src: number, c: number): void {
    if (c === 0) return;
    if (c === 1) this.xor(dst, src);
    else if (this.x) this.x.mul_xor(this.at(dst), this.at(src), this.stride, c);
    else mulXor(this.mem, this.at(dst), this.mem, this.at(src), this.stride, c);
  }

  /** slot = c * slot (GF(256)) */
  scale(slot: number, c: number): void {
    if (c === 1) return;
    if (this.x) {
      this.x.scale(this.at(slot), this.stride, c);
      return;
    }
    const row = MUL.subarray(c << 8, (c << 8) + 256);
    const o = this.at(slot);
    for (let i = o, end = o + this.stride; i < end; i++) this.mem[i] = row[this.mem[i]!]!;
  }
}

// Fresh memory is expensive: the first touch of every page is a page fault plus zeroing (measured
// 3.5 ms per MB on the dev VM, against 0.06 ms per MB for memory already in use), which for a
// K=8192 block of 1452-byte symbols costs more than the whole solve. So coders hand their arenas
// back when done (dispose(), or a decoder after decoding) and new coders take them from here.
const pool: SymbolArena[] = [];
/** Arenas kept for reuse (a decoder uses two); a K=8192 x 1452-byte block needs about 13 MB each. */
const POOL_SIZE = 8;

/** An arena for `slots` symbols of symbolSize bytes, reusing a released one of the same kernel if any. */
export function acquireArena(symbolSize: number, slots: number, kernel?: ArenaKernel): SymbolArena {
  const want = kernel === 'js' ? 'js' : kernel === 'wasm' ? 'wasm-simd' : null;
  for (let i = pool.length - 1; i >= 0; i--) {
    const a = pool[i]!;
    if (want === null ? a.kernelName === defaultKernelName() : a.kernelName === want) {
      pool.splice(i, 1);
      a.reset(symbolSize, slots);
      return a;
    }
  }
  return new SymbolArena(symbolSize, slots, kernel);
}

/** Hands an arena back for reuse. The caller must not use it afterwards. */
export function releaseArena(arena: SymbolArena): void {
  if (pool.length < POOL_SIZE && !pool.includes(arena)) pool.push(arena);
}

function defaultKernelName(): 'wasm-simd' | 'js' {
  return wasmUnavailableReason() === null ? 'wasm-simd' : 'js';
}
