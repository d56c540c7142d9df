"""int4 weight-only matmul on wgmma for prefill-sized M: the weight dequantized whole in registers.

w4a16_wgmma.py (read it first) multiplies the raw 128 + q values and folds each group's zero
point and scale into the fp32 product afterwards. For a few rows of x that fold is cheap and W is
never rounded. As M grows it stops paying: per K step (one group of G = 128) a program unpacks
BLOCK_N x G weights, about one operation each, but folds 2 x BLOCK_N x BLOCK_M products, so
from BLOCK_M = 64 the fold is the larger part; it also waits for each step's wgmma, and needs a
second accumulator for the step's product (64 more registers per thread at BLOCK_M = 128).

So this kernel finishes the dequantization in the A registers: from the same 128 + q pairs
(`_unpack_words`, K in the same permuted order), one `sub` and one `mul` per register pair,

    w = ((C + q) - (C + z)) * s        (C = 128 in bf16, 1024 in fp16)

The subtraction is exact (both are integers below 2^11), the product is rounded once to x's
dtype: the same bits as the reference's "(q - z) * s, rounded" when the scales are in x's dtype.
wgmma then accumulates straight into one fp32 accumulator across all of K.

The x rows are tiled by BLOCK_M (32 to 256: wgmma's N) with the program's M tile the fastest
grid index, so the programs that share a weight tile run together and read it from DRAM once.
x is permuted to the kernel's K order once per call (`prepare_x`) and its tiles ride the words'
cp.async ring (or, with `words_in_registers`, the ring carries x alone and each thread loads its
words a step ahead). Two warp groups (8 warps) share each x tile.

Measured (experiment 0007, runs 45-52; bf16, Llama-3-8B's large layers): on an H100 1.25-1.27x
cuBLAS bf16 at M = 64 (the fold kernel: 1.12-1.16x), 0.98-1.00x at 128 and 0.60-0.62x at 256; on
an H200, with the same microseconds, 1.00-1.04x, 0.70-0.74x and 0.53-0.56x; 1.5-2.1x the tl
kernels it replaced from M = 128. Nsight Compute at M = 128 (run 47): the tensor pipe busy
42% of the time, L2 31%, the schedulers idle 77%: each program unpacks, then waits for its own
wgmma, then for the ring, one step after another. (w4a16_matmul takes it only where TMA cannot
copy the weight: w4a16_wgmma_ws.py, warp-specialized, took over from 33 rows, runs 57-65.) The
way out, an asynchronous wgmma that
multiplies step i while step i + 1 unpacks, is not expressible safely here: Gluon (Triton 3.6,
3.7) keeps the A operand's values live across the wait, but wgmma reads registers re-packed from
them, which ptxas may reuse while it is in flight (wrong results at K = 4096, run 49). With A
through shared memory (two buffers) it was right but slower: 58.8 against 44.0 µs at M = 128,
84.8 against 69.9 at 256 (run 51; the store and wgmma's read of A add 32 KB of shared-memory
traffic to each step's 68). Two pitfalls on the way, for whoever tries again: ptxas waits for
every wgmma of the function (warning C7514) when the result is stored, masked, straight from
the accumulator's layout, and (C7515) when the accumulator is set by ordinary instructions on a
path where a wgmma may be in flight: peel the first step with use_acc=False. What remained, a
warp-specialized producer that unpacks while the consumers multiply, is w4a16_wgmma_ws.py.

Hopper only (sm_90), like w4a16_wgmma.py; tests/test_w4a16_wgmma_tiled.py compiles it on the
CPU and checks it against the reference on a GPU.
"""

from __future__ import annotations

import torch

from inferlab.kernels.w4a16_wgmma import (
    HAVE_GLUON,
    MAGIC,
    PAIR_MASK,
    SUPPORTED_GROUP_SIZES,
    WgmmaConfig,
    checked_group_size,
    kernel_layouts,
    plan_splits,
    prepare_x,
)

TILED_BLOCK_M = (32, 64, 128, 256)

