"""From samples to rows (rates, % of ceiling, IMPOSSIBLE, paired speedups), the cold-L2 plan,
the self-test verdict, and comparing stored runs. No GPU needed."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from rich.console import Console

from inferlab.bench import ceilings, store
from inferlab.bench.ceilings import datasheet_for, parse_nvidia_smi
from inferlab.bench.report import bench_table, compare_table, plot_kernels
from inferlab.bench.runner import Measured, finish_rows, matches, self_test_failures, shape_label
from inferlab.bench.timing import MAX_ROTATING_SETS, calls_per_replay, plan_cold
from inferlab.errors import InferlabError
from inferlab.kernels import get_spec
from inferlab.kernels.spec import BenchShape

ADD = get_spec("add")
SHAPE = BenchShape((1 << 28,), "synthetic", "256M elements")  # bf16: 1.5 GiB moved per call
BYTES = 3 * (1 << 28) * 2
CEILINGS = {"copy_gbps": 3000.0, "matmul_tflops": {"bfloat16": 700.0}, "device": {"name": "H100"}}


def _samples(mu, n=60, seed=0, sd=0.002):
    return list(np.random.default_rng(seed).normal(mu, mu * sd, n))


def _ok(name, mu, seed=0):
    return Measured(
        name, "ok", [], "cuda-graph", 0.1, _samples(mu, seed=seed), _samples(mu * 0.9), [mu * 1.2]
    )


def test_rows_have_rates_fractions_and_paired_speedups():
    t_ours = BYTES / 2500e9 * 1e6  # µs at 2500 GB/s: 83% of a 3000 GB/s ceiling
    measured = [
        _ok("inferlab", t_ours, 1),
        _ok("torch", 2 * t_ours, 2),
        Measured("liger", "unavailable", ["x"]),
    ]
    rows = finish_rows(ADD, SHAPE, torch.bfloat16, measured, CEILINGS)
    ours = rows[0]
    assert ours["status"] == "ok" and ours["rate"]["unit"] == "GB/s"
    assert ours["rate"]["value"] == pytest.approx(2500, rel=0.01)
    assert ours["rate"]["fraction_of_ceiling"] == pytest.approx(2500 / 3000, rel=0.01)
    assert ours["speedups"]["torch"]["verdict"] == "faster"
    assert ours["speedups"]["torch"]["value"] == pytest.approx(2.0, rel=0.01)
    assert ours["launch_overhead_us"] == pytest.approx(1.2 * t_ours - 0.9 * t_ours, rel=0.05)
    assert rows[2]["status"] == "unavailable" and "speedups" not in rows[1]
    json.dumps(rows)  # a row is stored as it is
    console = Console(width=160, record=True)
    console.print(bench_table(rows))
    assert "vs torch: 2.000x" in console.export_text() or "vs torch: 1.99" in console.export_text()


def test_over_105_percent_of_the_ceiling_is_impossible_and_excluded():
    too_fast = BYTES / 3300e9 * 1e6  # 110% of the ceiling
    honest = BYTES / 2500e9 * 1e6
    rows = finish_rows(
        ADD, SHAPE, torch.bfloat16, [_ok("inferlab", honest), _ok("cheat", too_fast)], CEILINGS
    )
    cheat = rows[1]
    assert cheat["status"] == "IMPOSSIBLE" and "110%" in cheat["problems"][0]
    assert rows[0]["status"] == "ok" and rows[0]["speedups"] == {}


def test_incorrect_providers_get_no_time():
    rows = finish_rows(ADD, SHAPE, torch.bfloat16, [Measured("inferlab", "INCORRECT", ["wrong"])], CEILINGS)
    assert "cold_us" not in rows[0] and rows[0]["status"] == "INCORRECT"
    bench_table(rows)  # renders a status line, not a crash


def test_cold_plan_rotates_when_few_sets_exceed_3x_l2_else_flushes():
    l2 = 50 << 20
    big = plan_cold(1 << 30, l2)
    assert (big.method, big.num_sets) == ("rotate", 2)  # at least two: a stale output must show
    mid = plan_cold(5 << 20, l2)
    assert mid.method == "rotate" and mid.num_sets * (5 << 20) >= 3 * l2
    tiny = plan_cold(1024, l2)
    assert tiny.method == "flush" and tiny.flush_bytes >= 2 * l2 and 3 * l2 / 1024 > MAX_ROTATING_SETS


def test_calls_per_replay_is_a_whole_number_of_passes():
    for est_us, sets in [(0.5, 2), (3.0, 1750), (200.0, 2), (5.0, 7)]:
        calls = calls_per_replay(est_us, sets)
        assert calls % sets == 0 and calls >= sets
        assert (calls - 1) % sets == sets - 1  # the last timed call uses the last set


def test_shape_labels_and_matching():
    s = BenchShape((8192, 14336), "llama-3-8b", "mlp")
    assert shape_label(s) == "llama-3-8b:8192x14336"
    assert matches(s, "8192x14336") and matches(s, "llama-3-8b") and not matches(s, "64x14336")


def test_self_test_verdict():
    def row(provider, status, dims):
        return {"provider": provider, "status": status, "dims": list(dims), "shape": str(dims)}

    good = [
        row("bad:stale-output", "INCORRECT", (1000,)),
        row("bad:wrong-non-pow2", "ok", (1024,)),  # right at a power of two: may be timed
        row("bad:side-stream", "unavailable", (1000,)),
        row("inferlab", "ok", (1000,)),
    ]
    assert self_test_failures(good) == []
    bad = [row("bad:partial-write", "ok", (1000,)), row("bad:wrong-non-pow2", "ok", (1000,))]
    assert len(self_test_failures(bad)) == 2


def _run(gpu_name, mu, seed):
    env = {"gpu": {"name": gpu_name, "capability": "9.0", "sm_count": 132, "memory_bytes": 80 << 30}}
    rows = finish_rows(ADD, SHAPE, torch.bfloat16, [_ok("inferlab", mu, seed)], CEILINGS)
    return store.build_payload(rows, env, CEILINGS, None, None, {})


def test_compare_reports_changes_with_intervals():
    cmp = store.compare_runs(_run("H100", 1000.0, 1), _run("H100", 800.0, 2))
    (entry,) = cmp.rows
    assert entry["ratio"]["verdict"] == "faster" and entry["ratio"]["value"] == pytest.approx(1.25, rel=0.01)
    compare_table(cmp)


def test_compare_refuses_different_devices_unless_allowed():
    a, b = _run("NVIDIA H100 80GB HBM3", 1000.0, 1), _run("NVIDIA H200", 1000.0, 2)
    with pytest.raises(InferlabError, match="different devices"):
        store.compare_runs(a, b)
    cmp = store.compare_runs(a, b, allow_different_devices=True)
    assert any("different devices" in line for line in cmp.header)


def test_runs_are_saved_in_the_lab_and_a_folder_and_found_by_name(tmp_path):
    from inferlab.lab import Lab

    lab = Lab.open(None)
    paths = store.save_run(lab, _run("H100", 10.0, 0), tmp_path / "results")
    assert paths[1].read_text() == paths[0].read_text()
    assert store.resolve_run(paths[0].stem, lab) == paths[0]
    assert store.load_run(paths[1])["rows"][0]["samples"]["cold_us"]  # raw samples kept
    with pytest.raises(InferlabError, match="no benchmark run"):
        store.resolve_run("nope", lab)


def test_plots_or_a_clear_sentence(tmp_path):
    rows = finish_rows(ADD, SHAPE, torch.bfloat16, [_ok("inferlab", 700.0), _ok("torch", 900.0)], CEILINGS)
    result = plot_kernels(rows, tmp_path)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert result == "matplotlib not installed: no plots"
    else:
        assert [p.name for p in result] == ["add.png"]


def test_datasheet_and_nvidia_smi_parsing():
    assert datasheet_for("NVIDIA H100 80GB HBM3")["copy_gbps"] == 3350
    assert datasheet_for("NVIDIA H200")["matmul_tflops"] == 989
    assert datasheet_for("Tesla T4")["label"] == "datasheet (T4)"
    assert datasheet_for("NVIDIA A100-SXM4-80GB") is None
    state = parse_nvidia_smi("1980 MHz, 2619 MHz, 312.45 W, 0x0000000000000000\n")
    assert state == {
        "sm_clock": "1980 MHz",
        "mem_clock": "2619 MHz",
        "power_draw": "312.45 W",
        "throttle_reasons": "0x0000000000000000",
    }


def test_ceilings_are_cached_per_device_in_the_lab(monkeypatch):
    from inferlab.lab import Lab

    lab = Lab.open(None)
    env = {
        "gpu": {"name": "NVIDIA H200", "sm_count": 132, "memory_bytes": 1, "driver": "580"},
        "torch": "2.11",
    }
    fresh = {"device": ceilings.device_key(env), "copy_gbps": 4196.0, "matmul_tflops": {"bfloat16": 714.0}}
    monkeypatch.setattr(ceilings, "measure", lambda environment: fresh)
    assert ceilings.load_or_measure(lab, env) == (fresh, False)

    def must_not_measure(environment):
        raise AssertionError("measured again although cached")

    monkeypatch.setattr(ceilings, "measure", must_not_measure)
    assert ceilings.load_or_measure(lab, env) == (fresh, True)
    other = {**env, "torch": "2.13"}  # other software: measure again
    monkeypatch.setattr(
        ceilings, "measure", lambda environment: {**fresh, "device": ceilings.device_key(other)}
    )
    assert ceilings.load_or_measure(lab, other)[1] is False
