"""The kernel contract: `KernelSpec` describes one kernel, `check` proves it against its reference.

A SPEC names the launcher and its plain-PyTorch reference, how to make inputs, which shapes
to test (each with its reason) and to benchmark (each from a real model), and the napkin math
(FLOPs and bytes) that the benchmark turns into % of a ceiling.

`check(spec, shape, dtype, device)` is deliberately suspicious of the kernel:

- fresh random inputs every call, from a seed that is recorded and printed on failure;
- every input and output is a view in the middle of a larger buffer whose margins hold NaN
  (or a sentinel byte for integer data): an unmasked read whose value reaches the output
  poisons it, and a write past either end changes a margin;
- the output is poisoned with NaN before the call, so an element the kernel never wrote
  shows up as NaN where the reference has a number;
- one tolerance table keyed by dtype, with its reason.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

# Elements of NaN (or sentinel bytes) on each side of every input and output. Larger than
# any BLOCK_SIZE a test shape uses, so a missing tail mask lands in the margin, not in memory
# that belongs to something else.
MARGIN_ELEMENTS = 4096


@dataclass(frozen=True, slots=True)
class Tolerance:
    atol: float
    rtol: float
    reason: str


# One table, keyed by dtype. The reference computes in fp32 (or better) from the same inputs;
# the kernel's output is rounded to its dtype at least once, so the budget is a couple of
# units in the last place (ulp) of that dtype, relative to the value.
TOLERANCES: dict[torch.dtype, Tolerance] = {
    torch.float32: Tolerance(1e-6, 1e-5, "fp32 math in a different order than torch: ~100 fp32 ulp (2^-23)"),
    torch.float16: Tolerance(
        1e-5, 2e-3, "fp16 output is rounded once (0.5 ulp = 2^-11), an intermediate once more"
    ),
    torch.bfloat16: Tolerance(
        1e-4, 1.6e-2, "bf16 output is rounded once (0.5 ulp = 2^-8), an intermediate once more"
    ),
}


@dataclass(frozen=True, slots=True)
class Shape:
    """A test shape and why it is in the list (size 1, non-power-of-two, multi-block, a model)."""

    dims: tuple[int, ...]
    reason: str


@dataclass(frozen=True, slots=True)
class BenchShape:
    """A benchmark shape, named after the model and layer it comes from (models.yaml)."""

    dims: tuple[int, ...]
    model: str
    layer: str


Inputs = dict[str, torch.Tensor]


@dataclass(frozen=True)
class KernelSpec:
    """Everything the lab needs to check, benchmark and teach one kernel."""

    name: str  # registry key, e.g. "add"
    module: str  # the module that holds it, e.g. "inferlab.kernels.elementwise"
    launcher: Callable[..., torch.Tensor]  # fn(**inputs, out=...) -> output
    # plain PyTorch on the same inputs, fp32 math inside, returning what the launcher must
    # return (same shapes and dtypes): `check` allocates the launcher's outputs from it
    reference: Callable[..., torch.Tensor]
    make_inputs: Callable[[tuple[int, ...], torch.dtype, torch.device, torch.Generator], Inputs]
    test_shapes: tuple[Shape, ...]
    bench_shapes: tuple[BenchShape, ...]
    flops: Callable[[tuple[int, ...]], int]  # useful floating-point operations
    bytes_moved: Callable[[tuple[int, ...], torch.dtype], int]  # fewest bytes: read once, write once
    bound: str  # "memory" or "compute": which ceiling the roofline compares against
    dtypes: tuple[torch.dtype, ...] = (torch.float32, torch.float16, torch.bfloat16)
    baselines: tuple[str, ...] = ()
    lesson: int | None = None
    summary: str = ""
    # Why this kernel's error is judged against the output's rms as well as each element
    # (`outside_tolerance`); empty: per element only. Set it where low-precision operands
    # are rounded before a sum whose terms are larger than its result (P @ V in attention).
    error_scales_with_rms: str = ""
    # PyTorch's own computation in the kernel's dtype (e.g. SDPA in bf16), for kernels whose
    # rounding is inherent to the dtype: each element may then also be off by twice PyTorch's
    # own largest error against the fp32 reference (STYLE.md's error budget).
    low_precision_reference: Callable[..., torch.Tensor] | None = None

    def __post_init__(self) -> None:
        if self.bound not in ("memory", "compute"):
            raise ValueError(f"{self.name}: bound must be 'memory' or 'compute', not {self.bound!r}")
        if not self.test_shapes:
            raise ValueError(f"{self.name}: a SPEC needs at least one test shape")


@dataclass(slots=True)
class CheckResult:
    spec: str
    dims: tuple[int, ...]
    dtype: str
    device: str
    seed: int
    passed: bool
    max_abs_err: float = 0.0
    mean_abs_err: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        head = f"{self.spec} {self.dims} {self.dtype} on {self.device}, seed {self.seed}"
        if self.passed:
            return f"{head}: PASS (max error {self.max_abs_err:.3g})"
        return f"{head}: FAIL\n  " + "\n  ".join(self.problems)


def random_tensor(
    dims: Sequence[int], dtype: torch.dtype, device: torch.device | str, gen: torch.Generator
) -> torch.Tensor:
    """Standard-normal data drawn on the CPU generator (reproducible from the seed on any device)."""
    return torch.randn(tuple(dims), generator=gen, dtype=torch.float32).to(device=device, dtype=dtype)


# Margin patterns. Inputs and outputs get NaNs with different payloads (bit patterns): a kernel
# without its tail mask reads an input-margin NaN, computes with it and stores the result past
# the end of the output. If both margins held the same NaN, that store would leave the output's
# margin bit-for-bit unchanged and go unseen; with distinct payloads any such store changes it.
_NAN_BITS = {
    #                 input margin  output margin   (quiet NaNs: exponent all ones, top mantissa bit set)
    torch.float64: (0x7FF8_0000_0000_0A01, 0x7FFC_0000_0000_0B02),
    torch.float32: (0x7FC1_0A01, 0x7FE2_0B02),
    torch.float16: (0x7E01, 0x7F02),
    torch.bfloat16: (0x7FC1, 0x7FE2),
}
_INT_VIEW = {8: torch.int64, 4: torch.int32, 2: torch.int16}
INT_SENTINEL = {"input": 0xA5, "output": 0x5A}  # byte patterns for integer data


def _fill_sentinel(buf: torch.Tensor, role: str) -> None:
    """Fill `buf` with the margin pattern of `role` ("input" or "output")."""
    if buf.dtype in _NAN_BITS:
        bits = _NAN_BITS[buf.dtype][0 if role == "input" else 1]
        int_dtype = _INT_VIEW[buf.dtype.itemsize]
        buf.view(int_dtype).fill_(bits)  # sign bit clear: the pattern fits the signed view
    elif buf.dtype.is_floating_point:
        buf.fill_(float("nan"))
    else:
        buf.view(torch.uint8).fill_(INT_SENTINEL[role])


def in_guarded_buffer(
    t: torch.Tensor, role: str = "input", margin: int = MARGIN_ELEMENTS
) -> tuple[torch.Tensor, torch.Tensor]:
    """Copy `t` into the middle of a buffer whose margins hold `role`'s NaN or sentinel bytes.

    Returns (view, whole buffer)."""
    if not t.is_contiguous():
        raise ValueError("in_guarded_buffer places contiguous tensors only")
    buf = torch.empty(t.numel() + 2 * margin, dtype=t.dtype, device=t.device)
    _fill_sentinel(buf, role)
    view = buf[margin : margin + t.numel()].view(t.shape)
    view.copy_(t)
    return view, buf


def _margins_intact(buf: torch.Tensor, numel: int, role: str, margin: int = MARGIN_ELEMENTS) -> bool:
    # Compare bytes, not values: NaN != NaN, and the margins are NaN by design.
    fresh = torch.empty_like(buf)
    _fill_sentinel(fresh, role)
    as_bytes = buf.view(torch.uint8).reshape(buf.numel(), -1)
    fresh_bytes = fresh.view(torch.uint8).reshape(buf.numel(), -1)
    head = slice(0, margin)
    tail = slice(margin + numel, buf.numel())
    return bool(
        torch.equal(as_bytes[head], fresh_bytes[head]) and torch.equal(as_bytes[tail], fresh_bytes[tail])
    )


def _as_tuple(x) -> tuple[torch.Tensor, ...]:
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def torch_error_floor(spec: KernelSpec, inputs: Inputs, expected) -> list[float]:
    """Per output: twice the largest error of PyTorch's own low-precision computation against
    the reference (0.0 for a SPEC without `low_precision_reference`)."""
    if spec.low_precision_reference is None:
        return [0.0] * len(expected)
    own = _as_tuple(spec.low_precision_reference(**inputs))
    return [
        2 * float((o.double() - e.double().to(o.device)).abs().nan_to_num(0.0).max()) if o.numel() else 0.0
        for o, e in zip(own, expected, strict=True)
    ]


def outside_tolerance(
    got: torch.Tensor, want: torch.Tensor, tol: Tolerance, with_rms: bool, floor: float = 0.0
) -> torch.Tensor:
    """Where |got - want| exceeds atol + rtol x |want| (+ rtol x rms(want) when `with_rms`).

    The rms term is for results that sum rounded terms larger than themselves: their rounding
    error follows the size of the terms, so an output that cancels to near zero can be off by
    more than its own rtol; an element that is really wrong (a bad index, a stale or unwritten
    value) is off by about the rms and still fails. NaN matches NaN."""
    budget = tol.atol + floor + tol.rtol * want.abs()
    if with_rms and want.numel():
        budget = budget + tol.rtol * want.pow(2).mean().sqrt()
    close = ((got - want).abs() <= budget) | (got == want)  # == : equal infinities match
    return ~close & ~(torch.isnan(got) & torch.isnan(want))


def _compare(
    name: str,
    got: torch.Tensor,
    want: torch.Tensor,
    tol: Tolerance,
    problems: list[str],
    with_rms: bool = False,
    floor: float = 0.0,
) -> tuple[float, float]:
    """Append a report to `problems` if `got` differs from `want`; return (max, mean) abs error."""
    if got.shape != want.shape:
        problems.append(f"{name}: shape {tuple(got.shape)}, reference has {tuple(want.shape)}")
        return float("inf"), float("inf")
    if got.numel() == 0:
        return 0.0, 0.0
    g, w = got.double().cpu(), want.double().cpu()
    unwritten = torch.isnan(g) & ~torch.isnan(w)
    err = (g - w).abs()
    finite = torch.isfinite(err)
    max_err = float(err[finite].max()) if finite.any() else float("inf")
    mean_err = float(err[finite].mean()) if finite.any() else float("inf")
    bad = outside_tolerance(g, w, tol, with_rms, floor)
    if unwritten.any():
        idx = [tuple(i) for i in unwritten.nonzero()[:5].tolist()]
        problems.append(
            f"{name}: {int(unwritten.sum())} of {g.numel()} elements are NaN where the reference "
            f"is a number (never written, or an out-of-bounds read reached them); first at {idx}"
        )
    elif bad.any():
        idx = [tuple(i) for i in bad.nonzero()[:5].tolist()]
        first = idx[0]
        problems.append(
            f"{name}: {int(bad.sum())} of {g.numel()} elements outside atol={tol.atol:g}, "
            f"rtol={tol.rtol:g}{' x (|ref| + rms(ref))' if with_rms else ''}"
            f"{f' + 2x torch own error {floor:.3g}' if floor else ''}; first bad indices {idx}; "
            f"at {first}: got {float(g[first]):.6g}, "
            f"want {float(w[first]):.6g}; max abs error {max_err:.3g}, mean {mean_err:.3g}"
        )
    return max_err, mean_err


def check(
    spec: KernelSpec,
    dims: Sequence[int] | Shape,
    dtype: torch.dtype,
    device: torch.device | str,
    seed: int | None = None,
    launcher: Callable[..., object] | None = None,
) -> CheckResult:
    """Run `spec`'s launcher (or `launcher`, e.g. a known-wrong kernel) against its reference."""
    dims = tuple(dims.dims if isinstance(dims, Shape) else dims)
    seed = secrets.randbits(31) if seed is None else seed
    run = launcher or spec.launcher
    result = CheckResult(spec.name, dims, str(dtype).removeprefix("torch."), str(device), seed, False)
    tol = TOLERANCES.get(dtype)
    if tol is None:
        result.problems.append(f"no tolerance for {dtype}; add it to TOLERANCES with a reason")
        return result

    gen = torch.Generator().manual_seed(seed)
    inputs = spec.make_inputs(dims, dtype, torch.device(device), gen)
    originals = {k: v.clone() for k, v in inputs.items()}
    expected = _as_tuple(spec.reference(**originals))

    guarded_inputs, input_bufs = {}, {}
    for k, v in inputs.items():
        guarded_inputs[k], input_bufs[k] = in_guarded_buffer(v.contiguous())
    outs, out_bufs = [], []
    for e in expected:
        poisoned = torch.full(e.shape, float("nan"), dtype=e.dtype, device=device)
        view, buf = in_guarded_buffer(poisoned, role="output")
        outs.append(view)
        out_bufs.append(buf)

    got = run(**guarded_inputs, out=outs[0] if len(outs) == 1 else tuple(outs))
    got = _as_tuple(got)
    if device != "cpu" and torch.device(device).type == "cuda":
        torch.cuda.synchronize()

    problems = result.problems
    if len(got) != len(expected):
        problems.append(f"returned {len(got)} outputs, the reference returns {len(expected)}")
    for i, (g, o) in enumerate(zip(got, outs, strict=False)):
        if g.data_ptr() != o.data_ptr():
            problems.append(f"output {i} was not written into the `out` tensor it was given")
    for k, buf in input_bufs.items():
        if not _margins_intact(buf, inputs[k].numel(), "input"):
            problems.append(f"input {k!r}: memory outside the tensor was written (out-of-bounds store)")
        if not torch.equal(guarded_inputs[k].nan_to_num(), originals[k].nan_to_num()):
            problems.append(f"input {k!r} was modified by the kernel")
    for i, (buf, o) in enumerate(zip(out_bufs, outs, strict=True)):
        if not _margins_intact(buf, o.numel(), "output"):
            problems.append(
                f"output {i}: memory just outside the output was written (a store without its mask?)"
            )
    floors = torch_error_floor(spec, originals, expected)
    errs = [
        _compare(f"output {i}", o, e.to(o.device), tol, problems, bool(spec.error_scales_with_rms), f)
        for i, (o, e, f) in enumerate(zip(outs, expected, floors, strict=True))
    ]
    result.max_abs_err = max((m for m, _ in errs), default=0.0)
    result.mean_abs_err = max((m for _, m in errs), default=0.0)
    result.passed = not problems
    if not result.passed:
        problems.append(f"reproduce with seed={seed}")
    return result
