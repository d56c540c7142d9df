"""The correctness sweep behind `inferlab run` and `inferlab check`: every SPEC, shape, dtype."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

from inferlab.kernels.device import select_backend
from inferlab.kernels.spec import CheckResult, KernelSpec, check


@dataclass(frozen=True, slots=True)
class SweepRow:
    """One (kernel, dtype) line of the table: the shapes it ran and the worst result among them."""

    kernel: str
    dtype: str
    shapes: list[tuple[int, ...]]
    results: list[CheckResult]
    skipped: str | None = None  # why this dtype did not run here, if it did not

    @property
    def passed(self) -> bool:
        return self.skipped is None and all(r.passed for r in self.results)

    @property
    def max_abs_err(self) -> float:
        return max((r.max_abs_err for r in self.results), default=0.0)


def dtype_skip_reason(dtype: torch.dtype, device: str) -> str | None:
    """Why `dtype` cannot run on this device, or None if it can."""
    if device == "cuda" and dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        return "this GPU has no bf16 (sm_80+ needed; a T4 is sm_75)"
    return None


def sweep(
    specs: Iterable[KernelSpec],
    dtypes: Iterable[torch.dtype] | None = None,
    on_result: Callable[[CheckResult], None] | None = None,
) -> list[SweepRow]:
    """Check every spec at each of its test shapes and dtypes on the backend's device."""
    device = select_backend().device
    rows = []
    for spec in specs:
        for dtype in dtypes or spec.dtypes:
            name = str(dtype).removeprefix("torch.")
            shapes = [s.dims for s in spec.test_shapes]
            skip = dtype_skip_reason(dtype, device)
            if dtype not in spec.dtypes:
                skip = (
                    f"{spec.name} takes {', '.join(str(d).removeprefix('torch.') for d in spec.dtypes)} only"
                )
            if skip:
                rows.append(SweepRow(spec.name, name, shapes, [], skip))
                continue
            results = []
            for shape in spec.test_shapes:
                result = check(spec, shape, dtype, device)
                results.append(result)
                if on_result:
                    on_result(result)
            rows.append(SweepRow(spec.name, name, shapes, results))
    return rows


def _finite_or_none(x: float) -> float | None:
    return x if x == x and abs(x) != float("inf") else None  # JSON has no inf or NaN


def rows_to_json(rows: list[SweepRow]) -> list[dict]:
    return [
        {
            "kernel": r.kernel,
            "dtype": r.dtype,
            "passed": r.passed,
            "skipped": r.skipped,
            "checks": [
                {
                    "shape": list(c.dims),
                    "passed": c.passed,
                    "seed": c.seed,
                    "max_abs_err": _finite_or_none(c.max_abs_err),
                    "mean_abs_err": _finite_or_none(c.mean_abs_err),
                    "problems": c.problems,
                }
                for c in r.results
            ],
        }
        for r in rows
    ]
