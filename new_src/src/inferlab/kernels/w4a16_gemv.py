"""Decode GEMV on CUDA cores for the weight-only matmuls (int4 group-wise, int8 per channel).

At M = 1 a tensor-core tile wastes 15 of its 16 rows, and what limits the kernel is not the
multiply-adds but the ALU work per weight: an H200 streams about 32 int4 weights per clock per
SM from HBM (its measured 4.18 TB/s copy rate over 132 SMs at 1.98 GHz), and an SM issues 128
lane-operations per clock, so each weight can afford about 4 operations, dequantization and
multiply-add included. The
tensor-core kernels in w4a16_kernels.py spend more than that (unpacking, rounding each weight to the
16-bit type, layout shuffles into the mma operand), and measured 0.8x cuBLAS bf16 at M = 1.

The int4 kernel spends about two and a half (SASS: half a shift, one LOP3, one FFMA):

    one shift puts nibbles 2p and 2p + 1 of a word at bits 15-18 and 19-22; "and" with their
    mask, "or" with the exponent of 256 or of 16 (one LOP3), and the bits read as fp32 are
    exactly 256 + q and 16 + q (those mantissa bits are worth 1 under those exponents). Times
    x that is 2^e x + x q, one FFMA into an fp32 accumulator that stays in the thread; once per
    word row the sums of 2^e x and z times the sum of x come off: sum x (q - z), times the
    scale s. (An earlier version read 1 + q / 2^e and pre-scaled x by 2^e: the same products,
    plus multiplies per word row that this one does not need.)

Why not the better known 2^23 + q (q | 0x4B000000)? x times 2^23 + q would round q away, so it
needs a subtraction per weight before the multiply. Here the offset 2^e x is only 16-256 times
|x q|: each product rounds at 2^-24 of 2^8 |x|, and the result keeps ~16 of fp32's 24 bits after
the correction, far below the 16-bit output's own rounding.

The scale is applied once per word row (y = sum over groups of s * sum of x (q - z)), not to
each weight, and partial sums stay in each thread's registers across the K loop ([BLOCK_K/8,
BLOCK_N] for int4) and are summed across threads once at the end. So unlike the tensor-core
kernels, W is never rounded to the 16-bit type: the result is the exact-weight product summed in
fp32, as close to the fp64 truth as "dequantize to bf16, then matmul" or closer
(tests/test_kernels_w4a16.py holds both to fp64); it differs from that reference by the weights'
roundings, which is why the SPECs let the error follow the output's rms.

int8: q + 0x4B000080 read as fp32 is 2^23 + 128 + q, minus (2^23 + 128) is q: three operations
and a multiply-add per weight, the channel scale applied to the finished sum.
"""

from __future__ import annotations

from inferlab.kernels._matmul_tiles import _store_tile
from inferlab.kernels._triton import tl, triton
from inferlab.kernels.w4a16_kernels import _nf4_block_absmax

# Bits 15-18 and 19-22 of a word. As run-time arguments they live in registers, so the compiler
# can fold "and with the mask, or with the exponent" into one LOP3 (it takes one immediate; as
# two constants, ptxas emitted an AND and an OR per weight).
INT4_GEMV_MASKS = (0x00078000, 0x00780000)


@triton.jit
def _gemv_program(M, N, K, k_per_split, BLOCK_N: tl.constexpr):
    """This program's row of x, its BLOCK_N outputs (and their mask) and its split of K. Grid:
    (M x output tiles, splits); the M rows of one column tile are adjacent programs, so a weight
    tile read for one row is still in L2 for the next."""
    row = tl.program_id(axis=0).to(tl.int64) % M
    pid_n = tl.program_id(axis=0).to(tl.int64) // M
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    k_start = tl.program_id(axis=1).to(tl.int64) * k_per_split
    return row, offs_n, offs_n < N, k_start, tl.minimum(k_start + k_per_split, K)


