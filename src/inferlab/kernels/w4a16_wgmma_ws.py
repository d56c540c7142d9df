"""int4 weight-only matmul for prefill-sized M: a warp-specialized Hopper GEMM whose producer dequantizes.

w4a16_wgmma_tiled.py dequantizes W into wgmma's A registers, so each program unpacks, then waits
for its own wgmma, then for its copies: at M = 128 the tensor pipe was busy 42% of the time
(0007 run 47). An asynchronous wgmma that would overlap the unpacking cannot read A from
registers safely in Gluon (run 49). This kernel splits the work between warps instead
(`gl.warp_specialize`), over a ring of STAGES shared-memory slots, each holding one K step of 64
(or the group, if smaller): x's tile, the packed words, the group's scales and zero points (all
copied by TMA), and the dequantized weight tile [128, 64].

- the **consumer** warp groups (`_consume`, the default partition: two, 64 weight rows each)
  wait for a slot's copies (`ready`) and its weight tile (`filled`), issue an asynchronous wgmma
  with both operands from shared memory, and wait for the previous step's: its slot is then free,
  and they start the copies of the step STAGES later into it (`_load`; one elected thread);
- one or two **dequantizing** warp groups (`_dequantize`; with two they take turns, even and odd
  steps) wait for a slot's copies, turn its words into the weight tile and signal `filled`.

A first version had the dequantizing warp group issue the copies too. Each of its steps then
waited for the consumers to free a slot, which they do only after the wgmma of the step it had
just filled: the two ran in lock step, 55 us at M = 128 on an H200 (run 57). With the copies
started by the consumers the dequantization runs ahead by up to STAGES steps.

The arithmetic per 32-bit word of 8 nibbles (`_dequantize_words`, inline PTX):

    a_s = (word >> 4s) & 0x000F000F | C             nibbles s and s + 4 as C + q, s = 0..3
    a_s = (a_s - (C + z)) * scale                   bf16x2 (fp16x2): exact, then one rounding
    prmt into pairs (0, 1), (2, 3), (4, 5), (6, 7)  W's natural K order

C = 128 in bf16 (0x4300: its 7 mantissa bits are worth 1 there), 1024 in fp16. The subtraction is
exact and the product rounds once, so W has the reference's bits; the natural order means x needs
no permutation and its tiles come by TMA straight from the caller's tensor. A thread owns one row
of the weight tile and stores it as eight 16-byte chunks into the 128-byte-swizzled tile (ptxas:
about 31 instructions per word with the register moves that gather each chunk).

The orientation is the tiled kernel's: wgmma's M is W's rows, its N is x's rows (BLOCK_M, 64 to
256), so one accumulator [128, BLOCK_M] and the same split-K partials and store as the other wgmma
kernels (`plan_splits` splits K into one wave here, `_store_result`).

Two warp groups of dequantizers need an even ring. A wait on an mbarrier is a wait for a phase's
parity, and a wait for the parity of the phase before the current one returns at once. With an
odd ring the two groups share slots; one group could reach a slot's next round while the other
group's step in it was still pending, pass its wait at once and read the wrong words. The sweep
of run 58 hung that way (the tests, on small shapes, had passed).

**K steps of 128** (`step_k=128`, int4 with group size 128; the default to 64 rows). With parts
of the kernel removed (0007 runs 71, 73; experiments/0007-weight-only-matmuls/probe_ws_parts.py)
the ring's copies alone took 20.5 us of the kernel's 32.3 at M = 64, and a step cost ~226 ns
whatever it copied: the floor is per step, not per byte. So a step may be one whole group: x's
tile and the weight tile as two 64-wide sub-tiles (a TMA box and a 128-byte swizzle span 64
16-bit values at most; `SUB`), the words [16, 128], each dequantizing thread unpacking its 16
words into the two sub-tiles with the group's one scale and zero point, two wgmma groups a step.
Half the steps for the same bytes: at M = 64 29.0 against 31.6 us on 4096 -> 14336 (run 76).
A slot is then 57 KB at 64 rows, so 4 stages; at 128 rows only 2 or 3 fit, which lost (run 75).

Measured (0007 runs 59-76, bf16, cold L2, cuBLAS bf16 in the same run):

- on an H100 at M = 64 (`20261127T090339Z`, K steps of 128): 1.53x and 1.66x cuBLAS on the
  large layers, 1.14x and 0.91x on the small ones (steps of 64, run 65: 1.40x, 1.54x; the tiled
  kernel: 1.25-1.27x; run 52);
- on an H100 (`20261127T071053Z`): 1.22x cuBLAS on 4096 -> 14336 and 1.45x on 14336 -> 4096 at
  M = 128, 0.90x and 1.08x at 256; 0.69-0.94x on the two small layers. The tiled kernel gave
  0.98-1.00x and 0.60-0.62x on the large layers (run 52).
- on an H200 (`20261127T070842Z`): 0.87x and 1.03x at 128, 0.79x and 0.91x at 256 (tiled:
  0.70-0.74x and 0.53-0.56x); 0.65-0.88x on the small layers.

Nsight Compute on the H100 (run 63): the tensor pipe busy 53% of the time at M = 128 and 70% at
256, shared memory's load/store pipe about half busy. The small layers split K into 4 or 8, and
each split writes M x N fp32 partials that a second launch sums.

**NF4** (`nf4_wgmma_ws_matmul`, NF4=True; nf4_matmul's default from 64 rows where TMA can copy
the weight, `nf4_ws_ready`) goes through the same kernel. The copies are W's packed bytes (rows of
K / 2 bytes, [128, 8] words a step) and the step's absmax, double-dequantized once per call and
laid out [K / blocksize, N] by one small launch (`nf4_absmax.absmax_by_step`). The dequantizer looks the
codes up with nf4_wgmma.py's `prmt` table, whose outputs are already in W's K order, then
multiplies each by its absmax in fp32 and rounds once, as nf4_wgmma.py's DEQUANT_A. Measured on
an H100 (0007 runs 66-70): 49.9 us at M = 128 on 4096 -> 14336 (0.92x cuBLAS bf16, 2.50x
bitsandbytes; int4 takes 37.6), 1.13-1.53x the tiled kernel it replaced at M = 128 and 1.38-1.62x
at 256. The first version laid the absmax out with six torch operations per call, which cost more
than the kernel on the small layers (run 67: 27.5 us at M = 128 on 4096 -> 1024, 15.9 after).

Hopper only (sm_90). tests/test_w4a16_wgmma_ws.py compiles it on the CPU and checks it against the
reference on a GPU.
"""

