"""Predictions beside measurements, and the Result section: pure functions of a synthetic payload.

The rows come from the harness's own `finish_rows` fed with synthetic samples, so the comparison
is tested against exactly what a GPU run stores."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inferlab.bench.runner import Measured, finish_rows
from inferlab.kernels import get_spec
from inferlab.kernels.spec import BenchShape
from inferlab.lab.experiment_results import (
    HIT,
    MISS,
    NOT_MEASURED,
    OTHER_DEVICE,
    RESULT_BEGIN,
    RESULT_END,
    RESULT_PLACEHOLDER,
    compare_predictions,
    fill_result,
    parse_prediction,
)

SWIGLU = get_spec("swiglu")
SHAPE = BenchShape((8192, 14336), "llama-3-8b", "mlp act, prefill 8k tokens")
USEFUL_BYTES = 3 * 8192 * 14336 * 2  # read gate and up, write out: 704.6 MB in bf16
CEILINGS = {"copy_gbps": 3000.0, "memory_gbps": 3000.0, "matmul_tflops": {"bfloat16": 700.0}}
BODY = f"""# SwiGLU

## Question

One pass or three?

## Prediction

Three passes move 8/3 the bytes.

## Result

{RESULT_PLACEHOLDER}

My own note, kept.

## Conclusion