@triton.jit
def _int4_gemv_kernel(
    x_ptr, out_ptr, partial_ptr, counter_ptr,
    M, N, K, stride_xm, stride_xk, k_per_split,
    qweight_ptr,  # int32 [K/8, N]: input 8i + j of output n in bits 4j of word (i, n)
    scales_ptr,  # [K/G, N] x's dtype
    zeros_ptr,  # uint8 [K/G, N]                          (HAS_ZEROS only; else 8)
    mask_15_18, mask_19_22,  # INT4_GEMV_MASKS, passed at run time so that they sit in registers
    GROUP_SIZE: tl.constexpr, HAS_ZEROS: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
    SWAP_AB: tl.constexpr, WRITE_PARTIAL: tl.constexpr, LAST_SPLIT_REDUCES: tl.constexpr,
    EMULATE_BF16: tl.constexpr, BF16_BY_INT: tl.constexpr,
):  # fmt: skip
    """One row of x per program (BLOCK_M = 1); every tile is 2-D [BLOCK_K/8, BLOCK_N] in the
    layout of the words' load, so nothing moves between threads inside the loop."""
    BLOCK_I: tl.constexpr = BLOCK_K // 8  # word rows per K step
    row, offs_n, mask_n, k_start, k_end = _gemv_program(M, N, K, k_per_split, BLOCK_N)
    x_row = x_ptr + row * stride_xm
    acc = tl.zeros((BLOCK_I, BLOCK_N), dtype=tl.float32)
    # loads are issued one K step ahead by hand: Triton pipelines only loads that feed tl.dot
    rows_end = k_end // 8  # K is a multiple of G, so of 8
    words = _int4_words(qweight_ptr, k_start // 8, rows_end, offs_n, mask_n, N, BLOCK_I)
    for k0 in range(k_start, k_end, BLOCK_K):
        offs_i = k0 // 8 + tl.arange(0, BLOCK_I)
        mask_i = offs_i < rows_end  # the last step of the last split may pass K
        ahead = _int4_words(qweight_ptr, k0 // 8 + BLOCK_I, rows_end, offs_n, mask_n, N, BLOCK_I)
        g_offs = (offs_i * 8 // GROUP_SIZE)[:, None] * N + offs_n[None, :]  # each word row's group
        g_mask = mask_i[:, None] & mask_n[None, :]  # a scale past K would be NaN x 0 = NaN
        scale = tl.load(scales_ptr + g_offs, mask=g_mask, other=0.0).to(tl.float32)
        if HAS_ZEROS:
            zero = tl.load(zeros_ptr + g_offs, mask=g_mask, other=0).to(tl.float32)
        else:
            zero = tl.full((BLOCK_I, BLOCK_N), 8.0, tl.float32)
        part = tl.zeros((BLOCK_I, BLOCK_N), dtype=tl.float32)
        x_even_sum = tl.zeros((BLOCK_I,), dtype=tl.float32)  # sums over p of x, even inputs
        x_odd_sum = tl.zeros((BLOCK_I,), dtype=tl.float32)  # and odd inputs
        for p in tl.static_range(4):  # nibbles 2p and 2p + 1 of each word: one shift for two
            if 8 * p <= 15:
                moved = words << (15 - 8 * p)  # nibble 2p to bits 15-18, 2p + 1 to bits 19-22
            else:
                moved = words >> (8 * p - 15)
            # exponents of 256 and 16 make bits 15-18 and 19-22 count ones: 256 + q and 16 + q
            even = ((moved & mask_15_18) | 0x43800000).to(tl.float32, bitcast=True)
            odd = ((moved & mask_19_22) | 0x41800000).to(tl.float32, bitcast=True)
            x_ptrs = x_row + (offs_i * 8 + 2 * p) * stride_xk  # inputs 8i + 2p and 8i + 2p + 1
            x_even = tl.load(x_ptrs, mask=mask_i, other=0.0).to(tl.float32)
            x_odd = tl.load(x_ptrs + stride_xk, mask=mask_i, other=0.0).to(tl.float32)
            part += x_even[:, None] * even  # x (256 + q) = 256 x + x q: one FFMA per weight
            part += x_odd[:, None] * odd
            x_even_sum += x_even
            x_odd_sum += x_odd
        # part = sum (256 x_even + 16 x_odd) + sum x q, so sum x (q - z) = part - that - z sum x
        offset = x_even_sum * 256.0 + x_odd_sum * 16.0
        x_sum = x_even_sum + x_odd_sum
        acc += (part - offset[:, None] - zero * x_sum[:, None]) * scale
        words = ahead
    y = tl.sum(acc, axis=0)[None, :]  # across the word rows: the one cross-thread sum
    offs_m = row + tl.arange(0, 1)
    _store_tile(
        y, out_ptr, partial_ptr, counter_ptr, offs_m, offs_n, M, N,
        False, WRITE_PARTIAL, LAST_SPLIT_REDUCES, BF16_BY_INT,
    )  # fmt: skip


@triton.jit
def _int4_words(qweight_ptr, first_row, rows_end, offs_n, mask_n, N, BLOCK_I: tl.constexpr):
    """Words [BLOCK_I, BLOCK_N] from word row first_row; rows at or past rows_end read 0."""
    offs_i = first_row + tl.arange(0, BLOCK_I)
    mask = (offs_i[:, None] < rows_end) & mask_n[None, :]
    return tl.load(qweight_ptr + offs_i[:, None] * N + offs_n[None, :], mask=mask, other=0)


@triton.jit
def _int8_gemv_kernel(
    x_ptr, out_ptr, partial_ptr, counter_ptr,
    M, N, K, stride_xm, stride_xk, k_per_split,
    w_ptr,  # int8 [N, K] row-major
    scale_ptr,  # [N] one scale per output channel (read as fp32)
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
    SWAP_AB: tl.constexpr, WRITE_PARTIAL: tl.constexpr, LAST_SPLIT_REDUCES: tl.constexpr,
    EMULATE_BF16: tl.constexpr, BF16_BY_INT: tl.constexpr,
):  # fmt: skip
    """One row of x per program; the [BLOCK_N, BLOCK_K] accumulator is summed across K once."""
    row, offs_n, mask_n, k_start, k_end = _gemv_program(M, N, K, k_per_split, BLOCK_N)
    x_row = x_ptr + row * stride_xm
    acc = tl.zeros((BLOCK_N, BLOCK_K), dtype=tl.float32)
    q = _int8_tile(w_ptr, offs_n, mask_n, k_start, k_end, K, BLOCK_K)
    for k0 in range(k_start, k_end, BLOCK_K):
        ahead = _int8_tile(w_ptr, offs_n, mask_n, k0 + BLOCK_K, k_end, K, BLOCK_K)  # one step ahead
        offs_k = k0 + tl.arange(0, BLOCK_K)
        x = tl.load(x_row + offs_k * stride_xk, mask=offs_k < k_end, other=0.0).to(tl.float32)
        qf = (q.to(tl.int32) + 0x4B000080).to(tl.float32, bitcast=True) - 8388736.0  # q exactly
        acc += x[None, :] * qf
        q = ahead
    scale = tl.load(scale_ptr + offs_n, mask=mask_n, other=0.0).to(tl.float32)
    y = (tl.sum(acc, axis=1) * scale)[None, :]
    offs_m = row + tl.arange(0, 1)
    _store_tile(
        y, out_ptr, partial_ptr, counter_ptr, offs_m, offs_n, M, N,
        False, WRITE_PARTIAL, LAST_SPLIT_REDUCES, BF16_BY_INT,
    )  # fmt: skip


@triton.jit
def _int8_tile(w_ptr, offs_n, mask_n, k0, k_end, K, BLOCK_K: tl.constexpr):
    offs_k = k0 + tl.arange(0, BLOCK_K)
    mask = mask_n[:, None] & (offs_k[None, :] < k_end)
    return tl.load(w_ptr + offs_n[:, None] * K + offs_k[None, :], mask=mask, other=0)


@triton.jit
def _nf4_gemv_kernel(
    x_ptr, out_ptr, partial_ptr, counter_ptr,
    M, N, K, stride_xm, stride_xk, k_per_split,
    weight_ptr,  # uint8 [N*K/2]: W[n, k] is value n*K + k; byte j = value 2j (high), 2j+1 (low)
    absmax_ptr,  # fp32 [N*K / BLOCKSIZE], or uint8 codes when NESTED
    code_ptr,  # fp32 [16]
    absmax2_ptr, code2_ptr, offset_ptr, blocksize2,  # NESTED only
    BLOCKSIZE: tl.constexpr, ABSMAX_PER_TILE: tl.constexpr, NESTED: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
    SWAP_AB: tl.constexpr, WRITE_PARTIAL: tl.constexpr, LAST_SPLIT_REDUCES: tl.constexpr,
    EMULATE_BF16: tl.constexpr, BF16_BY_INT: tl.constexpr,
):  # fmt: skip
    """One row of x per program, BLOCK_K = BLOCKSIZE (the launcher checks): each K step covers one
    quantization block of every row, so its absmax multiplies that step's partial sums once.

    The 16 code values are read per weight from the 64-byte table, which stays in L1. MEASURED
    SLOWER than the tensor-core path on an H200 (65.6 against 46.9 us at 4096 -> 14336, M = 1;
    experiments/0007-weight-only-matmuls/logs/run9-sweep-nf4-fma.log): two L1 loads per byte and
    their 64-bit address arithmetic (~15 SASS instructions per weight) cost more than the bytes.
    Kept as that measured negative result and as `MatmulConfig(fma=True)` for NF4; not a default."""
    BLOCK_B: tl.constexpr = BLOCK_K // 2  # bytes per row per K step
    # K is a multiple of BLOCKSIZE: no K tail
    row, offs_n, mask_n, k_start, k_end = _gemv_program(M, N, K, k_per_split, BLOCK_N)
    x_row = x_ptr + row * stride_xm
    offs_b = tl.arange(0, BLOCK_B)
    acc = tl.zeros((BLOCK_N, BLOCK_B), dtype=tl.float32)
    packed = _nf4_bytes(weight_ptr, offs_n, mask_n, k_start, k_end, K, BLOCK_B)
    for k0 in range(k_start, k_end, BLOCK_K):
        ahead = _nf4_bytes(weight_ptr, offs_n, mask_n, k0 + BLOCK_K, k_end, K, BLOCK_B)  # a step ahead
        x_even = tl.load(x_row + (k0 + 2 * offs_b) * stride_xk).to(tl.float32)
        x_odd = tl.load(x_row + (k0 + 2 * offs_b + 1) * stride_xk).to(tl.float32)
        part = tl.load(code_ptr + (packed >> 4)) * x_even[None, :]  # value 2j: the high nibble
        part += tl.load(code_ptr + (packed & 0xF)) * x_odd[None, :]  # value 2j + 1: the low nibble
        block = (offs_n * K + k0) // BLOCKSIZE  # this step's block of each row
        absmax = _nf4_block_absmax(
            absmax_ptr, absmax2_ptr, code2_ptr, offset_ptr, block, mask_n, blocksize2, NESTED
        )
        acc += part * absmax[:, None]
        packed = ahead
    y = tl.sum(acc, axis=1)[None, :]
    offs_m = row + tl.arange(0, 1)
    _store_tile(
        y, out_ptr, partial_ptr, counter_ptr, offs_m, offs_n, M, N,
        False, WRITE_PARTIAL, LAST_SPLIT_REDUCES, BF16_BY_INT,
    )  # fmt: skip


@triton.jit
def _nf4_bytes(weight_ptr, offs_n, mask_n, k0, k_end, K, BLOCK_B: tl.constexpr):
    """Bytes [BLOCK_N, BLOCK_B] of W's rows from input k0 (0 past k_end), as int32 0..255."""
    offs_b = k0 // 2 + tl.arange(0, BLOCK_B)
    mask = mask_n[:, None] & (offs_b[None, :] < k_end // 2)
    byte = tl.load(weight_ptr + offs_n[:, None] * (K // 2) + offs_b[None, :], mask=mask, other=0)
    return byte.to(tl.int32)
