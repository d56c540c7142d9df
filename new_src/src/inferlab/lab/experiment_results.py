"""An experiment's run: its predictions, the measurement, and the two side by side in its README.

Predictions sit in the README's front matter, each a number with what it is about:

    predictions:
      - {metric: time_us, provider: inferlab, shape: "268435456", device: H100, value: 1070, unit: us}

metric -> unit: time_us -> us (the cold median), gbps -> GB/s (useful bytes over that time),
percent_of_ceiling -> % (of the measured memory or matmul ceiling), speedup -> x (ours over
`vs`, paired, from the row of `provider`, default the one that has it). The other keys choose
one row of the results: provider, shape (`model:dims`, the dims, or the model), kernel, dtype,
and device (a word of the GPU's name: on other GPUs the prediction is skipped, not missed).
`tolerance` (relative, default 0.2) is how far off a measurement may be before it is a MISS,
in either direction: a kernel faster than predicted means the napkin math was wrong too.

`compare_predictions` and `fill_result` are pure functions of a results payload (tested on CPU
with synthetic rows); `measure_experiment` is the GPU part: it imports `run.py` and calls its
`measure(ceilings)`.
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from inferlab.lab.errors import LabError

METRIC_UNITS = {"time_us": "us", "gbps": "GB/s", "percent_of_ceiling": "%", "speedup": "x"}
DTYPES = ("float32", "float16", "bfloat16")
DEFAULT_TOLERANCE = 0.2
SELECTORS = ("provider", "vs", "shape", "kernel", "dtype", "device")
PREDICTION_KEYS = ("metric", "value", "unit", *SELECTORS, "tolerance", "why")
RESULT_KIND = "experiment"  # results/<stamp>-experiment.json
PAYLOAD_FORMAT = 1
RESULT_PLACEHOLDER = "_Filled in by `inferlab experiment run`._"
RESULT_BEGIN = "<!-- inferlab:result begin: written by `inferlab experiment run`; a new run redoes it -->"
RESULT_END = "<!-- inferlab:result end -->"
HIT, MISS, NOT_MEASURED, OTHER_DEVICE = "hit", "MISS: explain", "not measured", "other device"


@dataclass(frozen=True, slots=True)
class Prediction:
    metric: str
    value: float
    unit: str
    provider: str | None = None
    vs: str | None = None
    shape: str | None = None
    kernel: str | None = None
    dtype: str | None = None
    device: str | None = None
    tolerance: float = DEFAULT_TOLERANCE
    why: str = ""

    @property
    def selection(self) -> str:
        chosen = [f"{k}={getattr(self, k)}" for k in SELECTORS if getattr(self, k)]
        return " ".join(chosen) or "(any row)"


@dataclass(frozen=True, slots=True)
class Outcome:
    """One prediction beside its measurement."""

    prediction: Prediction
    measured: float | None
    verdict: str  # HIT, MISS, NOT_MEASURED or OTHER_DEVICE
    detail: str  # the relative change, or why nothing was compared


def parse_prediction(item: Any, number: int) -> Prediction:
    """One `predictions:` entry -> Prediction; ValueError with one sentence if it is not right."""
    where = f"prediction {number}"
    if not isinstance(item, dict):
        raise ValueError(f"{where} must be a mapping like {{metric: time_us, value: 1.2, unit: us}}")
    unknown = sorted(str(k) for k in item if k not in PREDICTION_KEYS)
    if unknown:
        raise ValueError(f"{where} has unknown key {unknown[0]!r}; known keys: {', '.join(PREDICTION_KEYS)}")
    metric = item.get("metric")
    if metric not in METRIC_UNITS:
        raise ValueError(f"{where}: metric {metric!r} is not one of {', '.join(METRIC_UNITS)}")
    unit = str(item.get("unit", "")).replace("µs", "us")
    if unit != METRIC_UNITS[metric]:
        raise ValueError(f"{where}: {metric} is in {METRIC_UNITS[metric]!r}, not {item.get('unit')!r}")
    value = _positive(item.get("value"), f"{where}: value")
    tolerance = _positive(item.get("tolerance", DEFAULT_TOLERANCE), f"{where}: tolerance")
    texts = {}
    for key in (*SELECTORS, "why"):
        v = item.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, str | int)):
            raise ValueError(f"{where}: {key} must be text, not {v!r}")
        texts[key] = None if v is None else str(v)
    if texts["dtype"] is not None and texts["dtype"] not in DTYPES:
        raise ValueError(f"{where}: dtype {texts['dtype']!r} is not one of {', '.join(DTYPES)}")
    if metric == "speedup" and not texts["vs"]:
        raise ValueError(f"{where}: a speedup needs `vs:`, the provider it is measured against")
    why = texts.pop("why") or ""
    return Prediction(metric, value, unit, **texts, tolerance=tolerance, why=why)


# ---------------------------------------------------------------- comparing (pure)
def compare_predictions(predictions: list[Prediction], payload: dict) -> list[Outcome]:
    """Each prediction beside the one row it selects in `payload["rows"]`."""
    gpu = ((payload.get("environment") or {}).get("gpu") or {}).get("name") or "no GPU"
    outcomes = []
    for p in predictions:
        if p.device and p.device.lower() not in gpu.lower():
            outcomes.append(Outcome(p, None, OTHER_DEVICE, f"predicted for {p.device}, measured on {gpu}"))
            continue
        rows = [r for r in payload.get("rows", []) if _selects(p, r)]
        if len(rows) != 1:
            why = "no row matches" if not rows else f"{len(rows)} rows match; add provider, shape or dtype"
            outcomes.append(Outcome(p, None, NOT_MEASURED, why))
            continue
        value, why = _measured(p, rows[0])
        if value is None:
            outcomes.append(Outcome(p, None, NOT_MEASURED, why))
            continue
        change = (value - p.value) / p.value
        verdict = HIT if abs(change) <= p.tolerance else MISS
        outcomes.append(Outcome(p, value, verdict, f"{change:+.0%} (tolerance ±{p.tolerance:.0%})"))
    return outcomes


def _selects(p: Prediction, row: dict) -> bool:
    for key in ("provider", "kernel", "dtype"):
        if getattr(p, key) is not None and row.get(key) != getattr(p, key):
            return False
    if p.shape is not None:
        label = str(row.get("shape", ""))
        model, _, dims = label.partition(":")
        if p.shape not in (label, dims, model):
            return False
    return p.metric != "speedup" or p.vs in (row.get("speedups") or {})


def _measured(p: Prediction, row: dict) -> tuple[float | None, str]:
    if row.get("status") != "ok":
        return None, f"{row.get('provider')} at {row.get('shape')} is {row.get('status')}"
    rate = row.get("rate") or {}
    if p.metric == "time_us":
        return float(row["cold_us"]["median"]), ""
    if p.metric == "gbps":
        unit_ok = rate.get("unit") == "GB/s"
        return (float(rate["value"]), "") if unit_ok else (None, "the row's rate is not in GB/s")
    if p.metric == "percent_of_ceiling":
        fraction = rate.get("fraction_of_ceiling")
        return (100 * fraction, "") if fraction is not None else (None, "no ceiling was measured")
    return float(row["speedups"][p.vs]["value"]), ""


# ---------------------------------------------------------------- the Result section (pure)
def fill_result(body: str, payload: dict, outcomes: list[Outcome], result_ref: str = "", plots=()) -> str:
    """`body` with its `## Result` section holding the measured table and the predictions beside
    it. Only the part between the result markers is replaced, so the learner's words stay."""
    block = [RESULT_BEGIN, result_markdown(payload, outcomes, result_ref, plots), RESULT_END]
    lines = body.splitlines()
    start = _heading(lines, "Result")
    if start is None:  # no Result section: add one before the Conclusion, or at the end
        at = _heading(lines, "Conclusion")
        at = len(lines) if at is None else at
        lines[at:at] = ["## Result", "", *block, ""]
        return "\n".join(lines).strip("\n") + "\n"
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    section = lines[start + 1 : end]
    begin = next((i for i, line in enumerate(section) if line.startswith(RESULT_BEGIN[:24])), None)
    stop = next((i for i, line in enumerate(section) if line.strip() == RESULT_END), None)
    if begin is not None and stop is not None and begin < stop:
        section[begin : stop + 1] = block
    else:
        kept = [line for line in section if line.strip() != RESULT_PLACEHOLDER]
        while kept and not kept[0].strip():
            kept.pop(0)
        section = ["", *block, "", *kept]
    while section and not section[-1].strip():
        section.pop()
    lines[start + 1 : end] = [*section, ""] if end < len(lines) else section
    return "\n".join(lines).strip("\n") + "\n"