from __future__ import annotations

import functools

import torch

from inferlab.kernels.w4a16_wgmma import (
    HAVE_GLUON,
    MAGIC,
    SUPPORTED_GROUP_SIZES,
    WgmmaConfig,
    checked_group_size,
    plan_splits,
)

WS_BLOCK_M = (64, 128, 256)
WS_BLOCK_N = 128  # two consumer warp groups of 64 weight rows
# setmaxnreg of each dequantizing warp group, by how many there are; the consumers get the rest
DEQUANTIZER_REGISTERS = {1: 112, 2: 88}

if HAVE_GLUON:
    from triton.experimental.gluon.language.nvidia.hopper import mbarrier, tma, warpgroup_mma_wait
    from triton.experimental.gluon.nvidia.hopper import TensorDescriptor

    from inferlab.kernels.nf4_wgmma import _code_table_words, _look_up_natural
    from inferlab.kernels.w4a16_wgmma import (
        _halves,
        _store_result,
        fence_async_shared,
        gl,
        gluon,
        warpgroup_mma,
    )

    def _dequantize_asm(magic: str, pairs: str) -> str:
        """`_dequantize_words`'s PTX for one word ($4) with C + z ($5) and the scale ($6) as
        16-bit pairs of type `pairs` (bf16x2, f16x2) and C's bits twice (`magic`)."""
        unpack = "".join(
            f"shr.u32 t, $4, {4 * s}; lop3.b32 a{s}, t, 0x000F000F, {magic}, 0xea;" for s in range(1, 4)
        )
        scale = "".join(f"sub.rn.{pairs} a{s}, a{s}, $5; mul.rn.{pairs} a{s}, a{s}, $6;" for s in range(4))
        return (
            "{ .reg .b32 a<4>, t;"
            f"lop3.b32 a0, $4, 0x000F000F, {magic}, 0xea;{unpack}{scale}"
            "prmt.b32 $0, a0, a1, 0x5410; prmt.b32 $1, a2, a3, 0x5410;"
            "prmt.b32 $2, a0, a1, 0x7632; prmt.b32 $3, a2, a3, 0x7632; }"
        )

    _DEQUANTIZE_BF16 = gl.constexpr(_dequantize_asm("0x43004300", "bf16x2"))
    _DEQUANTIZE_F16 = gl.constexpr(_dequantize_asm("0x64006400", "f16x2"))

    @gluon.jit
    def _dequantize_words(words, zero_pairs, scale_pairs, dtype: gl.constexpr):
        """[R, BLOCK_N] words -> [BLOCK_N, 8 R] dequantized weights in W's natural K order.
        zero_pairs and scale_pairs: C + z and the scale per row, twice in an int32 (a 16-bit pair)."""
        if dtype == gl.bfloat16:
            asm: gl.constexpr = _DEQUANTIZE_BF16
        else:
            asm: gl.constexpr = _DEQUANTIZE_F16
        zero_pairs, _ = gl.broadcast(zero_pairs, words)
        scale_pairs, _ = gl.broadcast(scale_pairs, words)
        p01, p23, p45, p67 = gl.inline_asm_elementwise(
            asm, "=r,=r,=r,=r,r,r,r", [words, zero_pairs, scale_pairs],
            dtype=(gl.int32, gl.int32, gl.int32, gl.int32), is_pure=True, pack=1,
        )  # fmt: skip
        pairs = gl.join(gl.join(p01, p45), gl.join(p23, p67))  # [r, n, a, b]: pair 2a + b
        lo, hi = _halves(pairs, dtype)
        w = gl.join(lo, hi)  # [r, n, a, b, e]: k = 8r + 4a + 2b + e
        w = gl.permute(w, [1, 0, 2, 3, 4])  # [n, r, a, b, e]
        R: gl.constexpr = words.shape[0]
        N: gl.constexpr = words.shape[1]
        return gl.reshape(w, [N, 8 * R])

    @gluon.jit
    def _pairs(values):
        """A 16-bit value twice in one int32: the second operand of a bf16x2/f16x2 instruction."""
        bits = values.to(gl.int16, bitcast=True).to(gl.int32) & 0xFFFF
        return bits | (bits << 16)

    @gluon.jit
    def _load(x_desc, word_desc, scale_desc, zero_desc, x_smem, word_smem, scale_smem, zero_smem,
              ready, step, m0, n0, k_start, HAS_ZEROS: gl.constexpr, GROUP: gl.constexpr,
              NF4: gl.constexpr):  # fmt: skip
        """Step `step`'s TMA copies (x's tile as SUB sub-tiles, the words, the group's scales and
        zero points; NF4: the packed bytes and the block's absmax) into its ring slot, signalled on
        ready[slot]."""
        STAGES: gl.constexpr = word_smem.shape[0]
        SUB: gl.constexpr = x_smem.shape[0] // STAGES
        SUB_K: gl.constexpr = x_desc.block_type.shape[1]
        step_bytes: gl.constexpr = (
            SUB * x_desc.block_type.nbytes + word_desc.block_type.nbytes + scale_desc.block_type.nbytes
            + (zero_desc.block_type.nbytes if HAS_ZEROS else 0)
        )  # fmt: skip
        slot = step % STAGES
        bar = ready.index(slot)
        k = k_start + step * (SUB * SUB_K)
        mbarrier.expect(bar, step_bytes)
        for j in gl.static_range(SUB):
            tma.async_copy_global_to_shared(x_desc, [m0, k + j * SUB_K], bar, x_smem.index(slot * SUB + j))
        if NF4:  # W's rows, K along each: [BLOCK_N, BLOCK_K / 8] words
            tma.async_copy_global_to_shared(word_desc, [n0, k // 8], bar, word_smem.index(slot))
        else:  # int4: K / 8 word rows, N along each: [BLOCK_K / 8, BLOCK_N]
            tma.async_copy_global_to_shared(word_desc, [k // 8, n0], bar, word_smem.index(slot))
        tma.async_copy_global_to_shared(scale_desc, [k // GROUP, n0], bar, scale_smem.index(slot))
        if HAS_ZEROS:
            tma.async_copy_global_to_shared(zero_desc, [k // GROUP, n0], bar, zero_smem.index(slot))

    @gluon.jit
    def _dequantize(word_smem, scale_smem, zero_smem, w_smem, ready, filled, steps, magic_value, code_ptr,
                    FIRST: gl.constexpr, EVERY: gl.constexpr, HAS_ZEROS: gl.constexpr,
                    NF4: gl.constexpr):  # fmt: skip
        """A dequantizing warp group: steps FIRST, FIRST + EVERY, ...: the words, scales and zero
        points (NF4: the packed bytes and absmax) from their slot into the slot's weight tile, SUB
        sub-tiles of BLOCK_K (then `filled`)."""
        STAGES: gl.constexpr = word_smem.shape[0]
        SUB: gl.constexpr = w_smem.shape[0] // STAGES
        BLOCK_N: gl.constexpr = w_smem.shape[1]
        BLOCK_K: gl.constexpr = w_smem.shape[2]
        dtype: gl.constexpr = w_smem.dtype
        warps: gl.constexpr = gl.num_warps()
        # a thread per weight row: its words (K) in registers, rows across lanes and warps
        if NF4:  # the words as copied: [BLOCK_N, BLOCK_K / 8]
            word_layout: gl.constexpr = gl.BlockedLayout([1, BLOCK_K // 8], [32, 1], [warps, 1], [1, 0])
            tables = (_code_table_words(code_ptr, dtype, False), _code_table_words(code_ptr, dtype, True))
        else:  # [BLOCK_K / 8, BLOCK_N]
            word_layout: gl.constexpr = gl.BlockedLayout([BLOCK_K // 8, 1], [1, 32], [1, warps], [0, 1])
        for d in range(FIRST, steps, EVERY):
            slot = d % STAGES
            mbarrier.wait(ready.index(slot), (d // STAGES) & 1)
            if NF4:  # one sub-tile a step
                words = word_smem.index(slot).load(word_layout)
                # the block's absmax per row, [1, BLOCK_N] in shared memory, as a column [BLOCK_N, 1]
                absmax = scale_smem.index(slot).permute([1, 0]).load(word_layout)
                w_smem.index(slot).store(_look_up_natural(words, absmax, tables[0], tables[1], dtype))
            else:
                scale = scale_smem.index(slot).load(word_layout)  # a row vector [1, BLOCK_N]
                if HAS_ZEROS:
                    zero = zero_smem.index(slot).load(word_layout).to(gl.float32)
                else:
                    zero = gl.full([1, BLOCK_N], 8.0, gl.float32, word_layout)
                zero_pairs = _pairs((zero + magic_value).to(dtype))  # C + z < 2^11: exact in 16 bits
                scale_pairs = _pairs(scale.to(dtype))
                for j in gl.static_range(SUB):  # one group: the same scale and zero point
                    words = word_smem.index(slot).slice(j * (BLOCK_K // 8), BLOCK_K // 8).load(word_layout)
                    w = _dequantize_words(words, zero_pairs, scale_pairs, dtype)
                    w_smem.index(slot * SUB + j).store(w)
            fence_async_shared()  # the generic-proxy stores, before wgmma's async-proxy reads
            mbarrier.arrive(filled.index(slot))

    @gluon.jit
    def _consume(x_desc, word_desc, scale_desc, zero_desc, x_smem, word_smem, scale_smem, zero_smem,
                 w_smem, ready, filled, out_ptr, partial_ptr, m0, n0, M, N, k_start, steps,
                 HAS_ZEROS: gl.constexpr, GROUP: gl.constexpr, NF4: gl.constexpr,
                 WRITE_PARTIAL: gl.constexpr, mma_layout: gl.constexpr):  # fmt: skip
        """The consumer warp groups: one asynchronous wgmma per step; once the previous step's has
        completed, its slot is free and they start the copies of the step STAGES later into it.
        Then the result into y (or the split's partials)."""
        STAGES: gl.constexpr = word_smem.shape[0]
        SUB: gl.constexpr = w_smem.shape[0] // STAGES
        BLOCK_N: gl.constexpr = w_smem.shape[1]
        BLOCK_M: gl.constexpr = x_smem.shape[1]
        for i in gl.static_range(STAGES):  # fill the ring
            if i < steps:
                _load(x_desc, word_desc, scale_desc, zero_desc, x_smem, word_smem, scale_smem, zero_smem,
                      ready, i, m0, n0, k_start, HAS_ZEROS, GROUP, NF4)  # fmt: skip
        acc = gl.zeros([BLOCK_N, BLOCK_M], gl.float32, mma_layout)
        for i in range(steps):
            slot = i % STAGES
            phase = (i // STAGES) & 1
            mbarrier.wait(ready.index(slot), phase)
            mbarrier.wait(filled.index(slot), phase)
            if SUB == 1:
                w_tile = w_smem.index(slot)
                x_tile = x_smem.index(slot).permute([1, 0])
                acc = warpgroup_mma(w_tile, x_tile, acc, is_async=True)
                acc, _, _ = warpgroup_mma_wait(1, deps=(acc, w_tile, x_tile))  # step i - 1's has completed
            else:  # two sub-tiles, two wgmma groups a step
                w0 = w_smem.index(2 * slot)
                x0 = x_smem.index(2 * slot).permute([1, 0])
                w1 = w_smem.index(2 * slot + 1)
                x1 = x_smem.index(2 * slot + 1).permute([1, 0])
                acc = warpgroup_mma(w0, x0, acc, is_async=True)
                acc = warpgroup_mma(w1, x1, acc, is_async=True)
                acc, _, _, _, _ = warpgroup_mma_wait(2, deps=(acc, w0, x0, w1, x1))
            refill = i - 1 + STAGES
            if (i > 0) & (refill < steps):
                _load(x_desc, word_desc, scale_desc, zero_desc, x_smem, word_smem, scale_smem, zero_smem,
                      ready, refill, m0, n0, k_start, HAS_ZEROS, GROUP, NF4)  # fmt: skip
        acc = warpgroup_mma_wait(0, deps=(acc,))
        offs_on = n0 + gl.arange(0, BLOCK_N, layout=gl.SliceLayout(1, mma_layout))
        offs_om = m0 + gl.arange(0, BLOCK_M, layout=gl.SliceLayout(0, mma_layout))
        _store_result(acc, out_ptr, partial_ptr, offs_om, offs_on, M, N, WRITE_PARTIAL)

    @gluon.jit
    def _int4_wgmma_ws_kernel(
        x_desc, word_desc, scale_desc, zero_desc, out_ptr, partial_ptr, code_ptr,
        M, N, K, k_per_split, m_tiles, magic_value,
        HAS_ZEROS: gl.constexpr, WRITE_PARTIAL: gl.constexpr, GROUP: gl.constexpr, NF4: gl.constexpr,
        STAGES: gl.constexpr, SUB: gl.constexpr, DEQUANTIZERS: gl.constexpr,
        DEQUANTIZER_REGISTERS: gl.constexpr, mma_layout: gl.constexpr, w_smem_layout: gl.constexpr,
    ):  # fmt: skip
        """Program (m tile + m_tiles x n tile, split): y[m tile, n tile] (or its split's fp32
        partial), with the K steps of its split: SUB sub-tiles of x's box width each."""
        BLOCK_M: gl.constexpr = x_desc.block_type.shape[0]
        SUB_K: gl.constexpr = x_desc.block_type.shape[1]
        BLOCK_K: gl.constexpr = SUB * SUB_K
        BLOCK_N: gl.constexpr = scale_desc.block_type.shape[1]  # scales (NF4: absmax) [1, BLOCK_N]
        pid = gl.program_id(0)
        m0 = (pid % m_tiles) * BLOCK_M
        n0 = (pid // m_tiles) * BLOCK_N
        k_start = gl.program_id(1) * k_per_split
        steps = (gl.minimum(k_start + k_per_split, K) - k_start) // BLOCK_K  # whole steps

        x_smem = gl.allocate_shared_memory(x_desc.dtype, [STAGES * SUB, BLOCK_M, SUB_K], x_desc.layout)
        # the words as copied: int4 [K / 8, N], NF4 [N, K / 8]
        WORD_ROWS: gl.constexpr = word_desc.block_type.shape[0]
        WORD_COLUMNS: gl.constexpr = word_desc.block_type.shape[1]
        word_smem = gl.allocate_shared_memory(gl.int32, [STAGES, WORD_ROWS, WORD_COLUMNS], word_desc.layout)
        scale_smem = gl.allocate_shared_memory(scale_desc.dtype, [STAGES, 1, BLOCK_N], scale_desc.layout)
        zero_smem = gl.allocate_shared_memory(zero_desc.dtype, [STAGES, 1, BLOCK_N], zero_desc.layout)
        w_smem = gl.allocate_shared_memory(x_desc.dtype, [STAGES * SUB, BLOCK_N, SUB_K], w_smem_layout)
        ready = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
        filled = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
        for s in gl.static_range(STAGES):
            mbarrier.init(ready.index(s), count=1)
            mbarrier.init(filled.index(s), count=1)

        if DEQUANTIZERS == 1:
            gl.warp_specialize(
                [
                    (_consume, (x_desc, word_desc, scale_desc, zero_desc, x_smem, word_smem, scale_smem,
                                zero_smem, w_smem, ready, filled, out_ptr, partial_ptr, m0, n0, M, N,
                                k_start, steps, HAS_ZEROS, GROUP, NF4, WRITE_PARTIAL, mma_layout)),
                    (_dequantize, (word_smem, scale_smem, zero_smem, w_smem, ready, filled, steps,
                                   magic_value, code_ptr, 0, 1, HAS_ZEROS, NF4)),
                ],
                [4],
                [DEQUANTIZER_REGISTERS],
            )  # fmt: skip
        else:  # two warp groups take turns, even and odd steps (Gluon takes the partitions as a
            # literal list, so each count of dequantizing groups has its own call)
            gl.warp_specialize(
                [
                    (_consume, (x_desc, word_desc, scale_desc, zero_desc, x_smem, word_smem, scale_smem,
                                zero_smem, w_smem, ready, filled, out_ptr, partial_ptr, m0, n0, M, N,
                                k_start, steps, HAS_ZEROS, GROUP, NF4, WRITE_PARTIAL, mma_layout)),
                    (_dequantize, (word_smem, scale_smem, zero_smem, w_smem, ready, filled, steps,
                                   magic_value, code_ptr, 0, 2, HAS_ZEROS, NF4)),
                    (_dequantize, (word_smem, scale_smem, zero_smem, w_smem, ready, filled, steps,
                                   magic_value, code_ptr, 1, 2, HAS_ZEROS, NF4)),
                ],
                [4, 4],
                [DEQUANTIZER_REGISTERS, DEQUANTIZER_REGISTERS],
            )  # fmt: skip


def tma_ready(qweight) -> bool:
    """Whether TMA can copy this weight's tensors: every row stride a multiple of 16 bytes (N a
    multiple of 16: the zero points are one byte each) and every base 16-byte aligned."""
    tensors = [qweight.qweight, qweight.scales] + ([] if qweight.zeros is None else [qweight.zeros])
    return qweight.qweight.shape[1] % 16 == 0 and all(t.data_ptr() % 16 == 0 for t in tensors)


@functools.cache
def ws_layouts(block_m: int, block_k: int, dtype: torch.dtype) -> dict:
    """The shared-memory layouts of the operands' copies and of the dequantized weight tile, and
    the accumulator's (two consumer warp groups of 64 weight rows)."""
    gl_dtype = gl.bfloat16 if dtype == torch.bfloat16 else gl.float16
    flat = dict(swizzle_byte_width=0, transposed=False, rank=2)
    return dict(
        x=gl.NVMMASharedLayout.get_default_for([block_m, block_k], gl_dtype),
        words=gl.NVMMASharedLayout(element_bitwidth=32, **flat),
        scales=gl.NVMMASharedLayout(element_bitwidth=16, **flat),
        zeros=gl.NVMMASharedLayout(element_bitwidth=8, **flat),
        w=gl.NVMMASharedLayout.get_default_for([WS_BLOCK_N, block_k], gl_dtype),
        mma=gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[8, 1], instr_shape=[16, block_m, 16]),
    )


def int4_wgmma_ws_matmul(x: torch.Tensor, qweight, out: torch.Tensor, config: WgmmaConfig) -> torch.Tensor:
    """x [M, K] @ W.T into `out` [M, N] with the warp-specialized kernel (inputs already validated
    by w4a16_matmul); M tiled by config.block_m."""
    from inferlab.kernels._matmul_plan import reduce_partials
    from inferlab.kernels._triton import triton

    M, K = x.shape
    N = out.shape[1]
    G = checked_group_size(qweight, config, WS_BLOCK_M)
    _check_config(config)
    if not tma_ready(qweight):
        raise ValueError(
            "the warp-specialized kernel copies the weight by TMA: it needs N a multiple of 16 and "
            "16-byte aligned qweight, scales and zeros (w4a16_matmul falls back to the tiled kernel)"
        )
    block_k = min(64, G)  # a sub-tile never spans two groups, a step only with step_k 128
    sub = _sub_tiles(config, G)
    x = _tma_ready_x(x)
    layouts = ws_layouts(config.block_m, block_k, x.dtype)
    m_tiles = triton.cdiv(M, config.block_m)
    num_tiles, split, steps_per_split, partial = plan_splits(config, M, N, K // (block_k * sub), out, m_tiles)
    zeros = qweight.zeros
    scales = qweight.scales.to(x.dtype) if qweight.scales.dtype != x.dtype else qweight.scales
    x_desc = TensorDescriptor.from_tensor(x, [config.block_m, block_k], layouts["x"])
    word_box = [sub * block_k // 8, WS_BLOCK_N]  # a step's words
    word_desc = TensorDescriptor.from_tensor(qweight.qweight, word_box, layouts["words"])
    scale_desc = TensorDescriptor.from_tensor(scales, [1, WS_BLOCK_N], layouts["scales"])
    zero_desc = TensorDescriptor.from_tensor(
        zeros if zeros is not None else qweight.qweight.view(torch.uint8), [1, WS_BLOCK_N], layouts["zeros"]
    )  # fmt: skip
    _int4_wgmma_ws_kernel[(num_tiles * m_tiles, split)](
        x_desc, word_desc, scale_desc, zero_desc, out, partial, out,
        M, N, K, steps_per_split * block_k * sub, m_tiles, MAGIC[x.dtype][1],
        HAS_ZEROS=zeros is not None, WRITE_PARTIAL=split > 1, GROUP=G, NF4=False, STAGES=config.stages,
        SUB=sub,
        DEQUANTIZERS=config.dequantizers, DEQUANTIZER_REGISTERS=DEQUANTIZER_REGISTERS[config.dequantizers],
        mma_layout=layouts["mma"], w_smem_layout=layouts["w"], num_warps=8,
    )  # fmt: skip
    if split > 1:
        reduce_partials(partial, out)
    return out


def _check_config(config: WgmmaConfig) -> None:
    """What the warp-specialized kernel takes besides block_m (`checked_group_size`)."""
    if config.block_n != WS_BLOCK_N or config.num_warps != 8:
        raise ValueError(f"the warp-specialized kernel takes block_n={WS_BLOCK_N}, num_warps=8")
    if config.dequantizers not in (1, 2) or (config.dequantizers == 2 and config.block_m == 256):
        raise ValueError(
            f"dequantizers must be 1 or 2 (1 with block_m=256: 16 warps leave too few registers for "
            f"its accumulator), not {config.dequantizers}"
        )
    if config.dequantizers == 2 and config.stages % 2:
        # each warp group must see every phase of its slots' barriers: with an odd ring the other
        # group's step may still be pending when this one waits for the slot's next round, and a
        # wait for the previous phase's parity returns at once (0007 run 58 hung so)
        raise ValueError(f"two dequantizing warp groups need an even number of stages, not {config.stages}")
    if config.stages < 2:
        raise ValueError(f"stages must be at least 2, not {config.stages}")


def _sub_tiles(config: WgmmaConfig, group_size: int) -> int:
    """64-wide sub-tiles of x and W per K step: 1, or 2 with step_k=128 (int4, group_size 128:
    one group a step, half the steps; 0007 run 74)."""
    if config.step_k is None:
        return 1
    if config.step_k != 128 or group_size != 128:
        raise ValueError(
            f"the warp-specialized kernel's step_k is None (a K step of 64, or the group) or 128 with "
            f"int4's group_size 128, not step_k={config.step_k} with group size {group_size}"
        )
    return 2


def _tma_ready_x(x: torch.Tensor) -> torch.Tensor:
    """x as TMA copies it: unit stride along K, rows 16-byte aligned (else a fresh dense copy)."""
    if x.stride(1) != 1 or (x.stride(0) * x.element_size()) % 16 or x.data_ptr() % 16:
        x = x.clone(memory_format=torch.contiguous_format)
    return x


def nf4_ws_ready(weight: torch.Tensor, blocksize: int, N: int, K: int) -> bool:
    """Whether TMA can copy this NF4 weight for the warp-specialized kernel: the packed bytes as
    rows of K / 2 bytes (K a multiple of 32, contiguous, 16-byte aligned), the absmax transposed
    to rows of N fp32 (N a multiple of 4), blocksize 32, 64 or 128 (a K step is 64, or 32)."""
    aligned = weight.is_contiguous() and weight.data_ptr() % 16 == 0
    return blocksize in SUPPORTED_GROUP_SIZES and K % 32 == 0 and N % 4 == 0 and aligned


def nf4_wgmma_ws_matmul(x: torch.Tensor, weight: torch.Tensor, quant_state, out: torch.Tensor,
                        config: WgmmaConfig, validated: tuple | None = None) -> torch.Tensor:  # fmt: skip
    """x [M, K] @ W.T into `out` [M, N], W in bitsandbytes NF4, with the warp-specialized kernel
    (x, out and quant_state already checked by nf4_matmul). Each weight is its code (rounded to
    x's dtype) times its block's absmax in fp32, rounded once, as nf4_wgmma.py's DEQUANT_A. The
    absmax (double-dequantized when nested) is laid out [K / blocksize, N] per call, in one
    launch (`nf4_absmax.absmax_by_step`), so that TMA copies a step's [1, 128]. `validated`:
    nf4._validated_args' tuple, where the caller has it."""
    from inferlab.kernels._matmul_plan import reduce_partials
    from inferlab.kernels._triton import triton
    from inferlab.kernels.nf4 import _validated_args
    from inferlab.kernels.nf4_absmax import absmax_by_step

    M, K = x.shape
    N = out.shape[1]
    blocksize = quant_state.blocksize
    if config.block_m not in WS_BLOCK_M:
        raise ValueError(f"block_m must be one of {WS_BLOCK_M} here, not {config.block_m}")
    _check_config(config)
    if not nf4_ws_ready(weight, blocksize, N, K):
        raise ValueError(
            "the warp-specialized NF4 kernel copies the weight by TMA: it needs blocksize 32, 64 or "
            f"128, K a multiple of 32, N of 4 and a contiguous, 16-byte aligned weight (blocksize "
            f"{blocksize}, N = {N}, K = {K})"
        )
    if config.step_k is not None:
        raise ValueError("step_k=128 is int4's (group_size 128): NF4 steps by absmax blocks of at most 64")
    block_k = min(64, blocksize)
    x = _tma_ready_x(x)
    layouts = ws_layouts(config.block_m, block_k, x.dtype)
    m_tiles = triton.cdiv(M, config.block_m)
    num_tiles, split, steps_per_split, partial = plan_splits(config, M, N, K // block_k, out, m_tiles)
    _, _, _, absmax2, code2, offset, blocksize2 = validated or _validated_args(weight, quant_state)
    absmax = absmax_by_step(quant_state.absmax, absmax2, code2, offset, blocksize2, N, K // blocksize)
    packed = weight.view(torch.uint8).view(-1)
    x_desc = TensorDescriptor.from_tensor(x, [config.block_m, block_k], layouts["x"])
    words = packed.view(torch.int32).view(N, K // 8)  # W's rows of 8-weight words
    word_desc = TensorDescriptor.from_tensor(words, [WS_BLOCK_N, block_k // 8], layouts["words"])
    absmax_desc = TensorDescriptor.from_tensor(absmax, [1, WS_BLOCK_N], layouts["words"])  # 32-bit, flat
    unused = TensorDescriptor.from_tensor(packed.view(N, K // 2), [1, WS_BLOCK_N], layouts["zeros"])
    _int4_wgmma_ws_kernel[(num_tiles * m_tiles, split)](
        x_desc, word_desc, absmax_desc, unused, out, partial, quant_state.code,
        M, N, K, steps_per_split * block_k, m_tiles, 0.0,
        HAS_ZEROS=False, WRITE_PARTIAL=split > 1, GROUP=blocksize, NF4=True, STAGES=config.stages, SUB=1,
        DEQUANTIZERS=config.dequantizers, DEQUANTIZER_REGISTERS=DEQUANTIZER_REGISTERS[config.dequantizers],
        mma_layout=layouts["mma"], w_smem_layout=layouts["w"], num_warps=8,
    )  # fmt: skip
    if split > 1:
        reduce_partials(partial, out)
    return out
