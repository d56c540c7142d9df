"""Experiment 3: NF4 dequantize, ours (`inferlab.kernels.nf4.dequantize_nf4`) versus
bitsandbytes' `dequantize_4bit`, decoding the same QuantState into the same fp16 buffer.

`inferlab experiment run experiments/0003-nf4-dequantize-versus-bitsandbytes` calls `measure`;
so does `python run.py` (with `PYTHONPATH=src` from the repository root).
"""

import torch

from inferlab.bench import runner
from inferlab.bench.providers import Provider, make_provider
from inferlab.kernels.nf4 import SPEC, dequantize_nf4, state_from_inputs
from inferlab.kernels.spec import BenchShape

SHAPES = [
    BenchShape((14336, 4096), "llama-3-8b", "gate/up proj weight: 148 MB moved in fp16"),
    BenchShape((4096, 4096), "llama-3-8b", "q/o proj weight: 42 MB moved, under an H100's L2"),
]


def decoding_with(name: str, dequantize) -> Provider:
    """A provider that decodes the SPEC's NF4 inputs with `dequantize(weight, quant_state, out=)`."""

    def call(inputs, out):
        state = state_from_inputs(inputs, out.shape, out.dtype)  # the fields both libraries read
        return dequantize(inputs["weight"], state, out=out)

    return Provider(name, call, writes_out=True)


def bitsandbytes_provider(spec) -> Provider:
    import bitsandbytes.functional as bnb  # an ImportError makes it "unavailable", not a crash

    return decoding_with("bitsandbytes", bnb.dequantize_4bit)


def measure(ceilings: dict | None) -> list[dict]:
    """Check, then time, both decoders at each shape (fp16 out: runs on a T4 too)."""
    providers = [
        decoding_with("inferlab", dequantize_nf4),
        make_provider("bitsandbytes", bitsandbytes_provider, SPEC),
    ]
    return runner.run_kernel(SPEC, SHAPES, providers, ceilings, runner.QUICK, dtype=torch.float16)


if __name__ == "__main__":  # `python run.py` is `inferlab experiment run <this folder>`
    from inferlab.cli.experiment_commands import run_script_main

    run_script_main(__file__)