def result_markdown(payload: dict, outcomes: list[Outcome], result_ref: str = "", plots=()) -> str:
    env = payload.get("environment") or {}
    gpu = env.get("gpu") or {}
    where = gpu.get("name", "no GPU")
    if gpu.get("capability"):
        where += f" (sm_{gpu['capability'].replace('.', '')})"
    source = payload.get("provenance") or {}
    lines = [
        f"Measured on **{where}**, torch {env.get('torch')}, triton {env.get('triton')}, "
        f"git {str(env.get('git_revision'))[:12]}, started {payload.get('started', '?')} "
        f"({source.get('provider', '?')})" + (f"; results: `{result_ref}`." if result_ref else "."),
        "",
        "| kernel | shape | dtype | provider | µs median [p20-p80] | rate | % of ceiling | status |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in payload.get("rows", []):
        cells = [r.get("kernel"), r.get("shape"), r.get("dtype"), r.get("provider")]
        if r.get("status") == "ok":
            cold, rate = r["cold_us"], r.get("rate") or {}
            fraction = rate.get("fraction_of_ceiling")
            cells += [
                f"{cold['median']:.2f} [{cold['p20']:.2f}-{cold['p80']:.2f}]",
                f"{rate.get('value', 0):.0f} {rate.get('unit', '')}",
                "-" if fraction is None else f"{fraction:.0%}",
                "ok",
            ]
        else:
            status, problem = str(r.get("status")), (r.get("problems") or [""])[0]
            cells += ["", "", "", problem if problem.startswith(status) else f"{status} {problem}".strip()]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    compared = [o for o in outcomes if o.verdict != OTHER_DEVICE]
    if compared:
        lines += [
            "",
            "Predictions beside the measurements (a MISS lands outside the prediction's tolerance):",
            "",
            "| metric | selection | predicted | measured | change | verdict |",
            "|---|---|---|---|---|---|",
        ]
        for o in compared:
            p, unit = o.prediction, o.prediction.unit
            measured = "-" if o.measured is None else f"{o.measured:.4g} {unit}"
            verdict = f"**{o.verdict}**" if o.verdict == MISS else o.verdict
            cells = [p.metric, p.selection, f"{p.value:g} {unit}", measured, o.detail, verdict]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    skipped = sorted({o.prediction.device for o in outcomes if o.verdict == OTHER_DEVICE})
    if skipped:
        count = sum(o.verdict == OTHER_DEVICE for o in outcomes)
        lines += ["", f"{count} prediction(s) for other GPUs ({', '.join(skipped)}) not compared."]
    if any(o.verdict == MISS for o in outcomes):
        lines += ["", "For each MISS, write in the Conclusion what the napkin math left out."]
    if plots:
        lines += ["", "Plots: " + " ".join(f"![{p}]({p})" for p in plots)]
    return "\n".join(lines)


# ---------------------------------------------------------------- running run.py (GPU)
def measure_experiment(exp, lab, provider: str) -> dict:
    """Import `exp`'s run.py, call its `measure(ceilings)` on GPU 0, return the results payload."""
    from inferlab.bench import ceilings as ceil
    from inferlab.bench.environment import fingerprint

    module = load_run_script(exp)
    environment = fingerprint()
    card_before = ceil.card_state()
    ceilings, _ = ceil.load_or_measure(lab, environment)
    started, start = datetime.now(UTC).isoformat(timespec="seconds"), time.perf_counter()
    rows = module.measure(ceilings)
    duration_s = time.perf_counter() - start
    cards = {"before": card_before, "after": ceil.card_state()}
    return experiment_payload(exp, rows, environment, ceilings, cards, started, duration_s, provider)


def load_run_script(exp):
    """`run.py` as a module (nothing runs at import); LabError unless it defines measure()."""
    if not exp.run_script.is_file():
        raise LabError(f"experiment {exp.id} has no run script at {exp.run_script}")
    spec = importlib.util.spec_from_file_location(f"inferlab_experiment_{exp.id:04d}", exp.run_script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not callable(getattr(module, "measure", None)):
        raise LabError(f"{exp.run_script} must define measure(ceilings) returning the harness's rows")
    return module


def experiment_payload(exp, rows, environment, ceilings, card_state, started, duration_s, provider) -> dict:
    """What `results/<stamp>-experiment.json` holds: rows, fingerprint, ceilings and provenance."""
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise LabError(f"{exp.run_script}: measure() must return the harness's rows (a list of dicts)")
    return {
        "kind": RESULT_KIND,
        "format": PAYLOAD_FORMAT,
        "experiment": {"id": exp.id, "title": exp.title, "folder": exp.name},
        "environment": environment,
        "ceilings": ceilings,
        "card_state": card_state,
        "started": started,
        "duration_s": duration_s,
        "provenance": {"source": "run", "provider": provider},
        "rows": rows,
    }


# ---------------------------------------------------------------- helpers
def _heading(lines: list[str], name: str) -> int | None:
    return next((i for i, line in enumerate(lines) if line.strip().lower() == f"## {name.lower()}"), None)


def _cell(value: object) -> str:
    return " ".join(str("" if value is None else value).split()).replace("|", "\\|")


def _positive(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < float("inf"):
        raise ValueError(f"{what} must be a positive number, not {value!r}")
    return float(value)
