"""Elementwise kernels: vector add (lesson 1) and SwiGLU.

Math:
    add(x, y)            = x + y
    swiglu(gate, up)     = silu(gate) * up = gate * sigmoid(gate) * up    (Llama's FFN activation)
    swiglu_fused(gate_up) = swiglu(gate_up[..., :I], gate_up[..., I:])    (one fused projection)

Kernels (a short ladder):
    _add_kernel           the lesson-1 kernel: one masked block per program, kept plain on purpose
    _swiglu_kernel        flat; full blocks skip the mask so loads stay 16 bytes wide for any n
    _swiglu_fused_kernel  row-major 1-D grid of (row, column block) over the fused [rows, 2*I] output

Layout: any shape, contiguous; the kernels see the tensors as flat arrays of n elements.
One program instance handles BLOCK_SIZE consecutive elements; the grid has cdiv(n, BLOCK_SIZE)
programs, and the last one masks off the elements past n.

Napkin math (per element, b bytes per element):
    add:    read x and y, write out: 3b bytes, 1 FLOP      -> memory bound (1/(3b) FLOP/byte)
    swiglu: read gate and up, write out: 3b bytes, ~5 FLOPs (exp, add, div, two muls)
    A masked load whose mask the compiler cannot prove uniform over 16-byte runs (n not a
    multiple of 16) is split into scalar loads: the plain add kernel runs ~3x slower at such n
    (measured on an H200 by the benchmark self-check); the SwiGLU kernels avoid it.

Arithmetic is done in fp32 and rounded once on the store. On a GPU that costs nothing (the
kernel waits on memory); it also keeps the kernels right under Triton's CPU interpreter, whose
bf16 arithmetic is wrong (it adds the raw bits: `check` catches a bf16 kernel that skips the
upcast, see tests/test_checker.py).

Lesson: 0001 (Thread -> Block -> Grid). Variants: one each; the memory-bound kernels issue
works them toward the copy-bandwidth limit.
"""

from __future__ import annotations

import math

import torch

from inferlab.kernels._launch import prepare_out, require_contiguous, require_same_shape, validate
from inferlab.kernels._triton import tl, triton
from inferlab.kernels.spec import BenchShape, KernelSpec, Shape, random_tensor

BLOCK_SIZE = 1024  # elements per program: 4 warps x 32 threads x 8 elements each
NUM_WARPS = 4


