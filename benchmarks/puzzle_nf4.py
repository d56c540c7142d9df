"""Score `inferlab.kernels.nf4.dequantize_nf4` by the public NF4 puzzle's marking criteria.

The puzzle is Unsloth's puzzle A, "Convert nf4 to Triton" (github.com/unslothai/puzzles), whose
marking criteria (max 14 points) are, as published:

    single_triton_kernel                                           +3
    speedup = old_time / new_time:  <= 1.00: -3,  >= 1.05: +1,  >= 1.10: +2,  >= 1.15: +2
    kernel_works_in_torch_compile                                  +1, else -1
    custom_asm_works                                               +3
    uses_cache_eviction                                            +1
    tested_in_f16_and_bf16                                         +1, else -1

What each point rests on here (printed beside it):

- single kernel: MEASURED on a GPU: torch.profiler records the CUDA work of one call (after a
  warm-up call that compiles) and every kernel, memset or copy in it is counted. Without a GPU the
  source is read instead (static): the `kernel[grid](...)` launch sites in nf4.py, and whether
  one sits in a loop.
- speedup: "old" is bitsandbytes.functional.dequantize_4bit (the puzzle's old time was Unsloth's
  fast_dequantize, which calls the same bitsandbytes CUDA kernels). Timed with the project's
  harness, `inferlab.bench.runner.measure_shape`: both gated for correctness on the very inputs,
  CUDA-graph replays interleaved A B A B, a cold L2 by rotating input sets, at the NF4 SPEC's
  Llama-3-8B weight shapes in fp16 and bf16. As the puzzle times one loop over all its cases, the
  speedup is sum(bitsandbytes median) / sum(ours); each shape's paired speedup is printed too.
- torch.compile: a function calling dequantize_nf4 is compiled with fullgraph=True and run;
  it passes if its bits equal eager's, fp16 and bf16.
- fp16 and bf16: bit-exact against bitsandbytes' dequantize_4bit (nested and plain absmax, odd
  sizes), or against quant_formats' reference (itself tested bit-exact against bitsandbytes) when
  bitsandbytes is not installed.
- cache eviction: `eviction_policy=` on a tl.load/tl.store in nf4.py's jit functions; on a GPU
  also "evict" in the compiled kernel's TTIR.
- inline asm: `inline_asm_elementwise` in those functions; on a GPU also in the TTIR.

Usage: `python benchmarks/puzzle_nf4.py [--static-only] [--full]` (on the GPU machine with
PYTHONPATH=src; --full uses the harness's full stopping rule instead of the quick one).
"""

from __future__ import annotations

import argparse
import ast
import sys
from dataclasses import dataclass, field
from pathlib import Path

MAX_POINTS = 14
MOST_POINTS = {  # what each criterion can add at best
    "single Triton kernel": 3,
    "speedup vs bitsandbytes": 5,
    "works in torch.compile": 1,
    "custom (inline) asm": 3,
    "cache eviction hints": 1,
    "fp16 and bf16 bit-exact": 1,
}
SPEEDUP_TIERS = ((1.05, 1), (1.10, 2), (1.15, 2))  # each tier reached adds its points
NO_SPEEDUP_PENALTY = -3  # speedup <= 1.00
NOT_MEASURED = "not measured"


# ---------------------------------------------------------------- scoring (pure: unit-tested)
@dataclass(frozen=True, slots=True)
class Criterion:
    name: str
    result: str  # "pass", "fail" or NOT_MEASURED (the evidence says why)
    points: int
    evidence: str


def speedup_points(speedup: float | None) -> int:
    if speedup is None:
        return 0
    if speedup <= 1.00:
        return NO_SPEEDUP_PENALTY
    return sum(points for threshold, points in SPEEDUP_TIERS if speedup >= threshold)


def _criterion(name: str, passed: bool | None, if_pass: int, if_fail: int, evidence: str) -> Criterion:
    if passed is None:
        return Criterion(name, NOT_MEASURED, 0, evidence)
    return Criterion(name, "pass" if passed else "fail", if_pass if passed else if_fail, evidence)


