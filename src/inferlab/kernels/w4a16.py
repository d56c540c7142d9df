"""Weight-only quantized matmuls (lesson 8: W4A16): y = x @ W.T with W dequantized in registers.

Three weight formats (quant_formats.py specifies each bit), one kernel and one launcher each:

    w4a16_matmul(x, qweight)              int4 group-wise (G = 32, 64, 128), Int4Weight layout
    nf4_matmul(x, weight, quant_state)    NF4 as bitsandbytes stores a Linear's weight [N, K]
    int8_matmul(x, w_int8, scale)         int8 per output channel

x: [M, K] fp16/bf16 -> y: [M, N] in x's dtype, with W = [N, K] = [out_features, in_features]:

    W[n, k] = dtype( fp32 product of the format's integer and scale(s) )   rounded ONCE
    y[m, n] = dtype( fp32 sum over k of x[m, k] * W[n, k] )

W is bit for bit what "dequantize to x's dtype" gives, so the kernels differ from their references
(`*_ref`: dequantize, fp32 matmul, cast) only in the order of the fp32 sum. W never exists in
HBM: each program dequantizes a tile of W into registers and feeds it to tl.dot (tensor cores:
mma.sync for the 16-row GEMV tile, wgmma from BLOCK_M = 64 on sm_90) beside an fp32 accumulator.

## Two paths, chosen by M (`choose_path`, used by `plan_launch`)

1. "gemv" (M <= 16: decode). One BLOCK_M = 16 tile holds every row of x; a program owns
   BLOCK_N outputs and one split of K. Decode is weight-bandwidth bound: at M = 1 the 4096 ->
   14336 layer reads 117 MB in bf16 but 30.8 MB in int4 g128 (29.4 packed + 0.9 scales + 0.5
   zeros), so ~3.8x over cuBLAS bf16 is the ceiling. Few output tiles would leave SMs idle,
   hence split-K (`split_k_for`): about TARGET_PROGRAMS_PER_SM programs per SM.
2. "tiled" (M > 16: prefill, batches). BLOCK_M x BLOCK_N x BLOCK_K tiles by M (TILED_CONFIGS),
   GROUP_M ordering so programs in flight share weight tiles through L2, split-K only where the
   tiles alone leave SMs idle. Arithmetic intensity is 4M FLOP per weight byte for int4 (M for
   bf16), so W4A16 turns compute bound near M ~ 50-100 on an H100/H200 and the dequantization
   ALU work then costs time that a bf16 GEMM does not pay: large M is cuBLAS's ground.

Split-K: each split writes fp32 partials [SPLIT_K, M, N], then `_splitk_reduce_kernel` sums them
in a fixed order and rounds once. Deterministic (atomics would let arrival order move the last
bit) and no zeroed workspace; with SPLIT_K = 1 the matmul kernel stores y itself (one launch).

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

## Configs (module constants, no autotuning at import)

GEMV_CONFIG for M <= 16; TILED_CONFIGS by M otherwise; split-K from TARGET_PROGRAMS_PER_SM and
MAX_SPLIT_K. Chosen by reasoning about H100/H200 (bytes in flight per SM, wgmma wants BLOCK_M
>= 64) and by reading the compiled sm_90 PTX, NOT yet by a measured sweep:
`benchmarks/gpu_w4a16.sh sweep` times candidates, `benchmarks/gpu_w4a16.sh` the baselines.
Every launcher takes `config=` to try another (a `MatmulConfig`; `split_k` None = the rule).

## No GPU: Triton's interpreter

It holds bf16 as raw uint16 (arithmetic on raw bits is wrong) and truncates fp32 -> bf16. So there,
and for bf16 only (EMULATE_BF16), tiles are dequantized in fp32, rounded to bf16 precision by
integer ops while staying fp32, and tl.dot runs on fp32 operands; outputs round by nf4's
`_round_to_bf16`. fp16 runs the GPU code unchanged (numpy's fp16 arithmetic is IEEE).
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass

import torch

from inferlab.kernels._launch import prepare_out, require_contiguous, validate
from inferlab.kernels._matmul_tiles import (
    _bf16_precision,
    _dot_operand,
    _load_x,
    _mma,
    _splitk_reduce_kernel,
    _store_tile,
    _tile_coords,
    _zero_acc,
)
from inferlab.kernels._triton import tl, triton
from inferlab.kernels.device import select_backend
from inferlab.kernels.nf4 import _bf16_by_int, _validated_args, state_from_inputs
from inferlab.kernels.quant_formats import (
    Int4Weight,
    dequantize_int4_ref,
    dequantize_int8_ref,
    dequantize_nf4_ref,
    quantize_int4,
    quantize_int8,
    quantize_nf4_ref,
)
from inferlab.kernels.spec import BenchShape, KernelSpec, Shape, random_tensor
from inferlab.kernels.w4a16_gemv import INT4_GEMV_MASKS, _int4_gemv_kernel, _int8_gemv_kernel

ACT_DTYPES = (torch.float16, torch.bfloat16)
INT4_MIN_BLOCK_K = 128  # 8 nibble planes of block_k / 8 >= 16 inputs each (one tensor-core K step)
# (q | MAGIC) read as the 16-bit float is MAGIC_VALUE + q for q < 1024 (fp16) / 128 (bf16)
_INT4_MAGIC = {torch.float16: 0x6400, torch.bfloat16: 0x4300}


# ---------------------------------------------------------------- references (plain PyTorch)
def _matmul_ref(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """x: [M, K], w: [N, K] already in x's dtype -> [M, N]: fp32 matmul, one rounding."""
    return (x.float() @ w.float().t()).to(x.dtype)


