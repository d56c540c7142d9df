"""Experiment 6: flash attention and paged decode attention against torch SDPA, at their SPECs'
Llama-3-8B benchmark shapes (what `inferlab bench flash_attention paged_decode_attention --quick`
times).

`inferlab experiment run experiments/0006-attention-flash-and-paged-decode` calls
`measure`; so does `python run.py` (with `PYTHONPATH=src` from the repository root).
"""

from inferlab.bench import runner


def measure(ceilings: dict | None) -> list[dict]:
    """Check, then time, each kernel and its baselines (torch SDPA's backends, dense SDPA)."""
    return runner.run_registered(["flash_attention", "paged_decode_attention"], ceilings, runner.QUICK)


if __name__ == "__main__":  # `python run.py` is `inferlab experiment run <this folder>`
    from inferlab.cli.experiment_commands import run_script_main

    run_script_main(__file__)