@dataclass(slots=True)
class Findings:
    """What was measured or read; None where it could not be here. Evidence: one line each."""

    single_kernel: bool | None = None
    speedup: float | None = None
    compiles: bool | None = None
    inline_asm: bool | None = None
    eviction: bool | None = None
    both_dtypes: bool | None = None
    evidence: dict[str, str] = field(default_factory=dict)


def score(f: Findings) -> list[Criterion]:
    ev = f.evidence
    if f.speedup is None:
        speed = Criterion("speedup vs bitsandbytes", NOT_MEASURED, 0, ev.get("speedup", "timing needs a GPU"))
    else:
        tiers = " ".join(f"{'>=' if f.speedup >= t else '<'}{t:.2f}x" for t, _ in SPEEDUP_TIERS)
        result = "pass" if f.speedup >= SPEEDUP_TIERS[-1][0] else "fail"
        evidence = f"{f.speedup:.3f}x ({tiers}); {ev.get('speedup', '')}".rstrip("; ")
        speed = Criterion("speedup vs bitsandbytes", result, speedup_points(f.speedup), evidence)
    return [
        _criterion("single Triton kernel", f.single_kernel, 3, 0, ev.get("single_kernel", "")),
        speed,
        _criterion("works in torch.compile", f.compiles, 1, -1, ev.get("compiles", "")),
        _criterion("custom (inline) asm", f.inline_asm, 3, 0, ev.get("inline_asm", "")),
        _criterion("cache eviction hints", f.eviction, 1, 0, ev.get("eviction", "")),
        _criterion("fp16 and bf16 bit-exact", f.both_dtypes, 1, -1, ev.get("both_dtypes", "")),
    ]


def total(criteria: list[Criterion]) -> tuple[int, int]:
    """(points, points still open because a criterion was not measured here)."""
    points = sum(c.points for c in criteria)
    return points, sum(MOST_POINTS[c.name] for c in criteria if c.result == NOT_MEASURED)


def render(criteria: list[Criterion]) -> str:
    points, still_open = total(criteria)
    width = max(len(c.name) for c in criteria)
    lines = [f"{'criterion':<{width}}  {'result':<12}  points  evidence", "-" * (width + 40)]
    for c in criteria:
        lines.append(f"{c.name:<{width}}  {c.result:<12}  {c.points:>+6}  {c.evidence}")
    lines.append("-" * (width + 40))
    tail = f" ({still_open} points not measured here: see the evidence)" if still_open else ""
    lines.append(f"{'total':<{width}}  {'':<12}  {points:>6}  of {MAX_POINTS}{tail}")
    return "\n".join(lines)


# ---------------------------------------------------------------- static: read the source
@dataclass(slots=True)
class SourceFacts:
    jit_functions: list[str]
    launch_sites: list[str]  # "caller -> kernel (line n)[, in a loop]"
    eviction_hints: list[str]  # "function:line eviction_policy='...'"
    inline_asm: list[str]  # "function:line"

    @property
    def single_launch(self) -> bool:
        return len(self.launch_sites) == 1 and "in a loop" not in self.launch_sites[0]


def _is_jit(fn: ast.FunctionDef) -> bool:
    return any(ast.unparse(d).split("(")[0] in ("triton.jit", "jit") for d in fn.decorator_list)


def _calls_in(node: ast.AST, loops: int = 0):
    """(call, inside a loop) for every call under `node`."""
    for child in ast.iter_child_nodes(node):
        depth = loops + isinstance(child, (ast.For, ast.While, ast.AsyncFor))
        if isinstance(child, ast.Call):
            yield child, depth > 0
        yield from _calls_in(child, depth)


def inspect_source(text: str) -> SourceFacts:
    tree = ast.parse(text)
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
    jit = {f.name: f for f in functions if _is_jit(f)}
    facts = SourceFacts(sorted(jit), [], [], [])
    for fn in functions:
        for call, in_loop in _calls_in(fn):
            func = call.func
            launched = isinstance(func, ast.Subscript) and isinstance(func.value, ast.Name)
            if launched and func.value.id in jit and fn.name not in jit:
                where = f"{fn.name} -> {func.value.id} (line {call.lineno})" + (
                    ", in a loop" if in_loop else ""
                )
                facts.launch_sites.append(where)
            if fn.name not in jit or not isinstance(func, ast.Attribute):
                continue
            if func.attr in ("load", "store"):
                for kw in call.keywords:
                    if kw.arg == "eviction_policy":
                        facts.eviction_hints.append(
                            f"{fn.name}:{call.lineno} eviction_policy={ast.unparse(kw.value)}"
                        )
            if func.attr == "inline_asm_elementwise":
                facts.inline_asm.append(f"{fn.name}:{call.lineno}")
    return facts


