"""The tensor-core kernels of the weight-only matmuls, one per weight format (w4a16.py launches
them through _matmul_plan._launch): each program dequantizes a tile of W into registers and feeds
it to tl.dot beside an fp32 accumulator, then stores y or its split-K partials.

## Dequantization in registers (the per-weight ALU work is what decode can afford)

- int4: a [BLOCK_K/8, BLOCK_N] tile of words is read once and consumed as 8 nibble planes: plane
  j = (words >> 4j) & 0xF holds inputs k = 8i + j, and feeds its own tl.dot with the x columns
  8i + j. Each plane is a 2-D elementwise chain from the load to the dot, so the compiler keeps
  the words, not the 8x larger dequantized tile, in the layout tl.dot needs (unpacking into one
  [BLOCK_K, BLOCK_N] tile with a reshape instead sent every 16-bit value through shared memory:
  64 scalar st.shared per thread per step, ~12 PTX instructions per weight vs ~7 now, sm_90 PTX).
  No int -> float conversion: (q | 0x6400) read as fp16 is 1024 + q exactly (bf16: 0x4300 ->
  128 + q), minus (1024 + zero) is exact, and the multiply by the 16-bit scale rounds once, the
  same bits as fp32 (q - z) * s rounded to the dtype (a 4-bit integer times a 16-bit scale is
  exact in fp32); the compiler pairs these into sub/mul.bf16x2. Symmetric weights: zero point 8.
  BLOCK_K >= 128, so each plane's dot has the 16 inputs a tensor-core step needs.
- nf4: bytes [BLOCK_N, BLOCK_K/2] -> two code look-ups (high nibble first) -> x absmax of each
  64-block, double-dequantized as nf4.py does (FP contraction off, as there) -> fp32, rounded once.
  The 16 code values sit in registers and `tl.gather` reads them (a warp shuffle per value); a
  tl.load per value was staged through shared memory by the pipeliner, one cp.async per weight.
- int8: (q + 0x4B000080) read as fp32 is 2^23 + 128 + q, minus 2^23 + 128 is q exactly;
  times the fp32 channel scale, rounded once.
"""

from __future__ import annotations

import torch

from inferlab.kernels._matmul_tiles import (
    _bf16_precision,
    _dot_operand,
    _load_x,
    _mma,
    _store_tile,
    _tile_coords,
    _zero_acc,
)
from inferlab.kernels._triton import tl, triton

INT4_MIN_BLOCK_K = 128  # 8 nibble planes of block_k / 8 >= 16 inputs each (one tensor-core K step)
# (q | MAGIC) read as the 16-bit float is MAGIC_VALUE + q for q < 1024 (fp16) / 128 (bf16)
_INT4_MAGIC = {torch.float16: 0x6400, torch.bfloat16: 0x4300}


# ---------------------------------------------------------------- int4 group-wise
@triton.jit
def _int4_dequant(words, shift, scales, zeros, MAGIC: tl.constexpr, EMULATE_BF16: tl.constexpr):
    """The nibbles at bit `shift` of `words` (a constant: one plane; a tile: each element's own),
    dequantized; scales and zeros (biased by MAGIC unless EMULATE_BF16) broadcast against them."""
    q = (words >> shift) & 0xF
    if EMULATE_BF16:
        w = _bf16_precision((q - zeros).to(tl.float32) * scales.to(tl.float32))
    else:
        w_biased = (q | MAGIC).to(tl.int16).to(scales.dtype, bitcast=True)  # MAGIC_VALUE + q, exactly
        w = (w_biased - zeros) * scales  # exact q - z; the product rounds once
    return w


@triton.jit
def _int4_group_params(scales_ptr, zeros_ptr, offs_g, offs_n, mask, N, HAS_ZEROS: tl.constexpr,
                       MAGIC: tl.constexpr, EMULATE_BF16: tl.constexpr):  # fmt: skip
    """Scales and zero points (MAGIC_VALUE + zero, as the 16-bit float) at groups offs_g x columns
    offs_n, both already shaped to broadcast against the weight tile."""
    g_offs = offs_g * N + offs_n
    scales = tl.load(scales_ptr + g_offs, mask=mask, other=0.0)
    if HAS_ZEROS:
        zeros = tl.load(zeros_ptr + g_offs, mask=mask, other=0).to(tl.int32)
    else:
        zeros = tl.full(g_offs.shape, 8, tl.int32)  # symmetric: zero point 8
    if not EMULATE_BF16:
        zeros = (zeros | MAGIC).to(tl.int16).to(scales.dtype, bitcast=True)  # MAGIC_VALUE + zero
    return scales, zeros


