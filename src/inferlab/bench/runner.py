"""One benchmark run: for each kernel and shape, gate every provider, time the correct ones
interleaved, check their timed outputs again, and turn samples into rows.

The order for one shape:
1. input sets (enough to exceed 3x L2, or two plus an L2 flush: see `timing.plan_cold`);
2. per provider: a first call (compile/autotune time, recorded apart), then the gate on two
   input sets in a row; a provider that fails is INCORRECT and never timed;
3. rounds: every correct provider's cold and warm sample in turn (A B A B ...), until every
   median is known to 1% or a cap is reached;
4. per provider: the output of its last timed call against the reference of the inputs that
   call was given; then eager time, the % of the measured ceiling (over 105%: IMPOSSIBLE), and
   the paired speedup of ours against each baseline.

`finish_rows` (samples in, rows out) is plain Python and unit-tested; the rest needs a GPU.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from inferlab.bench.ceilings import ceiling_for, fraction_of_ceiling, is_impossible
from inferlab.bench.gate import as_tuple, check_outputs, gate, out_arg
from inferlab.bench.providers import OURS, Provider, Unavailable
from inferlab.bench.stats import StopRule, paired_speedup, run_rounds, summarize
from inferlab.kernels.spec import BenchShape, KernelSpec, torch_error_floor

QUICK = StopRule(min_rounds=5, max_rounds=40, time_cap_s=3.0, target=0.02)
FULL = StopRule(min_rounds=10, max_rounds=400, time_cap_s=15.0)
EAGER_REPEATS = 5


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
    cold_us: list[float] | None = None
    warm_us: list[float] | None = None
    eager_us: list[float] | None = None


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
    """Summaries, rates, % of ceiling, IMPOSSIBLE flags and paired speedups of ours vs each baseline."""
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
            **(extra or {}),
        }
        if m.status == "ok" and m.cold_us:
            cold, warm = summarize(m.cold_us), summarize(m.warm_us or m.cold_us)
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
        ours = ok[OURS]["samples"]["cold_us"]
        ok[OURS]["speedups"] = {
            name: paired_speedup(r["samples"]["cold_us"], ours).to_json()
            for name, r in ok.items()
            if name != OURS
        }
    return rows


# ---------------------------------------------------------------- the GPU part
def _inputs(spec: KernelSpec, dims, dtype, count: int, seed: int) -> list[dict]:
    gen = torch.Generator().manual_seed(seed)
    device = torch.device("cuda")
    return [spec.make_inputs(dims, dtype, device, gen) for _ in range(count)]


def measure_shape(
    spec: KernelSpec,
    shape: BenchShape,
    dtype: torch.dtype,
    providers: list[Provider | Unavailable],
    rule: StopRule,
    seed: int = 0,
) -> tuple[list[Measured], dict]:
    """Gate, then time, every provider at one shape on GPU 0. Returns (measurements, facts)."""
    from inferlab.bench.timing import Flush, ProviderTimer, calls_per_replay, event_ms, l2_bytes, plan_cold

    dims = shape.dims
    set_bytes = spec.bytes_moved(dims, dtype)
    plan = plan_cold(set_bytes, l2_bytes())
    sets = _inputs(spec, dims, dtype, plan.num_sets, seed)
    last = plan.num_sets - 1
    expected = {i: as_tuple(spec.reference(**sets[i])) for i in sorted({0, 1, last})}
    floors = {i: torch_error_floor(spec, sets[i], expected[i]) for i in expected}
    flush = Flush(plan.flush_bytes) if plan.method == "flush" else None
    measured, timers = [], {}
    for p in providers:
        if isinstance(p, Unavailable):
            measured.append(Measured(p.name, "unavailable", [p.reason]))
            continue
        outs = [tuple(torch.empty_like(e) for e in expected[0]) for _ in range(plan.num_sets)]
        start = time.perf_counter()
        try:
            p.fn(sets[0], out_arg(outs[0]))  # compiles / autotunes here, outside steady state
            torch.cuda.synchronize()
        except Exception as e:  # a baseline that cannot run this shape is reported, not fatal
            measured.append(Measured(p.name, "INCORRECT", [f"first call raised {type(e).__name__}: {e}"]))
            continue
        first_call_s = time.perf_counter() - start
        problems = gate(p, sets[:2], [expected[0], expected[1]], outs[:2], [floors[0], floors[1]])
        if problems:
            measured.append(Measured(p.name, "INCORRECT", problems, first_call_s=first_call_s))
            continue
        one_call = lambda p=p, first=sets[0], out=out_arg(outs[0]): p.fn(first, out)
        est_us = sorted(event_ms(one_call) for _ in range(3))[1] * 1000  # median of 3
        out_args = [out_arg(o) for o in outs]
        timer = ProviderTimer(p, sets, out_args, plan, calls_per_replay(est_us, plan.num_sets), flush)
        timers[p.name] = timer
        measured.append(Measured(p.name, "ok", [], timer.method, first_call_s))

    round_timers = {}
    for name, t in timers.items():
        round_timers[f"{name}|cold"] = t.cold_us
        round_timers[f"{name}|warm"] = t.warm_us
    samples, stop_reason = run_rounds(round_timers, rule)
    for m in measured:
        if m.provider not in timers:
            continue
        t = timers[m.provider]
        m.cold_us, m.warm_us = samples[f"{m.provider}|cold"], samples[f"{m.provider}|warm"]
        m.eager_us = [t.eager_us() for _ in range(EAGER_REPEATS)]
        problem = check_outputs(
            f"last timed call (input set {t.last_set})", t.last_out, expected[t.last_set], floors[t.last_set]
        )
        if problem:
            m.status, m.problems = "INCORRECT", [f"after timing: {problem}"]
    facts = {
        "cold_plan": plan.describe(set_bytes),
        "calls_per_replay": {n: t.calls for n, t in timers.items()},
        "stop_reason": stop_reason,
        "rounds": len(next(iter(samples.values()), [])),
    }
    del timers, sets, expected, flush
    torch.cuda.empty_cache()
    return measured, facts


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
) -> list[dict]:
    """Every shape of one kernel: rows ready for the report and the store."""
    dtype = dtype or bench_dtype()
    rows = []
    for shape in shapes:
        if on_shape:
            on_shape(spec, shape)
        measured, facts = measure_shape(spec, shape, dtype, providers, rule)
        rows.extend(finish_rows(spec, shape, dtype, measured, ceilings, facts))
    return rows


def run_registered(names: list[str], ceilings: dict | None, rule: StopRule) -> list[dict]:
    """Registered kernels by name, each at its SPEC's benchmark shapes against all its providers."""
    from inferlab.bench.providers import providers_for
    from inferlab.kernels import get_spec

    rows = []
    for name in names:
        spec = get_spec(name)
        rows += run_kernel(spec, list(spec.bench_shapes), providers_for(spec), ceilings, rule)
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