def static_findings(facts: SourceFacts, f: Findings) -> None:
    f.single_kernel = facts.single_launch
    sites = "; ".join(facts.launch_sites) or "none"
    f.evidence["single_kernel"] = f"static (source): {len(facts.launch_sites)} launch site(s): {sites}"
    f.eviction = bool(facts.eviction_hints)
    f.evidence["eviction"] = "source: " + (
        "; ".join(facts.eviction_hints) or "no eviction_policy= in any jit load/store"
    )
    f.inline_asm = bool(facts.inline_asm)
    f.evidence["inline_asm"] = "source: " + ("; ".join(facts.inline_asm) or "no inline_asm_elementwise call")


# ---------------------------------------------------------------- measured (a GPU, or the interpreter)
def _state_and_packed(dims, dtype, device, nested=True, blocksize=64, seed=0):
    """A real bitsandbytes QuantState if bitsandbytes is here, else quant_formats' NF4State."""
    import torch

    w = (torch.randn(dims, generator=torch.Generator().manual_seed(seed)) * 2).to(device=device, dtype=dtype)
    try:
        import bitsandbytes.functional as bnb

        packed, state = bnb.quantize_4bit(
            w, quant_type="nf4", compress_statistics=nested, blocksize=blocksize
        )
        return packed, state, bnb.dequantize_4bit
    except ImportError:
        from inferlab.kernels.quant_formats import dequantize_nf4_ref, quantize_nf4_ref

        packed, state = quantize_nf4_ref(w, blocksize, nested)
        state.dtype = dtype
        return packed, state, dequantize_nf4_ref


def bit_exact_both_dtypes(device: str) -> tuple[bool, str]:
    import torch

    from inferlab.kernels.nf4 import dequantize_nf4

    cases = [((100, 70), True), ((3, 1001), False), ((1, 1), True), ((64, 4096), True)]
    failures, against = [], ""
    for dtype in (torch.float16, torch.bfloat16):
        for dims, nested in cases:
            packed, state, reference = _state_and_packed(dims, dtype, device, nested)
            against = getattr(reference, "__module__", "")
            if not torch.equal(dequantize_nf4(packed, state), reference(packed, state)):
                failures.append(f"{'x'.join(map(str, dims))} {str(dtype)[6:]} nested={nested}")
    what = f"{2 * len(cases)} cases (fp16, bf16; nested and plain; odd sizes) against {against} on {device}"
    return not failures, what + (f"; differ: {', '.join(failures)}" if failures else ": every bit equal")


def compiles_fullgraph(device: str) -> tuple[bool, str]:
    import torch

    from inferlab.kernels.nf4 import dequantize_nf4

    def f(packed, state):
        return dequantize_nf4(packed, state)

    compiled = torch.compile(f, fullgraph=True)
    for dtype in (torch.float16, torch.bfloat16):
        packed, state, _ = _state_and_packed((128, 256), dtype, device, seed=1)
        try:
            same = torch.equal(compiled(packed, state), f(packed, state))
        except Exception as e:  # a graph break or a compile error is the evidence, not a crash
            return False, f"torch.compile(fullgraph=True) raised {type(e).__name__}: {str(e)[:120]}"
        if not same:
            return False, f"compiled output differs from eager in {str(dtype)[6:]}"
    return True, f"torch.compile(fullgraph=True) ran on {device}: fp16 and bf16 bits equal eager's"


