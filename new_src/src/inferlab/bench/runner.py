"""One benchmark run: for each kernel and shape, gate every provider, time the correct ones
interleaved, check their timed outputs again, and turn samples into rows.

The order for one shape, in one pass:
1. input sets (enough to exceed 3x L2, or two plus an L2 flush: see `timing.plan_cold`);
2. first pass only, per provider: a first call (compile/autotune time, recorded apart), then
   the gate on two input sets in a row; a provider that fails is INCORRECT and never timed;
3. rounds: every correct provider's cold and warm sample in turn (A B A B ...), until every
   median is known to 1% or a cap is reached;
4. per provider: the output of its last timed call against the reference of the inputs that
   call was given (every pass); then eager time.

A kernel's shapes are measured in `passes` passes over the whole list (shape 1, 2, ..., last,
then shape 1 again), each pass with new input sets, outputs and graphs, so that drift of the
card's state and of where buffers land shows up between passes. `finish_rows` pools the passes:
% of the measured ceiling (over 105%: IMPOSSIBLE), intervals widened to the pass medians, and
paired speedups of ours against each baseline.

`finish_rows` (samples in, rows out) is plain Python and unit-tested; the rest needs a GPU.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from inferlab.bench.ceilings import ceiling_for, fraction_of_ceiling, is_impossible
from inferlab.bench.gate import as_tuple, check_outputs, gate, out_arg
from inferlab.bench.providers import OURS, Provider, Unavailable
from inferlab.bench.stats import (
    StopRule,
    paired_speedup_passes,
    run_rounds,
    split_passes,
    summarize,
    summarize_passes,
)
from inferlab.kernels.spec import BenchShape, KernelSpec, torch_error_floor

QUICK = StopRule(min_rounds=5, max_rounds=40, time_cap_s=3.0, target=0.02)
FULL = StopRule(min_rounds=10, max_rounds=400, time_cap_s=15.0)
EAGER_REPEATS = 5  # per pass
PASSES = 2  # two passes are the fewest that show drift between them


def shape_label(shape: BenchShape) -> str:
    """`model:dims`, e.g. `llama-3-8b:8192x14336`; `--shape` accepts either part or the whole."""
    return f"{shape.model}:{'x'.join(map(str, shape.dims))}"


def matches(shape: BenchShape, wanted: str) -> bool:
    label = shape_label(shape)
    return wanted in (label, label.split(":", 1)[1], shape.model)


@dataclass(slots=True)
class Measured:
    """What the GPU part produced for one provider at one shape (before statistics)."""

    provider: str
    status: str  # "ok", "INCORRECT" or "unavailable"
    problems: list[str]
    method: str = ""
    first_call_s: float | None = None
    cold_us: list[float] | None = None  # every pass's samples, concatenated in pass order
    warm_us: list[float] | None = None
    eager_us: list[float] | None = None
    pass_rounds: list[int] | None = None  # rounds per pass; None: all samples are one pass
    calls: int | None = None  # calls per graph replay, chosen in the first pass, kept after


def metric(
    spec: KernelSpec, dims: tuple[int, ...], dtype: torch.dtype, median_us: float
) -> tuple[str, float]:
    """The rate the roofline compares: GB/s for memory-bound kernels, TFLOP/s for compute-bound."""
    if spec.bound == "memory":
        return "GB/s", spec.bytes_moved(dims, dtype) / (median_us * 1e-6) / 1e9
    return "TFLOP/s", spec.flops(dims) / (median_us * 1e-6) / 1e12


def finish_rows(
    spec: KernelSpec,
    shape: BenchShape,
    dtype: torch.dtype,
    measured: list[Measured],
    ceilings: dict | None,
    extra: dict | None = None,
) -> list[dict]:
    """Summaries, rates, % of ceiling, IMPOSSIBLE flags and paired speedups of ours vs each baseline.

    Samples of all passes are pooled; each interval also takes in every pass's own median or
    speedup (`stats.summarize_passes`, `stats.paired_speedup_passes`)."""
    ceiling = ceiling_for(ceilings, spec.bound, dtype)
    rows = []
    for m in measured:
        row = {
            "kernel": spec.name,
            "shape": shape_label(shape),
            "dims": list(shape.dims),
            "layer": shape.layer,
            "dtype": str(dtype).removeprefix("torch."),
            "provider": m.provider,
            "status": m.status,
            "problems": m.problems,
            "method": m.method,
            "first_call_s": m.first_call_s,
            "samples": {"cold_us": m.cold_us, "warm_us": m.warm_us, "eager_us": m.eager_us},
            "pass_rounds": m.pass_rounds or ([len(m.cold_us)] if m.cold_us else []),
            **(extra or {}),
        }
        if m.status == "ok" and m.cold_us:
            cold = summarize_passes(split_passes(m.cold_us, row["pass_rounds"]))
            warm = summarize_passes(split_passes(m.warm_us or m.cold_us, row["pass_rounds"]))
            eager = summarize(m.eager_us).median if m.eager_us else None
            unit, value = metric(spec, shape.dims, dtype, cold.median)
            fraction = fraction_of_ceiling(value, ceiling)
            row.update(
                cold_us=cold.to_json(),
                warm_us=warm.to_json(),
                eager_us=eager,
                launch_overhead_us=None if eager is None else eager - warm.median,
                rate={"unit": unit, "value": value, "fraction_of_ceiling": fraction},
            )
            if is_impossible(fraction):
                row["status"] = "IMPOSSIBLE"
                row["problems"] = [f"{fraction:.0%} of the measured ceiling: the time or byte count is wrong"]
        rows.append(row)
    ok = {r["provider"]: r for r in rows if r["status"] == "ok"}
    if OURS in ok:
        ours = _cold_passes(ok[OURS])
        ok[OURS]["speedups"] = {
            name: paired_speedup_passes(_cold_passes(r), ours).to_json()
            for name, r in ok.items()
            if name != OURS
        }
    return rows


def _cold_passes(row: dict) -> list[list[float]]:
    return split_passes(row["samples"]["cold_us"], row["pass_rounds"])


# ---------------------------------------------------------------- the GPU part
def _inputs(spec: KernelSpec, dims, dtype, count: int, seed: int) -> list[dict]:
    gen = torch.Generator().manual_seed(seed)
    device = torch.device("cuda")
    return [spec.make_inputs(dims, dtype, device, gen) for _ in range(count)]


def _first_call_and_gate(
    p: Provider | Unavailable, sets: list[dict], expected: dict, floors: dict, num_sets: int
) -> Measured:
    """The first pass's checks for one provider: "ok" with its calls per replay, or why not."""
    from inferlab.bench.timing import calls_per_replay, event_ms

    if isinstance(p, Unavailable):
        return Measured(p.name, "unavailable", [p.reason])
    outs = [tuple(torch.empty_like(e) for e in expected[0]) for _ in range(2)]
    start = time.perf_counter()
    try:
        p.fn(sets[0], out_arg(outs[0]))  # compiles / autotunes here, outside steady state
        torch.cuda.synchronize()
    except Exception as e:  # a baseline that cannot run this shape is reported, not fatal
        return Measured(p.name, "INCORRECT", [f"first call raised {type(e).__name__}: {e}"])
    first_call_s = time.perf_counter() - start
    problems = gate(p, sets[:2], [expected[0], expected[1]], outs, [floors[0], floors[1]])
    if problems:
        return Measured(p.name, "INCORRECT", problems, first_call_s=first_call_s)
    one_call = lambda: p.fn(sets[0], out_arg(outs[0]))
    est_us = sorted(event_ms(one_call) for _ in range(3))[1] * 1000  # median of 3
    calls = calls_per_replay(est_us, num_sets)
    return Measured(p.name, "ok", [], first_call_s=first_call_s, calls=calls)