def w4a16_matmul_ref(x: torch.Tensor, qweight: Int4Weight) -> torch.Tensor:
    return _matmul_ref(x, dequantize_int4_ref(qweight, x.dtype))


def nf4_matmul_ref(x: torch.Tensor, weight: torch.Tensor, quant_state) -> torch.Tensor:
    fp32_state = copy.copy(quant_state)  # a shallow copy: the same tensors, dtype fp32
    fp32_state.dtype = torch.float32  # the fp32 product, rounded once below to x's dtype
    return _matmul_ref(x, dequantize_nf4_ref(weight, fp32_state).to(x.dtype))


def int8_matmul_ref(x: torch.Tensor, w_int8: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return _matmul_ref(x, dequantize_int8_ref(w_int8, scale, x.dtype))


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
    M, N, K, stride_xm, stride_xk,
    k_per_split,  # K values one split covers: a multiple of BLOCK_K
    qweight_ptr,  # int32 [K/8, N]: input 8i + j of output n in bits 4j of word (i, n)
    scales_ptr,  # [K/G, N] x's dtype
    zeros_ptr,  # uint8 [K/G, N] zero points              (HAS_ZEROS only; else 8)
    GROUP_SIZE: tl.constexpr, ONE_GROUP: tl.constexpr, HAS_ZEROS: tl.constexpr, MAGIC: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
    PLANES: tl.constexpr, SWAP_AB: tl.constexpr,
    WRITE_PARTIAL: tl.constexpr, EMULATE_BF16: tl.constexpr, BF16_BY_INT: tl.constexpr,
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
    _store_tile(acc, out_ptr, partial_ptr, offs_m, offs_n, M, N, SWAP_AB, WRITE_PARTIAL, BF16_BY_INT)


# ---------------------------------------------------------------- NF4 (bitsandbytes layout)
@triton.jit
def _nf4_matmul_kernel(
    x_ptr, out_ptr, partial_ptr,
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
    SWAP_AB: tl.constexpr, WRITE_PARTIAL: tl.constexpr, EMULATE_BF16: tl.constexpr, BF16_BY_INT: tl.constexpr,
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
        if NESTED:  # two roundings, no FMA (the launch turns contraction off), as bitsandbytes
            q_absmax = tl.load(absmax_ptr + blocks, mask=a_mask, other=0).to(tl.int32)
            scale2 = tl.load(absmax2_ptr + blocks // blocksize2, mask=a_mask, other=0.0)
            absmax = tl.load(code2_ptr + q_absmax) * scale2 + tl.load(offset_ptr)
        else:
            absmax = tl.load(absmax_ptr + blocks, mask=a_mask, other=0.0)
        w = tl.reshape(vals * absmax[:, :, None], (BLOCK_N, BLOCK_K))  # fp32 products
        w = _dot_operand(w, x_ptr.dtype.element_ty, EMULATE_BF16)
        acc = _mma(x, w, acc, SWAP_AB)
    _store_tile(acc, out_ptr, partial_ptr, offs_m, offs_n, M, N, SWAP_AB, WRITE_PARTIAL, BF16_BY_INT)


# ---------------------------------------------------------------- int8 per channel
@triton.jit
def _int8_matmul_kernel(
    x_ptr, out_ptr, partial_ptr,
    M, N, K, stride_xm, stride_xk, k_per_split,
    w_ptr,  # int8 [N, K] row-major
    scale_ptr,  # [N] one scale per output channel (read as fp32)
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
    SWAP_AB: tl.constexpr, WRITE_PARTIAL: tl.constexpr, EMULATE_BF16: tl.constexpr, BF16_BY_INT: tl.constexpr,
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
    _store_tile(acc, out_ptr, partial_ptr, offs_m, offs_n, M, N, SWAP_AB, WRITE_PARTIAL, BF16_BY_INT)


# ---------------------------------------------------------------- configs and the launch plan
@dataclass(frozen=True, slots=True)
class MatmulConfig:
    """One tiling: tile sizes, L2 grouping, warps, pipeline stages, split-K (None: the rule),
    and two ways to feed the tensor cores: `swap_ab` computes y.T = W @ x.T (the weight tile as
    the left operand) and `planes` (int4 only) unpacks words as 8 nibble planes rather than one
    whole [BLOCK_N, BLOCK_K] tile."""

    block_m: int
    block_n: int
    block_k: int
    group_m: int = 8
    num_warps: int = 4
    num_stages: int = 3
    split_k: int | None = None
    swap_ab: bool = False
    planes: bool = True
    fma: bool = False  # CUDA cores, no tensor cores (w4a16_gemv.py): int4 and int8 decode
    programs_per_sm: int = 2  # the split-K rule's target (`split_k_for`) when split_k is None

    def __post_init__(self) -> None:
        for name in ("block_m", "block_n", "block_k", "group_m"):
            value = getattr(self, name)
            if value < 1 or value & (value - 1):
                raise ValueError(f"{name} must be a power of two, not {value}")
        if self.block_k < 16:
            raise ValueError(
                f"block_k must be at least 16 (two int4 words, one tl.dot step), not {self.block_k}"
            )
        if self.fma and self.block_m != 1:
            raise ValueError(f"fma takes one row of x per program (block_m 1), not block_m {self.block_m}")
        if self.split_k is not None and self.split_k < 1:
            raise ValueError(f"split_k must be None or >= 1, not {self.split_k}")

    @property
    def label(self) -> str:
        split = "rule" if self.split_k is None else self.split_k
        feed = " swap_ab" if self.swap_ab else ""
        feed += "" if self.planes else " tile"
        feed += " fma" if self.fma else ""
        return (
            f"{self.block_m}x{self.block_n}x{self.block_k} group_m={self.group_m} "
            f"warps={self.num_warps} stages={self.num_stages} split_k={split}{feed}"
        )


# Chosen by benchmarks/sweep_w4a16.py on an H200 (CUDA-graph replays over rotating weight copies,
# Llama-3-8B layers, bf16; logs in experiments/0007-weight-only-matmuls/): the fastest config that
# passed its check at each (format, M), where one config led across the layers.
FMA_MAX_M = 1  # CUDA-core GEMV (w4a16_gemv.py) for one row: at M = 4 it was 2x slower than M = 1
FMA_CONFIGS = {  # NF4 has none: its 16-value look-up has no cheap CUDA-core form here yet
    "int4": MatmulConfig(1, 64, 256, 1, num_warps=4, num_stages=1, fma=True, programs_per_sm=4),
    "int8": MatmulConfig(1, 32, 512, 1, num_warps=4, num_stages=1, fma=True),
}
GEMV_MAX_M = 16  # decode and small batches: one BLOCK_M = 16 tensor-core tile holds every row
GEMV_CONFIGS = {
    "int4": MatmulConfig(16, 128, 256, 1, num_warps=4, num_stages=4),  # nibble planes
    "nf4": MatmulConfig(16, 64, 128, 1, num_warps=4, num_stages=4, swap_ab=True, planes=False),
    "int8": MatmulConfig(16, 32, 256, 1, num_warps=4, num_stages=4, planes=False),
}
GEMV_CONFIG = GEMV_CONFIGS["int4"]
# (largest M, config) past GEMV_MAX_M, for every format; the whole-tile unpacking led everywhere
TILED_CONFIGS: tuple[tuple[int | None, MatmulConfig], ...] = (
    (32, MatmulConfig(32, 64, 128, 8, num_warps=4, num_stages=3, swap_ab=True, planes=False)),
    (64, MatmulConfig(64, 64, 64, 8, num_warps=4, num_stages=3, planes=False)),
    (None, MatmulConfig(128, 64, 64, 8, num_warps=4, num_stages=3, planes=False)),
)
TARGET_PROGRAMS_PER_SM = 2  # split K until output tiles x splits reach this many programs per SM
MAX_SPLIT_K = 16  # partials are SPLIT_K x M x N fp32: more splits cost more than they hide
INTERPRETER_SMS = 2  # what the split-K rule assumes without a GPU (keeps test programs few)
REDUCE_BLOCK = 1024  # outputs per program of the split-K reduction


@dataclass(frozen=True, slots=True)
class LaunchPlan:
    path: str  # "fma", "gemv" or "tiled" (`choose_path`)
    config: MatmulConfig
    split_k: int  # programs along K, every one non-empty
    k_per_split: int  # a multiple of config.block_k
    grid: tuple[int, int]  # (output tiles, split_k)


def choose_path(M: int, fmt: str = "int4") -> str:
    """Path for M rows of x in weight format `fmt` ("int4", "nf4", "int8"): "fma" (CUDA-core GEMV)
    for one row where the format has one, "gemv" (one 16-row tensor-core tile, split-K) up to
    GEMV_MAX_M, else "tiled"."""
    if M <= FMA_MAX_M and fmt in FMA_CONFIGS:
        return "fma"
    return "gemv" if M <= GEMV_MAX_M else "tiled"


def config_for(M: int, fmt: str = "int4") -> MatmulConfig:
    path = choose_path(M, fmt)
    if path == "fma":
        return FMA_CONFIGS[fmt]
    if path == "gemv":
        return GEMV_CONFIGS[fmt]
    return next(c for max_m, c in TILED_CONFIGS if max_m is None or M <= max_m)


@functools.cache
def _num_sms(device: torch.device) -> int:
    if device.type != "cuda":
        return INTERPRETER_SMS
    return torch.cuda.get_device_properties(device).multi_processor_count


def split_k_for(num_tiles: int, k_tiles: int, num_sms: int, per_sm: int = TARGET_PROGRAMS_PER_SM) -> int:
    """The fewest splits (a power of two) that give `per_sm` programs per SM, at most
    MAX_SPLIT_K and at most one split per BLOCK_K step of K."""
    split = 1
    while num_tiles * split < per_sm * num_sms and split * 2 <= min(k_tiles, MAX_SPLIT_K):
        split *= 2
    return split


def plan_launch(
    M: int, N: int, K: int, device: torch.device, config: MatmulConfig | None = None
) -> LaunchPlan:
    """Path, tiles and split-K for an [M, K] x [K, N] product (M, N, K >= 1); `config` None is
    the int4 default (`config_for`)."""
    cfg = config or config_for(M)
    path = "fma" if cfg.fma else choose_path(M, "nf4")  # the tensor-core path M takes
    num_tiles = triton.cdiv(M, cfg.block_m) * triton.cdiv(N, cfg.block_n)
    k_tiles = triton.cdiv(K, cfg.block_k)
    per_sm = cfg.programs_per_sm
    split = cfg.split_k or split_k_for(num_tiles, k_tiles, _num_sms(torch.device(device)), per_sm)
    k_per_split = triton.cdiv(k_tiles, min(split, k_tiles)) * cfg.block_k
    split = triton.cdiv(K, k_per_split)  # splits that would start past K are dropped
    return LaunchPlan(path, cfg, split, k_per_split, (num_tiles, split))


def _launch(kernel, x, out, N: int, K: int, weight_args: tuple, constexprs: dict, config, fp_fusion=True):
    """Plan, allocate the split-K partials if any, launch the matmul (and the reduction)."""
    M = x.shape[0]
    if M == 0 or N == 0:
        return out
    if K == 0:
        return out.zero_()
    plan = plan_launch(M, N, K, x.device, config)
    cfg = plan.config
    write_partial = plan.split_k > 1
    partial = (
        torch.empty((plan.split_k, M, N), dtype=torch.float32, device=x.device) if write_partial else out
    )
    bf16_by_int = _bf16_by_int(x.device)
    kernel[plan.grid](
        x, out, partial, M, N, K, x.stride(0), x.stride(1), plan.k_per_split, *weight_args,
        **constexprs,
        BLOCK_M=cfg.block_m, BLOCK_N=cfg.block_n, BLOCK_K=cfg.block_k, GROUP_M=cfg.group_m,
        SWAP_AB=cfg.swap_ab, WRITE_PARTIAL=write_partial,
        EMULATE_BF16=select_backend().interpreted and x.dtype == torch.bfloat16,
        BF16_BY_INT=bf16_by_int,
        num_warps=cfg.num_warps, num_stages=cfg.num_stages, enable_fp_fusion=fp_fusion,
    )  # fmt: skip
    if write_partial:
        numel = M * N
        grid = (triton.cdiv(numel, REDUCE_BLOCK),)
        _splitk_reduce_kernel[grid](
            partial, out, numel, plan.split_k, BLOCK=REDUCE_BLOCK, BF16_BY_INT=bf16_by_int
        )
    return out


# ---------------------------------------------------------------- launchers
def _check_x(x: torch.Tensor, K: int) -> None:
    validate({"x": x}, ACT_DTYPES)
    if x.dim() != 2:
        raise ValueError(
            f"x must be 2-D [M, K], not {tuple(x.shape)}; flatten leading dims: x.reshape(-1, x.shape[-1])"
        )
    if x.shape[1] != K:
        raise ValueError(f"x has {x.shape[1]} columns but the weight has in_features K = {K}")


def _check_on(device: torch.device, **tensors: torch.Tensor) -> None:
    for name, t in tensors.items():
        if t.device != device:
            raise ValueError(f"{name} is on {t.device} but x is on {device}")


def _block_divides(block_k: int, quant_block: int, what: str) -> None:
    if block_k % quant_block and quant_block % block_k:
        raise ValueError(f"block_k {block_k} and {what} {quant_block}: one must divide the other")


def w4a16_matmul(
    x: torch.Tensor,
    qweight: Int4Weight,
    out: torch.Tensor | None = None,
    *,
    config: MatmulConfig | None = None,
) -> torch.Tensor:
    """x: [M, K] fp16/bf16, qweight: Int4Weight of W [N, K] -> x @ W.T: [M, N] in x's dtype."""
    if not isinstance(qweight, Int4Weight):
        raise TypeError(
            f"qweight must be an Int4Weight (quantize_int4, int4_from_awq or int4_from_gptq make one), "
            f"not {type(qweight).__name__}"
        )
    N, K = qweight.shape
    G = qweight.group_size
    if K % G:
        raise ValueError(f"in_features K = {K} is not a multiple of group_size {G}")
    _check_x(x, K)
    if qweight.scales.dtype != x.dtype:
        raise TypeError(
            f"qweight.scales is {qweight.scales.dtype} but x is {x.dtype}; quantize with scale_dtype=x.dtype"
        )
    zeros = qweight.zeros
    pieces = {"qweight.qweight": qweight.qweight, "qweight.scales": qweight.scales}
    if zeros is not None:
        pieces["qweight.zeros"] = zeros
    _check_on(x.device, **pieces)
    require_contiguous(**pieces)
    out = prepare_out(out, (x.shape[0], N), x)
    cfg = config or config_for(x.shape[0])
    if cfg.fma:
        constexprs = dict(GROUP_SIZE=G, HAS_ZEROS=zeros is not None)
        weight_args = (qweight.qweight, qweight.scales, qweight.scales if zeros is None else zeros)
        weight_args += INT4_GEMV_MASKS
        return _launch(_int4_gemv_kernel, x, out, N, K, weight_args, constexprs, cfg)
    if cfg.planes and cfg.block_k < INT4_MIN_BLOCK_K:
        raise ValueError(
            f"block_k {cfg.block_k} is too small for int4 planes: each of the 8 nibble planes is a "
            f"tl.dot over block_k / 8 inputs, and tensor cores need 16 (block_k >= {INT4_MIN_BLOCK_K})"
        )
    if cfg.planes and cfg.swap_ab:
        raise ValueError("swap_ab needs planes=False: the nibble planes are right-hand operands")
    _block_divides(cfg.block_k, G, "group_size")
    constexprs = dict(
        GROUP_SIZE=G,
        ONE_GROUP=cfg.block_k <= G,
        HAS_ZEROS=zeros is not None,
        MAGIC=_INT4_MAGIC[x.dtype],
        PLANES=cfg.planes,
    )
    weight_args = (qweight.qweight, qweight.scales, qweight.scales if zeros is None else zeros)
    return _launch(_w4a16_kernel, x, out, N, K, weight_args, constexprs, cfg)


def nf4_matmul(
    x: torch.Tensor, weight: torch.Tensor, quant_state, out: torch.Tensor | None = None, *,
    config: MatmulConfig | None = None,
) -> torch.Tensor:  # fmt: skip
    """x: [M, K], weight: packed NF4 of W [N, K] (bitsandbytes' layout and QuantState) -> x @ W.T.

    W is rounded once to x's dtype (bitsandbytes' matmul_4bit rounds to quant_state.dtype, then to
    x's: the same bits whenever quant_state.dtype is x's dtype or fp32)."""
    shape, _, blocksize, absmax2, code2, offset, blocksize2 = _validated_args(weight, quant_state)
    if len(shape) != 2:
        raise ValueError(f"quant_state.shape must be 2-D [N, K] (out_features, in_features), not {shape}")
    N, K = shape
    _check_x(x, K)
    if K % blocksize:
        raise ValueError(
            f"in_features K = {K} is not a multiple of quant_state.blocksize {blocksize}: "
            "a quantization block would span two rows of W"
        )
    _check_on(x.device, weight=weight)
    out = prepare_out(out, (x.shape[0], N), x)
    cfg = config or config_for(x.shape[0], "nf4")
    if cfg.fma:
        raise ValueError("NF4 has no CUDA-core GEMV (fma=True is for int4 and int8)")
    block_k = cfg.block_k
    _block_divides(block_k, blocksize, "quant_state.blocksize")
    nested = absmax2 is not None
    absmax, code = quant_state.absmax, quant_state.code
    weight_args = (
        weight, absmax, code,
        absmax2 if nested else absmax, code2 if nested else code, offset if nested else code,
        blocksize2,
    )  # fmt: skip
    constexprs = dict(BLOCKSIZE=blocksize, ABSMAX_PER_TILE=max(1, block_k // blocksize), NESTED=nested)
    # no FMA: bitsandbytes rounds code2 * absmax2 before adding offset
    return _launch(_nf4_matmul_kernel, x, out, N, K, weight_args, constexprs, cfg, fp_fusion=False)


def int8_matmul(
    x: torch.Tensor, w_int8: torch.Tensor, scale: torch.Tensor, out: torch.Tensor | None = None, *,
    config: MatmulConfig | None = None,
) -> torch.Tensor:  # fmt: skip
    """x: [M, K], w_int8: int8 [N, K], scale: [N] per output channel -> x @ (w_int8 * scale).T."""
    for name, t in (("w_int8", w_int8), ("scale", scale)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, not {type(t).__name__}")
    if w_int8.dtype != torch.int8 or w_int8.dim() != 2:
        raise TypeError(f"w_int8 must be int8 [N, K], not {w_int8.dtype} {tuple(w_int8.shape)}")
    N, K = w_int8.shape
    _check_x(x, K)
    if not scale.is_floating_point() or scale.numel() != N:
        raise ValueError(
            f"scale must be a float tensor of N = {N} values, not {scale.dtype} {tuple(scale.shape)}"
        )
    _check_on(x.device, w_int8=w_int8, scale=scale)
    require_contiguous(w_int8=w_int8, scale=scale)
    out = prepare_out(out, (x.shape[0], N), x)
    cfg = config or config_for(x.shape[0], "int8")
    kernel = _int8_gemv_kernel if cfg.fma else _int8_matmul_kernel
    return _launch(kernel, x, out, N, K, (w_int8, scale), {}, cfg)


# ---------------------------------------------------------------- specs
SPEC_GROUP_SIZE = 128  # int4: GPTQ/AWQ's usual group
SPEC_NF4_BLOCKSIZE = 64  # QLoRA's default (nf4.SPEC_BLOCKSIZE: state_from_inputs assumes it)
BENCH_TOKENS = (1, 16, 32, 64, 128, 256)  # decode (1), GEMV's last M (16), then the tiled path
LLAMA3_8B_LAYERS = (  # (K, N, layer): in_features -> out_features
    (4096, 14336, "gate/up proj"),
    (14336, 4096, "down proj"),
    (4096, 4096, "q/o proj"),
    (4096, 1024, "k/v proj (8 kv heads x 128)"),
)
BENCH_SHAPES = tuple(
    BenchShape((m, k, n), "llama-3-8b", f"{layer} {k}->{n}, M={m} tokens")
    for m in BENCH_TOKENS
    for k, n, layer in LLAMA3_8B_LAYERS
)
TEST_SHAPES = (  # (M, K, N)
    Shape((1, 128, 8), "one token (decode), one int4 group / two NF4 blocks per row, N below one tile"),
    Shape((3, 256, 40), "3 tokens: GEMV tile mostly masked rows; 2 groups and split-K; N = 40 not 2^k"),
    Shape((17, 256, 40), "17 tokens: the first M past the GEMV path, so the tiled path, M tail masked"),
    Shape((17, 128, 8), "tiled path at the smallest K: two K tiles, N = 8 inside one masked tile"),
    Shape((1, 256, 33), "odd N: the last output column alone in its word column / weight row"),
)


def _flops(dims: tuple[int, ...]) -> int:
    m, k, n = dims
    return 2 * m * n * k  # one multiply and one add per (m, n, k); dequantization is not counted


def _activations_bytes(dims: tuple[int, ...], dtype: torch.dtype) -> int:
    m, k, n = dims
    return (m * k + m * n) * dtype.itemsize  # read x, write y (w_dense, the baseline's, counts nothing)


def _int4_bytes(dims: tuple[int, ...], dtype: torch.dtype) -> int:
    _, k, n = dims
    groups = k // SPEC_GROUP_SIZE * n
    return k * n // 2 + groups * dtype.itemsize + groups + _activations_bytes(dims, dtype)  # + scales, zeros


def _nf4_bytes(dims: tuple[int, ...], dtype: torch.dtype) -> int:
    _, k, n = dims
    blocks = k * n // SPEC_NF4_BLOCKSIZE
    absmax = blocks + 4 * -(-blocks // 256) + 4  # uint8 code per block, fp32 per 256 blocks, offset
    return k * n // 2 + absmax + _activations_bytes(dims, dtype)


def _int8_bytes(dims: tuple[int, ...], dtype: torch.dtype) -> int:
    _, k, n = dims
    return k * n + 4 * n + _activations_bytes(dims, dtype)  # int8 weight, fp32 scale per channel


def _int4_inputs(dims, dtype, device, gen, symmetric: bool = False) -> dict[str, torch.Tensor]:
    m, k, n = dims
    x = random_tensor((m, k), dtype, device, gen)
    qw = quantize_int4(random_tensor((n, k), torch.float32, device, gen), SPEC_GROUP_SIZE, symmetric, dtype)
    inputs = {"x": x, "qweight": qw.qweight, "scales": qw.scales, "zeros": qw.zeros}
    if symmetric:
        del inputs["zeros"]
    return inputs | {"w_dense": dequantize_int4_ref(qw, dtype)}  # the cuBLAS baseline's weight


def _int4_weight(qweight, scales, zeros=None) -> Int4Weight:
    return Int4Weight(qweight, scales, zeros, SPEC_GROUP_SIZE)


def _int4_reference(x, qweight, scales, zeros=None, w_dense=None):
    return w4a16_matmul_ref(x, _int4_weight(qweight, scales, zeros))


def _int4_launcher(x, qweight, scales, zeros=None, w_dense=None, out=None):
    return w4a16_matmul(x, _int4_weight(qweight, scales, zeros), out=out)


def _nf4_inputs(dims, dtype, device, gen) -> dict[str, torch.Tensor]:
    m, k, n = dims
    x = random_tensor((m, k), dtype, device, gen)
    packed, state = quantize_nf4_ref(random_tensor((n, k), torch.float32, device, gen), SPEC_NF4_BLOCKSIZE)
    state.dtype = dtype
    return {
        "x": x,
        "weight": packed,
        "absmax": state.absmax,
        "code": state.code,
        "state2_absmax": state.state2.absmax,
        "state2_code": state.state2.code,
        "offset": state.offset,
        "w_dense": dequantize_nf4_ref(packed, state),
    }


def nf4_state_of(inputs: dict[str, torch.Tensor], n_out: int):
    """The NF4State (bitsandbytes reads it too) that the SPEC's inputs describe, W: [n_out, K]."""
    x = inputs["x"]
    return state_from_inputs(inputs, (n_out, x.shape[1]), x.dtype)


def _nf4_n(x, weight) -> int:
    return 2 * weight.numel() // x.shape[1]  # K is even: no padding nibble


def _nf4_reference(x, weight, w_dense=None, **state):
    inputs = {"x": x, **state}
    return nf4_matmul_ref(x, weight, nf4_state_of(inputs, _nf4_n(x, weight)))


def _nf4_launcher(x, weight, w_dense=None, out=None, **state):
    inputs = {"x": x, **state}
    return nf4_matmul(x, weight, nf4_state_of(inputs, _nf4_n(x, weight)), out=out)


def _int8_inputs(dims, dtype, device, gen) -> dict[str, torch.Tensor]:
    m, k, n = dims
    x = random_tensor((m, k), dtype, device, gen)
    q, scale = quantize_int8(random_tensor((n, k), torch.float32, device, gen))
    return {"x": x, "w_int8": q, "scale": scale, "w_dense": dequantize_int8_ref(q, scale, dtype)}


def _int8_reference(x, w_int8, scale, w_dense=None):
    return int8_matmul_ref(x, w_int8, scale)


def _int8_launcher(x, w_int8, scale, w_dense=None, out=None):
    return int8_matmul(x, w_int8, scale, out=out)


def _dense_in_dtype(x, *args, w_dense, **kwargs):
    """PyTorch's own computation: the dequantized weight, torch.mm in x's dtype (cuBLAS, which may
    sum in reduced precision: torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction)."""
    return torch.mm(x, w_dense.t())


_GEMV_ROUNDING = (
    "at M = 1 the CUDA-core GEMV (w4a16_gemv.py) scales each group's exact sum of x (q - z) once "
    "instead of rounding every weight to the 16-bit type first; the two differ by the sum of the "
    "weights' roundings, which follows the size of the summed terms (the tests hold both to fp64)"
)
_COMMON = dict(
    module=__name__,
    low_precision_reference=_dense_in_dtype,
    test_shapes=TEST_SHAPES,
    bench_shapes=BENCH_SHAPES,
    flops=_flops,
    bound="memory",  # decode reads every weight once per token; large M turns compute bound
    dtypes=ACT_DTYPES,
    lesson=8,
)
W4A16_SPEC = KernelSpec(
    name="w4a16_matmul",
    launcher=_int4_launcher,
    reference=_int4_reference,
    make_inputs=_int4_inputs,
    bytes_moved=_int4_bytes,
    baselines=("cublas-bf16", "torch-int4pack"),
    error_scales_with_rms=_GEMV_ROUNDING,
    summary="x @ W.T, W int4 group-wise (g128, zero points) dequantized in registers: split-K GEMV or tiled",
    **_COMMON,
)
NF4_MATMUL_SPEC = KernelSpec(
    name="nf4_matmul",
    launcher=_nf4_launcher,
    reference=_nf4_reference,
    make_inputs=_nf4_inputs,
    bytes_moved=_nf4_bytes,
    baselines=("cublas-bf16", "bitsandbytes"),
    summary="x @ W.T with W in bitsandbytes NF4 (double-quantized absmax), dequantized in registers",
    **_COMMON,
)
INT8_MATMUL_SPEC = KernelSpec(
    name="int8_matmul",
    launcher=_int8_launcher,
    reference=_int8_reference,
    make_inputs=_int8_inputs,
    bytes_moved=_int8_bytes,
    baselines=("cublas-bf16",),
    error_scales_with_rms=_GEMV_ROUNDING.replace("x (q - z)", "x q").replace("group's", "channel's"),
    summary="x @ W.T with W int8 per output channel, dequantized in registers",
    **_COMMON,
)
