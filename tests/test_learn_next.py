"""`inferlab next` and `next_step`: due reviews, the next lesson by prerequisites, records waiting
for a correction, experiments waiting for a GPU."""

from __future__ import annotations

import dataclasses
import sys

import pytest
import yaml

from cli_run import run
from inferlab.lab import Lab, new_record
from inferlab.learn import curriculum, next_step, review
from inferlab.learn.next_step import one_line, what_is_due


@pytest.fixture(scope="module")
def lesson():
    return curriculum.get_lesson(1)


def quiz_record(lab, number: int):
    """A record as `inferlab quiz N` writes it (its body starts the way grading writes it)."""
    body = f"Quiz on lesson {number} (...): score 1/1"
    return new_record(lab, f"Lesson {number} quiz", lesson=number, status="reviewed", body=body)


def experiment(lab, folder: str, front: dict | str) -> None:
    path = lab.experiments_dir / folder
    path.mkdir(parents=True)
    text = front if isinstance(front, str) else f"---\n{yaml.safe_dump(front)}---\n\n# Question\n"
    (path / "README.md").write_text(text)


def test_a_fresh_lab_starts_with_lesson_1(monkeypatch, capsys):
    due = what_is_due(Lab.open(None))
    assert due.lesson.number == 1 and not due.reviews and not due.waiting_records and not due.experiments
    assert one_line(due).startswith("lesson 1, ") and "`inferlab recall 1`" in one_line(due)
    code, out, _ = run(monkeypatch, capsys, "next")
    assert code == 0 and "Next lesson:" in out and "Reviews due: none" in out


def test_the_next_lesson_is_the_first_whose_prerequisites_are_done(monkeypatch, lesson):
    fake = [
        lesson,
        dataclasses.replace(lesson, number=2, title="Two", prerequisites=(1,)),
        dataclasses.replace(lesson, number=3, title="Three", prerequisites=(1, 2)),
    ]
    monkeypatch.setattr(next_step, "list_lessons", lambda: fake)
    lab = Lab.open(None)
    new_record(lab, "a note on lesson 1", lesson=1, status="reviewed")  # a note is not the quiz
    due = what_is_due(lab)
    assert due.lesson.number == 1 and [b.number for b in due.blocked] == [2, 3]
    quiz_record(lab, 1)
    due = what_is_due(lab)
    assert due.lesson.number == 2 and [b.number for b in due.blocked] == [3]
    quiz_record(lab, 2)
    assert what_is_due(lab).lesson.number == 3


def test_due_reviews_come_before_the_next_lesson(monkeypatch, capsys, lesson):
    lab = Lab.open(None)
    review.ensure_cards(lab, lesson)
    due = what_is_due(lab)
    assert len(due.reviews) >= len(lesson.recall)
    assert one_line(due) == f"{len(due.reviews)} review cards due: `inferlab review`"
    assert next_step.next_step(lab) == one_line(due)
    code, out, _ = run(monkeypatch, capsys, "next")
    assert f"Reviews due: {len(due.reviews)}" in out and "and" in out and "more" in out
    assert due.reviews[0].card_id in out


def test_cards_the_records_call_for_count_as_due_before_they_exist():
    lab = Lab.open(None)
    record = new_record(lab, "I mixed up warps and blocks", status="corrected", body="A warp is 32 threads.")
    due = what_is_due(lab)
    assert [i.card_id for i in due.reviews] == [f"record:{record.id}"]
    assert not (lab.reviews_dir / "cards.json").exists()  # next writes nothing


def test_waiting_records_come_first(monkeypatch, capsys):
    lab = Lab.open(None)
    record = new_record(lab, "Why does the mask matter?", status="waiting-for-correction")
    due = what_is_due(lab)
    assert [r.id for r in due.waiting_records] == [record.id]
    assert one_line(due).startswith(f"record {record.id} ") and "`inferlab record show" in one_line(due)
    code, out, _ = run(monkeypatch, capsys, "next")
    assert "Records waiting: 1" in out and "waiting-for-correction" in out


def test_experiments_waiting_for_a_gpu(monkeypatch, capsys, lesson):
    lab = Lab.open(None)
    experiment(
        lab,
        "0001-add-bandwidth",
        {"id": 1, "title": "Add at bandwidth", "status": "predicted", "device_wanted": "t4"},
    )
    experiment(
        lab, "0002-planned", {"id": 2, "title": "Planned", "status": "planned", "device_wanted": "any"}
    )
    experiment(lab, "0003-done", {"id": 3, "title": "Done", "status": "concluded", "device_wanted": "h100"})
    experiment(lab, "0004-broken", "---\nstatus: [unclosed\n---\n")
    (lab.experiments_dir / "notes").mkdir()  # not an experiment folder: ignored
    due = what_is_due(lab)
    assert [(e.folder, e.status, e.device_wanted) for e in due.experiments] == [
        ("0001-add-bandwidth", "predicted", "t4"),
        ("0002-planned", "planned", "any"),
    ]
    assert len(due.problems) == 1 and "0004-broken" in due.problems[0]
    due.lesson = None  # no lesson left: with no GPU, the experiment is the next step
    assert one_line(due).startswith("experiment 0001-add-bandwidth (predicted) waits for a GPU (t4)")
    code, out, _ = run(monkeypatch, capsys, "next")
    assert code == 0 and "Experiments waiting for a GPU: 2" in out and "unreadable" in out
    assert "0001-add-bandwidth (predicted) Add at bandwidth, wants t4" in out


def test_on_a_gpu_a_waiting_experiment_comes_before_the_next_lesson():
    lab = Lab.open(None)
    experiment(lab, "0001-x", {"id": 1, "title": "X", "status": "predicted", "device_wanted": "any"})
    due = what_is_due(lab)
    assert one_line(due, gpu=False).startswith("lesson 1")
    assert one_line(due, gpu=True).startswith("experiment 0001-x") and "this machine has one" in one_line(
        due, gpu=True
    )


def test_no_experiments_folder_is_fine():
    lab = Lab.open(None)
    lab.experiments_dir.rmdir()
    assert what_is_due(lab).experiments == []


def test_gpu_here_never_imports_torch(monkeypatch):
    monkeypatch.delitem(sys.modules, "inferlab.kernels.device")
    assert next_step.gpu_here() is False
