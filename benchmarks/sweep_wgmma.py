"""Sweep the wgmma kernels (w4a16_wgmma.py for int4, nf4_wgmma.py for NF4) per Llama-3-8B layer
and M, beside cuBLAS bf16, the default path and the tl kernels, on an H100/H200 (sm_90 only).

Same method as sweep_w4a16.py (whose helpers it uses): each config is checked against
"dequantize, fp32 matmul, round" first, with the exact-weight allowance (these kernels never
round W the way the reference does), then timed as CUDA-graph replays over enough weight copies
to exceed 3x the L2.

    python3 benchmarks/sweep_wgmma.py [--format int4|nf4] [--m 1,16,32,64] [--layers 4096x14336,...]
    python3 benchmarks/sweep_wgmma.py --tiled --m 64,128,256   # W dequantized into A, M tiled
    python3 benchmarks/sweep_wgmma.py --ws --m 64,128,256      # a producer warp group dequantizes W
    python3 benchmarks/sweep_wgmma.py --ws --format nf4 --m 128,256
    python3 benchmarks/sweep_wgmma.py --ws --step-k 128 --m 64,128   # K steps of 128 (int4 g128)
"""

from __future__ import annotations

import argparse
import functools
import math

import torch
from sweep_w4a16 import DTYPE, copies_for, graph_us, make_weights, reference_and_budget

from inferlab.kernels.nf4_wgmma import nf4_wgmma_matmul
from inferlab.kernels.w4a16 import LLAMA3_8B_LAYERS, config_for
from inferlab.kernels.w4a16_wgmma import WgmmaConfig, available, int4_wgmma_matmul