def measure_shape(
    spec: KernelSpec,
    shape: BenchShape,
    dtype: torch.dtype,
    providers: list[Provider | Unavailable],
    rule: StopRule,
    seed: int = 0,
    earlier: list[Measured] | None = None,
) -> tuple[list[Measured], dict]:
    """One pass over one shape on GPU 0. Returns (measurements, this pass's facts).

    Without `earlier`, the first pass: every provider is gated, then the correct ones timed.
    With `earlier` (this shape's measurements from the passes before), the providers still "ok"
    are timed again on new input sets, outputs and graphs, and their samples appended."""
    from inferlab.bench.timing import Flush, ProviderTimer, l2_bytes, plan_cold

    dims = shape.dims
    set_bytes = spec.bytes_moved(dims, dtype)
    plan = plan_cold(set_bytes, l2_bytes())
    # The same seed every pass: the same values in new allocations, so passes differ only in
    # where the buffers landed and when they ran.
    sets = _inputs(spec, dims, dtype, plan.num_sets, seed)
    last = plan.num_sets - 1
    expected = {i: as_tuple(spec.reference(**sets[i])) for i in sorted({0, 1, last})}
    floors = {i: torch_error_floor(spec, sets[i], expected[i]) for i in expected}
    flush = Flush(plan.flush_bytes) if plan.method == "flush" else None
    if earlier is None:
        measured = [_first_call_and_gate(p, sets, expected, floors, plan.num_sets) for p in providers]
    else:
        measured = earlier
    pass_number = max((len(m.pass_rounds or []) for m in measured), default=0) + 1
    by_name = {p.name: p for p in providers}
    timers = {}
    for m in measured:
        if m.status != "ok":
            continue
        outs = [out_arg(tuple(torch.empty_like(e) for e in expected[0])) for _ in range(plan.num_sets)]
        timer = ProviderTimer(by_name[m.provider], sets, outs, plan, m.calls, flush)
        timers[m.provider] = timer
        if not m.method:
            m.method = timer.method
        elif timer.method != m.method:  # e.g. graph capture failed in one pass only
            m.method += f"; pass {pass_number}: {timer.method}"

    round_timers = {}
    for name, t in timers.items():
        round_timers[f"{name}|cold"] = t.cold_us
        round_timers[f"{name}|warm"] = t.warm_us
    samples, stop_reason = run_rounds(round_timers, rule)
    for m in measured:
        if m.provider not in timers:
            continue
        t = timers[m.provider]
        cold, warm = samples[f"{m.provider}|cold"], samples[f"{m.provider}|warm"]
        m.cold_us, m.warm_us = (m.cold_us or []) + cold, (m.warm_us or []) + warm
        m.eager_us = (m.eager_us or []) + [t.eager_us() for _ in range(EAGER_REPEATS)]
        m.pass_rounds = (m.pass_rounds or []) + [len(cold)]
        problem = check_outputs(
            f"last timed call (input set {t.last_set})", t.last_out, expected[t.last_set], floors[t.last_set]
        )
        if problem:
            m.status, m.problems = "INCORRECT", [f"after timing (pass {pass_number}): {problem}"]
    facts = {
        "cold_plan": plan.describe(set_bytes),
        "calls_per_replay": {n: t.calls for n, t in timers.items()},
        "stop_reason": stop_reason,
        "rounds": len(next(iter(samples.values()), [])),
    }
    del timers, sets, expected, flush
    torch.cuda.empty_cache()
    return measured, facts


