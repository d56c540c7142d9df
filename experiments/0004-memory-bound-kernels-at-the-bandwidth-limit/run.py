"""Experiment 4: the memory-bound kernels against every registered baseline, at their SPECs'
Llama-3-8B benchmark shapes (what `inferlab bench swiglu swiglu_fused softmax rmsnorm
rmsnorm_residual rope` times, with the full stop rule).

`inferlab experiment run experiments/0004-memory-bound-kernels-at-the-bandwidth-limit` calls
`measure`; so does `python run.py` (with `PYTHONPATH=src` from the repository root).
"""

from inferlab.bench import runner


def measure(ceilings: dict | None) -> list[dict]:
    """Check, then time, each kernel and its baselines (torch, torch.compile, Liger)."""
    return runner.run_registered(
        ["swiglu", "swiglu_fused", "softmax", "rmsnorm", "rmsnorm_residual", "rope"], ceilings, runner.FULL
    )


if __name__ == "__main__":  # `python run.py` is `inferlab experiment run <this folder>`
    from inferlab.cli.experiment_commands import run_script_main

    run_script_main(__file__)
