"""Benchmark and check results as table rows and plots for the site.

Bench runs (`kind: bench`, see `inferlab.bench.store`) and experiment runs (`kind: experiment`)
give one row per (kernel, shape, dtype, provider); check runs (`kind: check`, written by
`inferlab run`) one row per (kernel, dtype).
The JSON may come from an older or newer inferlab, so every field is read with a default: a
missing number shows as "-", never as a crash.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field

from inferlab.site.output import SiteWriter
from inferlab.site.results import ResultFile

OURS = "inferlab"
# kinds whose rows come from the bench harness (`inferlab.bench.runner`): experiments time with it too
TIMED_KINDS = ("bench", "experiment")


@dataclass(frozen=True, slots=True)
class Speedup:
    baseline: str
    value: float
    ci_low: float
    ci_high: float
    verdict: str

    @property
    def text(self) -> str:
        return f"{self.value:.2f}× [{self.ci_low:.2f}–{self.ci_high:.2f}]"


@dataclass(frozen=True, slots=True)
class BenchRow:
    kernel: str
    shape: str
    dtype: str
    provider: str
    status: str
    problem: str
    time: str  # "12.3 [12.1–12.6]" µs, median [p20–p80]
    rate: str
    ceiling: str  # % of the measured ceiling
    fraction: float | None
    speedups: tuple[Speedup, ...] = ()


@dataclass(frozen=True, slots=True)
class CheckRow:
    kernel: str
    dtype: str
    shapes: str
    result: str  # PASS, FAIL or SKIP
    max_error: str
    problems: tuple[str, ...] = field(default=())


def bench_rows(result: ResultFile) -> list[BenchRow]:
    rows = []
    for r in _rows(result):
        cold = r.get("cold_us") if isinstance(r.get("cold_us"), dict) else {}
        rate = r.get("rate") if isinstance(r.get("rate"), dict) else {}
        fraction = _number(rate.get("fraction_of_ceiling"))
        problems = r.get("problems") or []
        rows.append(
            BenchRow(
                kernel=str(r.get("kernel", "?")),
                shape=str(r.get("shape", "?")),
                dtype=str(r.get("dtype", "")),
                provider=str(r.get("provider", "?")),
                status=str(r.get("status", "?")),
                problem=str(problems[0]) if problems else "",
                time=_time_text(cold, str(r.get("method", ""))),
                rate=_rate_text(rate),
                ceiling="-" if fraction is None else f"{fraction:.0%}",
                fraction=fraction,
                speedups=tuple(speedups_of(r)),
            )
        )
    return rows


def speedups_of(row: dict) -> list[Speedup]:
    """Our row's paired speedups over each baseline (value > 1: ours is faster)."""
    found = []
    for name, s in (row.get("speedups") or {}).items():
        values = [_number(s.get(k)) for k in ("value", "ci_low", "ci_high")] if isinstance(s, dict) else []
        if len(values) == 3 and None not in values:
            found.append(Speedup(str(name), *values, verdict=str(s.get("verdict", ""))))
    return found


def check_rows(result: ResultFile) -> list[CheckRow]:
    rows = []
    for r in _rows(result):
        checks = [c for c in r.get("checks") or [] if isinstance(c, dict)]
        shapes = " ".join("x".join(str(d) for d in c.get("shape") or []) for c in checks)
        errors = [e for e in (_number(c.get("max_abs_err")) for c in checks) if e is not None]
        if r.get("skipped"):
            verdict = "SKIP"
        else:
            verdict = "PASS" if r.get("passed") else "FAIL"
        rows.append(
            CheckRow(
                kernel=str(r.get("kernel", "?")),
                dtype=str(r.get("dtype", "")),
                shapes=shapes,
                result=verdict,
                max_error=f"{max(errors):.2g}" if errors else "-",
                problems=_check_problems(r, checks),
            )
        )
    return rows


def _check_problems(row: dict, checks: list[dict]) -> tuple[str, ...]:
    if row.get("skipped"):
        return (str(row["skipped"]),)
    return tuple(str(p) for c in checks for p in c.get("problems") or [])


def environment_items(result: ResultFile) -> list[tuple[str, str]]:
    """The fingerprint lines a reader needs to judge a number: device, versions, revision."""
    env = result.environment
    items = [("device", result.device)]
    gpu = env.get("gpu") if isinstance(env.get("gpu"), dict) else {}
    if gpu.get("capability"):
        items.append(("compute capability", f"sm_{str(gpu['capability']).replace('.', '')}"))
    for key in ("backend", "torch", "triton", "cuda", "git_revision", "inferlab"):
        if env.get(key):
            items.append((key.replace("_", " "), str(env[key])))
    return items


def plot_run(result: ResultFile, writer: SiteWriter) -> list[str] | str:
    """One PNG per kernel (`inferlab.bench.report.plot_kernels`) as site paths, or why there are none.

    Plots are slow next to the rest of a build, so those of an unchanged JSON file (same digest)
    are copied from the previous build instead of being drawn again.
    """
    folder = f"benchmarks/plots/{result.slug}-{result.digest[:12]}"
    previous = writer.previous(folder)
    target = writer.folder(folder)
    if previous is not None and previous.is_dir():
        shutil.copytree(previous, target, dirs_exist_ok=True)
        paths = sorted(target.glob("*.png"))
    else:
        from inferlab.bench.report import plot_kernels  # matplotlib only when there is a run to plot

        try:
            drawn = plot_kernels(bench_rows_as_json(result), target)
        except (KeyError, TypeError, ValueError) as e:  # a row from another format version
            return f"no plots: a row of this run could not be drawn ({type(e).__name__}: {e})"
        if isinstance(drawn, str):
            return drawn
        paths = drawn
    return [writer.reserve(f"{folder}/{p.name}") for p in paths]


def bench_rows_as_json(result: ResultFile) -> list[dict]:
    """The rows `plot_kernels` can draw: those with the fields it reads."""
    needed = ("kernel", "shape", "provider", "status")
    return [
        r for r in _rows(result) if all(k in r for k in needed) and (r["status"] != "ok" or _plottable(r))
    ]


def _plottable(row: dict) -> bool:
    rate = row.get("rate")
    return isinstance(rate, dict) and "fraction_of_ceiling" in rate


def _rows(result: ResultFile) -> list[dict]:
    rows = result.payload.get("rows")
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []


def _time_text(cold: dict, method: str) -> str:
    median, p20, p80 = (_number(cold.get(k)) for k in ("median", "p20", "p80"))
    if median is None:
        return "-"
    text = f"{median:.2f}"
    if p20 is not None and p80 is not None:
        text += f" [{p20:.2f}–{p80:.2f}]"
    return text if method.startswith("cuda-graph") or not method else text + " (eager events)"


def _rate_text(rate: dict) -> str:
    value, unit = _number(rate.get("value")), rate.get("unit")
    if value is None:
        return "-"
    return f"{value:.0f} GB/s" if unit == "GB/s" else f"{value:.1f} {unit or ''}".strip()


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
