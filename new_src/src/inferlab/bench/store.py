"""Benchmark runs on disk: one JSON per run (raw samples included), and comparing two runs.

A run is saved in the lab's results (`<stamp>-bench.json`) with the environment fingerprint,
the ceilings it was judged against and the card's state before and after; `--save-to DIR`
writes the same file there too (e.g. `benchmarks/results/`, to commit it).

Two runs are compared per (kernel, shape, dtype, provider) from their raw samples. They were
not interleaved, so the ratio is unpaired (each side resampled on its own), and runs from
different devices are refused unless the caller allows it and says so. Resampling only knows
the noise inside each run; the card's state and where buffers land also move between runs, so
the interval is stretched by both runs' pass-to-pass spreads (`stats.widen`) before the
verdict. A run saved before passes existed (no `pass_rounds`) or with one pass has no spread
to show: it counts as 0 and the comparison says "no repeat data".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from inferlab.bench.stats import pass_spread, split_passes, unpaired_ratio, widen
from inferlab.errors import InferlabError

KIND = "bench"
FORMAT = 2  # 2: rows carry `pass_rounds` and pass-widened intervals; format 1 still loads


def build_payload(
    rows: list[dict],
    environment: dict,
    ceilings: dict | None,
    card_before: dict | None,
    card_after: dict | None,
    options: dict,
) -> dict:
    return {
        "kind": KIND,
        "format": FORMAT,
        "environment": environment,
        "ceilings": ceilings,
        "card_state": {"before": card_before, "after": card_after},
        "options": options,
        "rows": rows,
    }


def save_run(lab, payload: dict, save_to: Path | None = None) -> list[Path]:
    """Save in the lab, and as the same file name under `save_to` if given."""
    from inferlab.lab.atomic import atomic_write_text
    from inferlab.lab.results import save_result

    path = save_result(lab, KIND, payload)
    paths = [path]
    if save_to is not None:
        save_to = Path(save_to)
        save_to.mkdir(parents=True, exist_ok=True)
        copy = save_to / path.name
        atomic_write_text(copy, path.read_text())
        paths.append(copy)
    return paths


def resolve_run(ref: str, lab=None) -> Path:
    """A run by path, or by its file name (or stem, or unique prefix) in the lab's results."""
    path = Path(ref)
    if path.is_file():
        return path
    if lab is not None:
        from inferlab.lab.results import list_results

        runs = list_results(lab, KIND)
        hits = [p for p in runs if p.name == ref or p.stem == ref] or [
            p for p in runs if p.name.startswith(ref)
        ]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise InferlabError(f"{ref!r} matches {len(hits)} runs; give more of the name")
    raise InferlabError(f"no benchmark run {ref!r}: give a JSON path or a run name from the lab's results")


def load_run(path: Path) -> dict:
    try:
        payload = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise InferlabError(f"cannot read benchmark run {path}: {e}") from None
    if payload.get("kind") != KIND:
        raise InferlabError(f"{path} is not a benchmark run (its kind is {payload.get('kind')!r})")
    return payload


def device_identity(payload: dict) -> dict | None:
    """The card a run was measured on (name, capability, SMs, memory); None without a GPU."""
    gpu = payload.get("environment", {}).get("gpu")
    if not gpu:
        return None
    return {k: gpu.get(k) for k in ("name", "capability", "sm_count", "memory_bytes")}


@dataclass(slots=True)
class Comparison:
    header: list[str]
    rows: list[dict] = field(default_factory=list)  # key, medians, spreads, ratio (>1: B faster)
    only_in_a: list[str] = field(default_factory=list)
    only_in_b: list[str] = field(default_factory=list)


def _key(row: dict) -> tuple[str, str, str, str]:
    return (row["kernel"], row["shape"], row["dtype"], row["provider"])


def run_to_run(row: dict) -> float | None:
    """A row's pass-to-pass spread of cold medians, from its raw samples; None without repeats."""
    samples, rounds = row["samples"].get("cold_us"), row.get("pass_rounds")
    if not samples or not rounds or len(rounds) < 2:
        return None
    passes = split_passes(samples, rounds)
    return pass_spread([float(np.median(p)) for p in passes], float(np.median(samples)))


def has_repeats(payload: dict) -> bool:
    """Whether any row of a run was measured in two passes or more."""
    return any(len(r.get("pass_rounds") or []) >= 2 for r in payload["rows"])


def compare_runs(
    a: dict, b: dict, name_a: str = "A", name_b: str = "B", allow_different_devices: bool = False
) -> Comparison:
    """Per-(kernel, shape, dtype, provider) change from run A to run B, with an interval."""
    dev_a, dev_b = device_identity(a), device_identity(b)
    header = [f"A = {name_a} ({(dev_a or {}).get('name', 'no GPU')})"]
    header.append(f"B = {name_b} ({(dev_b or {}).get('name', 'no GPU')})")
    if dev_a != dev_b:
        if not allow_different_devices:
            raise InferlabError(
                f"the runs come from different devices ({(dev_a or {}).get('name')} vs "
                f"{(dev_b or {}).get('name')}); pass --allow-different-devices to compare anyway"
            )
        header.append("WARNING: different devices; the ratios mix code and hardware differences")
    for name, payload in (("A", a), ("B", b)):
        if not has_repeats(payload):
            header.append(
                f"{name} has no repeat data (saved before passes, or one pass): "
                "its run-to-run drift counts as 0, so its intervals are too narrow"
            )
    rows_a = {_key(r): r for r in a["rows"]}
    rows_b = {_key(r): r for r in b["rows"]}
    cmp = Comparison(header)
    for key, ra in rows_a.items():
        rb = rows_b.get(key)
        if rb is None:
            cmp.only_in_a.append(" ".join(key))
            continue
        entry = {"key": key, "status_a": ra["status"], "status_b": rb["status"], "ratio": None}
        sa, sb = ra["samples"].get("cold_us"), rb["samples"].get("cold_us")
        if ra["status"] == rb["status"] == "ok" and sa and sb:
            entry["median_a"] = ra["cold_us"]["median"]
            entry["median_b"] = rb["cold_us"]["median"]
            entry["spread_a"], entry["spread_b"] = run_to_run(ra), run_to_run(rb)
            spread = (entry["spread_a"] or 0.0) + (entry["spread_b"] or 0.0)  # unknown counts as 0
            entry["ratio"] = widen(unpaired_ratio(sa, sb), spread).to_json()
        cmp.rows.append(entry)
    cmp.only_in_b = [" ".join(k) for k in rows_b if k not in rows_a]
    return cmp
