"""Experiment 4: the memory-bound kernels against every registered baseline, at their SPECs'
Llama-3-8B benchmark shapes (what `inferlab bench swiglu swiglu_fused softmax rmsnorm
rmsnorm_residual rope` times, with the full stop rule).

`inferlab experiment run experiments/0004-memory-bound-kernels-at-the-bandwidth-limit` calls
`measure`; so does `python run.py` (with `PYTHONPATH=src` from the repository root).
"""

from inferlab.bench import runner
from inferlab.bench.providers import providers_for
from inferlab.kernels import get_spec

KERNELS = ("swiglu", "swiglu_fused", "softmax", "rmsnorm", "rmsnorm_residual", "rope")


def measure(ceilings: dict | None) -> list[dict]:
    """Check, then time, each kernel and its baselines (torch, torch.compile, Liger)."""
    rows = []
    for name in KERNELS:
        spec = get_spec(name)
        rows += runner.run_kernel(
            spec,
            list(spec.bench_shapes),
            providers_for(spec),
            ceilings,
            runner.FULL,
            dtype=runner.bench_dtype(),
        )
    return rows


if __name__ == "__main__":  # `python run.py` is `inferlab experiment run <this folder>`
    from inferlab.cli.experiment_commands import run_script_main

    run_script_main(__file__)
