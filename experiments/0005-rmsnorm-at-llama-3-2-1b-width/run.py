"""Experiment 5: RMSNorm at Llama-3.2-1B width, 16k-token prefill

`inferlab experiment run experiments/0005-rmsnorm-at-llama-3-2-1b-width` imports this file and
calls `measure(ceilings)` on a GPU: the harness checks every provider against the SPEC's
reference, then times the correct ones (cold L2, CUDA-graph replays, interleaved rounds) and
returns one row per provider and shape. Nothing runs at import.
"""

from inferlab.bench import runner
from inferlab.bench.providers import providers_for
from inferlab.kernels import get_spec
from inferlab.kernels.spec import BenchShape

SPEC = get_spec("rmsnorm")  # what to time: a kernel of the registry, or a KernelSpec of your own
SHAPES = [BenchShape((16384, 2048), "llama-3.2-1b", "input_layernorm, prefill 16k tokens")]


def measure(ceilings: dict | None) -> list[dict]:
    """Check, then time, ours and eager PyTorch at each shape: the harness's rows."""
    providers = providers_for(SPEC, ["inferlab", "torch", "torch.compile", "liger"])
    return runner.run_kernel(SPEC, SHAPES, providers, ceilings, runner.QUICK, dtype=runner.bench_dtype())


if __name__ == "__main__":  # `python run.py` is `inferlab experiment run <this folder>`
    from inferlab.cli.experiment_commands import run_script_main

    run_script_main(__file__)