if HAVE_GLUON:
    from inferlab.kernels.w4a16_wgmma import (
        _a_operand,
        _fetch_stage,
        _memory_column,
        _scale_and_zero,
        _split_range,
        _store_result,
        _x_tile,
        async_copy_global_to_shared,
        commit_group,
        gl,
        gluon,
        wait_group,
        warpgroup_mma,
    )

    @gluon.jit
    def _dequantize(a, offset, scale, IS_BF16: gl.constexpr):
        """(a - offset) * scale per register pair: a exact integer difference, one rounding."""
        if IS_BF16:
            asm: gl.constexpr = "{ .reg .b32 d; sub.rn.bf16x2 d, $1, $2; mul.rn.bf16x2 $0, d, $3; }"
        else:
            asm: gl.constexpr = "{ .reg .b32 d; sub.rn.f16x2 d, $1, $2; mul.rn.f16x2 $0, d, $3; }"
        offset, _ = gl.broadcast(offset, a)
        scale, _ = gl.broadcast(scale, a)
        return gl.inline_asm_elementwise(
            asm, "=r,r,r,r", [a, offset, scale], dtype=a.dtype, is_pure=True, pack=2
        )

    @gluon.jit
    def _load_scales(scale_cols, zero_cols, n_in, group, N, magic_value, dtype: gl.constexpr,
                     HAS_ZEROS: gl.constexpr, EVEN_N: gl.constexpr):  # fmt: skip
        """One group's scale and C + zero point per weight row, in x's dtype (C + z < 2^11: exact)."""
        s, z = _scale_and_zero(scale_cols, zero_cols, n_in, group, N, HAS_ZEROS, EVEN_N)
        return s.to(dtype), (z + magic_value).to(dtype)

    @gluon.jit
    def _load_words(word_cols, k, N, n_in, EVEN_N: gl.constexpr):
        """One K step's words into registers (loaded a step ahead of their use)."""
        if EVEN_N:
            words = gl.load(word_cols + (k // 8) * N)
        else:
            words = gl.load(word_cols + (k // 8) * N, mask=n_in[:, None], other=0)
        return words

    @gluon.jit
    def _fetch(w_smem, x_smem, stage, word_cols, k, N, n_in, x_rows, x_in,
               EVEN_N: gl.constexpr, WORDS_IN_REGS: gl.constexpr):  # fmt: skip
        """cp.async one step's x tile (and, unless WORDS_IN_REGS, its words) into a ring slot."""
        if WORDS_IN_REGS:
            async_copy_global_to_shared(x_smem.index(stage), x_rows + k, mask=x_in)
            commit_group()
        else:
            words = word_cols + (k // 8) * N
            _fetch_stage(w_smem, x_smem, stage, words, n_in, x_rows + k, x_in, EVEN_N, True)

    @gluon.jit
    def _operand(w_smem, x_smem, stage, words, word_cols, k0, k_last, N, n_in, x_rows, x_in,
                 scale_cols, zero_cols, an_in, magic_value, mask, magic, STAGES: gl.constexpr,
                 GROUP: gl.constexpr, BLOCK_N: gl.constexpr, BLOCK_K: gl.constexpr,
                 HAS_ZEROS: gl.constexpr, EVEN_N: gl.constexpr, IS_BF16: gl.constexpr,
                 WORDS_IN_REGS: gl.constexpr, word_layout: gl.constexpr,
                 a_layout: gl.constexpr):  # fmt: skip
        """Step k0's A operand (the words unpacked and dequantized) and the next step's words if
        they travel in registers. On the way: wait for this step's copies (Triton adds the
        barrier after the wait, so every thread's have landed and every warp group is done with
        the previous step's wgmma), refill that wgmma's ring slot STAGES - 1 steps ahead."""
        dtype: gl.constexpr = gl.bfloat16 if IS_BF16 else gl.float16
        k_next = gl.minimum(k0 + BLOCK_K, k_last)
        group = k0 // GROUP
        s, zc = _load_scales(scale_cols, zero_cols, an_in, group, N, magic_value, dtype, HAS_ZEROS, EVEN_N)
        wait_group(STAGES - 2)
        k_fetch = gl.minimum(k0 + (STAGES - 1) * BLOCK_K, k_last)
        _fetch(
            w_smem, x_smem, (stage + STAGES - 1) % STAGES, word_cols, k_fetch, N, n_in, x_rows, x_in,
            EVEN_N, WORDS_IN_REGS,
        )  # fmt: skip
        if WORDS_IN_REGS:
            next_words = _load_words(word_cols, k_next, N, n_in, EVEN_N)
        else:
            words = w_smem.index(stage).load(word_layout)
            next_words = words
        a = _a_operand(words, mask, magic, BLOCK_N, BLOCK_K, IS_BF16, a_layout)
        return _dequantize(a, zc[:, None], s[:, None], IS_BF16), next_words

    @gluon.jit
    def _int4_wgmma_tiled_kernel(
        x_ptr, out_ptr, partial_ptr, qweight_ptr, scales_ptr, zeros_ptr,
        M, N, K, stride_xm, k_per_split, m_tiles, mask, magic, magic_value,
        HAS_ZEROS: gl.constexpr, WRITE_PARTIAL: gl.constexpr, EVEN_N: gl.constexpr,
        IS_BF16: gl.constexpr, STAGES: gl.constexpr, GROUP: gl.constexpr,
        WORDS_IN_REGS: gl.constexpr,
        BLOCK_N: gl.constexpr, BLOCK_K: gl.constexpr, BLOCK_M: gl.constexpr,
        word_layout: gl.constexpr, x_layout: gl.constexpr,
        mma_layout: gl.constexpr, a_layout: gl.constexpr, x_smem_layout: gl.constexpr,
        w_smem_layout: gl.constexpr,
    ):  # fmt: skip
        """Program (m tile + m_tiles x n tile, split): y[m tile, n tile] (or its split's fp32
        partial). x_ptr is x in the kernel's K order (`prepare_x`). A K step is BLOCK_K columns, a
        group (GROUP) or part of one: the K permutation is within 32-column chunks.

        Per step (`_operand`): wait for this step's x tile (and words: cp.async STAGES - 1
        steps ahead, or registers a step ahead with WORDS_IN_REGS), refill a ring slot, unpack
        and dequantize the words into A; then one synchronous wgmma into the accumulator (an
        asynchronous one, overlapping the next step's unpacking, was tried and left out: 0007
        runs 46-51)."""
        pid = gl.program_id(0)
        m0 = (pid % m_tiles) * BLOCK_M
        pid_n = pid // m_tiles
        dtype: gl.constexpr = gl.bfloat16 if IS_BF16 else gl.float16
        offs_n = pid_n * BLOCK_N + gl.arange(0, BLOCK_N, layout=gl.SliceLayout(1, word_layout))
        offs_w = gl.arange(0, BLOCK_K // 8, layout=gl.SliceLayout(0, word_layout))
        a_rows = gl.arange(0, BLOCK_N, layout=gl.SliceLayout(1, a_layout))
        offs_an = pid_n * BLOCK_N + _memory_column(a_rows, BLOCK_N, gl.num_warps())
        w_smem = gl.allocate_shared_memory(gl.int32, [STAGES, BLOCK_N, BLOCK_K // 8], w_smem_layout)
        x_smem = gl.allocate_shared_memory(dtype, [STAGES, BLOCK_M, BLOCK_K], x_smem_layout)
        acc = gl.zeros([BLOCK_N, BLOCK_M], gl.float32, mma_layout)

        k_start, k_end, k_last = _split_range(k_per_split, K, BLOCK_K)
        n_in = offs_n < N
        an_in = offs_an < N
        x_rows, x_in = _x_tile(x_ptr + m0 * stride_xm, M - m0, stride_xm, BLOCK_M, BLOCK_K, x_layout)
        word_cols = qweight_ptr + offs_n[:, None] + offs_w[None, :].to(gl.int64) * N
        scale_cols = scales_ptr + offs_an
        zero_cols = zeros_ptr + offs_an
        for stage in gl.static_range(STAGES - 1):
            k_fetch = gl.minimum(k_start + stage * BLOCK_K, k_last)
            _fetch(w_smem, x_smem, stage, word_cols, k_fetch, N, n_in, x_rows, x_in, EVEN_N, WORDS_IN_REGS)
        words = _load_words(word_cols, k_start, N, n_in, EVEN_N)  # unused unless WORDS_IN_REGS
        stage = 0
        for k0 in range(k_start, k_end, BLOCK_K):
            a, words = _operand(
                w_smem, x_smem, stage, words, word_cols, k0, k_last, N, n_in, x_rows, x_in,
                scale_cols, zero_cols, an_in, magic_value, mask, magic, STAGES, GROUP, BLOCK_N,
                BLOCK_K, HAS_ZEROS, EVEN_N, IS_BF16, WORDS_IN_REGS, word_layout, a_layout,
            )  # fmt: skip
            acc = warpgroup_mma(a, x_smem.index(stage).permute([1, 0]), acc)
            stage = (stage + 1) % STAGES
        wait_group(0)  # no copy may land in shared memory after the program ends
        mma_rows = gl.arange(0, BLOCK_N, layout=gl.SliceLayout(1, mma_layout))
        offs_on = pid_n * BLOCK_N + _memory_column(mma_rows, BLOCK_N, gl.num_warps())
        offs_om = m0 + gl.arange(0, BLOCK_M, layout=gl.SliceLayout(0, mma_layout))
        _store_result(acc, out_ptr, partial_ptr, offs_om, offs_on, M, N, WRITE_PARTIAL)


def int4_wgmma_tiled_matmul(x: torch.Tensor, qweight, out: torch.Tensor, config: WgmmaConfig) -> torch.Tensor:
    """x [M, K] @ W.T into `out` [M, N] with the dequantizing wgmma kernel (inputs already
    validated by w4a16_matmul); M tiled by config.block_m."""
    from inferlab.kernels._matmul_plan import reduce_partials
    from inferlab.kernels._triton import triton

    M, K = x.shape
    N = out.shape[1]
    G = checked_group_size(qweight, config, TILED_BLOCK_M)
    if config.step_k not in (None, *SUPPORTED_GROUP_SIZES):
        raise ValueError(f"step_k must be None (the group size), 32, 64 or 128, not {config.step_k}")
    step_k = min(config.step_k or G, G)  # a step never spans two groups
    if config.stages < 2:
        raise ValueError(f"stages must be at least 2 (one slot read, one filling), not {config.stages}")
    layouts = kernel_layouts(config.block_n, step_k, config.block_m, config.num_warps)
    m_tiles = triton.cdiv(M, config.block_m)
    num_tiles, split, steps_per_split, partial = plan_splits(config, M, N, K // step_k, out, m_tiles)
    magic_bits, magic_value = MAGIC[x.dtype]
    zeros = qweight.zeros
    x, _ = prepare_x(x, G, sums=False)  # no fold here: the sums would go unread
    _int4_wgmma_tiled_kernel[(num_tiles * m_tiles, split)](
        x, out, partial, qweight.qweight, qweight.scales, qweight.scales if zeros is None else zeros,
        M, N, K, x.stride(0), steps_per_split * step_k, m_tiles, PAIR_MASK, magic_bits, magic_value,
        HAS_ZEROS=zeros is not None, WRITE_PARTIAL=split > 1, EVEN_N=N % config.block_n == 0,
        IS_BF16=x.dtype == torch.bfloat16, STAGES=config.stages, GROUP=G,
        WORDS_IN_REGS=config.words_in_registers,
        BLOCK_N=config.block_n, BLOCK_K=step_k, BLOCK_M=config.block_m, **layouts,
        num_warps=config.num_warps,
    )  # fmt: skip
    if split > 1:
        reduce_partials(partial, out)
    return out
