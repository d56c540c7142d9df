"""Time a weight-only matmul's default path beside cuBLAS bf16 per Llama-3-8B layer and M (0007
run 39 onwards): the sweeps' method (check first, CUDA-graph replays over rotating weight copies
that exceed 3x the L2), without the candidates.

    PYTHONPATH=src:benchmarks python3 experiments/0007-weight-only-matmuls/time_defaults.py nf4 [--m 1,16]
"""

import argparse
import functools

import torch
from sweep_w4a16 import DTYPE, copies_for, graph_us, make_weights, reference_and_budget

from inferlab.kernels.w4a16 import LLAMA3_8B_LAYERS

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("format", choices=("int4", "nf4", "int8"))
parser.add_argument("--m", default="1,16,32,64")
parser.add_argument("--layers", default=",".join(f"{k}x{n}" for k, n, _ in LLAMA3_8B_LAYERS[:2]))
args = parser.parse_args()
print(torch.cuda.get_device_name(), "torch", torch.__version__, flush=True)
for layer in args.layers.split(","):
    k, n = map(int, layer.split("x"))
    call, dense, nbytes, clone = make_weights(args.format, n, k)
    weights = [clone() for _ in range(copies_for(nbytes))]
    for m in map(int, args.m.split(",")):
        x = torch.randn(m, k, device="cuda", dtype=DTYPE)
        want, budget, unrounded = reference_and_budget(x, dense)
        err = (call(x, weights[0], None).float() - want).abs().max().item()
        assert err <= budget + unrounded, (layer, m, err, budget + unrounded)
        cublas = graph_us([functools.partial(torch.mm, x, dense.t())] * 2)
        ours = graph_us([functools.partial(call, x, q, None) for q in weights])
        label = f"{args.format} {k:>5}->{n:<6} M={m:<3}"
        print(f"{label} cuBLAS {cublas:6.1f}  default {ours:6.1f}  ({cublas / ours:.2f}x)", flush=True)
