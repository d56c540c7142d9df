"""`experiment new|list|show|run` and `import` end to end. The GPU part of `run` is replaced by
a synthetic payload, so everything after the measurement (result file, README, backup, budget,
bundle, import into another lab) is tested on CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

from inferlab.bench.runner import Measured, finish_rows
from inferlab.cli import experiment_commands
from inferlab.kernels import get_spec
from inferlab.kernels.spec import BenchShape
from inferlab.lab import Lab, list_results
from inferlab.lab.budget import read_ledger
from inferlab.lab.experiment_results import RESULT_BEGIN, experiment_payload
from inferlab.lab.experiments import BACKUP_DIRNAME, read_experiment
from inferlab.lab.frontmatter import read_document, render_document

runner = CliRunner()
PREDICTIONS = [
    {"metric": "time_us", "provider": "inferlab", "value": 100, "unit": "us", "why": "napkin"},
    {"metric": "speedup", "vs": "torch", "value": 1.2, "unit": "x", "tolerance": 0.1},
]


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    experiment_commands.register(app)
    return app


def invoke(app, *args: str):
    result = runner.invoke(app, list(args), terminal_width=200)
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def _fake_payload(exp, lab, provider) -> dict:
    rng = np.random.default_rng(0)

    def measured(name, us):
        samples = list(rng.normal(us, us * 0.002, 30))
        return Measured(name, "ok", [], "cuda-graph", 0.1, samples, samples, [us])

    spec, shape = get_spec("add"), BenchShape((1 << 26,), "synthetic", "64M")
    rows = finish_rows(spec, shape, torch.bfloat16, [measured("inferlab", 130), measured("torch", 150)], None)
    environment = {"gpu": {"name": "NVIDIA H100 80GB HBM3", "capability": "9.0"}, "torch": "2.11"}
    return experiment_payload(exp, rows, environment, None, {}, "2026-11-26T12:00:00+00:00", 90.0, provider)


def _predict(exp_folder: Path) -> None:
    doc = read_document(exp_folder / "README.md")
    fields = {**doc.fields, "status": "predicted", "predictions": PREDICTIONS}
    (exp_folder / "README.md").write_text(render_document(fields, doc.body))


def test_new_list_show(app):
    made = invoke(app, "experiment", "new", "Vector add: BLOCK_SIZE sweep", "--lesson", "1").output
    assert "Made experiment 1" in made
    invoke(app, "experiment", "new", "SwiGLU fusion", "--device-wanted", "h100")
    listing = invoke(app, "experiment", "list").output
    assert "Vector add: BLOCK_SIZE sweep" in listing and "SwiGLU fusion" in listing and "planned" in listing
    _predict(Lab.open().experiments_dir / "0002-swiglu-fusion")
    shown = invoke(app, "experiment", "show", "2").output
    assert "#2 SwiGLU fusion" in shown and "provider=inferlab" in shown and "±10%" in shown
    assert "Question" in shown
    refused = runner.invoke(app, ["experiment", "new", "x", "--device-wanted", "a100"])
    assert refused.exit_code != 0 and "unknown device" in str(refused.exception)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU refusal")
def test_run_without_a_gpu_says_one_sentence_and_changes_nothing(app):
    invoke(app, "experiment", "new", "Add")
    lab = Lab.open()
    readme = next(lab.experiments_dir.iterdir()) / "README.md"
    before = readme.read_bytes()
    result = runner.invoke(app, ["experiment", "run", "1"])
    assert result.exit_code != 0
    assert str(result.exception) == (
        "this experiment needs a CUDA GPU and none is usable here: run it on a free T4 with "
        "`inferlab notebook 1 --target kaggle`."
    )
    assert readme.read_bytes() == before and list_results(lab) == [] and read_ledger(lab) == []
    # `python run.py` goes through the same command, with a one-line error and exit code 1
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    script = readme.parent / "run.py"
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 1 and "inferlab notebook" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_a_run_fills_the_readme_saves_the_result_logs_time_and_bundles(app, monkeypatch, tmp_path):
    monkeypatch.setattr(experiment_commands, "_require_gpu", lambda experiment: None)
    monkeypatch.setattr("inferlab.lab.experiment_results.measure_experiment", _fake_payload)
    invoke(app, "experiment", "new", "Add")
    lab = Lab.open()
    folder = lab.experiments_dir / "0001-add"
    _predict(folder)
    predicted = (folder / "README.md").read_bytes()
    bundle, save_to = tmp_path / "b.zip", tmp_path / "committed"
    args = ["experiment", "run", str(folder), "--bundle", str(bundle), "--save-to", str(save_to)]
    out = invoke(app, *args).output
    assert "MISS: explain" in out and "hit" in out
    exp = read_experiment(folder)
    assert exp.status == "measured" and RESULT_BEGIN in exp.body
    assert "| add | synthetic:67108864 | bfloat16 | inferlab | 1" in exp.body
    assert "**MISS: explain**" in exp.body  # predicted 100 us, measured 130 us
    (backup,) = (folder / BACKUP_DIRNAME).iterdir()
    assert backup.read_bytes() == predicted
    (result,) = list_results(lab, "experiment")
    assert json.loads(result.read_text())["experiment"]["folder"] == "0001-add"
    assert (save_to / result.name).read_bytes() == result.read_bytes()
    assert f"results: `{save_to / result.name}`" in exp.body  # the committable copy is cited
    (entry,) = read_ledger(lab)
    assert (entry.provider, entry.minutes, entry.source, entry.experiment) == (
        "local",
        1.5,
        "run",
        "0001-add",
    )

    # the bundle, imported into another lab with the same experiment, fills its README there
    other = tmp_path / "other-lab"
    monkeypatch.setenv("INFERLAB_HOME", str(other))
    invoke(app, "experiment", "new", "Add")
    _predict(other / "experiments" / "0001-add")
    imported = invoke(app, "import", str(bundle)).output
    assert "Imported" in imported and "Logged 1.5 GPU minutes on local" in imported
    there = read_experiment(other / "experiments" / "0001-add")
    assert there.status == "measured" and "**MISS: explain**" in there.body
    again = runner.invoke(app, ["import", str(bundle)])
    assert again.exit_code != 0 and "was imported before" in str(again.exception)
