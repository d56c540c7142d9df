"""Statistics of timing samples: summaries, bootstrap intervals, paired speedups, verdicts.

Pure numpy, so every rule here is unit-tested on synthetic samples without a GPU.

- A time is the median of its samples (robust to the long right tail that interrupts, clock
  changes and other tenants add), with p20/p80 for spread and a 95% bootstrap interval of the
  median (percentile method, seeded RNG: the same samples always give the same interval).
- Outliers (> p75 + 3 IQR) are counted and reported, never dropped: they are part of what a
  user of the kernel would see.
- A speedup is paired: providers run interleaved (A B A B ...) in rounds, so a slow stretch of
  the card hits both; the speedup is the median of per-round ratios, with a bootstrap interval.
- A verdict says "faster" or "slower" only where that interval excludes 1.0.
- Passes: a run measures each shape several times, minutes apart, with fresh allocations. A
  bootstrap interval only knows the noise inside one pass; the card's state and where the
  buffers landed move every provider together between passes (and between runs), so a time's
  interval is widened to the hull of the pooled interval and every pass's median, and the
  relative spread of the pass medians (`run_to_run`) is kept to widen `bench compare` too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np

CONFIDENCE = 0.95
NUM_RESAMPLES = 2000
TARGET_REL_HALF_WIDTH = 0.01  # stop sampling once the median is known to within 1%
SAME = "same (within noise)"


@dataclass(frozen=True, slots=True)
class Summary:
    """Location and spread of one set of samples (same unit as the samples)."""

    n: int
    median: float
    p20: float
    p80: float
    ci_low: float  # 95% bootstrap interval of the median
    ci_high: float
    outliers: int  # samples above p75 + 3 IQR, counted, kept
    pass_medians: tuple[float, ...] = ()  # one per pass (`summarize_passes`); empty from `summarize`
    run_to_run: float | None = None  # (max - min pass median) / median; None with under two passes

    @property
    def rel_half_width(self) -> float:
        """Half the interval's width over the median: 0.01 means "known to within 1%"."""
        if self.median == 0:
            return float("inf")
        return (self.ci_high - self.ci_low) / 2 / abs(self.median)

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Ratio:
    """A ratio with its interval and what it means: value > 1 means the candidate is faster."""

    value: float
    ci_low: float
    ci_high: float
    verdict: str  # "faster", "slower" or SAME
    n: int
    pass_values: tuple[float, ...] = ()  # the ratio within each pass (`paired_speedup_passes`)

    def to_json(self) -> dict:
        return asdict(self)


def _as_array(samples: Sequence[float]) -> np.ndarray:
    a = np.asarray(samples, dtype=np.float64)
    if a.ndim != 1 or a.size == 0:
        raise ValueError("need a non-empty 1-D sequence of samples")
    if not np.all(np.isfinite(a)):
        raise ValueError("samples must be finite numbers")
    return a


