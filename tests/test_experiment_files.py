"""Experiment folders: scaffolding, reading and validating the README, finding, rewriting safely."""

from __future__ import annotations

import ast

import pytest

from inferlab.lab import Lab, LabError
from inferlab.lab.errors import FrontMatterError
from inferlab.lab.experiment_results import RESULT_PLACEHOLDER, parse_prediction
from inferlab.lab.experiments import (
    BACKUP_DIRNAME,
    find_experiment,
    list_experiments,
    new_experiment,
    read_experiment,
    update_experiment,
)
from inferlab.lab.frontmatter import read_document

PREDICTION = {"metric": "time_us", "provider": "inferlab", "value": 400, "unit": "us", "device": "H100"}


@pytest.fixture
def lab() -> Lab:
    return Lab.open()


def _set_front(exp, **fields) -> None:
    """Edit the README's front matter the way a learner would, by rewriting the file."""
    from inferlab.lab.frontmatter import render_document

    doc = read_document(exp.readme)
    exp.readme.write_text(render_document({**doc.fields, **fields}, doc.body))


def test_new_scaffolds_a_numbered_folder_with_readme_and_run_script(lab):
    exp = new_experiment(lab, "Fused SwiGLU: one pass instead of three", lesson=3, device_wanted="h100")
    assert exp.folder == lab.experiments_dir / "0001-fused-swiglu-one-pass-instead-of-three"
    assert (exp.id, exp.lesson, exp.status, exp.device_wanted) == (1, 3, "planned", "h100")
    fields = read_document(exp.readme).fields
    assert list(fields)[:6] == ["id", "title", "lesson", "status", "device_wanted", "created"]
    assert fields["predictions"] == []
    headings = [line for line in exp.body.splitlines() if line.startswith("## ")]
    assert headings == ["## Question", "## Prediction", "## Method", "## Result", "## Conclusion"]
    assert RESULT_PLACEHOLDER in exp.body
    script = exp.run_script.read_text()
    tree = ast.parse(script)  # a valid module, nothing at import but definitions and the main guard
    assert "measure" in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert "runner.run_kernel" in script and 'if __name__ == "__main__":' in script
    assert new_experiment(lab, "Second").id == 2


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"title": "  "}, "needs a title"),
        ({"title": "x", "device_wanted": "a100"}, "unknown device"),
        ({"title": "x", "lesson": 0}, "lesson must be"),
    ],
)
def test_new_refuses_bad_arguments_and_writes_nothing(lab, kwargs, message):
    with pytest.raises(LabError, match=message):
        new_experiment(lab, **kwargs)
    assert list(lab.experiments_dir.iterdir()) == []


def test_predictions_are_parsed_and_checked():
    p = parse_prediction({**PREDICTION, "shape": 268435456, "tolerance": 0.1, "why": "3.2 GB at 3 TB/s"}, 1)
    assert (p.metric, p.value, p.unit, p.shape, p.tolerance) == ("time_us", 400.0, "us", "268435456", 0.1)
    assert p.selection == "provider=inferlab shape=268435456 device=H100"
    assert parse_prediction({**PREDICTION, "unit": "µs"}, 1).unit == "us"
    bad = [
        ({**PREDICTION, "metric": "latency"}, "metric 'latency'"),
        ({**PREDICTION, "unit": "ms"}, "time_us is in 'us'"),
        ({**PREDICTION, "value": True}, "positive number"),
        ({**PREDICTION, "value": -1}, "positive number"),
        ({**PREDICTION, "tolerence": 0.1}, "unknown key 'tolerence'"),
        ({**PREDICTION, "dtype": "fp8"}, "dtype 'fp8'"),
        ({"metric": "speedup", "value": 2, "unit": "x"}, "needs `vs:`"),
        ("time_us 400", "must be a mapping"),
    ]
    for item, message in bad:
        with pytest.raises(ValueError, match=message):
            parse_prediction(item, 1)


def test_a_bad_prediction_is_reported_with_file_and_line(lab):
    exp = new_experiment(lab, "Add")
    _set_front(exp, predictions=[PREDICTION, {**PREDICTION, "unit": "ms"}])
    with pytest.raises(FrontMatterError, match=r"README.md:\d+: prediction 2: time_us is in 'us'"):
        read_experiment(exp.folder)
    good, problems = list_experiments(lab)
    assert good == [] and len(problems) == 1


def test_bf16_need_comes_from_dtypes_or_predictions(lab):
    exp = new_experiment(lab, "Add")
    assert not exp.needs_bf16
    _set_front(exp, dtypes=["bfloat16", "float16"])  # bf16 where the card has it, else fp16: runs anywhere
    assert not read_experiment(exp.folder).needs_bf16
    _set_front(exp, dtypes=["bfloat16"])
    assert read_experiment(exp.folder).needs_bf16
    _set_front(exp, dtypes=["float16"], predictions=[{**PREDICTION, "dtype": "bfloat16"}])
    assert read_experiment(exp.folder).needs_bf16


def test_find_by_number_or_path(lab, tmp_path):
    exp = new_experiment(lab, "Vector add")
    assert find_experiment(lab, "1").folder == exp.folder
    assert find_experiment(lab, str(exp.folder)).id == 1
    assert find_experiment(lab, str(exp.readme)).id == 1
    with pytest.raises(LabError, match="no experiment 7"):
        find_experiment(lab, "7")
    with pytest.raises(LabError, match="neither an experiment number nor a folder"):
        find_experiment(lab, str(tmp_path / "nowhere"))


def test_id_must_match_the_folder_number(lab):
    exp = new_experiment(lab, "Add")
    _set_front(exp, id=2)
    with pytest.raises(FrontMatterError, match="does not match the folder name's number 1"):
        read_experiment(exp.folder)


def test_update_backs_up_the_old_readme_and_keeps_hand_added_fields(lab):
    exp = new_experiment(lab, "Add")
    _set_front(exp, reviewer="me", predictions=[PREDICTION])
    old = exp.readme.read_bytes()
    exp = read_experiment(exp.folder)
    exp.status = "predicted"
    updated = update_experiment(exp)
    assert updated.status == "predicted" and updated.extra == {"reviewer": "me"}
    assert updated.raw_predictions == [PREDICTION]
    backups = list((exp.folder / BACKUP_DIRNAME).iterdir())
    assert len(backups) == 1 and backups[0].read_bytes() == old


def test_update_refuses_a_readme_it_cannot_read(lab):
    exp = new_experiment(lab, "Add")
    exp.readme.write_text("no front matter\n")
    broken = exp.readme.read_bytes()
    with pytest.raises(FrontMatterError):
        update_experiment(exp)
    assert exp.readme.read_bytes() == broken
