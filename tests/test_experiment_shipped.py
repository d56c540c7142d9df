"""The experiments shipped in `experiments/`: each README is valid with reasoned predictions, and
each run.py's providers compute the right answer (on CPU, through Triton's interpreter, at small
sizes) before any GPU time is spent on them."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from inferlab.kernels.spec import TOLERANCES, random_tensor
from inferlab.lab.experiment_results import load_run_script
from inferlab.lab.experiments import read_experiment

SHIPPED = Path(__file__).parents[1] / "experiments"
EVERY = sorted(p for p in SHIPPED.iterdir() if p.is_dir() and p.name[:4].isdigit())
FOLDERS = [f for f in EVERY if f.name[:4] in ("0001", "0002", "0003")]  # made to be rerun anywhere


def _load(prefix: str):
    (folder,) = [f for f in FOLDERS if f.name.startswith(prefix)]
    if prefix == "0003":  # the NF4 kernel lands in its own commit
        pytest.importorskip("inferlab.kernels.nf4", reason="inferlab.kernels.nf4 is not in this checkout yet")
    return load_run_script(read_experiment(folder))


def test_at_least_three_are_shipped():
    assert [f.name[:4] for f in FOLDERS] == ["0001", "0002", "0003"]


@pytest.mark.parametrize("folder", EVERY, ids=[f.name for f in EVERY])
def test_every_shipped_readme_is_valid(folder):
    assert read_experiment(folder).predictions


@pytest.mark.parametrize("folder", FOLDERS, ids=[f.name for f in FOLDERS])
def test_each_has_reasoned_predictions_and_a_method(folder):
    exp = read_experiment(folder)
    assert exp.status in ("predicted", "measured", "concluded")
    assert len(exp.predictions) >= 5 and all(p.why for p in exp.predictions)
    if folder.name[:4] in ("0001", "0002", "0003"):
        assert not exp.needs_bf16  # the three teaching experiments run on a free T4 too
    headings = [line for line in exp.body.splitlines() if line.startswith("## ")]
    assert headings == ["## Question", "## Prediction", "## Method", "## Result", "## Conclusion"]
    prediction = exp.body.split("## Prediction", 1)[1].split("## Method", 1)[0]
    assert "TB/s" in prediction and "MB" in prediction  # napkin math: bytes over bandwidth
    assert callable(_load(folder.name[:4]).measure)


def _inputs(names, dims, dtype, device, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return {name: random_tensor(dims, dtype, device, gen) for name in names}


def test_vector_add_launch_configurations_compute_x_plus_y(device):
    run = _load("0001")
    inputs = _inputs(("x", "y"), (3000,), torch.float32, device)  # not a multiple of any BLOCK_SIZE
    for block_size, num_warps in [(64, 4), (16384, 4), (1024, 1)]:
        provider = run.add_with(block_size, num_warps)
        out = torch.full_like(inputs["x"], float("nan"))
        assert provider.fn(inputs, out) is out and provider.writes_out
        torch.testing.assert_close(out, inputs["x"] + inputs["y"])


def test_swiglu_in_three_ops_matches_the_reference(device):
    from inferlab.kernels.elementwise import swiglu_ref

    run = _load("0002")
    inputs = _inputs(("gate", "up"), (4, 1000), torch.float16, device)
    out = torch.empty_like(inputs["gate"])
    got = run.three_ops(inputs, out)
    tol = TOLERANCES[torch.float16]
    assert got is out
    torch.testing.assert_close(got, swiglu_ref(**inputs), rtol=2 * tol.rtol, atol=tol.atol)


def test_nf4_decoders_agree_with_the_reference(device):
    run = _load("0003")
    dims, gen = (3, 1000), torch.Generator().manual_seed(0)
    inputs = run.SPEC.make_inputs(dims, torch.float16, torch.device(device), gen)
    want = run.SPEC.reference(**inputs)
    out = torch.full(dims, float("nan"), dtype=torch.float16, device=device)
    assert torch.equal(run.decoding_with("inferlab", run.dequantize_nf4).fn(inputs, out), want)
    bnb = run.make_provider("bitsandbytes", run.bitsandbytes_provider, run.SPEC)
    assert bnb.name == "bitsandbytes"  # built, or Unavailable with the reason: never a crash
    if hasattr(bnb, "fn") and device == "cuda":  # its out= variant has no CPU kernel
        out = torch.full(dims, float("nan"), dtype=torch.float16, device=device)
        assert torch.equal(bnb.fn(inputs, out), want)
