"""The portfolio's choice of evidence: per kernel, the run that measured the most shapes."""

from __future__ import annotations

from pathlib import Path

from inferlab.site.portfolio import bench_claims
from inferlab.site.results import REPO, ResultFile


def _row(shape: str, speedup: float) -> dict:
    ci = {"value": speedup, "ci_low": speedup - 0.01, "ci_high": speedup + 0.01, "verdict": "faster"}
    return {"kernel": "swiglu", "provider": "inferlab", "shape": shape, "dtype": "bfloat16",
            "status": "ok", "rate": {"fraction_of_ceiling": 0.9}, "speedups": {"torch": ci}}  # fmt: skip


def _run(name: str, rows: list[dict]) -> ResultFile:
    payload = {"kind": "bench", "environment": {"gpu": {"name": "H200 (synthetic test data)"}}, "rows": rows}
    return ResultFile(REPO, Path(f"/results/{name}.json"), payload, digest=name)


def test_a_later_decode_only_run_does_not_hide_the_full_sweep():
    sweep = _run("20260101T000000Z-bench", [_row(s, 1.5) for s in ("1x14336", "64x14336", "8192x14336")])
    decode_only = _run("20260102T000000Z-bench", [_row("1x14336", 1.1)])
    self_test = _row("self-test:33554432", 9.9)
    newer_with_self_test = _run("20260103T000000Z-bench", [_row("1x14336", 1.2), self_test])
    # results arrive newest first, as the site lists them
    (claim,) = bench_claims([newer_with_self_test, decode_only, sweep], plots={})
    assert claim.result is sweep
    assert "over 3 shapes" in claim.lines[0]
    assert not any("self-test" in line for line in claim.lines)
