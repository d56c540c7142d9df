"""Cold recall: prompts without the lesson, the learner's words kept, missing points corrected."""

from __future__ import annotations

import dataclasses
import sys

import pytest
import yaml

from cli_run import run
from inferlab.errors import InferlabError
from inferlab.lab import Lab, list_records, load_record
from inferlab.learn import curriculum, recall
from inferlab.learn.review_store import load_state


@pytest.fixture(scope="module")
def lesson():
    return curriculum.get_lesson(1)


def answers_file(tmp_path, answers: dict):
    path = tmp_path / "recall.yaml"
    path.write_text(yaml.safe_dump(answers))
    return path


def test_recall_from_a_file_records_the_cold_answer_and_the_missing_points(
    monkeypatch, capsys, tmp_path, lesson
):
    first, second = lesson.recall[0], lesson.recall[1]
    path = answers_file(
        tmp_path,
        {
            first.id: {"text": "grids of blocks of threads\nwarps of 32", "points": [0, 3]},
            second.id: {"text": "one program per grid point", "points": list(range(len(second.key_points)))},
        },
    )
    code, out, err = run(monkeypatch, capsys, "recall", "1", "--answers", str(path), "--experiment", "0003")
    assert code == 0, err
    (record,), problems = list_records(Lab.open(None))
    assert not problems
    assert record.status == "corrected" and record.lesson == 1
    assert record.links == ["lesson:1", "recall:1", "experiment:0003"]
    body = load_record(Lab.open(None), record.id).body
    assert "> grids of blocks of threads\n> warps of 32" in body  # the learner's own words, kept
    for i, point in enumerate(first.key_points):
        assert (f"- {point}" in body) == (i not in (0, 3))  # only the missing points are corrections
    assert first.answer.split()[0] in body  # the model answer
    assert "Prompts not attempted" in body
    assert f"written to record {record.id}" in out
    cards = load_state(Lab.open(None)).cards
    assert {f"recall:1:{p.id}" for p in lesson.recall} <= set(cards)
    assert cards[f"recall:1:{first.id}"].log[-1]["rating"] == "again"  # core points missed
    assert cards[f"recall:1:{second.id}"].log[-1]["rating"] == "good"  # all, but not timed
    assert cards[f"recall:1:{lesson.recall[2].id}"].log == []  # not attempted: new, due now


def test_a_perfect_quick_recall_is_reviewed_and_easy(tmp_path, lesson):
    lab = Lab.open(None)
    answers = [
        recall.ColdAnswer(p, "all of it", frozenset(range(len(p.key_points))), 8.0) for p in lesson.recall
    ]
    record = recall.record_recall(lab, lesson, answers)
    assert record.status == "reviewed" and record.title.startswith("Lesson 1 recall: all")
    outcomes = recall.rate_cards(lab, load_state(lab), lesson, answers, record)
    assert {o.rating.name for o in outcomes} == {"Easy"}


@pytest.mark.parametrize("text", ["", "   \n  ", None])
def test_an_empty_answer_is_refused_and_nothing_is_written(monkeypatch, capsys, tmp_path, lesson, text):
    path = answers_file(tmp_path, {lesson.recall[0].id: {"text": text, "points": []}})
    code, _, err = run(monkeypatch, capsys, "recall", "1", "--answers", str(path))
    assert code == 1 and "is empty" in err and "write what you remember" in err
    assert list_records(Lab.open(None))[0] == []
    assert not (Lab.open(None).reviews_dir / "cards.json").exists()


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ({"no-such-prompt": {"text": "x", "points": []}}, "unknown prompt"),
        ({"cuda-hierarchy": {"text": "x", "points": [99]}}, "key-point numbers from 0 to 4"),
        ({"cuda-hierarchy": {"text": "x"}}, "must be a mapping"),
        ({"cuda-hierarchy": "just text"}, "must be a mapping"),
        ({}, "must map recall prompt ids"),
    ],
)
def test_bad_answers_files_are_one_clear_error(tmp_path, lesson, answers, message):
    with pytest.raises(InferlabError, match=message):
        recall.load_answers(answers_file(tmp_path, answers), lesson)