@triton.jit
def _w4a16_kernel(
    x_ptr,  # [M, K] fp16/bf16
    out_ptr,  # [M, N] x's dtype
    partial_ptr,  # fp32 [SPLIT_K, M, N]                  (WRITE_PARTIAL only)
    counter_ptr,  # int32 [output tiles], zeroed           (LAST_SPLIT_REDUCES only)
    M, N, K, stride_xm, stride_xk,
    k_per_split,  # K values one split covers: a multiple of BLOCK_K
    qweight_ptr,  # int32 [K/8, N]: input 8i + j of output n in bits 4j of word (i, n)
    scales_ptr,  # [K/G, N] x's dtype
    zeros_ptr,  # uint8 [K/G, N] zero points              (HAS_ZEROS only; else 8)
    GROUP_SIZE: tl.constexpr, ONE_GROUP: tl.constexpr, HAS_ZEROS: tl.constexpr, MAGIC: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
    PLANES: tl.constexpr, SWAP_AB: tl.constexpr,
    WRITE_PARTIAL: tl.constexpr, LAST_SPLIT_REDUCES: tl.constexpr,
    EMULATE_BF16: tl.constexpr, BF16_BY_INT: tl.constexpr,
):  # fmt: skip
    pid_m, pid_n = _tile_coords(M, N, BLOCK_M, BLOCK_N, GROUP_M)
    offs_m = pid_m.to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n.to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_n = offs_n < N
    k_start = tl.program_id(axis=1).to(tl.int64) * k_per_split
    k_end = tl.minimum(k_start + k_per_split, K)
    acc = _zero_acc(BLOCK_M, BLOCK_N, SWAP_AB)
    for k0 in range(k_start, k_end, BLOCK_K):
        if PLANES:
            # a [BLOCK_K/8, BLOCK_N] tile of words read once and consumed as 8 nibble planes: W.T
            # rows k = 8i + j for j = 0..7, each a 2-D elementwise chain from the words to tl.dot
            # (no reshape), so the compiler can put the words, not the dequantized tile, into the
            # dot's operand layout
            offs_i = k0 // 8 + tl.arange(0, BLOCK_K // 8)
            w_mask = (offs_i[:, None] < K // 8) & mask_n[None, :]
            words = tl.load(qweight_ptr + offs_i[:, None] * N + offs_n[None, :], mask=w_mask, other=0)
            if ONE_GROUP:  # BLOCK_K <= G: one row of scales for the whole tile
                offs_g = k0 // GROUP_SIZE + tl.arange(0, 1)
                g_mask = mask_n[None, :]
            else:  # the group of each word row (rows of one group repeat: L1 serves them)
                offs_g = offs_i * 8 // GROUP_SIZE
                g_mask = w_mask
            scales, zeros = _int4_group_params(
                scales_ptr,
                zeros_ptr,
                offs_g[:, None],
                offs_n[None, :],
                g_mask,
                N,
                HAS_ZEROS,
                MAGIC,
                EMULATE_BF16,
            )
            for j in tl.static_range(8):
                x = _load_x(x_ptr, offs_m, offs_i * 8 + j, M, K, stride_xm, stride_xk, EMULATE_BF16)
                w = _int4_dequant(words, 4 * j, scales, zeros, MAGIC, EMULATE_BF16)
                acc = tl.dot(x, w, acc)  # [BLOCK_M, BLOCK_K/8] @ [BLOCK_K/8, BLOCK_N], fp32 accumulation
        else:
            # the whole [BLOCK_N, BLOCK_K] tile W[n, k]: element (n, k) reads word (k // 8, n), so
            # each word is loaded 8 times (L1 serves the repeats) and shifted by its own 4 * (k % 8)
            offs_k = k0 + tl.arange(0, BLOCK_K)
            w_mask = mask_n[:, None] & (offs_k[None, :] < K)
            words = tl.load(qweight_ptr + (offs_k[None, :] // 8) * N + offs_n[:, None], mask=w_mask, other=0)
            if ONE_GROUP:
                offs_g = k0 // GROUP_SIZE + tl.arange(0, 1)
                g_mask = mask_n[:, None]
            else:
                offs_g = offs_k // GROUP_SIZE
                g_mask = w_mask
            scales, zeros = _int4_group_params(
                scales_ptr,
                zeros_ptr,
                offs_g[None, :],
                offs_n[:, None],
                g_mask,
                N,
                HAS_ZEROS,
                MAGIC,
                EMULATE_BF16,
            )
            w = _int4_dequant(words, (offs_k[None, :] % 8) * 4, scales, zeros, MAGIC, EMULATE_BF16)
            x = _load_x(x_ptr, offs_m, offs_k, M, K, stride_xm, stride_xk, EMULATE_BF16)
            acc = _mma(x, w, acc, SWAP_AB)
    _store_tile(
        acc, out_ptr, partial_ptr, counter_ptr, offs_m, offs_n, M, N,
        SWAP_AB, WRITE_PARTIAL, LAST_SPLIT_REDUCES, BF16_BY_INT,
    )  # fmt: skip


# ---------------------------------------------------------------- NF4 (bitsandbytes layout)
@triton.jit
def _nf4_matmul_kernel(
    x_ptr, out_ptr, partial_ptr, counter_ptr,
    M, N, K, stride_xm, stride_xk, k_per_split,
    weight_ptr,  # uint8 [N*K/2]: W[n, k] is value n*K + k; byte j = value 2j (high), 2j+1 (low)
    absmax_ptr,  # fp32 [N*K / BLOCKSIZE], or uint8 codes when NESTED
    code_ptr,  # fp32 [16]
    absmax2_ptr,  # fp32 [cdiv(num_blocks, blocksize2)]   (NESTED only)
    code2_ptr,  # fp32 [256]                              (NESTED only)
    offset_ptr,  # fp32 [1]                               (NESTED only)
    blocksize2,
    BLOCKSIZE: tl.constexpr, ABSMAX_PER_TILE: tl.constexpr, NESTED: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
    SWAP_AB: tl.constexpr, WRITE_PARTIAL: tl.constexpr, LAST_SPLIT_REDUCES: tl.constexpr,
    EMULATE_BF16: tl.constexpr, BF16_BY_INT: tl.constexpr,
):  # fmt: skip
    code = tl.load(code_ptr + tl.arange(0, 16))
    pid_m, pid_n = _tile_coords(M, N, BLOCK_M, BLOCK_N, GROUP_M)
    offs_m = pid_m.to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n.to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_n = offs_n < N
    k_start = tl.program_id(axis=1).to(tl.int64) * k_per_split
    k_end = tl.minimum(k_start + k_per_split, K)
    table = tl.broadcast_to(code[None, :], (BLOCK_N, 16))  # the 16 NF4 values, in registers
    acc = _zero_acc(BLOCK_M, BLOCK_N, SWAP_AB)
    for k0 in range(k_start, k_end, BLOCK_K):
        x = _load_x(x_ptr, offs_m, k0 + tl.arange(0, BLOCK_K), M, K, stride_xm, stride_xk, EMULATE_BF16)
        # bytes [BLOCK_N, BLOCK_K/2]: each row of W is K/2 contiguous bytes (K is even)
        offs_b = k0 // 2 + tl.arange(0, BLOCK_K // 2)
        b_mask = mask_n[:, None] & (offs_b[None, :] < K // 2)
        packed = tl.load(weight_ptr + offs_n[:, None] * (K // 2) + offs_b[None, :], mask=b_mask, other=0)
        packed = packed.to(tl.int32)  # 0..255: both indices below are 0..15
        hi = tl.gather(table, packed >> 4, axis=1)  # value 2j: the high nibble
        lo = tl.gather(table, packed & 0xF, axis=1)  # value 2j + 1: the low nibble
        vals = tl.reshape(tl.join(hi, lo), (BLOCK_N, ABSMAX_PER_TILE, BLOCK_K // ABSMAX_PER_TILE))
        # absmax of each quantization block in the tile: [BLOCK_N, ABSMAX_PER_TILE]
        offs_a = tl.arange(0, ABSMAX_PER_TILE)
        blocks = (offs_n[:, None] * K + k0) // BLOCKSIZE + offs_a[None, :]
        a_mask = mask_n[:, None] & (k0 + offs_a[None, :] * BLOCKSIZE < K)
        absmax = _nf4_block_absmax(
            absmax_ptr, absmax2_ptr, code2_ptr, offset_ptr, blocks, a_mask, blocksize2, NESTED
        )
        w = tl.reshape(vals * absmax[:, :, None], (BLOCK_N, BLOCK_K))  # fp32 products
        w = _dot_operand(w, x_ptr.dtype.element_ty, EMULATE_BF16)
        acc = _mma(x, w, acc, SWAP_AB)
    _store_tile(
        acc, out_ptr, partial_ptr, counter_ptr, offs_m, offs_n, M, N,
        SWAP_AB, WRITE_PARTIAL, LAST_SPLIT_REDUCES, BF16_BY_INT,
    )  # fmt: skip


@triton.jit
def _nf4_block_absmax(
    absmax_ptr, absmax2_ptr, code2_ptr, offset_ptr, blocks, mask, blocksize2, NESTED: tl.constexpr
):
    """The absmax of quantization blocks `blocks` (0 where not `mask`). NESTED (bitsandbytes'
    double quantization): code2[uint8 code] x absmax2[block // blocksize2] + offset, two
    roundings, no FMA (the launch turns contraction off), as nf4.py's dequantization does."""
    if NESTED:
        q_absmax = tl.load(absmax_ptr + blocks, mask=mask, other=0).to(tl.int32)
        scale2 = tl.load(absmax2_ptr + blocks // blocksize2, mask=mask, other=0.0)
        absmax = tl.load(code2_ptr + q_absmax) * scale2 + tl.load(offset_ptr)
    else:
        absmax = tl.load(absmax_ptr + blocks, mask=mask, other=0.0)
    return absmax


# ---------------------------------------------------------------- int8 per channel
@triton.jit
def _int8_matmul_kernel(
    x_ptr, out_ptr, partial_ptr, counter_ptr,
    M, N, K, stride_xm, stride_xk, k_per_split,
    w_ptr,  # int8 [N, K] row-major
    scale_ptr,  # [N] one scale per output channel (read as fp32)
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
    SWAP_AB: tl.constexpr, WRITE_PARTIAL: tl.constexpr, LAST_SPLIT_REDUCES: tl.constexpr,
    EMULATE_BF16: tl.constexpr, BF16_BY_INT: tl.constexpr,
):  # fmt: skip
    pid_m, pid_n = _tile_coords(M, N, BLOCK_M, BLOCK_N, GROUP_M)
    offs_m = pid_m.to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n.to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_n = offs_n < N
    scale = tl.load(scale_ptr + offs_n, mask=mask_n, other=0.0).to(tl.float32)
    k_start = tl.program_id(axis=1).to(tl.int64) * k_per_split
    k_end = tl.minimum(k_start + k_per_split, K)
    acc = _zero_acc(BLOCK_M, BLOCK_N, SWAP_AB)
    for k0 in range(k_start, k_end, BLOCK_K):
        x = _load_x(x_ptr, offs_m, k0 + tl.arange(0, BLOCK_K), M, K, stride_xm, stride_xk, EMULATE_BF16)
        offs_k = k0 + tl.arange(0, BLOCK_K)
        w_mask = mask_n[:, None] & (offs_k[None, :] < K)
        q = tl.load(w_ptr + offs_n[:, None] * K + offs_k[None, :], mask=w_mask, other=0)  # [BLOCK_N, BLOCK_K]
        q = (q.to(tl.int32) + 0x4B000080).to(tl.float32, bitcast=True) - 8388736.0  # 2^23+128+q - (2^23+128)
        w = _dot_operand(q * scale[:, None], x_ptr.dtype.element_ty, EMULATE_BF16)
        acc = _mma(x, w, acc, SWAP_AB)
    _store_tile(
        acc, out_ptr, partial_ptr, counter_ptr, offs_m, offs_n, M, N,
        SWAP_AB, WRITE_PARTIAL, LAST_SPLIT_REDUCES, BF16_BY_INT,
    )  # fmt: skip