def count_launches() -> tuple[int, list[str]]:
    """CUDA kernels (and memsets/copies) one warm call of dequantize_nf4 puts on the GPU."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from inferlab.kernels.nf4 import dequantize_nf4

    packed, state, _ = _state_and_packed((14336, 4096), torch.float16, "cuda")
    dequantize_nf4(packed, state)  # compile outside the profile
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        dequantize_nf4(packed, state)
        torch.cuda.synchronize()
    names = [e.name for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    return len(names), names


def compiled_ir_facts() -> tuple[int, int]:
    """(lines mentioning eviction, lines with inline asm) in the TTIR of every compiled variant."""
    from inferlab.kernels import nf4

    caches = getattr(nf4._dequantize_nf4_kernel, "device_caches", {})
    ttirs = [k.asm.get("ttir", "") for cache in caches.values() for k in cache[0].values()]
    text = "\n".join(ttirs).lower()
    lines = text.splitlines()
    return sum("evict" in line for line in lines), sum("inline_asm" in line for line in lines)


def time_against_bitsandbytes(full: bool) -> tuple[float | None, str]:
    """sum(bitsandbytes median) / sum(ours) over the NF4 SPEC's bench shapes, fp16 and bf16."""
    import torch

    from inferlab.bench import runner
    from inferlab.bench.providers import providers_for
    from inferlab.kernels.nf4 import SPEC

    rule = runner.FULL if full else runner.QUICK
    providers = providers_for(SPEC, ["inferlab", "bitsandbytes"])
    ours, theirs, lines = 0.0, 0.0, []
    for dtype in (torch.float16, torch.bfloat16):
        for shape in SPEC.bench_shapes:
            measured, _ = runner.measure_shape(SPEC, shape, dtype, providers, rule)
            rows = {r["provider"]: r for r in runner.finish_rows(SPEC, shape, dtype, measured, None)}
            bad = [f"{n}: {r['status']} {r['problems'][:1]}" for n, r in rows.items() if r["status"] != "ok"]
            if bad:
                return None, f"{runner.shape_label(shape)} {str(dtype)[6:]}: {'; '.join(bad)}"
            ours += rows["inferlab"]["cold_us"]["median"]
            theirs += rows["bitsandbytes"]["cold_us"]["median"]
            paired = rows["inferlab"]["speedups"]["bitsandbytes"]
            lines.append(f"{'x'.join(map(str, shape.dims))} {str(dtype)[6:]} {paired['value']:.2f}x")
    method = "harness: CUDA graphs, cold L2 (rotating sets), interleaved rounds"
    return (
        theirs / ours,
        f"{theirs:.0f} us / {ours:.0f} us summed medians; {method}; per shape: {', '.join(lines)}",
    )


# ---------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--static-only", action="store_true", help="read the source only; run nothing")
    parser.add_argument("--full", action="store_true", help="the harness's full stopping rule (slower)")
    args = parser.parse_args(argv)

    from inferlab.kernels import nf4
    from inferlab.kernels.device import select_backend

    backend = select_backend()
    on_gpu = backend.device == "cuda" and not backend.interpreted
    findings = Findings()
    static_findings(inspect_source(Path(nf4.__file__).read_text()), findings)
    ev = findings.evidence
    if not args.static_only and backend.triton_available:
        findings.both_dtypes, ev["both_dtypes"] = bit_exact_both_dtypes(backend.device)
        findings.compiles, ev["compiles"] = compiles_fullgraph(backend.device)
    else:
        ev["both_dtypes"] = ev["compiles"] = "not run (--static-only or no Triton)"
    if on_gpu and not args.static_only:
        launches, names = count_launches()
        findings.single_kernel = launches == 1
        ev["single_kernel"] = f"measured (torch.profiler): {launches} CUDA op(s) per call: {', '.join(names)}"
        evict_lines, asm_lines = compiled_ir_facts()
        findings.eviction = findings.eviction or evict_lines > 0
        ev["eviction"] += f"; TTIR: {evict_lines} line(s) with eviction hints"
        findings.inline_asm = findings.inline_asm or asm_lines > 0
        ev["inline_asm"] += f"; TTIR: {asm_lines} inline asm op(s)"
        findings.speedup, ev["speedup"] = time_against_bitsandbytes(args.full)
    else:
        ev["speedup"] = f"timing and the launch count need a GPU ({backend.reason})"
        ev["single_kernel"] += "; the measured launch count needs a GPU"
    print(f"NF4 puzzle score for inferlab.kernels.nf4.dequantize_nf4 on {backend.label}\n")
    print(render(score(findings)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
