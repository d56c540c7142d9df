"""Shared by the site tests: a lab with records, experiments and results of every kind.

The bench payload follows `inferlab.bench.store.build_payload` and `runner.finish_rows`; its
numbers are made up (this file is never a source of claims) but shaped like a real run.
"""

from __future__ import annotations

import json
from pathlib import Path

from inferlab.lab import Lab, init_lab, new_record

XSS_SCRIPT = "<script>alert(1)</script>"
XSS_IMG = "<img src=x onerror=alert(2)>"


def make_lab(root: Path) -> Lab:
    lab = init_lab(root)
    new_record(lab, "Why the mask matters", lesson=1, status="corrected", body=_record_body())
    new_record(
        lab, f"Title with {XSS_SCRIPT}", status="waiting-for-recall", body=f"{XSS_IMG}\n\n{XSS_SCRIPT}\n"
    )
    (lab.records_dir / "0003-broken.md").write_text("---\nid: 3\ntitle: [unclosed\n---\nbody\n")
    files = {"plot.png": _png(), "notes.svg": "<svg/>", "run.py": "def measure(ceilings):\n    return []\n"}
    write_experiment(lab, "0001-add-bandwidth", _experiment_readme(), files)
    (lab.experiments_dir / "0002-no-front-matter").mkdir()
    (lab.experiments_dir / "0002-no-front-matter" / "README.md").write_text("just text\n")
    write_result(lab, "20260101T000000Z-bench.json", bench_payload())
    write_result(lab, "20260101T000001Z-check.json", check_payload())
    write_result(lab, "20260101T000002Z-bench.json", "{not json")
    write_result(lab, "20260101T000003Z-experiment.json", experiment_payload())
    return lab


def write_experiment(lab: Lab, name: str, readme: str, files: dict[str, bytes | str]) -> Path:
    folder = lab.experiments_dir / name
    folder.mkdir(parents=True)
    (folder / "README.md").write_text(readme)
    for file_name, content in files.items():
        path = folder / file_name
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    return folder


def write_result(lab: Lab, name: str, payload: dict | str) -> Path:
    path = lab.results_dir / name
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload))
    return path


def bench_payload(device: str = "NVIDIA H100 80GB HBM3") -> dict:
    rows = []
    for shape, ours_us in (("llama-3-8b:4x4096", 5.0), ("llama-3-8b:8192x14336", 180.0)):
        for provider, us in (
            ("inferlab", ours_us),
            ("torch", ours_us * 1.8),
            ("torch.compile", ours_us * 1.02),
        ):
            rows.append(_bench_row("swiglu", shape, provider, us))
    rows.append(
        {
            "kernel": "swiglu",
            "shape": "llama-3-8b:4x4096",
            "dtype": "bfloat16",
            "provider": "liger",
            "status": "unavailable",
            "problems": ["liger-kernel is not installed"],
            "samples": {},
        }
    )
    for row in rows:
        if row["provider"] == "inferlab":
            row["speedups"] = {
                "torch": _ratio(1.8, "faster"),
                "torch.compile": _ratio(1.02, "same (within noise)"),
            }
    return {
        "kind": "bench",
        "format": 1,
        "environment": _environment(device),
        "ceilings": {"copy_gbps": 3000.0},
        "card_state": {"before": None, "after": None},
        "options": {"quick": True},
        "rows": rows,
    }


def check_payload(device: str = "NVIDIA H100 80GB HBM3") -> dict:
    def row(kernel: str, dtype: str, passed: bool = True) -> dict:
        checks = [
            {
                "shape": [1],
                "passed": True,
                "seed": 1,
                "max_abs_err": 0.0,
                "mean_abs_err": 0.0,
                "problems": [],
            },
            {
                "shape": [3, 1000],
                "passed": passed,
                "seed": 2,
                "max_abs_err": 0.0 if passed else 0.5,
                "mean_abs_err": 0.0,
                "problems": [] if passed else ["max error 0.5 > tolerance"],
            },
        ]
        return {"kernel": kernel, "dtype": dtype, "passed": passed, "skipped": None, "checks": checks}

    rows = [row("add", "float32"), row("add", "bfloat16"), row("softmax", "float16", passed=False)]
    return {"kind": "check", "environment": _environment(device), "rows": rows}


