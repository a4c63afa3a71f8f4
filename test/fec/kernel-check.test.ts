// The wasm kernel's self-check: known answers from the JS reference, computed afresh here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsKernel, mulXor } from '../../src/fec/kernel-js.js';
import { KERNEL_KNOWN_ANSWER, kernelTranscript, newKernelInstance, wasmUnavailableReason, wasmKernel, type CheckedRowOps } from '../../src/fec/kernel-wasm.js';

/** The row operations of kernel.wat (their documented semantics), in JS over a memory of their own. */
function referenceRowOps(): CheckedRowOps {
  const memory = { buffer: new ArrayBuffer(65536), grow: () => -1 };
  const mem = new Uint8Array(memory.buffer);
  const offsets = (ptrs: number, n: number): number[] => [...new Int32Array(memory.buffer, ptrs, n)];
  return {
    memory,
    xor: (dst, src, len) => mulXor(mem, dst, mem, src, len, 1),
    scale: (dst, len, c) => {
      const copy = mem.slice(dst, dst + len);
      mem.fill(0, dst, dst + len);
      mulXor(mem, dst, copy, 0, len, c);
    },
    xor_many: (dst, len, ptrs, n) => offsets(ptrs, n).forEach((src) => mulXor(mem, dst, mem, src, len, 1)),
    xor_to_many: (src, len, ptrs, n) => offsets(ptrs, n).forEach((dst) => mulXor(mem, dst, mem, src, len, 1)),
    alpha_step: (z, y, a, b, len) => {
      const doubled = new Uint8Array(len);
      mulXor(doubled, 0, mem, z, len, 2);
      if (y) mulXor(doubled, 0, mem, y, len, 1);
      mem.set(doubled, z);
      if (a) mulXor(mem, a, mem, z, len, 1);
      if (b) mulXor(mem, b, mem, z, len, 1);
    },
  };
}

test('the known answer is the JS reference kernel\'s transcript', () => {
  assert.equal(kernelTranscript(jsKernel, referenceRowOps()), KERNEL_KNOWN_ANSWER);
});

test('the wasm kernel passes its self-check, and a kernel that is wrong for one coefficient or one operation fails it', (t) => {
  if (wasmUnavailableReason() !== null) {
    t.skip(`wasm kernel unavailable: ${wasmUnavailableReason()}`);
    return;
  }
  const kernel = wasmKernel()!;
  const x = newKernelInstance()!;
  assert.equal(kernelTranscript(kernel, x), KERNEL_KNOWN_ANSWER);
  // One coefficient wrong in scale.
  assert.notEqual(kernelTranscript(kernel, { ...x, memory: x.memory, scale: (dst, len, c) => x.scale(dst, len, c === 173 ? 174 : c) }), KERNEL_KNOWN_ANSWER);
  // alpha_step ignoring its y operand.
  assert.notEqual(kernelTranscript(kernel, { ...x, memory: x.memory, alpha_step: (z, _y, a, b, len) => x.alpha_step(z, 0, a, b, len) }), KERNEL_KNOWN_ANSWER);
  // xor_to_many reaching one symbol fewer.
  assert.notEqual(kernelTranscript(kernel, { ...x, memory: x.memory, xor_to_many: (src, len, ptrs, n) => x.xor_to_many(src, len, ptrs, n - 1) }), KERNEL_KNOWN_ANSWER);
  // An encoder wrong in one byte of one parity symbol.
  const wrongEncode = { ...kernel, encode: (...args: Parameters<typeof kernel.encode>) => kernel.encode(...args).map((p, i) => (i === 4 ? p.map((v, j) => (j === 36 ? v ^ 1 : v)) : p)) };
  assert.notEqual(kernelTranscript(wrongEncode, x), KERNEL_KNOWN_ANSWER);
});