def tiled_candidates(m: int, fmt: str = "int4") -> list[WgmmaConfig]:
    """W dequantized into A, M tiled. int4 (w4a16_wgmma_tiled.py): weight rows and warp groups, x
    rows per program, stages, words through the ring or in registers; 256-row x tiles take
    64-column steps (registers). NF4 (nf4_wgmma.py, one warp group of 64 rows): x rows, absmax
    blocks per step, stages."""
    if fmt == "nf4":
        return [
            WgmmaConfig(block_n=64, block_m=bm, programs_per_sm=1, stages=st, prepare_x=True,
                        blocks_per_step=b, dequantize_a=True)
            for bm in (64, 128) for b in (1, 2, 4) for st in (2, 3)
        ]  # fmt: skip
    block_ms = [bm for bm in (32, 64, 128, 256) if bm // 2 < m and (m <= 2 * bm or bm == 256)]
    shapes = [(64, 4, st, regs) for st in (3, 4) for regs in (False, True)]
    shapes += [(128, 8, st, True) for st in (3, 4)]
    return [
        WgmmaConfig(block_n=bn, block_m=bm, num_warps=w, programs_per_sm=1, stages=st,
                    step_k=64 if bm == 256 else 128, dequantize_a=True, words_in_registers=regs)
        for bn, w, st, regs in shapes for bm in block_ms
        if not (bm == 256 and bn == 128) and not (bm == 256 and st == 4)
    ]  # fmt: skip


def ws_candidates(m: int, step_k: int | None = None) -> list[WgmmaConfig]:
    """Warp-specialized (w4a16_wgmma_ws.py; int4, or NF4 with the same configs): the x rows of
    one program (the smallest tile that holds M, at most 256, and from 129 rows also 128: each M
    tile dequantizes W again), stages of the ring (a 256-row slot is 52 KB; two dequantizing warp
    groups need an even number), split-K (None: one wave, `plan_splits`), one or two
    dequantizing warp groups. step_k=128 (int4 g128): K steps of two 64-wide sub-tiles, slots
    twice the size, so fewer of them, and K split by the one-wave rule only."""
    fits = next(b for b in (64, 128, 256) if m <= b or b == 256)
    block_ms = (fits, 128) if fits == 256 else (fits,)  # 256 rows also as two 128-row tiles
    stages = {64: (4, 6), 128: (4, 6), 256: (3, 4)}
    if step_k is not None:  # a slot of 128: 57 KB at 64 rows, 73 at 128, 106 at 256
        stages = {64: (3, 4), 128: (2, 3), 256: (2,)}
    splits = (None, 1, 2, 4, 8) if step_k is None else (None,)
    return [
        WgmmaConfig(block_n=128, block_m=bm, num_warps=8, programs_per_sm=1, split_k=split, stages=st,
                    dequantize_a=True, warp_specialized=True, dequantizers=d, step_k=step_k)
        for bm in block_ms for st in stages[bm] for split in splits for d in (1, 2)
        if not (d == 2 and (bm == 256 or st % 2))  # 16 warps: too few registers for 256 rows
    ]  # fmt: skip


def candidates(m: int, fmt: str) -> list[WgmmaConfig]:
    """Around the per-M defaults (WGMMA_CONFIGS): tile, programs per SM, stages of the words'
    ring, and x permuted (and summed) per program or once per call. NF4's kernel takes one warp
    group only."""
    prepared = (False, True) if m > 1 else (False,)
    blocks = (1,)
    if fmt == "nf4":  # longer K steps (several 64-weight absmax blocks), more programs per SM
        tiles, programs, stages, blocks = [(64, 4), (128, 4)], (2, 4), (2, 3), (1, 2, 4)
        prepared = (False, True)
        programs += (6,) if m == 1 else ()
    else:
        tiles, programs, stages = [(64, 4), (128, 4)] if m <= 32 else [(64, 4), (128, 8)], (1, 2), (2, 3, 4)
    return [
        WgmmaConfig(block_n=bn, block_m=8 if m == 1 else 16, num_warps=w, programs_per_sm=p, stages=st,
                    prepare_x=x, blocks_per_step=b)
        for bn, w in tiles for p in programs for x in prepared for st in stages for b in blocks
        if not (x and w != 4)  # prepare_x: one warp group only
    ]  # fmt: skip


def wgmma_call(x, q, config, fmt):
    n = q[1].shape[0] if fmt == "nf4" else q.shape[0]  # NF4: (packed bytes, QuantState)
    out = torch.empty(x.shape[0], n, device=x.device, dtype=x.dtype)
    if fmt == "nf4":
        return nf4_wgmma_matmul(x, q[0], q[1], out, config)
    return int4_wgmma_matmul(x, q, out, config)


def sweep(
    m: int,
    k: int,
    n: int,
    fmt: str,
    tiled: bool = False,
    ws: bool = False,
    verbose: bool = False,
    step_k: int | None = None,
) -> None:
    call, dense, nbytes, clone = make_weights(fmt, n, k)
    weights = [clone() for _ in range(copies_for(nbytes))]
    denses = [dense] * 2
    x = torch.randn(m, k, device="cuda", dtype=DTYPE)
    want, budget, unrounded = reference_and_budget(x, dense)
    budget += unrounded  # the kernel does not round W as the reference does
    cublas = graph_us([functools.partial(torch.mm, x, d.t()) for d in denses])
    default = graph_us([functools.partial(call, x, q, None) for q in weights])
    tl = graph_us([functools.partial(call, x, q, config_for(m, fmt)) for q in weights])
    rows = []
    for c in ws_candidates(m, step_k) if ws else tiled_candidates(m, fmt) if tiled else candidates(m, fmt):
        try:
            err = (wgmma_call(x, weights[0], c, fmt).float() - want).abs().max().item()
        except Exception as e:  # a config that does not build
            print(f"  skip {c.label}: {type(e).__name__}: {str(e).splitlines()[0][:100]}", flush=True)
            continue
        if not err <= budget:
            print(f"  WRONG {c.label}: max error {err:.3g} > {budget:.3g}", flush=True)
            continue
        rows.append((graph_us([functools.partial(wgmma_call, x, q, c, fmt) for q in weights]), c))
        if verbose:
            print(f"    {rows[-1][0]:7.1f} {c.label}", flush=True)
    rows.sort(key=lambda r: r[0])
    best_us, best = rows[0] if rows else (math.nan, None)
    print(
        f"{fmt} {k:>5}->{n:<6} M={m:<3} cuBLAS {cublas:6.1f}  "
        f"default {default:6.1f} ({cublas / default:.2f}x)  "
        f"tl {tl:6.1f} ({cublas / tl:.2f}x)  wgmma {best_us:6.1f} ({cublas / best_us:.2f}x) "
        f"{best.label if best else '-'}",
        flush=True,
    )
    print("        top: " + "; ".join(f"{us:.1f} {c.label}" for us, c in rows[:5]), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--format", choices=("int4", "nf4"), default="int4")
    parser.add_argument("--m", default="1,16,32,64")
    parser.add_argument("--layers", default=",".join(f"{k}x{n}" for k, n, _ in LLAMA3_8B_LAYERS))
    parser.add_argument(
        "--tiled", action="store_true", help="W dequantized into A, M tiled (int4 from 33 rows, NF4 from 65)"
    )
    parser.add_argument(
        "--ws", action="store_true", help="warp-specialized (int4 or NF4): producer warp groups dequantize W"
    )
    parser.add_argument(
        "--step-k", type=int, choices=(128,), help="with --ws: K steps of 128 only (int4 g128, two sub-tiles)"
    )
    parser.add_argument("--verbose", action="store_true", help="print each config's time as it is measured")
    args = parser.parse_args()
    if not available(torch.device("cuda")):
        print("the wgmma kernel needs an sm_90 GPU")
        return 1
    print(torch.cuda.get_device_name(), "torch", torch.__version__)
    for layer in args.layers.split(","):
        k, n = map(int, layer.split("x"))
        for m in map(int, args.m.split(",")):
            sweep(m, k, n, args.format, args.tiled, args.ws, args.verbose, args.step_k)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
