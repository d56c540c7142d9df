"""RMSNorm, Llama's normalization, alone or fused with the residual add (lesson 5: norms).

Math, for one row x of N values (as Hugging Face's LlamaRMSNorm computes it):
    h   = float32(x)
    n   = h * rsqrt(mean(h^2) + eps)         in fp32
    out = weight * n.to(x.dtype)             the multiply in x's dtype

So a bf16 or fp16 result is rounded twice: once when n is cast to x's dtype, once more after the
weight multiply. The kernel does the same (multiply in fp32 on the rounded n, round again), which
is exactly what PyTorch's bf16 multiply does, so the only difference from the reference is the
order of the fp32 sum of squares.

With a residual (a decoder layer: `h = x + residual; out = norm(h)`, with h kept for the next
skip connection):
    h   = (x + residual).to(x.dtype)         rounded, as the layer would store it
    out = rmsnorm(h) * weight,  returned with h
One kernel reads x, residual and weight and writes out and h: the add costs no extra trip to
memory. `out=(out, residual)` is allowed: each program reads its row before writing it, so the
residual stream can be updated in place.

Layout: x (and residual): [..., N], last dim contiguous, leading dims flattened into M rows with
their own strides; weight: [N], contiguous. One program instance owns one row: the whole row is
one block of BLOCK_SIZE = next_power_of_2(N) values in registers (N <= MAX_N_COLS), so x is read
once. Variants: one.

Napkin math, per element with b bytes per element (weight is N values shared by all rows, read
from HBM once and from L2 after that):
    rmsnorm:          read x, write out:            2b bytes;  ~4 FLOPs (square, add, 2 muls)
    rmsnorm_residual: read x, residual; write out, h: 4b bytes; ~5 FLOPs (plus the add)
    -> memory bound. 16384 tokens x 4096 hidden in bf16: 256 MiB, ~80 us at ~3.3 TB/s.
"""

from __future__ import annotations

import math

import torch

from inferlab.kernels._launch import needs_int64_offsets, prepare_out, require_same_shape, validate
from inferlab.kernels._triton import tl, triton
from inferlab.kernels.device import select_backend
from inferlab.kernels.softmax import as_rows, row_num_warps
from inferlab.kernels.spec import BenchShape, KernelSpec, Shape, random_tensor

MAX_N_COLS = 65536  # the whole row lives in one program's registers: 128 fp32 per thread at 16 warps


