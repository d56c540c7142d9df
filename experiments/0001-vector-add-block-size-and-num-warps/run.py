"""Experiment 1: vector add bandwidth versus BLOCK_SIZE and num_warps (lesson 1).

Lesson 1's `_add_kernel`, launched with other BLOCK_SIZE and num_warps than the shipped launcher
(1024 elements, 4 warps), on 2^26 fp32 elements: 805 MB moved per call. Each configuration is a
provider of the benchmark harness, so it is checked against `add_ref` on the very inputs it is
then timed on (cold L2, CUDA-graph replays, interleaved rounds).

`inferlab experiment run experiments/0001-vector-add-block-size-and-num-warps` calls `measure`;
so does `python run.py` (with `PYTHONPATH=src` from the repository root).
"""

import torch

from inferlab.bench import runner
from inferlab.bench.providers import Provider, providers_for
from inferlab.kernels._triton import triton
from inferlab.kernels.elementwise import ADD_SPEC, _add_kernel
from inferlab.kernels.spec import BenchShape

SHAPES = [BenchShape((1 << 26,), "synthetic", "64M fp32 elements: 805 MB per call, 16x an H100's L2")]
BLOCK_SIZES = (64, 256, 4096, 16384)  # at 4 warps; the shipped 1024 x 4 is the `inferlab` provider
NUM_WARPS = (1, 2, 8, 16)  # at BLOCK_SIZE 1024


def add_with(block_size: int, num_warps: int) -> Provider:
    """`_add_kernel` launched with these meta-parameters, writing the `out` it is given."""

    def launch(inputs, out):
        x, y = inputs["x"], inputs["y"]
        n = x.numel()
        grid = (triton.cdiv(n, block_size),)  # one program per block_size elements
        _add_kernel[grid](x, y, out, n, BLOCK_SIZE=block_size, num_warps=num_warps)
        return out

    return Provider(f"block{block_size}-warps{num_warps}", launch, writes_out=True)


def measure(ceilings: dict | None) -> list[dict]:
    """Check, then time, the shipped launcher, eight other launch configurations and torch."""
    configs = [(b, 4) for b in BLOCK_SIZES] + [(1024, w) for w in NUM_WARPS]
    providers = providers_for(ADD_SPEC, ["inferlab", "torch"])
    providers += [add_with(b, w) for b, w in configs]
    return runner.run_kernel(ADD_SPEC, SHAPES, providers, ceilings, runner.QUICK, dtype=torch.float32)


if __name__ == "__main__":  # `python run.py` is `inferlab experiment run <this folder>`
    from inferlab.cli.experiment_commands import run_script_main

    run_script_main(__file__)