To write.
"""


def _measured(name: str, median_us: float, seed: int) -> Measured:
    rng = np.random.default_rng(seed)
    samples = list(rng.normal(median_us, median_us * 0.002, 40))
    return Measured(name, "ok", [], "cuda-graph", 0.1, samples, samples, [median_us * 1.05])


def synthetic_payload(gpu: str = "NVIDIA H100 80GB HBM3") -> dict:
    measured = [
        _measured("inferlab", 250.0, 1),  # 704.6 MB / 250 us = 2818 GB/s
        _measured("torch", 400.0, 2),
        _measured("torch-3ops", 640.0, 3),
        Measured("liger", "unavailable", ["unavailable: No module named 'liger_kernel'"]),
    ]
    rows = finish_rows(SWIGLU, SHAPE, torch.bfloat16, measured, CEILINGS)
    environment = {"gpu": {"name": gpu, "capability": "9.0"}, "torch": "2.11", "triton": "3.6"}
    environment["git_revision"] = "abc1234def"
    provenance = {"source": "run", "provider": "local"}
    started = "2026-11-26T12:00:00+00:00"
    return {"kind": "experiment", "format": 1, "environment": environment, "rows": rows,
            "started": started, "provenance": provenance}  # fmt: skip


def _p(**item):
    return parse_prediction(item, 1)


def test_a_hit_within_tolerance_and_misses_in_both_directions():
    payload = synthetic_payload()
    predictions = [
        _p(metric="time_us", provider="inferlab", value=235, unit="us", device="H100"),  # +6%: hit
        _p(metric="time_us", provider="torch", value=600, unit="us"),  # -33%: faster than predicted
        _p(metric="time_us", provider="torch-3ops", value=400, unit="us"),  # +60%: slower
        _p(metric="time_us", provider="torch-3ops", value=400, unit="us", tolerance=0.7),  # its own tolerance
    ]
    outcomes = compare_predictions(predictions, payload)
    assert [o.verdict for o in outcomes] == [HIT, MISS, MISS, HIT]
    assert outcomes[0].measured == pytest.approx(250, rel=0.01)
    assert outcomes[1].detail.startswith("-33%") and outcomes[2].detail.startswith("+60%")


def test_rates_fractions_and_paired_speedups_are_measured_from_the_row():
    payload = synthetic_payload()
    predictions = [
        _p(metric="gbps", provider="inferlab", shape="8192x14336", value=2800, unit="GB/s"),
        _p(metric="percent_of_ceiling", provider="inferlab", shape="llama-3-8b", value=95, unit="%"),
        _p(metric="speedup", vs="torch-3ops", value=2.67, unit="x"),
        _p(metric="speedup", provider="inferlab", vs="torch", value=1.67, unit="x", dtype="bfloat16"),
    ]
    gbps, percent, speedup_3, speedup_2 = compare_predictions(predictions, payload)
    assert gbps.measured == pytest.approx(USEFUL_BYTES / 250e-6 / 1e9, rel=0.01) and gbps.verdict == HIT
    assert percent.measured == pytest.approx(100 * USEFUL_BYTES / 250e-6 / 1e9 / 3000, rel=0.01)
    assert speedup_3.measured == pytest.approx(640 / 250, rel=0.01) and speedup_3.verdict == HIT
    assert speedup_2.measured == pytest.approx(1.6, rel=0.01) and speedup_2.verdict == HIT


def test_what_cannot_be_compared_says_why():
    payload = synthetic_payload()
    outcomes = compare_predictions(
        [
            _p(metric="time_us", value=235, unit="us", device="H200"),  # another GPU: skipped
            _p(metric="time_us", value=235, unit="us"),  # four rows match
            _p(metric="time_us", provider="liger", value=235, unit="us"),  # unavailable
            _p(metric="time_us", provider="inferlab", dtype="float16", value=235, unit="us"),  # no row
            _p(metric="speedup", vs="liger", value=1.1, unit="x"),  # no row has that speedup
        ],
        payload,
    )
    assert [o.verdict for o in outcomes] == [
        OTHER_DEVICE,
        NOT_MEASURED,
        NOT_MEASURED,
        NOT_MEASURED,
        NOT_MEASURED,
    ]
    assert "measured on NVIDIA H100" in outcomes[0].detail
    assert "4 rows match" in outcomes[1].detail
    assert "unavailable" in outcomes[2].detail
    assert outcomes[3].detail == "no row matches"
    no_ceiling = {
        **payload,
        "rows": finish_rows(SWIGLU, SHAPE, torch.bfloat16, [_measured("inferlab", 250, 1)], None),
    }
    (outcome,) = compare_predictions([_p(metric="percent_of_ceiling", value=90, unit="%")], no_ceiling)
    assert outcome.verdict == NOT_MEASURED and "no ceiling" in outcome.detail


def test_fill_result_writes_tables_keeps_the_learners_words_and_is_redone_in_place():
    payload = synthetic_payload()
    predictions = [
        _p(metric="time_us", provider="inferlab", value=235, unit="us"),
        _p(metric="time_us", provider="torch", value=600, unit="us"),
        _p(metric="time_us", provider="inferlab", value=168, unit="us", device="H200"),
    ]
    outcomes = compare_predictions(predictions, payload)
    body = fill_result(BODY, payload, outcomes, "results/x-experiment.json", ["plots/swiglu.png"])
    result = body.split("## Result", 1)[1].split("## Conclusion", 1)[0]
    assert RESULT_PLACEHOLDER not in body and "My own note, kept." in result
    assert result.index(RESULT_BEGIN) < result.index(RESULT_END) < result.index("My own note")
    assert "**NVIDIA H100 80GB HBM3 (sm_90)**" in result and "`results/x-experiment.json`" in result
    assert "| swiglu | llama-3-8b:8192x14336 | bfloat16 | inferlab | 250.0" in result
    assert "| liger |  |  |  | unavailable: No module named 'liger_kernel' |" in result
    assert (
        "| time_us | provider=torch | 600 us | 400.1 us | -33% (tolerance ±20%) | **MISS: explain** |"
        in result
    )
    assert "1 prediction(s) for other GPUs (H200) not compared" in result
    assert "For each MISS" in result and "![plots/swiglu.png](plots/swiglu.png)" in result
    assert body.split("## Conclusion", 1)[1] == "\n\nTo write.\n"
    assert body.startswith("# SwiGLU\n\n## Question\n\nOne pass or three?")

    again = fill_result(body, payload, compare_predictions(predictions[:1], payload))
    assert again.count(RESULT_BEGIN) == 1 and MISS not in again and "My own note, kept." in again
    assert fill_result(again, payload, compare_predictions(predictions[:1], payload)) == again


def test_fill_result_adds_a_missing_result_section_before_the_conclusion():
    body = "# T\n\n## Question\n\nQ?\n\n## Conclusion\n\nC.\n"
    filled = fill_result(body, synthetic_payload(), [])
    assert filled.index("## Result") < filled.index(RESULT_BEGIN) < filled.index("## Conclusion")
    assert fill_result("# T\n", synthetic_payload(), []).rstrip().endswith(RESULT_END)


def test_table_cells_cannot_break_the_markdown_table():
    payload = synthetic_payload()
    payload["rows"][3]["problems"] = ["a | pipe\nand a newline"]
    body = fill_result(BODY, payload, [])
    assert "a \\| pipe and a newline" in body