# ---------------------------------------------------------------- references (plain PyTorch)
def rmsnorm_ref(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    h = x.float()
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
    return weight * h.to(x.dtype)


def rmsnorm_residual_ref(
    x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6
) -> tuple[torch.Tensor, torch.Tensor]:
    h = (x.float() + residual.float()).to(x.dtype)
    return rmsnorm_ref(h, weight, eps), h


# ---------------------------------------------------------------- kernel
@triton.jit
def _round(x, dtype: tl.constexpr, BY_HAND: tl.constexpr):
    """fp32 x rounded to `dtype`, to nearest even."""
    if BY_HAND and dtype == tl.bfloat16:
        # Triton's CPU interpreter truncates fp32 -> bf16 (a GPU rounds to nearest even); three
        # truncations in a row drift 3 ulp from torch. Round on the bits instead: add half an
        # ulp minus one, plus the kept lowest bit (ties to even), then drop the low 16 bits.
        bits = x.to(tl.uint32, bitcast=True)
        bits = bits + 0x7FFF + ((bits >> 16) & 1)
        rounded = (bits >> 16).to(tl.uint16).to(tl.bfloat16, bitcast=True)
    else:
        rounded = x.to(dtype)
    return rounded


@triton.jit
def _rmsnorm_kernel(
    x_ptr,
    residual_ptr,  # unused unless HAS_RESIDUAL
    weight_ptr,
    out_ptr,
    residual_out_ptr,  # h = x + residual, unused unless HAS_RESIDUAL
    stride_x_row,
    stride_residual_row,
    stride_out_row,
    stride_residual_out_row,
    n_cols,
    eps,
    HAS_RESIDUAL: tl.constexpr,
    BLOCK_SIZE: tl.constexpr,
    ROUND_BY_HAND: tl.constexpr,  # True under the interpreter, see _round
    WIDE_INDEX: tl.constexpr,  # int64 row offsets, only where row * stride can pass 2**31
):
    row = tl.program_id(axis=0)
    if WIDE_INDEX:
        row = row.to(tl.int64)
    offs_n = tl.arange(0, BLOCK_SIZE)
    mask = offs_n < n_cols
    # masked lanes read 0: they add nothing to the sum of squares and are never stored
    x = tl.load(x_ptr + row * stride_x_row + offs_n, mask=mask, other=0.0).to(tl.float32)
    # Issued before the reduction so its latency overlaps x's: at decode (a few rows) the kernel
    # is a chain of memory round trips, not a bandwidth problem.
    weight = tl.load(weight_ptr + offs_n, mask=mask, other=0.0).to(tl.float32)
    if HAS_RESIDUAL:
        residual = tl.load(residual_ptr + row * stride_residual_row + offs_n, mask=mask, other=0.0)
        h = _round(x + residual.to(tl.float32), residual_out_ptr.dtype.element_ty, ROUND_BY_HAND)
        tl.store(residual_out_ptr + row * stride_residual_out_row + offs_n, h, mask=mask)
        x = h.to(tl.float32)  # normalize what was stored, as the unfused layer would
    mean_sq = tl.sum(x * x, axis=0) / n_cols
    rstd = tl.rsqrt(mean_sq + eps)
    normed = _round(x * rstd, out_ptr.dtype.element_ty, ROUND_BY_HAND)  # HF rounds before the weight
    out = _round(normed.to(tl.float32) * weight, out_ptr.dtype.element_ty, ROUND_BY_HAND)
    tl.store(out_ptr + row * stride_out_row + offs_n, out, mask=mask)


# ---------------------------------------------------------------- launchers
def rmsnorm(
    x: torch.Tensor,
    weight: torch.Tensor,
    eps: float = 1e-6,
    residual: torch.Tensor | None = None,
    out: torch.Tensor | tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """x: [..., N], weight: [N] -> [..., N]; with residual: [..., N] -> (out, x + residual)."""
    tensors = {"x": x, "weight": weight} | ({} if residual is None else {"residual": residual})
    validate(tensors)
    x_rows = as_rows(x)
    n_rows, n_cols = x_rows.shape
    if weight.shape != (n_cols,):
        raise ValueError(
            f"weight has shape {tuple(weight.shape)}, expected ({n_cols},) for x {tuple(x.shape)}"
        )
    if weight.stride(0) != 1 and n_cols > 1:
        raise ValueError("weight must be contiguous (call .contiguous() first)")
    if not isinstance(eps, (float, int)) or eps < 0:
        raise ValueError(f"eps must be a number >= 0, not {eps!r}")
    if n_cols > MAX_N_COLS:
        raise ValueError(f"rows of {n_cols} values are longer than the {MAX_N_COLS} one block holds")
    if residual is None:
        out = prepare_out(out, x.shape, x)
        residual_rows, residual_out = x_rows, out  # stand-ins: the kernel never touches them
    else:
        require_same_shape(x=x, residual=residual)
        residual_rows = as_rows(residual, "residual")
        if out is not None and not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise TypeError("with a residual, out must be a tuple (out, residual_out)")
        out, residual_out = out if out is not None else (None, None)
        out = prepare_out(out, x.shape, x)
        residual_out = prepare_out(residual_out, x.shape, x, name="residual_out")
    result = out if residual is None else (out, residual_out)
    if n_rows == 0 or n_cols == 0:
        return result
    block_size = triton.next_power_of_2(n_cols)
    _rmsnorm_kernel[(n_rows,)](  # one program per row
        x_rows,
        residual_rows,
        weight,
        out,
        residual_out,
        x_rows.stride(0),
        residual_rows.stride(0),
        n_cols,  # out and residual_out are contiguous: row stride N
        n_cols,
        n_cols,
        float(eps),
        HAS_RESIDUAL=residual is not None,
        BLOCK_SIZE=block_size,
        ROUND_BY_HAND=select_backend().interpreted,
        WIDE_INDEX=needs_int64_offsets(n_rows * max(x_rows.stride(0), residual_rows.stride(0), n_cols)),
        num_warps=row_num_warps(block_size),
    )
    return result


def rmsnorm_residual(
    x: torch.Tensor,
    residual: torch.Tensor,
    weight: torch.Tensor,
    eps: float = 1e-6,
    out: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """x, residual: [..., N], weight: [N] -> (rmsnorm(x + residual) * weight, x + residual)."""
    return rmsnorm(x, weight, eps=eps, residual=residual, out=out)


# ---------------------------------------------------------------- specs
def _weight(n_cols: int, dtype, device, gen) -> torch.Tensor:
    # around 1, as a trained norm's weight is, but not 1: a kernel that skips it must fail
    return (1 + 0.1 * torch.randn(n_cols, generator=gen)).to(device=device, dtype=dtype)


def _make_inputs(dims, dtype, device, gen):
    return {"x": random_tensor(dims, dtype, device, gen), "weight": _weight(dims[-1], dtype, device, gen)}


def _make_residual_inputs(dims, dtype, device, gen):
    return {
        "x": random_tensor(dims, dtype, device, gen),
        "residual": random_tensor(dims, dtype, device, gen),
        "weight": _weight(dims[-1], dtype, device, gen),
    }


def _accesses(per_element: int):
    def bytes_moved(dims: tuple[int, ...], dtype: torch.dtype) -> int:
        # per_element row-sized reads and writes, plus the weight read once
        return (per_element * math.prod(dims) + dims[-1]) * dtype.itemsize

    return bytes_moved


_TEST_SHAPES = (
    Shape((1, 1), "size 1: the row is its own RMS, out = weight * sign(x) (plus eps)"),
    Shape((3, 1000), "non-power-of-two rows: 24 masked lanes must not add to the sum of squares"),
    Shape((5, 4096), "Llama-3-8B hidden size, 5 tokens"),
    Shape((2, 3584), "Qwen2.5-7B hidden: not a power of two, 512 masked lanes in a 4096 block"),
    Shape((2, 3, 576), "SmolLM2 hidden, leading dims [2, 3] flattened into rows"),
)
_BENCH_SHAPES = tuple(
    BenchShape((tokens, 4096), "llama-3-8b", f"{phase} {tokens} tokens")
    for phase, tokens in (
        ("decode", 1),
        ("decode", 16),
        ("decode", 64),
        ("prefill", 4096),
        ("prefill", 16384),
    )
)

RMSNORM_SPEC = KernelSpec(
    name="rmsnorm",
    module=__name__,
    launcher=rmsnorm,
    reference=rmsnorm_ref,
    make_inputs=_make_inputs,
    test_shapes=_TEST_SHAPES,
    bench_shapes=tuple(BenchShape(s.dims, s.model, f"input_layernorm, {s.layer}") for s in _BENCH_SHAPES),
    flops=lambda dims: 4 * math.prod(dims),
    bytes_moved=_accesses(2),  # read x, write out
    bound="memory",
    baselines=("torch", "torch.compile", "liger"),
    lesson=5,
    summary="RMSNorm, one row per program, fp32 math, HF Llama rounding",
)

RMSNORM_RESIDUAL_SPEC = KernelSpec(
    name="rmsnorm_residual",
    module=__name__,
    launcher=rmsnorm_residual,
    reference=rmsnorm_residual_ref,
    make_inputs=_make_residual_inputs,
    test_shapes=_TEST_SHAPES,
    bench_shapes=tuple(
        BenchShape(s.dims, s.model, f"residual add + post_attention_layernorm, {s.layer}")
        for s in _BENCH_SHAPES
    ),
    flops=lambda dims: 5 * math.prod(dims),
    bytes_moved=_accesses(4),  # read x and residual, write out and h
    bound="memory",
    baselines=("torch", "torch.compile", "liger"),
    lesson=5,
    summary="residual add fused into RMSNorm: h = x + residual and norm(h) in one pass",
)
