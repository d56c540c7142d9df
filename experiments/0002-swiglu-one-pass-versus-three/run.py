"""Experiment 2: SwiGLU in one pass (our Triton kernel, torch.compile) versus two and three
passes (eager PyTorch ops), on Llama-3-8B's MLP activation for an 8k-token prefill.

`inferlab experiment run experiments/0002-swiglu-one-pass-versus-three` calls `measure`; so does
`python run.py` (with `PYTHONPATH=src` from the repository root).
"""

import torch

from inferlab.bench import runner
from inferlab.bench.providers import Provider, providers_for
from inferlab.kernels.elementwise import SWIGLU_SPEC
from inferlab.kernels.spec import BenchShape

SHAPES = [BenchShape((8192, 14336), "llama-3-8b", "mlp act, prefill 8k tokens: 235 MB per tensor")]


def three_ops(inputs, out):
    """silu(gate) * up as three kernels, each a full pass over HBM: 8 accesses per element."""
    gate, up = inputs["gate"], inputs["up"]
    s = torch.sigmoid(gate)  # pass 1: read gate, write s
    h = gate * s  # pass 2: read gate and s, write h
    return torch.mul(h, up, out=out)  # pass 3: read h and up, write out


def measure(ceilings: dict | None) -> list[dict]:
    """Check, then time, one pass (ours, torch.compile), two (eager torch) and three (torch-3ops)."""
    providers = providers_for(SWIGLU_SPEC, ["inferlab", "torch", "torch.compile"])
    providers.append(Provider("torch-3ops", three_ops, writes_out=True, note="sigmoid, mul, mul"))
    dtype = runner.bench_dtype()  # bf16 on sm_80+, fp16 on a T4: 2 bytes either way
    return runner.run_kernel(SWIGLU_SPEC, SHAPES, providers, ceilings, runner.QUICK, dtype=dtype)


if __name__ == "__main__":  # `python run.py` is `inferlab experiment run <this folder>`
    from inferlab.cli.experiment_commands import run_script_main

    run_script_main(__file__)
