;; GF(2^8) multiply-accumulate kernel for the fleetcast erasure code, WebAssembly SIMD128.
;; Written by hand; assembled by scripts/build-wasm.mjs (wabt) into dist/src/fec/kernel.wasm.
;;
;; Split-nibble tables: c * b = lo_c[b & 15] ^ hi_c[b >> 4], so one i8x16.swizzle per nibble
;; multiplies 16 bytes by c at once. The host (kernel-wasm.ts) owns the memory layout:
;;   [0, 8192)       32 bytes per coefficient c at 32*c: lo_c (16 bytes) then hi_c (16 bytes)
;;   [8192, 9216)    ptrs: up to 256 i32 byte offsets of the dot-product terms (or of xor_many's
;;                   sources, xor_to_many's destinations)
;;   [9216, 10240)   coefs: up to 256 coefficient bytes (dot) or packed i32 quads (dot4), one per term
;;   [16384, ...)    symbol slots, each padded to a multiple of 16 bytes
;; Lengths are multiples of 16: the host pads every slot, so there is no scalar tail (a 1452-byte
;; symbol would otherwise spend 12 bytes of 1452 in a loop many times slower per byte); the padding
;; lanes compute garbage that is never copied out. Lanes never interact, so this is safe.
(module
  (memory (export "memory") 1)

  ;; dst[0..len) ^= c * src[0..len); len % 16 == 0.
  (func $mul_xor (export "mul_xor") (param $dst i32) (param $src i32) (param $len i32) (param $c i32)
    (local $end i32) (local $end2 i32)
    (local $lo v128) (local $hi v128) (local $mask v128) (local $v v128) (local $w v128)
    (local.set $mask (v128.const i32x4 0x0f0f0f0f 0x0f0f0f0f 0x0f0f0f0f 0x0f0f0f0f))
    (local.set $lo (v128.load (i32.shl (local.get $c) (i32.const 5))))
    (local.set $hi (v128.load offset=16 (i32.shl (local.get $c) (i32.const 5))))
    (local.set $end (i32.add (local.get $src) (local.get $len)))
    ;; Main loop: 32 bytes per turn (two independent vectors give the CPU more to overlap).
    (local.set $end2 (i32.add (local.get $src) (i32.and (local.get $len) (i32.const -32))))
    (block $done2
      (loop $two
        (br_if $done2 (i32.ge_u (local.get $src) (local.get $end2)))
        (local.set $v (v128.load (local.get $src)))
        (local.set $w (v128.load offset=16 (local.get $src)))
        (v128.store (local.get $dst)
          (v128.xor (v128.load (local.get $dst))
            (v128.xor
              (i8x16.swizzle (local.get $lo) (v128.and (local.get $v) (local.get $mask)))
              ;; i16x8 shift + mask: x86 has no byte shift, this is the cheap way to get b >> 4.
              (i8x16.swizzle (local.get $hi) (v128.and (i16x8.shr_u (local.get $v) (i32.const 4)) (local.get $mask))))))
        (v128.store offset=16 (local.get $dst)
          (v128.xor (v128.load offset=16 (local.get $dst))
            (v128.xor
              (i8x16.swizzle (local.get $lo) (v128.and (local.get $w) (local.get $mask)))
              (i8x16.swizzle (local.get $hi) (v128.and (i16x8.shr_u (local.get $w) (i32.const 4)) (local.get $mask))))))
        (local.set $src (i32.add (local.get $src) (i32.const 32)))
        (local.set $dst (i32.add (local.get $dst) (i32.const 32)))
        (br $two)))
    ;; At most one 16-byte vector left.
    (if (i32.lt_u (local.get $src) (local.get $end))
      (then
        (local.set $v (v128.load (local.get $src)))
        (v128.store (local.get $dst)
          (v128.xor (v128.load (local.get $dst))
            (v128.xor
              (i8x16.swizzle (local.get $lo) (v128.and (local.get $v) (local.get $mask)))
              (i8x16.swizzle (local.get $hi) (v128.and (i16x8.shr_u (local.get $v) (i32.const 4)) (local.get $mask)))))))))

  ;; dst[0..len) ^= src[0..len); len % 16 == 0. The coefficient-1 case of mul_xor without the table
  ;; lookups: most RaptorQ row operations are binary (LT and LDPC rows), and a plain XOR is about
  ;; three times cheaper than a multiply-add.
  (func $xor (export "xor") (param $dst i32) (param $src i32) (param $len i32)
    (local $end i32) (local $end2 i32)
    (local.set $end (i32.add (local.get $src) (local.get $len)))
    (local.set $end2 (i32.add (local.get $src) (i32.and (local.get $len) (i32.const -32))))
    (block $done2
      (loop $two
        (br_if $done2 (i32.ge_u (local.get $src) (local.get $end2)))
        (v128.store (local.get $dst) (v128.xor (v128.load (local.get $dst)) (v128.load (local.get $src))))
        (v128.store offset=16 (local.get $dst)
          (v128.xor (v128.load offset=16 (local.get $dst)) (v128.load offset=16 (local.get $src))))
        (local.set $src (i32.add (local.get $src) (i32.const 32)))
        (local.set $dst (i32.add (local.get $dst) (i32.const 32)))
        (br $two)))
    (if (i32.lt_u (local.get $src) (local.get $end))
      (then
        (v128.store (local.get $dst) (v128.xor (v128.load (local.get $dst)) (v128.load (local.get $src)))))))

  ;; dst[0..len) ^= mem[p_0 ..+len) ^ ... ^ mem[p_{n-1} ..+len), the n offsets p_j being the i32s at
  ;; $ptrs; len % 16 == 0, n <= 256. One pass: dst is read and written once for all n sources, where
  ;; n xor calls would read and write it n times (RaptorQ's back-substitution: a row and its ~7
  ;; known columns; measured 1.6-2.5x faster than separate xors on 9 KB symbols).
  (func $xor_many (export "xor_many") (param $dst i32) (param $len i32) (param $ptrs i32) (param $n i32)
    (local $off i32) (local $len4 i32) (local $j i32) (local $pend i32) (local $p i32)
    (local $a v128) (local $b v128) (local $c v128) (local $d v128)
    (local.set $pend (i32.add (local.get $ptrs) (i32.shl (local.get $n) (i32.const 2))))
    (local.set $len4 (i32.and (local.get $len) (i32.const -64)))
    (block $done4
      (loop $chunk4
        (br_if $done4 (i32.ge_u (local.get $off) (local.get $len4)))
        (local.set $p (i32.add (local.get $dst) (local.get $off)))
        (local.set $a (v128.load (local.get $p)))
        (local.set $b (v128.load offset=16 (local.get $p)))
        (local.set $c (v128.load offset=32 (local.get $p)))
        (local.set $d (v128.load offset=48 (local.get $p)))
        (local.set $j (local.get $ptrs))
        (block $srcs4done
          (loop $srcs4
            (br_if $srcs4done (i32.ge_u (local.get $j) (local.get $pend)))
            (local.set $p (i32.add (i32.load (local.get $j)) (local.get $off)))
            (local.set $a (v128.xor (local.get $a) (v128.load (local.get $p))))
            (local.set $b (v128.xor (local.get $b) (v128.load offset=16 (local.get $p))))
            (local.set $c (v128.xor (local.get $c) (v128.load offset=32 (local.get $p))))
            (local.set $d (v128.xor (local.get $d) (v128.load offset=48 (local.get $p))))
            (local.set $j (i32.add (local.get $j) (i32.const 4)))
            (br $srcs4)))
        (local.set $p (i32.add (local.get $dst) (local.get $off)))
        (v128.store (local.get $p) (local.get $a))
        (v128.store offset=16 (local.get $p) (local.get $b))
        (v128.store offset=32 (local.get $p) (local.get $c))
        (v128.store offset=48 (local.get $p) (local.get $d))
        (local.set $off (i32.add (local.get $off) (i32.const 64)))
        (br $chunk4)))
    (block $done
      (loop $chunk
        (br_if $done (i32.ge_u (local.get $off) (local.get $len)))
        (local.set $a (v128.load (i32.add (local.get $dst) (local.get $off))))
        (local.set $j (local.get $ptrs))
        (block $srcsdone
          (loop $srcs
            (br_if $srcsdone (i32.ge_u (local.get $j) (local.get $pend)))
            (local.set $a (v128.xor (local.get $a) (v128.load (i32.add (i32.load (local.get $j)) (local.get $off)))))
            (local.set $j (i32.add (local.get $j) (i32.const 4)))
            (br $srcs)))
        (v128.store (i32.add (local.get $dst) (local.get $off)) (local.get $a))
        (local.set $off (i32.add (local.get $off) (i32.const 16)))
        (br $chunk))))

  ;; mem[p_j ..+len) ^= src[0..len) for the n offsets p_j at $ptrs (distinct from src); len % 16 == 0,
  ;; n <= 256. The source is read once per 64 bytes for all n destinations (RaptorQ's peeling XORs a
  ;; pivot row into every row holding its column).
  (func $xor_to_many (export "xor_to_many") (param $src i32) (param $len i32) (param $ptrs i32) (param $n i32)
    (local $off i32) (local $len4 i32) (local $j i32) (local $pend i32) (local $p i32)
    (local $a v128) (local $b v128) (local $c v128) (local $d v128)
    (local.set $pend (i32.add (local.get $ptrs) (i32.shl (local.get $n) (i32.const 2))))
    (local.set $len4 (i32.and (local.get $len) (i32.const -64)))
    (block $done4
      (loop $chunk4
        (br_if $done4 (i32.ge_u (local.get $off) (local.get $len4)))
        (local.set $p (i32.add (local.get $src) (local.get $off)))
        (local.set $a (v128.load (local.get $p)))
        (local.set $b (v128.load offset=16 (local.get $p)))
        (local.set $c (v128.load offset=32 (local.get $p)))
        (local.set $d (v128.load offset=48 (local.get $p)))
        (local.set $j (local.get $ptrs))
        (block $dsts4done
          (loop $dsts4
            (br_if $dsts4done (i32.ge_u (local.get $j) (local.get $pend)))
            (local.set $p (i32.add (i32.load (local.get $j)) (local.get $off)))
            (v128.store (local.get $p) (v128.xor (v128.load (local.get $p)) (local.get $a)))
            (v128.store offset=16 (local.get $p) (v128.xor (v128.load offset=16 (local.get $p)) (local.get $b)))
            (v128.store offset=32 (local.get $p) (v128.xor (v128.load offset=32 (local.get $p)) (local.get $c)))
            (v128.store offset=48 (local.get $p) (v128.xor (v128.load offset=48 (local.get $p)) (local.get $d)))
            (local.set $j (i32.add (local.get $j) (i32.const 4)))
            (br $dsts4)))
        (local.set $off (i32.add (local.get $off) (i32.const 64)))
        (br $chunk4)))
    (block $done
      (loop $chunk
        (br_if $done (i32.ge_u (local.get $off) (local.get $len)))
        (local.set $a (v128.load (i32.add (local.get $src) (local.get $off))))
        (local.set $j (local.get $ptrs))
        (block $dstsdone
          (loop $dsts
            (br_if $dstsdone (i32.ge_u (local.get $j) (local.get $pend)))
            (local.set $p (i32.add (i32.load (local.get $j)) (local.get $off)))
            (v128.store (local.get $p) (v128.xor (v128.load (local.get $p)) (local.get $a)))
            (local.set $j (i32.add (local.get $j) (i32.const 4)))
            (br $dsts)))
        (local.set $off (i32.add (local.get $off) (i32.const 16)))
        (br $chunk))))

  ;; One column of RaptorQ's HDPC running sum, fused: z = alpha * z ^ y, then a ^= z and b ^= z
  ;; (alpha = 2, polynomial 0x11D: a byte doubles by v+v, and 0x1D folds in where its top bit was
  ;; set). Offset 0 (the coefficient tables, never a symbol) for y, a or b means "none". len % 16 == 0.
  ;; One pass instead of a scale (two table lookups per byte) and three xors.
  (func $alpha_step (export "alpha_step") (param $z i32) (param $y i32) (param $a i32) (param $b i32) (param $len i32)
    (local $off i32) (local $v v128) (local $poly v128)
    (local.set $poly (v128.const i32x4 0x1d1d1d1d 0x1d1d1d1d 0x1d1d1d1d 0x1d1d1d1d))
    (block $done
      (loop $vec
        (br_if $done (i32.ge_u (local.get $off) (local.get $len)))
        (local.set $v (v128.load (i32.add (local.get $z) (local.get $off))))
        (local.set $v
          (v128.xor (i8x16.add (local.get $v) (local.get $v))
            (v128.and (i8x16.lt_s (local.get $v) (v128.const i32x4 0 0 0 0)) (local.get $poly))))
        (if (local.get $y)
          (then (local.set $v (v128.xor (local.get $v) (v128.load (i32.add (local.get $y) (local.get $off)))))))
        (v128.store (i32.add (local.get $z) (local.get $off)) (local.get $v))
        (if (local.get $a)
          (then (v128.store (i32.add (local.get $a) (local.get $off))
            (v128.xor (v128.load (i32.add (local.get $a) (local.get $off))) (local.get $v)))))
        (if (local.get $b)
          (then (v128.store (i32.add (local.get $b) (local.get $off))
            (v128.xor (v128.load (i32.add (local.get $b) (local.get $off))) (local.get $v)))))
        (local.set $off (i32.add (local.get $off) (i32.const 16)))
        (br $vec))))

  ;; dst[0..len) = c * dst[0..len) in place; len % 16 == 0. Normalises a pivot row in Gaussian
  ;; elimination (RaptorQ's dense phase).
  (func $scale (export "scale") (param $dst i32) (param $len i32) (param $c i32)
    (local $end i32) (local $lo v128) (local $hi v128) (local $mask v128) (local $v v128)
    (local.set $mask (v128.const i32x4 0x0f0f0f0f 0x0f0f0f0f 0x0f0f0f0f 0x0f0f0f0f))
    (local.set $lo (v128.load (i32.shl (local.get $c) (i32.const 5))))
    (local.set $hi (v128.load offset=16 (i32.shl (local.get $c) (i32.const 5))))
    (local.set $end (i32.add (local.get $dst) (local.get $len)))
    (block $done
      (loop $vec
        (br_if $done (i32.ge_u (local.get $dst) (local.get $end)))
        (local.set $v (v128.load (local.get $dst)))
        (v128.store (local.get $dst)
          (v128.xor
            (i8x16.swizzle (local.get $lo) (v128.and (local.get $v) (local.get $mask)))
            (i8x16.swizzle (local.get $hi) (v128.and (i16x8.shr_u (local.get $v) (i32.const 4)) (local.get $mask)))))
        (local.set $dst (i32.add (local.get $dst) (i32.const 16)))
        (br $vec))))

  ;; dst[0..len) = sum_{j<n} coefs[j] * mem[ptrs[j] ..+len); len % 16 == 0, n <= 256.
  ;; One call per output symbol: encode and decode each need just one dot per symbol they produce.
  (func $dot (export "dot") (param $dst i32) (param $len i32) (param $ptrs i32) (param $coefs i32) (param $n i32)
    (local $j i32) (local $c i32)
    (memory.fill (local.get $dst) (i32.const 0) (local.get $len))
    (block $done
      (loop $terms
        (br_if $done (i32.ge_u (local.get $j) (local.get $n)))
        (local.set $c (i32.load8_u (i32.add (local.get $coefs) (local.get $j))))
        ;; A zero coefficient contributes nothing.
        (if (local.get $c)
          (then
            (call $mul_xor (local.get $dst)
              (i32.load (i32.add (local.get $ptrs) (i32.shl (local.get $j) (i32.const 2))))
              (local.get $len) (local.get $c))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $terms))))

  ;; Four outputs per pass over the source: d_o ^= c_o * src with c_o = byte o of $cs; len % 16 == 0.
  ;; The source load and nibble split are shared by four outputs, which saves about a fifth of the
  ;; instructions per output byte (measured ~17% faster than four mul_xor passes). Not unrolled:
  ;; eight tables plus temporaries already fill the 16 x86 vector registers V8 allocates from.
  (func $mul_xor4 (export "mul_xor4") (param $d0 i32) (param $d1 i32) (param $d2 i32) (param $d3 i32) (param $src i32) (param $len i32) (param $cs i32)
    (local $end i32) (local $t i32)
    (local $lo0 v128) (local $hi0 v128) (local $lo1 v128) (local $hi1 v128)
    (local $lo2 v128) (local $hi2 v128) (local $lo3 v128) (local $hi3 v128)
    (local $mask v128) (local $v v128) (local $l v128) (local $h v128)
    (local.set $mask (v128.const i32x4 0x0f0f0f0f 0x0f0f0f0f 0x0f0f0f0f 0x0f0f0f0f))
    (local.set $t (i32.shl (i32.and (local.get $cs) (i32.const 255)) (i32.const 5)))
    (local.set $lo0 (v128.load (local.get $t)))
    (local.set $hi0 (v128.load offset=16 (local.get $t)))
    (local.set $t (i32.shl (i32.and (i32.shr_u (local.get $cs) (i32.const 8)) (i32.const 255)) (i32.const 5)))
    (local.set $lo1 (v128.load (local.get $t)))
    (local.set $hi1 (v128.load offset=16 (local.get $t)))
    (local.set $t (i32.shl (i32.and (i32.shr_u (local.get $cs) (i32.const 16)) (i32.const 255)) (i32.const 5)))
    (local.set $lo2 (v128.load (local.get $t)))
    (local.set $hi2 (v128.load offset=16 (local.get $t)))
    (local.set $t (i32.shl (i32.shr_u (local.get $cs) (i32.const 24)) (i32.const 5)))
    (local.set $lo3 (v128.load (local.get $t)))
    (local.set $hi3 (v128.load offset=16 (local.get $t)))
    (local.set $end (i32.add (local.get $src) (local.get $len)))
    (block $done
      (loop $vec
        (br_if $done (i32.ge_u (local.get $src) (local.get $end)))
        (local.set $v (v128.load (local.get $src)))
        (local.set $l (v128.and (local.get $v) (local.get $mask)))
        (local.set $h (v128.and (i16x8.shr_u (local.get $v) (i32.const 4)) (local.get $mask)))
        (v128.store (local.get $d0)
          (v128.xor (v128.load (local.get $d0))
            (v128.xor (i8x16.swizzle (local.get $lo0) (local.get $l)) (i8x16.swizzle (local.get $hi0) (local.get $h)))))
        (v128.store (local.get $d1)
          (v128.xor (v128.load (local.get $d1))
            (v128.xor (i8x16.swizzle (local.get $lo1) (local.get $l)) (i8x16.swizzle (local.get $hi1) (local.get $h)))))
        (v128.store (local.get $d2)
          (v128.xor (v128.load (local.get $d2))
            (v128.xor (i8x16.swizzle (local.get $lo2) (local.get $l)) (i8x16.swizzle (local.get $hi2) (local.get $h)))))
        (v128.store (local.get $d3)
          (v128.xor (v128.load (local.get $d3))
            (v128.xor (i8x16.swizzle (local.get $lo3) (local.get $l)) (i8x16.swizzle (local.get $hi3) (local.get $h)))))
        (local.set $src (i32.add (local.get $src) (i32.const 16)))
        (local.set $d0 (i32.add (local.get $d0) (i32.const 16)))
        (local.set $d1 (i32.add (local.get $d1) (i32.const 16)))
        (local.set $d2 (i32.add (local.get $d2) (i32.const 16)))
        (local.set $d3 (i32.add (local.get $d3) (i32.const 16)))
        (br $vec))))


  ;; Four dot products at once: d_o[0..len) = sum_{j<n} c_{o,j} * mem[ptrs[j] ..+len) where the four
  ;; coefficients of term j are packed in the i32 at coefs + 4*j (c_{0,j} in the low byte).
  (func $dot4 (export "dot4") (param $d0 i32) (param $d1 i32) (param $d2 i32) (param $d3 i32) (param $len i32) (param $ptrs i32) (param $coefs i32) (param $n i32)
    (local $j i32) (local $cs i32)
    (memory.fill (local.get $d0) (i32.const 0) (local.get $len))
    (memory.fill (local.get $d1) (i32.const 0) (local.get $len))
    (memory.fill (local.get $d2) (i32.const 0) (local.get $len))
    (memory.fill (local.get $d3) (i32.const 0) (local.get $len))
    (block $done
      (loop $terms
        (br_if $done (i32.ge_u (local.get $j) (local.get $n)))
        (local.set $cs (i32.load (i32.add (local.get $coefs) (i32.shl (local.get $j) (i32.const 2)))))
        (if (local.get $cs)
          (then
            (call $mul_xor4 (local.get $d0) (local.get $d1) (local.get $d2) (local.get $d3)
              (i32.load (i32.add (local.get $ptrs) (i32.shl (local.get $j) (i32.const 2))))
              (local.get $len) (local.get $cs))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $terms))))

)
