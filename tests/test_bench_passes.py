"""Passes: one run measures every shape more than once, minutes apart, with fresh allocations,
and its intervals (and `bench compare`'s) are widened to what moved between passes. Synthetic
samples and a CPU stand-in for the GPU timer; no GPU needed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from rich.console import Console

from inferlab.bench import runner, store, timing
from inferlab.bench.providers import Provider
from inferlab.bench.report import bench_table, compare_table
from inferlab.bench.runner import Measured, finish_rows
from inferlab.bench.stats import (
    SAME,
    Ratio,
    StopRule,
    paired_speedup,
    paired_speedup_passes,
    pass_spread,
    split_passes,
    summarize,
    summarize_passes,
    unpaired_ratio,
    widen,
)
from inferlab.kernels import get_spec
from inferlab.kernels.spec import BenchShape

ADD = get_spec("add")
SHAPE = BenchShape((1 << 28,), "synthetic", "256M elements")
RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def _normal(mu: float, n: int = 40, seed: int = 0, sd: float = 0.001) -> list[float]:
    return list(np.random.default_rng(seed).normal(mu, mu * sd, n))


# ---------------------------------------------------------------- the statistics
def test_split_passes_and_pass_spread():
    assert split_passes([1.0, 2.0, 3.0, 4.0, 5.0], [2, 3]) == [[1.0, 2.0], [3.0, 4.0, 5.0]]
    with pytest.raises(ValueError, match="do not split"):
        split_passes([1.0, 2.0, 3.0], [2, 2])
    assert pass_spread([100.0, 102.0, 101.0], 101.0) == pytest.approx(2 / 101)
    assert pass_spread([100.0], 100.0) is None  # unknown, not zero


def test_interval_is_the_hull_of_the_pooled_interval_and_every_pass_median():
    first, second = _normal(100.0, seed=1), _normal(102.0, seed=2)  # the card moved 2% between passes
    s = summarize_passes([first, second])
    pooled = summarize(first + second)
    assert (s.median, s.n) == (pooled.median, 80)
    assert s.pass_medians == (float(np.median(first)), float(np.median(second)))
    assert s.ci_low == min(pooled.ci_low, *s.pass_medians)
    assert s.ci_high == max(pooled.ci_high, *s.pass_medians)
    assert s.ci_low <= np.median(first) and s.ci_high >= np.median(second)
    assert s.run_to_run == pytest.approx((np.median(second) - np.median(first)) / pooled.median)
    # one pass: the plain bootstrap interval, and no spread to show
    one = summarize_passes([first])
    assert (one.ci_low, one.ci_high) == (summarize(first).ci_low, summarize(first).ci_high)
    assert one.run_to_run is None and len(one.pass_medians) == 1


def test_a_pass_that_disagrees_turns_a_pooled_faster_into_same():
    # 60 rounds at 1.03x, then a second pass of 20 rounds at 0.99x (placement hit ours this time)
    base = [[10.3] * 60, [9.9] * 20]
    cand = [[10.0] * 60, [10.0] * 20]
    pooled = paired_speedup(base[0] + base[1], cand[0] + cand[1])
    assert pooled.verdict == "faster"  # the pooled bootstrap alone never sees the second pass
    r = paired_speedup_passes(base, cand)
    assert r.pass_values == pytest.approx((1.03, 0.99))
    assert r.value == pooled.value and r.ci_low == pytest.approx(0.99) and r.verdict == SAME
    agree = paired_speedup_passes([_normal(11.0, seed=3), _normal(11.1, seed=4)], [_normal(10.0, seed=5)] * 2)
    assert agree.verdict == "faster" and agree.ci_low <= min(agree.pass_values)
    with pytest.raises(ValueError, match="one per round"):
        paired_speedup_passes([[1.0, 2.0]], [[1.0]])


def test_widen_stretches_both_sides_and_takes_the_verdict_again():
    r = widen(Ratio(1.01, 1.005, 1.015, "faster", 40), 0.006 + 0.006)
    assert r.ci_low == pytest.approx(1.005 * 0.988) and r.ci_high == pytest.approx(1.015 * 1.012)
    assert r.verdict == SAME and r.value == 1.01
    assert widen(Ratio(1.10, 1.09, 1.11, "faster", 40), 0.02).verdict == "faster"
    assert widen(Ratio(0.5, 0.4, 0.6, "slower", 9), 2.0).ci_low == 0.0  # never below zero


# ---------------------------------------------------------------- rows and compare
def _measured(name: str, pass_medians: list[float], seed: int = 0, n: int = 40) -> Measured:
    samples = [x for i, mu in enumerate(pass_medians) for x in _normal(mu, n, seed + i)]
    return Measured(
        name, "ok", [], "cuda-graph", 0.1, samples, samples, [pass_medians[0] * 1.1],
        pass_rounds=[n] * len(pass_medians),
    )  # fmt: skip


def _payload(pass_medians: list[float], seed: int) -> dict:
    env = {"gpu": {"name": "NVIDIA H200", "capability": "9.0", "sm_count": 132, "memory_bytes": 1}}
    rows = finish_rows(ADD, SHAPE, torch.bfloat16, [_measured("inferlab", pass_medians, seed)], None)
    return store.build_payload(rows, env, None, None, None, {})


def test_rows_keep_each_pass_and_widen_times_and_speedups():
    measured = [_measured("inferlab", [1000.0, 1006.0], 1), _measured("torch", [2000.0, 2004.0], 3)]
    rows = finish_rows(ADD, SHAPE, torch.bfloat16, measured, None)
    ours = json.loads(json.dumps(rows[0]))  # as stored
    assert ours["pass_rounds"] == [40, 40] and len(ours["samples"]["cold_us"]) == 80  # pooled, as before
    cold = ours["cold_us"]
    assert cold["pass_medians"] == pytest.approx([1000.0, 1006.0], rel=1e-3)
    assert cold["run_to_run"] == pytest.approx(0.006, rel=0.1)
    assert cold["ci_low"] <= cold["pass_medians"][0] and cold["ci_high"] >= cold["pass_medians"][1]
    speedup = ours["speedups"]["torch"]
    assert speedup["verdict"] == "faster" and len(speedup["pass_values"]) == 2
    low, high = min(speedup["pass_values"]), max(speedup["pass_values"])
    assert speedup["ci_low"] <= low <= high <= speedup["ci_high"]
    console = Console(width=160, record=True)
    console.print(bench_table(rows))
    assert f"run-to-run {cold['run_to_run']:.2%}" in console.export_text()


def test_compare_a_drift_both_runs_spreads_cover_is_same():
    # Runs 1% apart, each with ~0.5% between its own passes: the card, not the code.
    a, b = _payload([1000.0, 1005.0], 1), _payload([1010.0, 1015.0], 5)
    sa, sb = a["rows"][0]["samples"]["cold_us"], b["rows"][0]["samples"]["cold_us"]
    assert unpaired_ratio(sa, sb).verdict == "slower"  # resampling alone calls the drift a change
    (entry,) = store.compare_runs(a, b).rows
    assert entry["spread_a"] == pytest.approx(0.005, abs=0.001)
    assert entry["spread_b"] == pytest.approx(0.005, abs=0.001)
    assert entry["ratio"]["value"] == pytest.approx(0.99, abs=0.003)
    assert entry["ratio"]["verdict"] == SAME


@pytest.mark.parametrize(("b_medians", "expected"), [([900, 904.5], "faster"), ([1100, 1105], "slower")])
def test_compare_a_10_percent_change_still_shows(b_medians, expected):
    (entry,) = store.compare_runs(_payload([1000.0, 1005.0], 1), _payload(b_medians, 5)).rows
    assert entry["ratio"]["verdict"] == expected


def _as_saved_before_passes(payload: dict) -> dict:
    old = json.loads(json.dumps(payload))
    for row in old["rows"]:
        del row["pass_rounds"]
        for key in ("cold_us", "warm_us"):
            del row[key]["pass_medians"], row[key]["run_to_run"]
        for ratio in row.get("speedups", {}).values():
            del ratio["pass_values"]
    return old


def test_compare_still_reads_runs_without_pass_data():
    old, new = _as_saved_before_passes(_payload([1000.0], 1)), _payload([1010.0, 1015.0], 5)
    cmp = store.compare_runs(old, new)
    (entry,) = cmp.rows
    assert entry["spread_a"] is None and entry["spread_b"] == pytest.approx(0.005, abs=0.001)
    plain = unpaired_ratio(old["rows"][0]["samples"]["cold_us"], new["rows"][0]["samples"]["cold_us"])
    assert entry["ratio"]["ci_high"] == pytest.approx(plain.ci_high * (1 + entry["spread_b"]))  # B's only
    assert any(line.startswith("A has no repeat data") for line in cmp.header)
    assert not any(line.startswith("B has") for line in cmp.header)
    console = Console(width=160, record=True)
    console.print(compare_table(cmp))
    text = console.export_text()
    assert "no repeat data" in text and f"none / {entry['spread_b']:.2%}" in text
    console.print(bench_table(old["rows"]))  # an old row renders without a run-to-run line


def test_the_committed_runs_from_before_passes_still_compare():
    a = store.load_run(RESULTS / "20261126T214305Z-bench.json")
    b = store.load_run(RESULTS / "20261126T214639Z-bench.json")
    cmp = store.compare_runs(a, b)
    timed = [e for e in cmp.rows if e["ratio"] is not None]
    assert timed and all(e["spread_a"] is None and e["spread_b"] is None for e in timed)
    key = ("swiglu", "llama-3-8b:64x14336", "bfloat16", "inferlab")
    swiglu_64 = next(e for e in timed if e["key"] == key)
    assert f"{swiglu_64['ratio']['value']:.3f}" == "0.955"  # as committed: no spread to widen by


# ---------------------------------------------------------------- the schedule (a CPU stand-in GPU)
class _FakeTimer:
    """Stands in for `timing.ProviderTimer`: its last call is a real call on the last input set
    (as the captured cold graph's is), and its samples drift 1% per pass."""

    def __init__(self, log, provider, input_sets, outs, plan, calls, flush):
        self.dims = tuple(input_sets[0]["x"].shape)
        self.pass_index = sum(t.provider.name == provider.name and t.dims == self.dims for t in log)
        self.provider, self.input_sets, self.outs, self.calls = provider, input_sets, outs, calls
        self.method = "cuda-graph"
        self.last_set = (calls - 1) % plan.num_sets
        self.last_out = provider.fn(input_sets[self.last_set], outs[self.last_set])
        log.append(self)

    def cold_us(self) -> float:
        return {"inferlab": 10.0, "torch": 20.0}.get(self.provider.name, 15.0) * (1 + 0.01 * self.pass_index)

    def warm_us(self) -> float:
        return self.cold_us() * 0.9

    def eager_us(self) -> float:
        return self.cold_us() * 1.2


@pytest.fixture
def fake_gpu(monkeypatch):
    """Everything of `measure_shape` that needs CUDA, on the CPU; returns (timers, gated)."""
    timers, gated = [], []
    monkeypatch.setattr(timing, "l2_bytes", lambda: 4096)  # (1000,) fp32 sets: rotate 2 of them
    monkeypatch.setattr(timing, "event_ms", lambda fn: (fn(), 0.001)[1])
    monkeypatch.setattr(timing, "ProviderTimer", lambda *args: _FakeTimer(timers, *args))
    monkeypatch.setattr(torch.cuda, "synchronize", lambda: None)

    def cpu_inputs(spec, dims, dtype, count, seed):
        gen = torch.Generator().manual_seed(seed)
        return [spec.make_inputs(dims, dtype, torch.device("cpu"), gen) for _ in range(count)]

    def gate(p, sets, *args):
        gated.append((p.name, tuple(sets[0]["x"].shape)))
        return real_gate(p, sets, *args)

    real_gate = runner.gate
    monkeypatch.setattr(runner, "_inputs", cpu_inputs)
    monkeypatch.setattr(runner, "gate", gate)
    return timers, gated


def _add(name: str, broken: dict | None = None) -> Provider:
    def fn(inputs, out):
        got = torch.add(inputs["x"], inputs["y"], out=out)
        return got.neg_() if broken and broken["now"] else got

    return Provider(name, fn, writes_out=True)


SHAPES = [BenchShape((1000,), "test", "first"), BenchShape((1536,), "test", "second")]
RULE = StopRule(min_rounds=3, max_rounds=10)


def test_passes_go_over_the_whole_shape_list_then_again(fake_gpu):
    timers, gated = fake_gpu
    seen = []
    rows = runner.run_kernel(
        ADD, SHAPES, [_add("inferlab"), _add("torch")], None, RULE, torch.float32,
        on_shape=lambda spec, s: seen.append(s.dims),
    )  # fmt: skip
    first, second = (1000,), (1536,)
    assert seen == [first, second, first, second]  # pass 2 of the first shape after the last shape's pass 1
    assert [t.dims for t in timers] == [first, first, second, second] * 2
    assert [t.pass_index for t in timers] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert gated == [("inferlab", first), ("torch", first), ("inferlab", second), ("torch", second)]
    # each pass its own timers, input sets and outputs
    for early, late in zip(timers[:4], timers[4:], strict=True):
        assert early is not late and early.input_sets[0]["x"] is not late.input_sets[0]["x"]
        assert early.outs[0] is not late.outs[0]
    ours = rows[0]
    assert ours["pass_rounds"] == [3, 3] and ours["stop_reason"] == ["precise", "precise"]
    assert ours["cold_us"]["pass_medians"] == pytest.approx([10.0, 10.1])
    assert ours["cold_us"]["run_to_run"] == pytest.approx(0.1 / 10.05)
    assert ours["speedups"]["torch"]["pass_values"] == pytest.approx([2.0, 2.0])
    assert len(ours["samples"]["eager_us"]) == 2 * runner.EAGER_REPEATS


def test_one_pass_when_asked(fake_gpu):
    timers, gated = fake_gpu
    rows = runner.run_kernel(ADD, SHAPES[:1], [_add("inferlab")], None, RULE, torch.float32, passes=1)
    assert len(timers) == 1 and rows[0]["pass_rounds"] == [3] and rows[0]["cold_us"]["run_to_run"] is None
    with pytest.raises(ValueError, match="at least 1"):
        runner.run_kernel(ADD, SHAPES, [_add("inferlab")], None, RULE, torch.float32, passes=0)


def test_the_timed_output_is_checked_again_in_every_pass(fake_gpu):
    timers, gated = fake_gpu
    broken = {"now": False}
    calls = []

    def on_shape(spec, shape):  # wrong from pass 2 on, after it passed the gate and pass 1
        calls.append(shape)
        broken["now"] = len(calls) > len(SHAPES)

    providers = [_add("inferlab"), _add("flaky", broken)]
    rows = runner.run_kernel(ADD, SHAPES, providers, None, RULE, torch.float32, on_shape=on_shape)
    flaky = [r for r in rows if r["provider"] == "flaky"]
    assert [r["status"] for r in flaky] == ["INCORRECT", "INCORRECT"]
    assert all(r["problems"][0].startswith("after timing (pass 2)") for r in flaky)
    assert ("flaky", (1000,)) in gated and len(gated) == 4  # gated once, in pass 1, and passed
    ours = [r for r in rows if r["provider"] == "inferlab"]
    assert all(r["status"] == "ok" and r["speedups"] == {} for r in ours)
