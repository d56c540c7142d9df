"""Exploratory sweep (not a claim): SwiGLU launch configs on the GPU machine.

Times swiglu and swiglu_fused at Llama-3-8B prefill (8192x14336, 705 MB: far past L2) with
triton.testing.do_bench medians, and at decode (1 and 64 tokens) as CUDA-graph replays of 100
calls (warm L2: only the relative order of configs means anything there). Claims come from the
harness (`inferlab bench`), which reruns the chosen config side by side with the baselines.

Usage on the GPU machine: PYTHONPATH=src python3 benchmarks/sweeps/swiglu_configs.py
"""

# ruff: noqa: B023  (each lambda is timed inside the loop iteration that made it)
import torch
import triton.testing

import inferlab.kernels.elementwise as ew


def graph_time_us(fn, calls=100):
    fn()
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for _ in range(calls):
            fn()
    return triton.testing.do_bench(g.replay, return_mode="median") * 1e3 / calls


def main():
    dt = torch.bfloat16
    compiled_split = torch.compile(lambda g, u: torch.nn.functional.silu(g) * u, dynamic=False)
    compiled_fused = torch.compile(
        lambda gu: torch.nn.functional.silu(gu.chunk(2, -1)[0]) * gu.chunk(2, -1)[1], dynamic=False
    )
    rows = []
    for tokens in (1, 64, 8192):
        g = torch.randn(tokens, 14336, device="cuda", dtype=dt)
        u = torch.randn_like(g)
        gu = torch.randn(tokens, 2 * 14336, device="cuda", dtype=dt)
        timer = (
            (lambda f: triton.testing.do_bench(f, return_mode="median") * 1e3)
            if tokens == 8192
            else graph_time_us
        )
        rows.append((tokens, "torch.compile", "split", timer(lambda: compiled_split(g, u))))
        rows.append((tokens, "torch.compile", "fused", timer(lambda: compiled_fused(gu))))
        for block, warps in ((1024, 4), (2048, 4), (2048, 8), (4096, 8), (4096, 16), (512, 2)):
            ew.BLOCK_SIZE, ew.NUM_WARPS = block, warps
            out = torch.empty_like(g)
            rows.append((tokens, f"ours {block}/{warps}", "split", timer(lambda: ew.swiglu(g, u, out=out))))
            rows.append(
                (tokens, f"ours {block}/{warps}", "fused", timer(lambda: ew.swiglu_fused(gu, out=out)))
            )
    gbytes = {t: 3 * t * 14336 * 2 / 1e9 for t in (1, 64, 8192)}
    print(f"{'tokens':>6} {'provider':<16} {'variant':<6} {'us':>9} {'GB/s':>7}")
    for tokens, who, variant, us in rows:
        print(f"{tokens:>6} {who:<16} {variant:<6} {us:>9.2f} {gbytes[tokens] / (us * 1e-6):>7.0f}")


if __name__ == "__main__":
    main()
