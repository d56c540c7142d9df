"""int4 weight-only matmul on Hopper's wgmma with the weight unpacked straight into registers.

Why this kernel exists: Triton (tl) chooses every register layout itself. When a dequantized
weight tile feeds tl.dot, the layout its unpacking produces is never the one the tensor cores
read, so the compiler moves the whole tile through shared memory each K step (w4a16_kernels.py:
a store and a load per weight; measured 0.58x cuBLAS at M = 16 on an H200). Gluon, Triton's
lower-level dialect, lets a kernel state its layouts. Here the packed words are loaded in a
layout chosen so that, once unpacked, every bf16 value already sits in the register of the thread
that wgmma reads it from: `convert_layout(..., assert_trivial=True)` proves at compile time that
no data moves.

The arithmetic, per 32-bit word of 8 nibbles (about 0.9 instructions per weight in SASS):

    (word >> 4s) & 0x000F000F | 0x43004300      one shift, one LOP3 for s = 1..3 (s = 0: no shift)

gives two bf16 values 128 + q (0x4300 is 128.0 and its 7 mantissa bits are worth 1 there; fp16
uses 0x6400, 1024 + q). Zero point and scale stay out of the inner loop: with one K step per
quantization group,

    sum_k x_k s (q_k - z) = s (sum_k x_k (C + q_k) - (C + z) sum_k x_k)     C = 128 or 1024

so wgmma multiplies the raw C + q values (exact in bf16) by x, and each step's [BLOCK_N, BLOCK_M]
result is corrected and scaled once in fp32. W is never rounded to 16 bits, as in the CUDA-core
GEMV (w4a16_gemv.py): the result is the exact-weight product summed in fp32.

Which nibbles go where. The A operand of wgmma (m64nNk16, A from registers) gives thread (g, t)
of each warp (g = lane // 4, t = lane % 4) rows g and g + 8 of its 16, and columns 2t, 2t + 1,
2t + 8, 2t + 9 of each 16-wide K slice, as bf16 pairs (2t, 2t + 1). One LOP3 yields nibbles s
and s + 4 as one pair. So word t of every 32-wide chunk of K (word rows 4c .. 4c + 3 of
qweight) is read as

    nibble s, s + 4   ->   logical columns 16b + 8h + 2t + (0, 1)       s = 2b + h

a permutation of the chunk's K positions: physical k = 8t + 4e + 2b + h holds logical
k' = 16b + 8h + 2t + e. A dot product does not care about the order of its sum as long as both
sides agree, so x's tile is permuted the same way (in registers, on its way to shared memory)
and the layout of qweight stays the one every other kernel reads (quant_formats.py).

The same program handles M = 1 to 64 rows of x (wgmma's N = BLOCK_M: 8, 16, 32 or 64, padded
rows read as zero): the weight is read once per BLOCK_M rows, as on every other path. w4a16_matmul
uses it up to 32 rows: from 33 the per-group fold costs more than finishing the dequantization
in the A registers, which w4a16_wgmma_tiled.py does (w4a16_matmul takes w4a16_wgmma_ws.py
there instead wherever TMA can copy the weight).

Memory side. A thread copies 2R adjacent columns of qweight at once (8 or 16 bytes; R = row
blocks per warp) by cp.async into a ring of `stages` shared-memory slots, and reads back exactly
those words; wgmma's rows are mapped to those columns in registers (`_rows_in_mma_order`,
`_memory_column`). Scales, zero points and x come one step ahead. From 17 rows x is permuted
and summed once per call (`prepare_x`) and its tiles ride the ring. Split-K partials are summed
by `_matmul_plan.reduce_partials` (a second launch, in split order).

Measured (experiment 0007, runs 14-27): on an H100 2.55-2.58x cuBLAS bf16 at M = 1, 1.90-2.08x
at M = 16 on Llama-3-8B's large layers; the same microseconds on an H200, so what limits it is
each program's chain of K steps, not bandwidth.

Hopper only (sm_90): wgmma does not exist elsewhere, and Triton's interpreter cannot run Gluon.
tests/test_w4a16_wgmma.py checks the permutation in plain PyTorch on the CPU (`unpack_like_kernel`),
compiles the kernel for sm_90 there (the trivial conversion is a compile-time assertion), and on
a GPU checks the kernel against the reference like every other path.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from inferlab.kernels._triton import HAVE_TRITON, tl, triton

try:  # Gluon arrived in Triton 3.4 and moves fast: without it (or these names) the module still
    # imports, `available` says no, and w4a16_matmul takes the tl paths
    from triton.experimental import gluon
    from triton.experimental.gluon import language as gl
    from triton.experimental.gluon.language.nvidia.ampere.async_copy import (
        async_copy_global_to_shared,
        commit_group,
        wait_group,
    )
    from triton.experimental.gluon.language.nvidia.hopper import fence_async_shared, warpgroup_mma

    # Triton 3.6 calls the CTA barrier thread_barrier; 3.7 renamed it barrier
    _cta_barrier = gl.barrier if hasattr(gl, "barrier") else gl.thread_barrier
    # built and tested with Triton 3.6 and 3.7; Gluon's API changed between earlier releases
    HAVE_GLUON = HAVE_TRITON and tuple(int(v) for v in triton.__version__.split(".")[:2]) >= (3, 6)
except (ImportError, AttributeError, ValueError):  # macOS (no Triton), or a Triton without Gluon
    gluon = gl = None
    HAVE_GLUON = False

# Magic exponents: 16-bit patterns whose low 4 mantissa bits are worth 1, so C | q reads C + q
PAIR_MASK = 0x000F000F
MAGIC = {torch.bfloat16: (0x43004300, 128.0), torch.float16: (0x64006400, 1024.0)}
SUPPORTED_GROUP_SIZES = (32, 64, 128)  # one K step per group: BLOCK_K = group size


@dataclass(frozen=True, slots=True)
class WgmmaConfig:
    """A tiling of the wgmma kernel. block_n: outputs per program (64 rows per warp group, more
    are extra register blocks); block_m: wgmma's N, x rows per program (8 to 64); split_k:
    programs along K (None: `_matmul_plan.split_k_for` with programs_per_sm)."""

    block_n: int = 128
    block_m: int = 16
    num_warps: int = 4
    split_k: int | None = None
    programs_per_sm: int = 2
    prepare_x: bool = False  # x permuted and summed per group once per call (`prepare_x`)
    stages: int = 3  # shared-memory slots of the words' cp.async ring (stages - 1 steps ahead)
    blocks_per_step: int = 1  # NF4 (nf4_wgmma.py): absmax blocks per K step (int4: one group)
    # larger M: W dequantized whole into A, one accumulator, M tiled by block_m (int4: 32 to 256,
    # w4a16_wgmma_tiled.py, x always prepared; NF4: nf4_wgmma.py's DEQUANT_A)
    dequantize_a: bool = False
    # int4 with dequantize_a: K per step (None: the group; warp_specialized: 64, or 128 with g128)
    step_k: int | None = None
    words_in_registers: bool = False  # int4 with dequantize_a: words a step ahead, not by the ring
    # with dequantize_a: producer warp groups dequantize W into shared memory beside the consumers'
    # asynchronous wgmma (w4a16_wgmma_ws.py, int4 and NF4; block_n 128, num_warps 8: the consumers)
    warp_specialized: bool = False
    dequantizers: int = 1  # warp_specialized: dequantizing warp groups (2: they take turns)

    def __post_init__(self) -> None:
        if self.warp_specialized and not self.dequantize_a:
            raise ValueError("warp_specialized dequantizes W whole: it needs dequantize_a=True")
        if self.prepare_x and self.num_warps != 4 and not self.dequantize_a:
            # step i refills the x slot that step i - 1's wgmma read; with one warp group that
            # wgmma is finished for every warp, with two the other group's may still be reading it
            raise ValueError("prepare_x needs num_warps=4 (one warp group)")

    @property
    def label(self) -> str:
        split = "" if self.split_k is None else f" split{self.split_k}"
        prepared = " x-prepared" if self.prepare_x else ""
        prepared += f" {self.blocks_per_step} blocks/step" if self.blocks_per_step > 1 else ""
        prepared += f" dequantized-A m{self.block_m} k{self.step_k or 'G'}" if self.dequantize_a else ""
        prepared += " words-in-regs" if self.words_in_registers else ""
        prepared += f" warp-specialized d{self.dequantizers}" if self.warp_specialized else ""
        tiles = f"wgmma n{self.block_n} w{self.num_warps} s{self.stages}"
        return f"{tiles}{split} x{self.programs_per_sm}/SM{prepared}"


if HAVE_GLUON:

    @gluon.jit
    def _halves(pairs, dtype: gl.constexpr):
        """int32 holding two 16-bit values -> (low, high), as `dtype`. A register split: ptxas
        emits no instruction for it."""
        return gl.inline_asm_elementwise(  # dtype unwrapped: a tuple of constexprs does not lower
            "mov.b32 {$0, $1}, $2;", "=h,=h,r", [pairs],
            dtype=(dtype.value, dtype.value), is_pure=True, pack=1,
        )  # fmt: skip

    @gluon.jit
    def _nibble_pairs(words, shift: gl.constexpr, mask, magic, IS_BF16: gl.constexpr):
        """Nibbles s and s + 4 of every word (shift = 4s) as a trailing pair of C + q values."""
        lo, hi = _halves(((words >> shift) & mask) | magic, gl.bfloat16 if IS_BF16 else gl.float16)
        return gl.join(lo, hi)

    @gluon.jit
    def _unpack_words(words, mask, magic, BLOCK_N: gl.constexpr, BLOCK_K: gl.constexpr,
                      IS_BF16: gl.constexpr):  # fmt: skip
        """[BLOCK_N, BLOCK_K / 8] words -> [BLOCK_N, BLOCK_K] C + q in logical (permuted) K order."""
        e0 = _nibble_pairs(words, 0, mask, magic, IS_BF16)  # s = 0: b = 0, h = 0
        e1 = _nibble_pairs(words, 4, mask, magic, IS_BF16)  # s = 1: b = 0, h = 1
        e2 = _nibble_pairs(words, 8, mask, magic, IS_BF16)  # s = 2: b = 1, h = 0
        e3 = _nibble_pairs(words, 12, mask, magic, IS_BF16)  # s = 3: b = 1, h = 1
        w = gl.join(gl.join(e0, e1), gl.join(e2, e3))  # [n, 4c + t, e, h, b]
        w = gl.reshape(w, [BLOCK_N, BLOCK_K // 32, 4, 2, 2, 2])  # [n, c, t, e, h, b]
        w = gl.permute(w, [0, 1, 5, 4, 2, 3])  # [n, c, b, h, t, e]: k' = 16b + 8h + 2t + e
        return gl.reshape(w, [BLOCK_N, BLOCK_K])

    @gluon.jit
    def _rows_in_mma_order(words, BLOCK_N: gl.constexpr, BLOCK_K: gl.constexpr, WARPS: gl.constexpr):
        """[BLOCK_N, BLOCK_K / 8] words in memory's column order -> in wgmma's row order. A thread
        loads 2R adjacent columns n (one 8- or 16-byte load); wgmma gives it rows g, g + 8 of each
        of its R 16-row blocks, so memory n = (w 8 + g) 2R + 2j + h is mma row (16 WARPS) j + 16 w
        + 8 h + g (w: warp, j: row block, h: upper half). Registers only: no data moves."""
        R: gl.constexpr = BLOCK_N // (16 * WARPS)
        w = gl.reshape(words, [WARPS, 8, R, 2, BLOCK_K // 8])  # [w, g, j, h, word]
        w = gl.permute(w, [2, 0, 3, 1, 4])  # [j, w, h, g, word]
        return gl.reshape(w, [BLOCK_N, BLOCK_K // 8])

    @gluon.jit
    def _a_operand(words, mask, magic, BLOCK_N: gl.constexpr, BLOCK_K: gl.constexpr, IS_BF16: gl.constexpr,
                   a_layout: gl.constexpr):  # fmt: skip
        """A step's words as loaded -> wgmma's A operand of C + q values. The layout conversion
        moves no data: assert_trivial makes the compiler prove it."""
        rows = _rows_in_mma_order(words, BLOCK_N, BLOCK_K, gl.num_warps())
        return gl.convert_layout(_unpack_words(rows, mask, magic, BLOCK_N, BLOCK_K, IS_BF16), a_layout,
                                 assert_trivial=True)  # fmt: skip

    @gluon.jit
    def _memory_column(rows, BLOCK_N: gl.constexpr, WARPS: gl.constexpr):
        """wgmma row -> the column n of W it holds (the inverse of `_rows_in_mma_order`)."""
        R: gl.constexpr = BLOCK_N // (16 * WARPS)
        j = rows // (16 * WARPS)
        w = (rows // 16) % WARPS
        h = (rows // 8) % 2
        return (w * 8 + rows % 8) * (2 * R) + 2 * j + h

    @gluon.jit
    def _permute_x(x, BLOCK_M: gl.constexpr, BLOCK_K: gl.constexpr):
        """x's [BLOCK_M, BLOCK_K] tile from physical k = 8t + 4e + 2b + h to logical k'."""
        x = gl.reshape(x, [BLOCK_M, BLOCK_K // 32, 4, 2, 2, 2])  # [m, c, t, e, b, h]
        x = gl.permute(x, [0, 1, 4, 5, 2, 3])  # [m, c, b, h, t, e]
        return gl.reshape(x, [BLOCK_M, BLOCK_K])

    @gluon.jit
    def _scale_and_zero(scale_cols, zero_cols, n_in, group, N, HAS_ZEROS: gl.constexpr, EVEN_N: gl.constexpr):
        """One group's scale (as stored) and zero point (fp32; 8 when symmetric) per weight row."""
        if EVEN_N:
            s = gl.load(scale_cols + group * N)
        else:
            s = gl.load(scale_cols + group * N, mask=n_in, other=0.0)
        if HAS_ZEROS:
            z = gl.load(zero_cols + group * N, mask=n_in, other=0).to(gl.float32)
        else:
            z = gl.full(s.shape, 8.0, gl.float32, s.type.layout)
        return s, z

    @gluon.jit
    def _load_step(x_rows, x_in, xsum_cols, xsum_in, scale_cols, zero_cols, out_n_in, k0, N, M,
                   group, HAS_ZEROS: gl.constexpr, EVEN_N: gl.constexpr,
                   X_PREPARED: gl.constexpr):  # fmt: skip
        """One K step's small operands, loaded a step ahead: scales and zero points (fp32), and
        x's tile (registers) or, with X_PREPARED, its row sums (fp32)."""
        s, z = _scale_and_zero(scale_cols, zero_cols, out_n_in, group, N, HAS_ZEROS, EVEN_N)
        if X_PREPARED:  # x's tile goes to shared memory by cp.async, with the words
            x = gl.full([1], 0.0, gl.float32, gl.BlockedLayout([1], [32], [gl.num_warps()], [0]))
            x_sum = gl.load(xsum_cols + group * M, mask=xsum_in, other=0.0)
        else:
            x = gl.load(x_rows + k0, mask=x_in, other=0.0)
            x_sum = gl.full(xsum_cols.shape, 0.0, gl.float32, xsum_cols.type.layout)
        return x, x_sum, s.to(gl.float32), z

    @gluon.jit
    def _fetch_stage(w_smem, x_smem, stage, words, n_in, x_tile, x_in,
                     EVEN_N: gl.constexpr, X_PREPARED: gl.constexpr):  # fmt: skip
        """cp.async one K step's words (and, with X_PREPARED, x's tile) into a ring slot."""
        if EVEN_N:
            async_copy_global_to_shared(w_smem.index(stage), words)
        else:
            async_copy_global_to_shared(w_smem.index(stage), words, mask=n_in[:, None])
        if X_PREPARED:
            async_copy_global_to_shared(x_smem.index(stage), x_tile, mask=x_in)
        commit_group()

    @gluon.jit
    def _x_tile(x_ptr, M, stride_xm, BLOCK_M: gl.constexpr, STEP_K: gl.constexpr, x_layout: gl.constexpr):
        """Pointers to x's [BLOCK_M, STEP_K] tile at k = 0, and which of its rows exist (the
        rest read as zero: wgmma's N is padded up to BLOCK_M)."""
        offs_xm = gl.arange(0, BLOCK_M, layout=gl.SliceLayout(1, x_layout))
        offs_xk = gl.arange(0, STEP_K, layout=gl.SliceLayout(0, x_layout))
        return x_ptr + offs_xm[:, None].to(gl.int64) * stride_xm + offs_xk[None, :], offs_xm[:, None] < M

    @gluon.jit
    def _split_range(k_per_split, K, STEP_K: gl.constexpr):
        """This program's K range [k_start, k_end) and its last step's start (fetches past the
        split re-read that step: no mask)."""
        k_start = gl.program_id(1) * k_per_split
        k_end = gl.minimum(k_start + k_per_split, K)
        return k_start, k_end, k_end - STEP_K

    @gluon.jit
    def _store_result(acc, out_ptr, partial_ptr, offs_om, offs_on, M, N, WRITE_PARTIAL: gl.constexpr):
        """The program's [BLOCK_N, BLOCK_M] result into y (as y's dtype) or, with split-K, into its
        split's fp32 partials [SPLIT_K, M, N]."""
        out_mask = (offs_om[None, :] < M) & (offs_on[:, None] < N)
        offs = offs_om[None, :].to(gl.int64) * N + offs_on[:, None]
        if WRITE_PARTIAL:
            gl.store(partial_ptr + gl.program_id(1).to(gl.int64) * M * N + offs, acc, mask=out_mask)
        else:
            gl.store(out_ptr + offs, acc.to(out_ptr.dtype.element_ty), mask=out_mask)

    @gluon.jit
    def _int4_wgmma_kernel(
        x_ptr, xsum_ptr, out_ptr, partial_ptr, qweight_ptr, scales_ptr, zeros_ptr,
        M, N, K, stride_xm, k_per_split, mask, magic, magic_value,
        HAS_ZEROS: gl.constexpr, WRITE_PARTIAL: gl.constexpr, EVEN_N: gl.constexpr,
        IS_BF16: gl.constexpr, X_PREPARED: gl.constexpr, STAGES: gl.constexpr,
        BLOCK_N: gl.constexpr, BLOCK_K: gl.constexpr, BLOCK_M: gl.constexpr,
        word_layout: gl.constexpr, x_layout: gl.constexpr,
        mma_layout: gl.constexpr, a_layout: gl.constexpr, x_smem_layout: gl.constexpr,
        w_smem_layout: gl.constexpr,
    ):  # fmt: skip
        """Program (n tile, split): y[:, n tile] (or its split's fp32 partial) for x rows
        0 .. M - 1 <= BLOCK_M - 1. One K step is one quantization group (BLOCK_K = G).

        The words stream through a ring of STAGES shared-memory slots by cp.async, STAGES - 1
        steps ahead (bytes in flight, not registers, are what a decode GEMV runs out of); each
        thread copies and reads back only its own words, so that needs no barrier. Scales and x
        come a step ahead through registers. X_PREPARED: x_ptr is x already in the kernel's K
        order and xsum_ptr its sums per group ([K / G, M] fp32, `prepare_x`), and x's tiles ride
        the ring too. One barrier per step orders x's tile before wgmma reads it."""
        pid_n = gl.program_id(0)
        dtype: gl.constexpr = gl.bfloat16 if IS_BF16 else gl.float16
        offs_n = pid_n * BLOCK_N + gl.arange(0, BLOCK_N, layout=gl.SliceLayout(1, word_layout))
        offs_w = gl.arange(0, BLOCK_K // 8, layout=gl.SliceLayout(0, word_layout))
        mma_rows = gl.arange(0, BLOCK_N, layout=gl.SliceLayout(1, mma_layout))
        offs_on = pid_n * BLOCK_N + _memory_column(mma_rows, BLOCK_N, gl.num_warps())
        offs_om = gl.arange(0, BLOCK_M, layout=gl.SliceLayout(0, mma_layout))
        w_smem = gl.allocate_shared_memory(gl.int32, [STAGES, BLOCK_N, BLOCK_K // 8], w_smem_layout)
        x_smem = gl.allocate_shared_memory(dtype, [STAGES, BLOCK_M, BLOCK_K], x_smem_layout)
        acc = gl.zeros([BLOCK_N, BLOCK_M], gl.float32, mma_layout)
        # each step's product; the last one is dead once folded, so wgmma (use_acc=False) writes
        # the next into its registers: no zeros held across the loop
        part = gl.zeros([BLOCK_N, BLOCK_M], gl.float32, mma_layout)

        k_start, k_end, k_last = _split_range(k_per_split, K, BLOCK_K)
        n_in = offs_n < N
        out_n_in = offs_on < N
        x_rows, x_in = _x_tile(x_ptr, M, stride_xm, BLOCK_M, BLOCK_K, x_layout)
        xsum_cols = xsum_ptr + offs_om
        xsum_in = offs_om < M
        word_cols = qweight_ptr + offs_n[:, None] + offs_w[None, :].to(gl.int64) * N
        scale_cols = scales_ptr + offs_on
        zero_cols = zeros_ptr + offs_on
        for stage in gl.static_range(STAGES - 1):
            k_fetch = gl.minimum(k_start + stage * BLOCK_K, k_last)
            _fetch_stage(
                w_smem, x_smem, stage, word_cols + (k_fetch // 8) * N, n_in, x_rows + k_fetch, x_in,
                EVEN_N, X_PREPARED,
            )  # fmt: skip
        x, x_sum, s, z = _load_step(
            x_rows, x_in, xsum_cols, xsum_in, scale_cols, zero_cols, out_n_in, k_start, N, M,
            k_start // BLOCK_K, HAS_ZEROS, EVEN_N, X_PREPARED,
        )  # fmt: skip
        stage = 0
        for k0 in range(k_start, k_end, BLOCK_K):
            k_next = gl.minimum(k0 + BLOCK_K, k_last)
            next_x, next_x_sum, next_s, next_z = _load_step(
                x_rows, x_in, xsum_cols, xsum_in, scale_cols, zero_cols, out_n_in, k_next, N, M,
                k_next // BLOCK_K, HAS_ZEROS, EVEN_N, X_PREPARED,
            )  # fmt: skip
            # the slot this fetch fills was last read a step ago: this thread's words are in its
            # registers since, and that step's wgmma (x's tile) has completed
            k_fetch = gl.minimum(k0 + (STAGES - 1) * BLOCK_K, k_last)
            fetch_stage = (stage + STAGES - 1) % STAGES
            _fetch_stage(
                w_smem, x_smem, fetch_stage, word_cols + (k_fetch // 8) * N, n_in, x_rows + k_fetch,
                x_in, EVEN_N, X_PREPARED,
            )  # fmt: skip
            wait_group(STAGES - 1)  # this step's copies have landed
            words = w_smem.index(stage).load(word_layout)
            a = _a_operand(words, mask, magic, BLOCK_N, BLOCK_K, IS_BF16, a_layout)
            x_tile = x_smem.index(stage)
            if not X_PREPARED:
                x_sum = gl.convert_layout(gl.sum(x.to(gl.float32), axis=1), gl.SliceLayout(0, mma_layout))
                x_tile.store(_permute_x(x, BLOCK_M, BLOCK_K))
            fence_async_shared()
            _cta_barrier()  # every thread's part of x's tile is in shared memory
            part = warpgroup_mma(a, x_tile.permute([1, 0]), part, use_acc=False)
            acc += (part - (z + magic_value)[:, None] * x_sum[None, :]) * s[:, None]
            stage = (stage + 1) % STAGES
            x, x_sum, s, z = next_x, next_x_sum, next_s, next_z
        wait_group(0)  # no copy may land in shared memory after the program ends
        _store_result(acc, out_ptr, partial_ptr, offs_om, offs_on, M, N, WRITE_PARTIAL)


def _word_layout(block_n: int, block_k: int, num_warps: int):
    """[block_n, block_k / 8] words: the A operand's layout read back through the unpacking and
    `_rows_in_mma_order`. Lanes t (word within a chunk) and g (row); registers the 2R adjacent
    columns a thread loads at once, then the chunks of K; warps blocks of 16R columns. Each
    thread copies (cp.async) and later reads exactly its own words, so the ring needs no
    barrier."""
    per_thread = 2 * (block_n // (16 * num_warps))  # adjacent columns n a thread reads at once (2R)
    regs = [[1 << j, 0] for j in range(per_thread.bit_length() - 1)]
    regs += [[0, 4 << j] for j in range((block_k // 32).bit_length() - 1)]
    return gl.DistributedLinearLayout(
        reg_bases=regs,
        lane_bases=[[0, 1], [0, 2], [per_thread, 0], [2 * per_thread, 0], [4 * per_thread, 0]],
        warp_bases=[[8 * per_thread << j, 0] for j in range(num_warps.bit_length() - 1)],
        block_bases=[],
        shape=[block_n, block_k // 8],
    )


@functools.cache
def operand_layouts(block_n: int, block_k: int, block_m: int, num_warps: int, step_k: int = 0) -> dict:
    """The layouts every wgmma kernel here shares, as constexpr arguments: x's tile (`step_k`
    columns, block_k by default) in registers and in shared memory, the wgmma accumulator and
    its A operand (the weight, block_k columns per wgmma)."""
    if num_warps not in (4, 8):
        raise ValueError(f"num_warps must be 4 or 8 (one or two warp groups), not {num_warps}")
    rows = 16 * num_warps
    if block_n % rows or block_n & (block_n - 1):
        raise ValueError(f"block_n must be a power of two and a multiple of {rows}, not {block_n}")
    if block_m not in (8, 16, 32, 64, 128, 256):
        raise ValueError(f"block_m must be 8, 16, 32, 64, 128 or 256, not {block_m}")
    if block_k not in SUPPORTED_GROUP_SIZES:
        raise ValueError(f"block_k must be one of {SUPPORTED_GROUP_SIZES}, not {block_k}")
    mma = gl.NVMMADistributedLayout(
        version=[3, 0], warps_per_cta=[num_warps, 1], instr_shape=[16, block_m, 16]
    )
    step_k = step_k or block_k
    if step_k % block_k or not block_k <= step_k <= 256:
        raise ValueError(f"a K step of {step_k} must be a multiple of {block_k}, at most 256")
    x = gl.BlockedLayout(
        size_per_thread=[1, 8], threads_per_warp=[32 * 8 // step_k, step_k // 8],
        warps_per_cta=[num_warps, 1], order=[1, 0],
    )  # fmt: skip
    return dict(
        x_layout=x, mma_layout=mma, a_layout=gl.DotOperandLayout(operand_index=0, parent=mma, k_width=2),
        x_smem_layout=gl.NVMMASharedLayout.get_default_for([block_m, step_k], gl.bfloat16),
    )  # fmt: skip


@functools.cache
def kernel_layouts(block_n: int, block_k: int, block_m: int, num_warps: int) -> dict:
    """This kernel's layouts as constexpr arguments: `operand_layouts`, the words
    (`_word_layout`) and their shared-memory ring."""
    layouts = operand_layouts(block_n, block_k, block_m, num_warps)
    # words: n fastest, as in memory; rows of the slot XOR-swizzled so that the 4 word rows a
    # warp reads at once fall in different banks
    per_thread = 2 * (block_n // (16 * num_warps))
    w_smem = gl.SwizzledSharedLayout(vec=per_thread, per_phase=1, max_phase=8, order=[0, 1])
    return dict(word_layout=_word_layout(block_n, block_k, num_warps), w_smem_layout=w_smem, **layouts)


def available(device: torch.device) -> bool:
    """Whether this kernel can run on `device`: a CUDA sm_90 GPU (wgmma) and a Triton with Gluon
    (3.6 and 3.7 are the versions it was built and tested with)."""
    if not HAVE_GLUON or device.type != "cuda":
        return False
    return torch.cuda.get_device_capability(device) == (9, 0)


def block_m_for(M: int) -> int:
    """wgmma's N: the smallest of 8, 16, 32, 64 that holds M rows (M <= 64)."""
    return next(b for b in (8, 16, 32, 64) if M <= b)


def unpack_like_kernel(words: torch.Tensor, block_k: int) -> torch.Tensor:
    """Plain-PyTorch model of `_unpack_words` (without the C offset): [N, K / 8] int32 words ->
    [N, K] nibble values in the kernel's logical K order, block by block of `block_k`."""
    n, k8 = words.shape
    q = torch.stack([(words >> (4 * j)) & 0xF for j in range(8)], dim=-1)  # [n, word, j]
    # nibble j = 4e + s, s = 2b + h -> [n, c, t, e, b, h]
    q = q.reshape(n, k8 // 4, 4, 2, 2, 2)
    return q.permute(0, 1, 4, 5, 2, 3).reshape(n, k8 * 8)


def permute_like_kernel(x: torch.Tensor) -> torch.Tensor:
    """Plain-PyTorch model of `_permute_x`: [M, K] -> [M, K] in the kernel's logical K order."""
    m, k = x.shape
    return x.reshape(m, k // 32, 4, 2, 2, 2).permute(0, 1, 4, 5, 2, 3).reshape(m, k)


@triton.jit
def _prepare_x_kernel(x_ptr, x_out_ptr, xsum_ptr, M, K, stride_xm, G: tl.constexpr, NF4: tl.constexpr,
                      SUMS: tl.constexpr):  # fmt: skip
    """Program (row m, group g): x[m, group] in the wgmma kernel's K order (int4's, or with NF4
    nf4_wgmma.py's), and with SUMS its fp32 sum (int4's fold needs it)."""
    m = tl.program_id(0).to(tl.int64)
    g = tl.program_id(1).to(tl.int64)
    k = tl.arange(0, G)  # logical k' = 32c + 16b + 8h + 2t + e, read from its physical position
    c, b, h, t, e = k // 32, k // 16 % 2, k // 8 % 2, k // 2 % 4, k % 2
    if NF4:
        physical = 8 * (t * (G // 32) + c) + 4 * b + 2 * h + e
    else:
        physical = 32 * c + 8 * t + 4 * e + 2 * b + h
    v = tl.load(x_ptr + m * stride_xm + g * G + physical)
    tl.store(x_out_ptr + m * K + g * G + k, v)
    if SUMS:
        tl.store(xsum_ptr + g * M + m, tl.sum(v.to(tl.float32), axis=0))


def prepare_x(
    x: torch.Tensor, group_size: int, nf4: bool = False, sums: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """x [M, K] -> (x in the kernel's K order [M, K], its sums per group [K / G, M] fp32; with
    `nf4`, nf4_wgmma.py's order; no sums with `nf4` or without `sums`, which only the int4 fold
    reads): done once per call, so that each of the kernel's
    programs copies x's tiles instead of permuting (and summing) them (at M = 32 that work cost
    more than the weights' unpacking; 0007 run 17)."""
    M, K = x.shape
    x_out = torch.empty((M, K), dtype=x.dtype, device=x.device)
    sums = sums and not nf4
    x_sums = torch.empty((K // group_size if sums else 0, M), dtype=torch.float32, device=x.device)
    _prepare_x_kernel[(M, K // group_size)](
        x, x_out, x_sums, M, K, x.stride(0), G=group_size, NF4=nf4, SUMS=sums
    )  # fmt: skip
    return x_out, x_sums


def checked_group_size(qweight, config: WgmmaConfig, block_ms: tuple[int, ...]) -> int:
    """The weight's group size, after checking it and config.block_m against what a tiled wgmma
    kernel takes (`block_ms`)."""
    if qweight.group_size not in SUPPORTED_GROUP_SIZES:
        raise ValueError(f"group_size must be one of {SUPPORTED_GROUP_SIZES}, not {qweight.group_size}")
    if config.block_m not in block_ms:
        raise ValueError(f"block_m must be one of {block_ms} here, not {config.block_m}")
    return qweight.group_size


def plan_splits(config: WgmmaConfig, M: int, N: int, k_steps: int, out: torch.Tensor, m_tiles: int = 1):
    """(output tiles along N, splits along K, K steps per split, where the program's results go:
    the fp32 partials [splits, M, N] when K is split, else `out`) for one launch of `config`
    whose grid also has `m_tiles` tiles along M."""
    from inferlab.kernels._matmul_plan import MAX_SPLIT_K, TILED_MAX_SPLIT_K, _num_sms, split_k_for

    num_tiles = triton.cdiv(N, config.block_n)
    sms = _num_sms(out.device)
    most = TILED_MAX_SPLIT_K if config.dequantize_a and M > 64 else MAX_SPLIT_K
    if config.split_k:
        split = config.split_k
    elif config.warp_specialized:
        # one wave: the most splits (a power of two) whose programs all fit on the SMs at once,
        # one per SM (on 112 tiles no split: a second, partial wave cost 15-21%, 0007 run 59)
        split = 1
        while num_tiles * m_tiles * split * 2 <= sms and split * 2 <= min(k_steps, most):
            split *= 2
    else:
        split = split_k_for(num_tiles * m_tiles, k_steps, sms, config.programs_per_sm, most)
    steps_per_split = triton.cdiv(k_steps, min(split, k_steps))
    split = triton.cdiv(k_steps, steps_per_split)  # splits that would start past K are dropped
    partial = torch.empty((split, M, N), dtype=torch.float32, device=out.device) if split > 1 else out
    return num_tiles, split, steps_per_split, partial


def int4_wgmma_matmul(x: torch.Tensor, qweight, out: torch.Tensor, config: WgmmaConfig) -> torch.Tensor:
    """x [M, K] @ W.T into `out` [M, N] with the wgmma kernel (inputs already validated by
    w4a16_matmul): this module's for M <= 64, w4a16_wgmma_tiled.py's with `config.dequantize_a`,
    w4a16_wgmma_ws.py's with `config.warp_specialized`."""
    from inferlab.kernels._matmul_plan import reduce_partials

    if x.stride(1) != 1:  # the kernel reads along K with unit stride (any row stride is fine)
        x = x.contiguous()
    if config.warp_specialized:
        from inferlab.kernels.w4a16_wgmma_ws import int4_wgmma_ws_matmul

        return int4_wgmma_ws_matmul(x, qweight, out, config)
    if config.dequantize_a:
        from inferlab.kernels.w4a16_wgmma_tiled import int4_wgmma_tiled_matmul

        return int4_wgmma_tiled_matmul(x, qweight, out, config)
    M, K = x.shape
    N = out.shape[1]
    G = qweight.group_size
    if G not in SUPPORTED_GROUP_SIZES:
        raise ValueError(f"group_size must be one of {SUPPORTED_GROUP_SIZES}, not {G}")
    if config.blocks_per_step != 1:
        raise ValueError("blocks_per_step is NF4's (nf4_wgmma.py): the int4 kernel takes one group per step")
    block_m = max(config.block_m, block_m_for(M))
    layouts = kernel_layouts(config.block_n, G, block_m, config.num_warps)
    num_tiles, split, steps_per_split, partial = plan_splits(config, M, N, K // G, out)
    write_partial = split > 1
    magic_bits, magic_value = MAGIC[x.dtype]
    zeros = qweight.zeros
    x_sums = partial  # any fp32 pointer: unread unless the x is prepared
    if config.prepare_x:
        x, x_sums = prepare_x(x, G)
    _int4_wgmma_kernel[(num_tiles, split)](
        x, x_sums, out, partial, qweight.qweight, qweight.scales,
        qweight.scales if zeros is None else zeros,
        M, N, K, x.stride(0), steps_per_split * G, PAIR_MASK, magic_bits, magic_value,
        HAS_ZEROS=zeros is not None, WRITE_PARTIAL=write_partial, EVEN_N=N % config.block_n == 0,
        IS_BF16=x.dtype == torch.bfloat16, X_PREPARED=config.prepare_x, STAGES=config.stages,
        BLOCK_N=config.block_n, BLOCK_K=G, BLOCK_M=block_m, **layouts,
        num_warps=config.num_warps,
    )  # fmt: skip
    if write_partial:
        reduce_partials(partial, out)
    return out