def pooled_facts(passes: list[dict]) -> dict:
    """One shape's facts over its passes: the first pass's plan, each pass's stop reason, all rounds."""
    return {
        "cold_plan": passes[0]["cold_plan"],
        "calls_per_replay": passes[0]["calls_per_replay"],  # kept for later passes
        "stop_reason": [f["stop_reason"] for f in passes],
        "rounds": sum(f["rounds"] for f in passes),
    }


def bench_dtype() -> torch.dtype:
    """bf16 where the card has it (sm_80+), else fp16 (a T4)."""
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def run_kernel(
    spec: KernelSpec,
    shapes: list[BenchShape],
    providers: list[Provider | Unavailable],
    ceilings: dict | None,
    rule: StopRule,
    dtype: torch.dtype | None = None,
    on_shape=None,
    passes: int = PASSES,
) -> list[dict]:
    """Every shape of one kernel, in `passes` passes over the whole list: rows ready for the
    report and the store.

    Pass 2 of the first shape comes after pass 1 of the last, so the passes of one shape are
    as far apart in time as the list allows, and each has its own allocations and graphs."""
    if passes < 1:
        raise ValueError(f"passes must be at least 1, not {passes}")
    dtype = dtype or bench_dtype()
    measured: list[list[Measured] | None] = [None] * len(shapes)
    facts: list[list[dict]] = [[] for _ in shapes]
    for _ in range(passes):
        for i, shape in enumerate(shapes):
            if on_shape:
                on_shape(spec, shape)
            measured[i], pass_facts = measure_shape(spec, shape, dtype, providers, rule, earlier=measured[i])
            facts[i].append(pass_facts)
    rows = []
    for shape, shape_measured, shape_facts in zip(shapes, measured, facts, strict=True):
        rows.extend(finish_rows(spec, shape, dtype, shape_measured, ceilings, pooled_facts(shape_facts)))
    return rows


def run_registered(
    names: list[str], ceilings: dict | None, rule: StopRule, passes: int = PASSES
) -> list[dict]:
    """Registered kernels by name, each at its SPEC's benchmark shapes against all its providers."""
    from inferlab.bench.providers import providers_for
    from inferlab.kernels import get_spec

    rows = []
    for name in names:
        spec = get_spec(name)
        rows += run_kernel(spec, list(spec.bench_shapes), providers_for(spec), ceilings, rule, passes=passes)
    return rows


def self_test_failures(rows: list[dict]) -> list[str]:
    """Known-bad providers the harness let through where it must not have."""
    from inferlab.bench.selftest import must_reject

    failures = []
    for r in rows:
        if not r["provider"].startswith("bad:") or r["status"] == "unavailable":
            continue
        rejected = r["status"] in ("INCORRECT", "IMPOSSIBLE")
        if must_reject(r["provider"], tuple(r["dims"])) and not rejected:
            failures.append(f"{r['provider']} at {r['shape']} was timed instead of rejected")
    return failures
