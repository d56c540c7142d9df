"""Correctness gates timing: a provider is timed only after it computed the right answer on
the very inputs it is about to be timed on, and its timed outputs are checked again after.

Before timing (`gate`): the provider runs on two or more input sets in a row, each against
its own reference, with `out` poisoned (NaN) first. Two sets in a row catch a provider that
returns the previous call's output; the poison catches elements it never wrote.

The comparison runs on the current stream with no device-wide synchronize between the call
and the check: a provider that computes on a side stream without making the current stream
wait for it is compared before its work lands, and fails, as it would fail its caller.

After timing (`check_output`): the output of the last timed call is compared with the
reference of the input set that call was given.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from inferlab.bench.providers import Provider
from inferlab.kernels.spec import TOLERANCES, Inputs, outside_tolerance

MAX_REPORTED = 3


def check_output(name: str, got: torch.Tensor, want: torch.Tensor, floor: float = 0.0) -> str | None:
    """None if `got` matches `want` within the dtype's tolerance, else one sentence why not."""
    if not isinstance(got, torch.Tensor):
        return f"{name}: returned {type(got).__name__}, not a tensor"
    if tuple(got.shape) != tuple(want.shape) or got.dtype != want.dtype:
        return f"{name}: {tuple(got.shape)} {got.dtype}, the reference is {tuple(want.shape)} {want.dtype}"
    tol = TOLERANCES[want.dtype]
    # fp32 on the same device and stream as the provider's work: nothing here waits for
    # other streams (see the module docstring).
    g, w = got.float(), want.to(got.device).float()
    unwritten = torch.isnan(g) & ~torch.isnan(w)
    # Baselines are judged with the rms term for every op: one computed in the low dtype
    # (Hugging Face's bf16 rope: q*cos + rotate(q)*sin) makes rounding errors the size of its
    # terms; `check` holds our own kernels to the per-element table unless their SPEC says why.
    bad = outside_tolerance(g, w, tol, with_rms=True, floor=floor)
    n_unwritten, n_bad = int(unwritten.sum()), int(bad.sum())  # the first host sync
    if n_unwritten:
        first = unwritten.flatten().nonzero()[:MAX_REPORTED].flatten().tolist()
        return f"{name}: {n_unwritten} of {g.numel()} elements never written (NaN); flat indices {first}"
    if n_bad:
        first = bad.flatten().nonzero()[:MAX_REPORTED].flatten().tolist()
        i = first[0]
        return (
            f"{name}: {n_bad} of {g.numel()} elements outside atol={tol.atol:g} + "
            f"rtol={tol.rtol:g} x (|ref| + rms(ref)){f' + 2x torch own error {floor:.3g}' if floor else ''}; "
            f"flat index {i}: got {float(g.flatten()[i]):.6g}, want {float(w.flatten()[i]):.6g}"
        )
    return None


def as_tuple(x) -> tuple:
    """Outputs as a tuple: some kernels return one tensor, some several (rope: q and k)."""
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def out_arg(outs: tuple[torch.Tensor, ...]):
    """What a launcher's `out=` takes: the tensor itself, or the tuple when there are several."""
    return outs[0] if len(outs) == 1 else outs


def check_outputs(
    name: str, got, want: tuple[torch.Tensor, ...], floors: Sequence[float] | None = None
) -> str | None:
    """`check_output` for every output (each with its error floor, see `torch_error_floor`);
    the first problem, or None."""
    got = as_tuple(got)
    if len(got) != len(want):
        return f"{name}: returned {len(got)} outputs, the reference returns {len(want)}"
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        floor = floors[i] if floors else 0.0
        problem = check_output(name if len(want) == 1 else f"{name}, output {i}", g, w, floor)
        if problem:
            return problem
    return None


def gate(
    provider: Provider,
    input_sets: Sequence[Inputs],
    expected: Sequence[tuple[torch.Tensor, ...]],
    outs: Sequence[tuple[torch.Tensor, ...]] | None = None,
    floors: Sequence[Sequence[float]] | None = None,
) -> list[str]:
    """Run `provider` on each input set in order; the problems found (empty: correct).

    `expected[i]` is the reference's outputs for set i as a tuple; `outs[i]` the preallocated
    outputs for set i (made here if not given)."""
    if len(input_sets) < 2:
        raise ValueError("the gate needs at least two input sets (one catches no stale output)")
    problems = []
    for i, (inputs, want) in enumerate(zip(input_sets, expected, strict=True)):
        out = outs[i] if outs is not None else tuple(torch.empty_like(w) for w in want)
        for o in out:
            o.fill_(float("nan"))  # poison: an element never written stays NaN
        try:
            got = provider.fn(inputs, out_arg(out))
        except Exception as e:  # a baseline that raises is INCORRECT here, not a crashed run
            problems.append(f"input set {i}: raised {type(e).__name__}: {e}")
            break
        problem = check_outputs(f"input set {i}", got, want, floors[i] if floors else None)
        if problem:
            problems.append(problem)
    return problems
