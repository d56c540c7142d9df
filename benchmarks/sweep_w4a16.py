"""Sweep the weight-only matmuls' configs per Llama-3-8B layer and M, against cuBLAS bf16 (GPU only).

Every candidate is checked first (against "dequantize, fp32 matmul, round"; allowed twice the error
of torch.mm in bf16 on the same weight), then timed as CUDA-graph replays of calls that rotate
through enough weight copies to exceed 3x the L2, so the weight always comes from HBM, as in a
model whose layers do not fit in L2. One graph per candidate, the median of 15 replays.

This picks the configs that `_matmul_plan.py` then hard-codes; the harness (`inferlab bench`) gives the
numbers that are reported, with intervals and side-by-side baselines.

    python3 benchmarks/sweep_w4a16.py [int4|nf4|int8 ...] [--m 1,16,64]
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import functools
import math
import statistics
import sys

import torch

from inferlab.bench.timing import capture, event_ms, l2_bytes
from inferlab.kernels.quant_formats import (
    dequantize_int4_ref,
    dequantize_int8_ref,
    dequantize_nf4_ref,
    quantize_int4,
    quantize_int8,
    quantize_nf4_ref,
)
from inferlab.kernels.w4a16 import (
    DEQUANT_FORMATS,
    FMA_CONFIGS,
    GEMV_MAX_M,
    LLAMA3_8B_LAYERS,
    MatmulConfig,
    choose_path,
    config_for,
    int8_matmul,
    nf4_matmul,
    plan_launch,
    w4a16_matmul,
)
from inferlab.kernels.w4a16_dequant import int4_weight_t, nf4_weight

DTYPE = torch.bfloat16
REPLAYS = 15
MAX_COPIES = 64


def fma_candidates(fmt: str, m: int) -> list[MatmulConfig]:
    """CUDA-core GEMV: one row of x per program, so the weight is read once per row."""
    if m > 8:
        return []
    if fmt == "nf4":  # one 64-weight quantization block per K step
        tiles = [(bn, 64) for bn in (32, 64, 128, 256)]
    elif fmt == "int4":
        tiles = [(bn, bk) for bn in (64, 128, 256) for bk in (128, 256) if bn * bk <= 128 * 256]
    else:
        tiles = [(bn, bk) for bn in (16, 32, 64) for bk in (128, 256, 512) if bn * bk <= 64 * 256]
    out = [MatmulConfig(1, bn, bk, 1, w, 1, fma=True) for bn, bk in tiles for w in (4, 8)]
    out += [MatmulConfig(1, *tiles[1], 1, 4, 1, split_k=s, fma=True) for s in (1, 2, 4, 8, 16)]
    if fmt in FMA_CONFIGS:  # the default's tile with other split-K targets (programs per SM)
        out += [dataclasses.replace(FMA_CONFIGS[fmt], programs_per_sm=p) for p in (1, 2, 3, 6, 8)]
        half_k = FMA_CONFIGS[fmt].block_k // 2
        out += [dataclasses.replace(FMA_CONFIGS[fmt], block_k=half_k, programs_per_sm=p) for p in (2, 4, 8)]
    return out


def gemv_candidates(fmt: str, m: int) -> list[MatmulConfig]:
    swap = [
        MatmulConfig(16, bn, bk, 1, w, st, swap_ab=True, planes=False)
        for bn in (64, 128) for bk in (128, 256) for w, st in ((4, 3), (4, 4), (8, 4))
    ]  # fmt: skip
    swap += [MatmulConfig(16, 64, 128, 1, 4, 4, split_k=s, swap_ab=True, planes=False) for s in (1, 2, 4, 8)]
    plain = [MatmulConfig(16, bn, bk, 1, 4, 4, planes=False) for bn in (32, 64, 128) for bk in (128, 256)]
    if fmt == "int4":
        plain += [MatmulConfig(16, 64, 128, 1, 4, 4), MatmulConfig(16, 128, 256, 1, 4, 4)]  # planes
    return fma_candidates(fmt, m) + swap + plain


def tiled_candidates(fmt: str, m: int) -> list[MatmulConfig]:
    out = [
        MatmulConfig(bm, bn, bk, 8, w, st, planes=False)
        for bm in (32, 64, 128) for bn in (64, 128, 256) for bk in (64, 128) for w, st in ((4, 3), (8, 3))
        if bm <= max(32, m) and bm * bn <= 128 * 128 and (w == 8) == (bm * bn >= 128 * 128)
    ]  # fmt: skip
    out += [
        MatmulConfig(bm, bn, 128, 8, 4, 3, swap_ab=True, planes=False)
        for bm in (32, 64) for bn in (64, 128) if bm <= m
    ]  # fmt: skip
    if fmt == "int4":
        out += [MatmulConfig(min(64, m), 128, 128, 8, 4, 3)]  # planes
    if m >= 64:  # 8 warps: the 4-warp 128x64 tile spilled (255 registers); deeper pipelines
        out += [
            MatmulConfig(bm, bn, bk, 8, 8, st, planes=False)
            for bm, bn in ((64, 128), (128, 64), (128, 128), (64, 256))
            for bk in (64, 128) for st in (2, 3, 4) if bm <= m
        ]  # fmt: skip
    return out


def make_weights(fmt: str, n: int, k: int):
    """(call(x, weights, config), dense bf16 weight, one copy's bytes, make a copy)."""
    w = torch.randn(n, k, device="cuda")
    if fmt == "int4":
        qw = quantize_int4(w, 128, scale_dtype=DTYPE)
        dense = dequantize_int4_ref(qw, DTYPE)
        nbytes = qw.qweight.nbytes + qw.scales.nbytes + qw.zeros.nbytes
        return (lambda x, q, c: w4a16_matmul(x, q, config=c)), dense, nbytes, lambda: _clone_int4(qw)
    if fmt == "nf4":
        packed, state = quantize_nf4_ref(w, 64)
        state.dtype = DTYPE
        dense = dequantize_nf4_ref(packed, state)
        nbytes = packed.nbytes + state.absmax.nbytes
        clone = functools.partial(_clone_nf4, packed, state)
        return (lambda x, q, c: nf4_matmul(x, q[0], q[1], config=c)), dense, nbytes, clone
    q, scale = quantize_int8(w)
    dense = dequantize_int8_ref(q, scale, DTYPE)
    return (lambda x, q, c: int8_matmul(x, *q, config=c)), dense, q.nbytes, lambda: (q.clone(), scale)


def _clone_int4(qw):
    return dataclasses.replace(
        qw, qweight=qw.qweight.clone(), scales=qw.scales.clone(), zeros=qw.zeros.clone()
    )


def _clone_nf4(packed, state):
    state = copy.copy(state)
    state.absmax = state.absmax.clone()  # the per-block codes travel with the weight
    return packed.clone(), state


def copies_for(nbytes: int) -> int:
    return min(MAX_COPIES, max(2, math.ceil(3 * l2_bytes() / nbytes)))


def graph_us(calls) -> float:
    """Median µs per call of a CUDA graph that makes every call in `calls` (repeated to ~1 ms)."""
    per_pass = event_ms(lambda: [c() for c in calls]) * 1000
    passes = max(1, math.ceil(1000 / max(per_pass, 1.0)))
    graph = capture(lambda: [c() for _ in range(passes) for c in calls])
    graph.replay()
    samples = [event_ms(graph.replay) for _ in range(REPLAYS)]
    return statistics.median(samples) * 1000 / (passes * len(calls))


def dequant_then_mm(fmt: str, x: torch.Tensor, weights) -> torch.Tensor:
    if fmt == "int4":
        return torch.mm(x, int4_weight_t(weights, x.dtype))
    return torch.mm(x, nf4_weight(*weights, x.dtype).t())


def other_reduction_us(call, x, weights, config) -> float:
    """The config timed with split-K's other reduction (second launch <-> last split)."""
    other = dataclasses.replace(config, reduce_in_kernel=not config.reduce_in_kernel)
    return graph_us([functools.partial(call, x, q, other) for q in weights])


def reference_and_budget(x: torch.Tensor, dense: torch.Tensor) -> tuple[torch.Tensor, float, float]:
    """(want, budget, unrounded): the rounded fp32 product on the dequantized weight; the allowed
    max error, twice torch.mm's own error in bf16 plus one bf16 step at the largest output; and
    the extra allowance for kernels that never round W (the CUDA-core GEMV, the wgmma kernel),
    whose results differ by the weights' roundings, which follow the output's rms (the SPECs'
    error_scales_with_rms)."""
    want = (x.float() @ dense.float().t()).to(DTYPE).float()
    budget = 2 * (torch.mm(x, dense.t()).float() - want).abs().max().item()
    budget += want.abs().max().item() * 2**-8
    return want, budget, 0.016 * want.pow(2).mean().sqrt().item()


def sweep_shape(
    fmt, call, weights, denses, m: int, k: int, n: int, fma_only: bool = False, ab_reduce: bool = False
) -> None:
    """Check and time every candidate at one (layer, M); print the best beside cuBLAS and the default."""
    x = torch.randn(m, k, device="cuda", dtype=DTYPE)
    dense = denses[0]
    want, budget, unrounded = reference_and_budget(x, dense)
    cublas = graph_us([functools.partial(torch.mm, x, d.t()) for d in denses])
    results = []
    candidates = gemv_candidates(fmt, m) if m <= 16 else tiled_candidates(fmt, m)
    if fma_only:  # at M <= 16 the CUDA-core GEMV alone; past 16 only the default and dequant
        candidates = fma_candidates(fmt, m) if m <= 16 else []
    for c in [None, *candidates]:
        name = c.label if c else "default"
        try:
            err = (call(x, weights[0], c).float() - want).abs().max().item()
        except Exception as e:  # a config Triton cannot build (shared memory, layouts)
            print(f"  skip {name}: {type(e).__name__}: {str(e).splitlines()[0][:90]}", flush=True)
            continue
        # the default may be the CUDA-core GEMV or (int4 on sm_90) the wgmma kernel
        exact_w = c.fma if c else choose_path(m, fmt, device=x.device) in ("fma", "wgmma")
        allowed = budget + (unrounded if exact_w else 0.0)
        if not err <= allowed:
            print(f"  WRONG {name}: max error {err:.3g} > {allowed:.3g}", flush=True)
            continue
        results.append((graph_us([functools.partial(call, x, q, c) for q in weights]), c))
        cfg = c or config_for(m, fmt)
        if ab_reduce and plan_launch(m, n, k, x.device, cfg).split_k > 1:
            other = other_reduction_us(call, x, weights, cfg)
            last, second = (results[-1][0], other) if cfg.reduce_in_kernel else (other, results[-1][0])
            print(f"        {name}: {last:.1f} us reduced by the last split, {second:.1f} by a second launch")
    default = next((us for us, c in results if c is None), math.nan)
    if fmt in DEQUANT_FORMATS and m > GEMV_MAX_M:  # dequantize once, then cuBLAS: at any M past 16
        dequant = graph_us([functools.partial(dequant_then_mm, fmt, x, q) for q in weights])
        print(f"        dequantize + cuBLAS: {dequant:.1f} us ({cublas / dequant:.2f}x cuBLAS)", flush=True)
    ranked = sorted((r for r in results if r[1]), key=lambda r: r[0])
    best_us, best = ranked[0] if ranked else (math.nan, None)
    label = "none ran" if best is None else best.label
    split = plan_launch(m, n, k, x.device, best).split_k if best else "-"
    print(
        f"{fmt:>4} {k:>5}->{n:<6} {m:>4} {cublas:>7.1f} {default:>8.1f} {best_us:>7.1f} "
        f"{cublas / best_us:>7.2f}x  {label} (split {split}; default {config_for(m, fmt).label})",
        flush=True,
    )
    print("        top: " + "; ".join(f"{us:.1f} {c.label}" for us, c in ranked[:4]), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("formats", nargs="*", default=["int4", "nf4", "int8"])
    parser.add_argument("--m", default="1,16,32,64,128,256", help="token counts, comma-separated")
    parser.add_argument(
        "--fma-only", action="store_true", help="no tensor-core candidates (the CUDA-core GEMV at M <= 16)"
    )
    parser.add_argument(
        "--ab-reduce", action="store_true", help="time every split candidate with the other reduction too"
    )
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"{'fmt':>4} {'layer':>12} {'M':>4} {'cuBLAS':>7} {'default':>8} {'best':>7} {'x cuBLAS':>8}  best")
    for fmt in args.formats:
        for k, n, _ in LLAMA3_8B_LAYERS:
            call, dense, nbytes, clone = make_weights(fmt, n, k)
            weights = [clone() for _ in range(copies_for(nbytes))]
            denses = [dense] + [dense.clone() for _ in range(copies_for(dense.nbytes) - 1)]
            for m in (int(v) for v in args.m.split(",")):
                sweep_shape(fmt, call, weights, denses, m, k, n, args.fma_only, args.ab_reduce)
            del weights, denses
            torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