# ---------------------------------------------------------------- references (plain PyTorch)
def add_ref(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (x.float() + y.float()).to(x.dtype)


def swiglu_ref(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    g = gate.float()
    return (torch.nn.functional.silu(g) * up.float()).to(gate.dtype)


def swiglu_fused_ref(gate_up: torch.Tensor) -> torch.Tensor:
    gate, up = gate_up.chunk(2, dim=-1)
    return swiglu_ref(gate, up)


# ---------------------------------------------------------------- kernels
@triton.jit
def _add_kernel(x_ptr, y_ptr, out_ptr, n_elements, BLOCK_SIZE: tl.constexpr):
    pid = tl.program_id(axis=0)  # which block of elements this program instance owns
    block_start = pid.to(tl.int64) * BLOCK_SIZE  # int64: pid * BLOCK_SIZE can pass 2**31
    offsets = block_start + tl.arange(0, BLOCK_SIZE)  # a vector of indices, not one thread's
    mask = offsets < n_elements  # the last block runs past n: guard every access
    x = tl.load(x_ptr + offsets, mask=mask).to(tl.float32)  # fp32 math: see the note above
    y = tl.load(y_ptr + offsets, mask=mask).to(tl.float32)
    output = x + y
    tl.store(out_ptr + offsets, output.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _silu_mul(gate, up, out_dtype: tl.constexpr):
    gate = gate.to(tl.float32)  # fp32 math, whatever the dtype
    return (gate * tl.sigmoid(gate) * up.to(tl.float32)).to(out_dtype)


@triton.jit
def _swiglu_kernel(gate_ptr, up_ptr, out_ptr, n_elements, BLOCK_SIZE: tl.constexpr):
    block_start = tl.program_id(axis=0).to(tl.int64) * BLOCK_SIZE
    offsets = block_start + tl.arange(0, BLOCK_SIZE)
    out_dtype = out_ptr.dtype.element_ty
    if block_start + BLOCK_SIZE <= n_elements:
        # Every block but the last is full: without a mask the compiler can prove 16-byte
        # runs and issue vector loads even when n is not a multiple of 16.
        out = _silu_mul(tl.load(gate_ptr + offsets), tl.load(up_ptr + offsets), out_dtype)
        tl.store(out_ptr + offsets, out)
    else:
        mask = offsets < n_elements
        gate = tl.load(gate_ptr + offsets, mask=mask, other=0.0)
        up = tl.load(up_ptr + offsets, mask=mask, other=0.0)
        tl.store(out_ptr + offsets, _silu_mul(gate, up, out_dtype), mask=mask)


@triton.jit
def _swiglu_fused_kernel(
    gate_up_ptr, out_ptr, n_cols, n_col_blocks, stride_in_row, stride_out_row, BLOCK_SIZE: tl.constexpr
):
    # A 1-D grid walked row by row: consecutive programs read consecutive column blocks of one
    # row, so DRAM sees two long streams (gate and up). A 2-D grid with the row on axis 0 sent
    # neighbouring programs to rows 56 KB apart and ran 5% slower at 8192x14336 (H200 sweep).
    pid = tl.program_id(axis=0)
    row = (pid // n_col_blocks).to(tl.int64)  # int64: row * stride can pass 2**31
    cols = (pid % n_col_blocks) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = cols < n_cols
    gate = tl.load(gate_up_ptr + row * stride_in_row + cols, mask=mask, other=0.0)
    up = tl.load(gate_up_ptr + row * stride_in_row + n_cols + cols, mask=mask, other=0.0)
    out = _silu_mul(gate, up, out_ptr.dtype.element_ty)
    tl.store(out_ptr + row * stride_out_row + cols, out, mask=mask)


# ---------------------------------------------------------------- launchers
def _launch_binary(kernel, a_name: str, a: torch.Tensor, b_name: str, b: torch.Tensor, out):
    validate({a_name: a, b_name: b})
    require_same_shape(**{a_name: a, b_name: b})
    require_contiguous(**{a_name: a, b_name: b})
    out = prepare_out(out, a.shape, a)
    n = a.numel()
    if n == 0:
        return out
    grid = (triton.cdiv(n, BLOCK_SIZE),)  # one program per BLOCK_SIZE elements, rounded up
    kernel[grid](a, b, out, n, BLOCK_SIZE=BLOCK_SIZE, num_warps=NUM_WARPS)
    return out


def add(x: torch.Tensor, y: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """x: [...], y: [...] (same shape) -> x + y."""
    return _launch_binary(_add_kernel, "x", x, "y", y, out)


def swiglu(gate: torch.Tensor, up: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """gate: [..., I], up: [..., I] -> silu(gate) * up, fp32 math, gate's dtype out."""
    return _launch_binary(_swiglu_kernel, "gate", gate, "up", up, out)


def swiglu_fused(gate_up: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """gate_up: [..., 2*I] (a fused gate/up projection: gate first, up second) -> [..., I].

    Rows may be strided (e.g. a slice of a larger buffer); the last dimension must be contiguous."""
    validate({"gate_up": gate_up})
    if gate_up.dim() == 0 or gate_up.shape[-1] % 2:
        raise ValueError(
            f"gate_up's last dimension must be even (gate, then up); its shape is {tuple(gate_up.shape)}"
        )
    if gate_up.shape[-1] > 0 and gate_up.stride(-1) != 1:
        raise ValueError(f"gate_up's last dimension must be contiguous; its strides are {gate_up.stride()}")
    n_cols = gate_up.shape[-1] // 2
    out = prepare_out(out, (*gate_up.shape[:-1], n_cols), gate_up)
    rows_in = gate_up.reshape(-1, 2 * n_cols) if gate_up.dim() != 2 else gate_up  # view when possible
    n_rows = rows_in.shape[0]
    if n_rows == 0 or n_cols == 0:
        return out
    n_col_blocks = triton.cdiv(n_cols, BLOCK_SIZE)
    grid = (n_rows * n_col_blocks,)
    _swiglu_fused_kernel[grid](
        rows_in,
        out,
        n_cols,
        n_col_blocks,
        rows_in.stride(0),
        n_cols,
        BLOCK_SIZE=BLOCK_SIZE,
        num_warps=NUM_WARPS,
    )
    return out


# ---------------------------------------------------------------- specs
def _fused_input(dims, dtype, device, gen):
    *rows, n_cols = dims  # dims is the output shape [..., I]; the input is [..., 2*I]
    return {"gate_up": random_tensor((*rows, 2 * n_cols), dtype, device, gen)}


def _two_inputs(a: str, b: str):
    def make(dims, dtype, device, gen):
        return {a: random_tensor(dims, dtype, device, gen), b: random_tensor(dims, dtype, device, gen)}

    return make


def _three_accesses(dims: tuple[int, ...], dtype: torch.dtype) -> int:
    return 3 * math.prod(dims) * dtype.itemsize  # read two tensors, write one


ADD_SPEC = KernelSpec(
    name="add",
    module=__name__,
    launcher=add,
    reference=add_ref,
    make_inputs=_two_inputs("x", "y"),
    test_shapes=(
        Shape((1,), "size 1: a single program with 1023 masked-off lanes"),
        Shape((1000,), "not a power of two: the last block is partial"),
        Shape((3 * BLOCK_SIZE + 7,), "multi-block, with a ragged tail"),
        Shape((4, 4096), "a Llama-3-8B hidden state, 4 tokens"),
    ),
    bench_shapes=(
        BenchShape((1 << 28,), "synthetic", "256M elements, far past L2"),
        BenchShape((16384, 4096), "llama-3-8b", "residual add, 16k tokens"),
    ),
    flops=math.prod,
    bytes_moved=_three_accesses,
    bound="memory",
    baselines=("torch", "torch.compile"),
    lesson=1,
    summary="vector add: the hello-world of the program-instance model",
)

SWIGLU_SPEC = KernelSpec(
    name="swiglu",
    module=__name__,
    launcher=swiglu,
    reference=swiglu_ref,
    make_inputs=_two_inputs("gate", "up"),
    test_shapes=(
        Shape((1, 1), "size 1"),
        Shape((3, 1000), "non-power-of-two rows"),
        Shape((2, 14336), "Llama-3-8B FFN width, 2 tokens (multi-block rows)"),
    ),
    bench_shapes=(
        BenchShape((1, 14336), "llama-3-8b", "mlp act, decode 1 token"),
        BenchShape((64, 14336), "llama-3-8b", "mlp act, decode 64 tokens"),
        BenchShape((8192, 14336), "llama-3-8b", "mlp act, prefill 8k tokens"),
    ),
    flops=lambda dims: 5 * math.prod(dims),
    bytes_moved=_three_accesses,
    bound="memory",
    baselines=("torch", "torch.compile", "liger"),
    lesson=3,
    summary="SwiGLU: silu(gate) * up in one pass, fp32 math",
)

SWIGLU_FUSED_SPEC = KernelSpec(
    name="swiglu_fused",
    module=__name__,
    launcher=swiglu_fused,
    reference=swiglu_fused_ref,
    make_inputs=_fused_input,
    test_shapes=(
        Shape((1, 1), "size 1: gate and up are one element each"),
        Shape((3, 1000), "non-power-of-two width: a partial column block per row"),
        Shape((2, 3, 2 * BLOCK_SIZE + 5), "3-D input, several column blocks and a ragged tail"),
        Shape((2, 14336), "Llama-3-8B FFN width, 2 tokens"),
    ),
    bench_shapes=(
        BenchShape((1, 14336), "llama-3-8b", "fused gate_up act, decode 1 token"),
        BenchShape((64, 14336), "llama-3-8b", "fused gate_up act, decode 64 tokens"),
        BenchShape((8192, 14336), "llama-3-8b", "fused gate_up act, prefill 8k tokens"),
    ),
    flops=lambda dims: 5 * math.prod(dims),
    bytes_moved=_three_accesses,  # read 2*I per row, write I per row
    bound="memory",
    baselines=("torch", "torch.compile"),
    lesson=3,
    summary="SwiGLU over a fused gate/up projection output, one pass",
)
