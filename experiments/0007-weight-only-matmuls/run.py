"""Experiment 7: the weight-only quantized matmuls (int4 g128, NF4, int8) against cuBLAS bf16 on
the dequantized weight, torch's int4 kernel and bitsandbytes, at Llama-3-8B layer shapes (what
`inferlab bench w4a16_matmul nf4_matmul int8_matmul --quick` times).

`inferlab experiment run experiments/0007-weight-only-matmuls` calls `measure`; so does
`python run.py` (with `PYTHONPATH=src` from the repository root). The config search is
`benchmarks/sweep_w4a16.py` (its logs are in logs/).
"""

from inferlab.bench import runner


def measure(ceilings: dict | None) -> list[dict]:
    """Check, then time, each kernel and its baselines at every Llama-3-8B layer and M."""
    return runner.run_registered(["w4a16_matmul", "nf4_matmul", "int8_matmul"], ceilings, runner.QUICK)


if __name__ == "__main__":  # `python run.py` is `inferlab experiment run <this folder>`
    from inferlab.cli.experiment_commands import run_script_main

    run_script_main(__file__)