def bootstrap_median_ci(
    samples: Sequence[float], seed: int = 0, resamples: int = NUM_RESAMPLES, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """Percentile-bootstrap interval of the median."""
    a = _as_array(samples)
    if a.size == 1:
        return float(a[0]), float(a[0])
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, a.size, size=(resamples, a.size))
    medians = np.median(a[idx], axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(medians, [tail, 100 - tail])
    return float(low), float(high)


def count_outliers(samples: Sequence[float]) -> int:
    """Samples above p75 + 3 IQR. Only the slow side: noise on a GPU adds time, never removes it."""
    a = _as_array(samples)
    p25, p75 = np.percentile(a, [25, 75])
    return int(np.sum(a > p75 + 3 * (p75 - p25)))


def summarize(samples: Sequence[float], seed: int = 0) -> Summary:
    a = _as_array(samples)
    p20, median, p80 = np.percentile(a, [20, 50, 80])
    low, high = bootstrap_median_ci(a, seed)
    return Summary(int(a.size), float(median), float(p20), float(p80), low, high, count_outliers(a))


def verdict(ci_low: float, ci_high: float) -> str:
    """Faster or slower only when the whole interval is on one side of 1.0."""
    if ci_low > 1.0:
        return "faster"
    if ci_high < 1.0:
        return "slower"
    return SAME


def _round_ratios(baseline: Sequence[float], candidate: Sequence[float]) -> np.ndarray:
    b, c = _as_array(baseline), _as_array(candidate)
    if b.size != c.size:
        raise ValueError(f"paired samples need one per round each: {b.size} vs {c.size}")
    return b / c


def paired_speedup(
    baseline: Sequence[float], candidate: Sequence[float], seed: int = 0, resamples: int = NUM_RESAMPLES
) -> Ratio:
    """Speedup of `candidate` over `baseline` from interleaved rounds (sample i of each is round i).

    Ratio per round = baseline time / candidate time (> 1: candidate faster); the speedup is
    the median of those ratios, and its interval a bootstrap over rounds."""
    ratios = _round_ratios(baseline, candidate)
    low, high = bootstrap_median_ci(ratios, seed, resamples)
    return Ratio(float(np.median(ratios)), low, high, verdict(low, high), int(ratios.size))


def unpaired_ratio(
    before: Sequence[float], after: Sequence[float], seed: int = 0, resamples: int = NUM_RESAMPLES
) -> Ratio:
    """median(before) / median(after) for two runs that were not interleaved (e.g. two commits).

    Each side is resampled on its own; > 1 means `after` is faster."""
    a, b = _as_array(before), _as_array(after)
    rng = np.random.default_rng(seed)
    med_a = np.median(a[rng.integers(0, a.size, size=(resamples, a.size))], axis=1)
    med_b = np.median(b[rng.integers(0, b.size, size=(resamples, b.size))], axis=1)
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(med_a / med_b, [tail, 100 - tail])
    return Ratio(float(np.median(a) / np.median(b)), float(low), float(high), verdict(low, high), int(b.size))


# ---------------------------------------------------------------- passes
def split_passes(samples: Sequence[float], rounds_per_pass: Sequence[int]) -> list[list[float]]:
    """Pooled samples cut back into their passes (a row stores them concatenated, pass by pass)."""
    if sum(rounds_per_pass) != len(samples) or any(n < 1 for n in rounds_per_pass):
        raise ValueError(f"{len(samples)} samples do not split into passes of {list(rounds_per_pass)}")
    bounds = np.cumsum([0, *rounds_per_pass])
    return [list(samples[start:end]) for start, end in zip(bounds[:-1], bounds[1:], strict=True)]


def pass_spread(pass_medians: Sequence[float], median: float) -> float | None:
    """(max - min) of the pass medians over the pooled median: how far passes of one run moved
    apart. None with fewer than two passes: unknown, which is not the same as zero."""
    if len(pass_medians) < 2:
        return None
    return (max(pass_medians) - min(pass_medians)) / abs(median)


def _hull(low: float, high: float, values: Sequence[float]) -> tuple[float, float]:
    return min(low, *values), max(high, *values)


def summarize_passes(passes: Sequence[Sequence[float]], seed: int = 0) -> Summary:
    """`summarize` of the pooled samples, its interval widened to take in every pass's median."""
    pooled = summarize([x for p in passes for x in p], seed)
    medians = tuple(float(np.median(_as_array(p))) for p in passes)
    low, high = _hull(pooled.ci_low, pooled.ci_high, medians)
    spread = pass_spread(medians, pooled.median)
    return replace(pooled, ci_low=low, ci_high=high, pass_medians=medians, run_to_run=spread)


def paired_speedup_passes(
    baseline: Sequence[Sequence[float]], candidate: Sequence[Sequence[float]], seed: int = 0
) -> Ratio:
    """`paired_speedup` with rounds paired within each pass and pooled; the interval widened to
    take in each pass's own speedup (the median of its per-round ratios)."""
    if len(baseline) != len(candidate):
        raise ValueError(f"paired passes need the same number of passes: {len(baseline)} vs {len(candidate)}")
    values = tuple(float(np.median(_round_ratios(b, c))) for b, c in zip(baseline, candidate, strict=True))
    pooled = paired_speedup([x for p in baseline for x in p], [x for p in candidate for x in p], seed)
    low, high = _hull(pooled.ci_low, pooled.ci_high, values)
    return Ratio(pooled.value, low, high, verdict(low, high), pooled.n, values)


def widen(ratio: Ratio, spread: float) -> Ratio:
    """The interval stretched by a relative `spread` on each side, and the verdict taken again.

    For `bench compare`: each run's median can sit anywhere in its own pass-to-pass range, so
    the ratio of two medians can move by (1 + s_a)(1 + s_b), about 1 + s_a + s_b."""
    low, high = ratio.ci_low * max(0.0, 1 - spread), ratio.ci_high * (1 + spread)
    return replace(ratio, ci_low=low, ci_high=high, verdict=verdict(low, high))


@dataclass(frozen=True, slots=True)
class StopRule:
    """When to stop taking rounds: every provider's median known to `target`, or a cap is hit."""

    min_rounds: int = 10
    max_rounds: int = 500
    time_cap_s: float = 20.0
    target: float = TARGET_REL_HALF_WIDTH

    def done(self, samples: dict[str, list[float]], elapsed_s: float) -> str | None:
        """Why to stop now ("precise", "round cap", "time cap"), or None to keep going."""
        rounds = min((len(s) for s in samples.values()), default=0)
        if rounds >= self.max_rounds:
            return "round cap"
        if elapsed_s >= self.time_cap_s and rounds >= 2:
            return "time cap"
        if rounds < self.min_rounds:
            return None
        if all(summarize(s).rel_half_width <= self.target for s in samples.values()):
            return "precise"
        return None


def run_rounds(
    timers: dict[str, Callable[[], float]],
    rule: StopRule,
    clock: Callable[[], float] = time.perf_counter,
    check_every: int = 5,
) -> tuple[dict[str, list[float]], str]:
    """Call each timer once per round, in the same order every round (A B A B ...).

    A timer returns one sample. Returns (samples per name, why sampling stopped)."""
    samples: dict[str, list[float]] = {name: [] for name in timers}
    if not timers:
        return samples, "nothing to time"
    start = clock()
    rounds = 0
    while True:
        for name, timer in timers.items():
            samples[name].append(float(timer()))
        rounds += 1
        if rounds % check_every == 0 or rounds >= rule.max_rounds or rounds == rule.min_rounds:
            reason = rule.done(samples, clock() - start)
            if reason:
                return samples, reason
