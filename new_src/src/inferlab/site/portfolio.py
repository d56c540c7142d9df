"""The portfolio: the best evidence, each claim with its results file and the command that redoes it.

Committed results (`benchmarks/results/`) come first; a lab result backs a claim only where no
committed run covers the same device and kernel, and is labelled as not committed. A bench claim
states, per baseline, the shape where ours did best (by the interval's lower end, so a lucky
median does not win) and how many shapes it was faster, the same or slower at, so a reader sees
the whole record, not only the high point.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from inferlab.site.benchmarks import OURS, check_rows, speedups_of
from inferlab.site.experiments import Experiment
from inferlab.site.results import ResultFile


@dataclass(frozen=True, slots=True)
class Claim:
    title: str
    lines: tuple[str, ...]  # the evidence, one sentence each
    result: ResultFile
    command: str  # reproduces the measurement
    plot: str | None = None  # site path of its plot, if any
    tags: tuple[str, ...] = field(default=())


def check_claims(results: list[ResultFile]) -> list[Claim]:
    """One claim per device: the newest check run, committed ones preferred."""
    claims, seen = [], set()
    for result in _committed_first(r for r in results if r.kind == "check"):
        if result.device in seen:
            continue
        seen.add(result.device)
        rows = check_rows(result)
        passed = [r for r in rows if r.result == "PASS"]
        failed = [r for r in rows if r.result == "FAIL"]
        if not rows:
            continue
        kernels = ", ".join(dict.fromkeys(r.kernel for r in passed)) or "no kernel"
        dtypes = ", ".join(dict.fromkeys(r.dtype for r in passed))
        lines = [
            f"{len(passed)} of {len(rows)} (kernel, dtype) pairs match their PyTorch references: "
            f"{kernels} in {dtypes or 'no dtype'}.",
            f"{sum(len(r.shapes.split()) for r in rows)} shape checks in all, each against the "
            f"reference with the dtype's tolerance; backend: {result.environment.get('backend', 'unknown')}.",
        ]
        if failed:
            lines.append("Failed: " + ", ".join(f"{r.kernel} {r.dtype}" for r in failed) + ".")
        claims.append(
            Claim(
                title=f"Correct on {result.device}",
                lines=tuple(lines),
                result=result,
                command="inferlab run",
                tags=("check", result.source),
            )
        )
    return claims


def bench_claims(results: list[ResultFile], plots: dict[str, list[str]]) -> list[Claim]:
    """One claim per (device, kernel), from the run that measured it at the most shapes
    (committed runs first, then the newest): a later run of decode shapes alone must not hide
    the sweep that includes the large ones."""
    best: dict[tuple[str, str], tuple[tuple[int, int], ResultFile, list[dict]]] = {}
    ordered = _committed_first(r for r in results if r.kind == "bench")
    for rank, result in enumerate(ordered):
        rows = [r for r in result.payload.get("rows") or [] if isinstance(r, dict)]
        for kernel in dict.fromkeys(str(r.get("kernel")) for r in rows):
            ours = [
                r
                for r in rows
                if r.get("kernel") == kernel
                and r.get("provider") == OURS
                and not str(r.get("shape")).startswith("self-test")  # the harness's own checks
            ]
            shapes = len({str(r.get("shape")) for r in ours})
            score = (shapes, -rank)  # more shapes first; among equals, the earlier in `ordered`
            key = (result.device, kernel)
            if ours and (key not in best or score > best[key][0]):
                best[key] = (score, result, ours)
    claims = []
    for (_, kernel), (_, result, ours) in best.items():
        claim = _bench_claim(result, kernel, ours, plots.get(result.slug, []))
        if claim is not None:
            claims.append(claim)
    return claims


def _bench_claim(result: ResultFile, kernel: str, ours: list[dict], plots: list[str]) -> Claim | None:
    by_baseline: dict[str, list[tuple[dict, object]]] = {}
    for row in ours:
        for s in speedups_of(row):
            by_baseline.setdefault(s.baseline, []).append((row, s))
    if not by_baseline:
        return None
    lines, best_shape = [], None
    for baseline, pairs in by_baseline.items():
        row, best = max(pairs, key=lambda p: p[1].ci_low)
        counts = {v: sum(1 for _, s in pairs if s.verdict == v) for v in ("faster", "slower")}
        same = len(pairs) - counts["faster"] - counts["slower"]
        word = "faster than" if best.verdict == "faster" else f"{best.verdict} against"
        lines.append(
            f"{best.text} {word} {baseline} at {row.get('shape')} ({row.get('dtype')}); over "
            f"{len(pairs)} shapes: {counts['faster']} faster, {same} same, {counts['slower']} slower."
        )
        if best_shape is None:
            best_shape = str(row.get("shape"))
    fractions = [(r.get("rate") or {}).get("fraction_of_ceiling") for r in ours if r.get("status") == "ok"]
    fractions = [f for f in fractions if isinstance(f, int | float)]
    if fractions:
        lines.append(f"Up to {max(fractions):.0%} of the measured ceiling of this card.")
    plot = next((p for p in plots if p.endswith(f"/{kernel}.png")), None)
    return Claim(
        title=f"{kernel} on {result.device}",
        lines=tuple(lines),
        result=result,
        command=f"inferlab bench {kernel} -s {best_shape}",
        plot=plot,
        tags=("bench", result.source),
    )


def concluded(experiments: list[Experiment]) -> list[Experiment]:
    """Experiments that reached a conclusion: the ones worth showing."""
    return [e for e in experiments if e.conclusion]


def _committed_first(results) -> list[ResultFile]:
    """Committed before lab, each group newest first (`results` arrive newest first)."""
    results = list(results)
    return [r for r in results if r.committed] + [r for r in results if not r.committed]