def test_unknown_lesson_and_missing_file(monkeypatch, capsys, tmp_path):
    code, _, err = run(monkeypatch, capsys, "recall", "99")
    assert code == 1 and "no lesson 99" in err
    code, _, err = run(monkeypatch, capsys, "recall", "1", "--answers", str(tmp_path / "none.yaml"))
    assert code == 1 and "does not exist" in err


def test_a_lesson_without_recall_prompts_says_so(lesson):
    with pytest.raises(InferlabError, match="no recall prompts"):
        recall.prompts_of(dataclasses.replace(lesson, recall=()))


def test_prompts_can_be_chosen(lesson):
    assert recall.select(lesson, ["program-instance"]) == (lesson.recall[1],)
    assert recall.select(lesson, None) == lesson.recall
    with pytest.raises(InferlabError, match="no recall prompt 'nope'"):
        recall.select(lesson, ["nope"])


def test_interactive_recall_reasks_an_empty_answer_and_marks_missing_points(monkeypatch, capsys, lesson):
    # prompt 1: an empty answer (asked again), then two lines; the learner missed points 1 and 4
    stdin = "\nline one\nline two\n\n1, 4\n"
    code, out, err = run(monkeypatch, capsys, "recall", "1", "--prompt", "cuda-hierarchy", stdin=stdin)
    assert code == 0, err
    assert "An empty answer is not recorded" in out
    assert lesson.recall[0].answer.split()[0] in out  # the model answer is shown after answering
    (record,), _ = list_records(Lab.open(None))
    body = load_record(Lab.open(None), record.id).body
    assert "> line one\n> line two" in body
    assert record.title == "Lesson 1 recall: 2 key points missing"
    assert f"- {lesson.recall[0].key_points[1]}" in body and f"- {lesson.recall[0].key_points[4]}" in body
    entry = load_state(Lab.open(None)).cards["recall:1:cuda-hierarchy"].log[-1]
    assert entry["had"] == [0, 2, 3] and entry["seconds"] is not None


@pytest.mark.parametrize("stdin", ["my answer\n\n", ""])  # stopped at the ticks, or before a word
def test_interrupted_recall_writes_nothing(monkeypatch, capsys, stdin):
    code, _, err = run(monkeypatch, capsys, "recall", "1", stdin=stdin)
    assert code == 1 and "nothing was recorded" in err
    assert list_records(Lab.open(None))[0] == []
    assert not (Lab.open(None).reviews_dir / "cards.json").exists()


def test_ctrl_c_during_recall_writes_nothing(monkeypatch, capsys):
    from inferlab.learn import review_session

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(review_session, "ask_recall", interrupted)
    code, _, err = run(monkeypatch, capsys, "recall", "1")
    assert code == 1 and "recall stopped" in err and "nothing was recorded" in err
    assert list_records(Lab.open(None))[0] == []


def test_editor_mode_ignores_comment_lines_and_reasks_an_empty_answer(monkeypatch, capsys, tmp_path):
    # a fake $EDITOR: the first time it saves nothing new, the second time it writes an answer
    editor = tmp_path / "editor.py"
    editor.write_text(
        "import pathlib, sys\n"
        f"flag = pathlib.Path({str(tmp_path / 'used')!r})\n"
        "path = pathlib.Path(sys.argv[1])\n"
        "if flag.exists():\n"
        "    path.write_text('what I remember\\n' + path.read_text())\n"
        "flag.touch()\n"
    )
    monkeypatch.setenv("EDITOR", f"{sys.executable} {editor}")
    monkeypatch.delenv("VISUAL", raising=False)
    code, out, err = run(
        monkeypatch, capsys, "recall", "1", "--prompt", "program-instance", "--editor", stdin="\n"
    )
    assert code == 0, err
    assert "An empty answer is not recorded" in out
    (record,), _ = list_records(Lab.open(None))
    body = load_record(Lab.open(None), record.id).body
    assert "> what I remember\n" in body and "Lines starting with #" not in body


def test_a_failing_editor_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setenv("EDITOR", "false")
    code, _, err = run(monkeypatch, capsys, "recall", "1", "--editor")
    assert code == 1 and "exited with status 1" in err
    assert list_records(Lab.open(None))[0] == []
