"""Split-K for the int4 tiled wgmma kernel on the small Llama-3-8B layers (0007 run 55): the
default config of each M with split_k forced (None: the rule, `split_k_for` at
programs_per_sm), beside cuBLAS bf16; the sweeps' method (check first, CUDA-graph replays over
rotating weight copies that exceed 3x the L2).

    PYTHONPATH=src:benchmarks python3 experiments/0007-weight-only-matmuls/sweep_tiled_splits.py
"""

import dataclasses
import functools

import torch
from sweep_w4a16 import DTYPE, copies_for, graph_us, make_weights, reference_and_budget

from inferlab.kernels._matmul_plan import wgmma_config_for
from inferlab.kernels.w4a16_wgmma import int4_wgmma_matmul, plan_splits


def run(x, q, n, config):
    out = torch.empty(x.shape[0], n, device="cuda", dtype=DTYPE)
    return int4_wgmma_matmul(x, q, out, config)


print(torch.cuda.get_device_name(), "torch", torch.__version__, flush=True)
for k, n in ((4096, 4096), (4096, 1024)):
    call, dense, nbytes, clone = make_weights("int4", n, k)
    weights = [clone() for _ in range(copies_for(nbytes))]
    for m in (64, 128, 256):
        x = torch.randn(m, k, device="cuda", dtype=DTYPE)
        want, budget, _ = reference_and_budget(x, dense)
        cublas = graph_us([functools.partial(torch.mm, x, dense.t())] * 2)
        base = wgmma_config_for(m)
        line = f"int4 {k:>5}->{n:<5} M={m:<3} cuBLAS {cublas:5.1f}"
        for split, per_sm in ((None, 1), (None, 2), (1, 1), (2, 1), (4, 1), (8, 1), (16, 1)):
            config = dataclasses.replace(base, split_k=split, programs_per_sm=per_sm)
            err = (run(x, weights[0], n, config).float() - want).abs().max().item()
            if not err <= budget:
                line += f" | split {split} WRONG {err:.3g}"
                continue
            out = torch.empty(m, n, device="cuda", dtype=DTYPE)
            m_tiles = -(-m // config.block_m)
            step_k = min(config.step_k or 128, 128)
            _, used, _, _ = plan_splits(config, m, n, k // step_k, out, m_tiles)
            us = graph_us([functools.partial(run, x, q, n, config) for q in weights])
            line += f" | {split or 'rule'}/{per_sm} ({used}) {us:5.1f}"
        print(line, flush=True)
