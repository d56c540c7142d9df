"""NF4's absmax laid out by K step, for the warp-specialized matmul (w4a16_wgmma_ws.py).

bitsandbytes stores one absmax per block of `blocksize` weights, W's rows one after another
(double-quantized: uint8 codes into state2's map, an fp32 scale per state2 block, plus an
offset). The matmul copies a K step's absmax for 128 rows of W with one TMA box, so it wants
them transposed: [K / blocksize, N] fp32. `absmax_by_step` makes that in one launch, with
bitsandbytes' arithmetic (two roundings, no fused multiply-add), once per call. It was six torch
operations at first, which on Llama-3-8B's small layers took longer than the matmul itself
(experiment 0007, run 67). Its own module so that nf4.py stays one kernel, as the NF4 puzzle's
"single kernel" criterion reads it (benchmarks/puzzle_nf4.py).
"""

from __future__ import annotations

import torch

from inferlab.kernels._triton import tl, triton


@triton.jit
def _absmax_by_step_kernel(absmax_ptr, absmax2_ptr, code2_ptr, offset_ptr, out_ptr, N, KB, blocksize2,
                           NESTED: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_KB: tl.constexpr):  # fmt: skip
    """out[kb, n] = absmax of W row n's block kb (double-dequantized when NESTED)."""
    n = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)[:, None]
    kb = tl.program_id(1) * BLOCK_KB + tl.arange(0, BLOCK_KB)[None, :]
    mask = (n < N) & (kb < KB)
    blocks = n * KB + kb  # bitsandbytes' order: row by row, K's blocks along each
    if NESTED:
        q = tl.load(absmax_ptr + blocks, mask=mask, other=0).to(tl.int32)
        scale2 = tl.load(absmax2_ptr + blocks // blocksize2, mask=mask, other=0.0)
        absmax = tl.load(code2_ptr + q, mask=mask, other=0.0) * scale2 + tl.load(offset_ptr)
    else:
        absmax = tl.load(absmax_ptr + blocks, mask=mask, other=0.0)
    tl.store(out_ptr + kb * N + n, absmax, mask=mask)


def absmax_by_step(absmax, absmax2, code2, offset, blocksize2: int, N: int, KB: int) -> torch.Tensor:
    """Every block's fp32 absmax laid out [KB, N] (K's blocks, then W's rows), in one launch:
    what the warp-specialized matmul copies a K step of by TMA. The arguments are
    nf4._validated_args' (absmax2 None: not nested). Bit-exact with quant_formats.nf4_absmax_ref
    (two roundings when nested: no fused multiply-add)."""
    out = torch.empty(KB, N, device=absmax.device, dtype=torch.float32)
    nested = absmax2 is not None
    grid = (triton.cdiv(N, 64), triton.cdiv(KB, 64))
    _absmax_by_step_kernel[grid](
        absmax, absmax2 if nested else absmax, code2 if nested else absmax, offset if nested else absmax,
        out, N, KB, blocksize2, NESTED=nested, BLOCK_N=64, BLOCK_KB=64, num_warps=4,
        enable_fp_fusion=False,  # bitsandbytes rounds code2 * absmax2 before adding offset
    )  # fmt: skip
    return out