def _bench_row(kernel: str, shape: str, provider: str, median_us: float) -> dict:
    samples = [median_us * f for f in (0.98, 0.99, 1.0, 1.01, 1.02)]
    summary = {
        "n": 5,
        "median": median_us,
        "p20": median_us * 0.99,
        "p80": median_us * 1.01,
        "ci_low": median_us * 0.995,
        "ci_high": median_us * 1.005,
        "outliers": 0,
    }
    return {
        "kernel": kernel,
        "shape": shape,
        "dims": [int(d) for d in shape.split(":")[1].split("x")],
        "layer": "mlp",
        "dtype": "bfloat16",
        "provider": provider,
        "status": "ok",
        "problems": [],
        "method": "cuda-graph x20",
        "first_call_s": 0.5,
        "samples": {"cold_us": samples, "warm_us": samples, "eager_us": samples},
        "cold_us": summary,
        "warm_us": summary,
        "eager_us": median_us,
        "launch_overhead_us": 0.0,
        "rate": {
            "unit": "GB/s",
            "value": 2400.0 / (median_us / 5.0),
            "fraction_of_ceiling": 0.8 * 5.0 / median_us,
        },
    }


def _ratio(value: float, verdict: str) -> dict:
    return {"value": value, "ci_low": value * 0.97, "ci_high": value * 1.03, "verdict": verdict, "n": 5}


def _environment(device: str) -> dict:
    return {
        "inferlab": "0.1.0",
        "git_revision": "0123abcd",
        "backend": "cuda (compiled)",
        "gpu": {"name": device, "capability": "9.0", "sm_count": 132},
        "torch": "2.11.0",
        "triton": "3.6.0",
    }


def _record_body() -> str:
    return (
        "## What I got wrong\n\n"
        "I left out the mask, so the last block read past `n`. See [the fix](#the-fix),\n"
        "[a missing page](../nowhere.html) and [the docs](https://triton-lang.org/).\n\n"
        "## The fix\n\n"
        "```python\nmask = offsets < n_elements\n```\n\n"
        "| shape | result |\n|---|---|\n| 1 | ok |\n"
    )


def _experiment_readme() -> str:
    """Shaped like `inferlab experiment new` writes it, after a run and a conclusion."""
    return (
        "---\n"
        "id: 1\n"
        "title: Does add reach the copy bandwidth?\n"
        "lesson: 1\n"
        "status: concluded\n"
        "device_wanted: h100\n"
        "created: '2026-01-01T00:00:00+00:00'\n"
        "predictions:\n"
        "- {metric: gbps, provider: inferlab, shape: '268435456', value: 2700, unit: GB/s}\n"
        "---\n"
        "# Does add reach the copy bandwidth?\n\n"
        "## Question\n\nHow close does add come to the copy bandwidth?\n\n"
        "## Result\n\n"
        "<!-- inferlab:result begin: written by `inferlab experiment run`; a new run redoes it -->\n"
        "The measurement: ![bandwidth plot](plot.png)\n"
        "<!-- inferlab:result end -->\n\n"
        "Raw numbers are in [the CSV](data.csv), not published; the diagram [notes.svg](notes.svg).\n\n"
        "## Conclusion\n\n"
        "88% at 256M elements;\nbelow L2 size the launch dominates.\n\nMore detail.\n"
    )


def experiment_payload() -> dict:
    """`results/<stamp>-experiment.json`: the harness's rows, as `experiment_payload` writes them."""
    payload = bench_payload()
    payload.update(kind="experiment", experiment={"id": 1, "title": "add", "folder": "0001-add-bandwidth"})
    return payload


def _png() -> bytes:
    """A 1x1 PNG."""
    import base64

    return base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    )
