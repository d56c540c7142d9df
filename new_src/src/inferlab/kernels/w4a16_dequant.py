"""The large-M path of the weight-only matmuls: dequantize the whole weight once, then cuBLAS.

From a few hundred rows of x a bf16 GEMM is compute bound, and a fused kernel that unpacks every
weight tile in registers before each wgmma pays ALU work and shared-memory traffic that a bf16
GEMM does not (experiment 7: the fused int4 tiled path ran at 0.28x cuBLAS at M = 256). Writing
W once in x's dtype costs a bandwidth-bound pass (read 4 bits, write 16 per weight: ~36 µs for
Llama-3-8B's 4096 -> 14336 at 4.2 TB/s) that the GEMM's time then amortizes; the price is a
scratch buffer the size of the bf16 weight. bitsandbytes does the same above one token.

int4 and NF4 only: int8 at large M stays on the fused tiled kernel (its weight is already half
of bf16's, and a dequantization pass would move three times the weight's bytes).

The dequantized W is bit for bit what the references build (`dequantize_int4_ref`,
`dequantize_nf4_ref`: the fp32 product rounded once to x's dtype), so this
path differs from "dequantize, fp32 matmul, cast" only by cuBLAS's summation, which is PyTorch's
own low-precision computation that the SPECs name.
"""

from __future__ import annotations

import copy

import torch

from inferlab.kernels._triton import tl, triton
from inferlab.kernels.device import select_backend
from inferlab.kernels.nf4 import dequantize_nf4
from inferlab.kernels.quant_formats import Int4Weight
from inferlab.kernels.w4a16_kernels import _INT4_MAGIC, _int4_dequant, _int4_group_params

BLOCK_I, BLOCK_N = 8, 128  # word rows x columns per program: 64 rows of W.T, 256-byte row stores


@triton.jit
def _int4_to_wt_kernel(
    qweight_ptr, scales_ptr, zeros_ptr, out_ptr, K, N,
    GROUP_SIZE: tl.constexpr, HAS_ZEROS: tl.constexpr, MAGIC: tl.constexpr,
    BLOCK_I: tl.constexpr, BLOCK_N: tl.constexpr, EMULATE_BF16: tl.constexpr,
):  # fmt: skip
    """W.T [K, N] in x's dtype from the int4 words: word row i gives rows 8i .. 8i + 7."""
    offs_i = tl.program_id(axis=0).to(tl.int64) * BLOCK_I + tl.arange(0, BLOCK_I)
    offs_n = tl.program_id(axis=1).to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    mask = (offs_i[:, None] < K // 8) & (offs_n[None, :] < N)
    words = tl.load(qweight_ptr + offs_i[:, None] * N + offs_n[None, :], mask=mask, other=0)
    offs_g = (offs_i * 8 // GROUP_SIZE)[:, None]  # the 8 rows of a word share a group (G >= 32)
    scales, zeros = _int4_group_params(
        scales_ptr, zeros_ptr, offs_g, offs_n[None, :], mask, N, HAS_ZEROS, MAGIC, EMULATE_BF16
    )
    for j in tl.static_range(8):
        w = _int4_dequant(words, 4 * j, scales, zeros, MAGIC, EMULATE_BF16)
        rows = offs_i * 8 + j
        tl.store(out_ptr + rows[:, None] * N + offs_n[None, :], w.to(out_ptr.dtype.element_ty), mask=mask)


def int4_weight_t(qweight: Int4Weight, dtype: torch.dtype) -> torch.Tensor:
    """W.T [K, N] in `dtype`, equal to dequantize_int4_ref(qweight, dtype).t() bit for bit."""
    N, K = qweight.shape
    out = torch.empty((K, N), dtype=dtype, device=qweight.qweight.device)
    zeros = qweight.zeros if qweight.zeros is not None else qweight.scales
    grid = (triton.cdiv(K // 8, BLOCK_I), triton.cdiv(N, BLOCK_N))
    _int4_to_wt_kernel[grid](
        qweight.qweight, qweight.scales, zeros, out, K, N,
        GROUP_SIZE=qweight.group_size, HAS_ZEROS=qweight.zeros is not None, MAGIC=_INT4_MAGIC[dtype],
        BLOCK_I=BLOCK_I, BLOCK_N=BLOCK_N,
        EMULATE_BF16=select_backend().interpreted and dtype == torch.bfloat16,
    )  # fmt: skip
    return out


def nf4_weight(weight: torch.Tensor, quant_state, dtype: torch.dtype) -> torch.Tensor:
    """W [N, K] in `dtype` by the single-launch NF4 dequantization (bit-exact with bitsandbytes)."""
    if quant_state.dtype != dtype:
        quant_state = copy.copy(quant_state)  # the same tensors; the fp32 product rounds to dtype
        quant_state.dtype = dtype
    return dequantize_nf4(weight, quant_state)
