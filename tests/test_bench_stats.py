"""Statistics on synthetic samples: known medians, interval coverage, paired ratios, verdicts."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from inferlab.bench.stats import (
    SAME,
    StopRule,
    bootstrap_median_ci,
    count_outliers,
    paired_speedup,
    run_rounds,
    summarize,
    unpaired_ratio,
    verdict,
)


def test_summary_of_known_samples():
    s = summarize(list(range(1, 102)))  # 1..101: median 51, p20 21, p80 81
    assert (s.n, s.median, s.p20, s.p80) == (101, 51.0, 21.0, 81.0)
    assert s.ci_low <= 51 <= s.ci_high
    assert s.outliers == 0


def test_bootstrap_interval_is_seeded_and_covers_the_true_median():
    rng = np.random.default_rng(1)
    covered = 0
    trials = 200
    for t in range(trials):
        samples = rng.normal(10.0, 1.0, size=60)  # true median 10
        low, high = bootstrap_median_ci(samples, seed=t, resamples=500)
        covered += low <= 10.0 <= high
    assert 0.88 <= covered / trials <= 1.0  # nominal 95%; the percentile bootstrap runs a bit low
    s = rng.normal(5, 1, size=50)
    assert bootstrap_median_ci(s, seed=3) == bootstrap_median_ci(s, seed=3)


def test_outliers_are_counted_not_dropped():
    samples = [10.0] * 40 + [10.5] * 40 + [100.0, 200.0]
    s = summarize(samples)
    assert s.outliers == 2 and s.n == 82
    assert count_outliers([1.0, 1.0, 1.0, 0.0]) == 0  # only the slow side counts


def test_single_sample_and_bad_input():
    assert bootstrap_median_ci([3.0]) == (3.0, 3.0)
    with pytest.raises(ValueError):
        summarize([])
    with pytest.raises(ValueError):
        summarize([1.0, float("nan")])


def test_paired_ratio_is_median_of_per_round_ratios():
    baseline = [10.0, 20.0, 30.0]
    candidate = [5.0, 10.0, 10.0]  # ratios 2, 2, 3 -> median 2
    r = paired_speedup(baseline, candidate)
    assert r.value == 2.0 and r.n == 3
    with pytest.raises(ValueError, match="one per round"):
        paired_speedup([1.0, 2.0], [1.0])


def test_pairing_cancels_a_drift_shared_by_both_providers():
    rng = np.random.default_rng(0)
    drift = np.linspace(1.0, 3.0, 100)  # the card slows down threefold during the run
    base = 10 * drift * rng.normal(1, 0.002, 100)
    cand = 9.5 * drift * rng.normal(1, 0.002, 100)
    r = paired_speedup(base, cand)
    assert r.verdict == "faster" and abs(r.value - 10 / 9.5) < 0.005
    assert unpaired_ratio(base, cand).verdict == SAME  # unpaired, the drift swamps 5%


@pytest.mark.parametrize(
    ("base_mu", "cand_mu", "expected"),
    [(10.0, 5.0, "faster"), (10.0, 20.0, "slower"), (10.0, 10.0, SAME)],
)
def test_verdicts_clearly_faster_slower_and_overlapping(base_mu, cand_mu, expected):
    rng = np.random.default_rng(42)
    base = rng.normal(base_mu, 0.5, 80)
    cand = rng.normal(cand_mu, 0.5, 80)
    assert paired_speedup(base, cand).verdict == expected
    assert unpaired_ratio(base, cand).verdict == expected


def test_verdict_needs_the_interval_to_exclude_one():
    assert verdict(1.01, 1.2) == "faster"
    assert verdict(0.8, 0.99) == "slower"
    assert verdict(0.99, 1.5) == SAME
    assert verdict(1.0, 1.0) == SAME


def test_rounds_interleave_and_stop_when_precise():
    order = []

    def timer(name, values):
        it = itertools.cycle(values)
        return lambda: order.append(name) or next(it)

    timers = {"a": timer("a", [10.0, 10.01]), "b": timer("b", [5.0, 5.01])}
    samples, why = run_rounds(timers, StopRule(min_rounds=10, max_rounds=100))
    assert why == "precise" and len(samples["a"]) == len(samples["b"]) == 10
    assert order[:4] == ["a", "b", "a", "b"]


def test_rounds_stop_at_the_caps_when_noise_stays_high():
    rng = np.random.default_rng(0)
    noisy = {"a": lambda: float(rng.lognormal(0, 1))}
    samples, why = run_rounds(noisy, StopRule(min_rounds=5, max_rounds=40))
    assert why == "round cap" and len(samples["a"]) == 40
    ticks = itertools.count()
    samples, why = run_rounds(noisy, StopRule(time_cap_s=3.0), clock=lambda: float(next(ticks)))
    assert why == "time cap" and 2 <= len(samples["a"]) < 40
