"""Lesson 1's quiz: its key is right, grading is right, misses become a learning record."""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction

import pytest
import yaml

from cli_run import run
from inferlab.errors import InferlabError
from inferlab.lab import Lab, list_records, load_record
from inferlab.learn import curriculum, grading
from inferlab.learn.quiz import Choice, Line, Numeric, Recall, load_quiz
from quiz_answers import perfect_answers, wrong_answers


@pytest.fixture(scope="module")
def lesson():
    return curriculum.get_lesson(1)


@pytest.fixture(scope="module")
def quiz(lesson):
    return load_quiz(lesson)


def test_quiz_has_every_kind_and_enough_questions(quiz):
    assert len(quiz.questions) >= 8
    kinds = {type(q) for q in quiz.questions}
    assert kinds == {Choice, Line, Numeric, Recall}
    assert len({q.id for q in quiz.questions}) == len(quiz.questions)


def test_line_answers_are_lines_of_the_pulled_source_that_contain_the_match(quiz):
    for q in quiz.questions:
        if isinstance(q, Line):
            snippet = q.snippet()
            number = q.answer()
            assert snippet.first_line <= number <= snippet.last_line
            assert q.match in dict(snippet.numbered())[number]


def test_numeric_answers_equal_independent_computations(quiz):
    independent = {
        "programs-for-1000": -(-1000 // 256),
        "intensity-fp32-add": Fraction(1, 2 * 4 + 4),  # 1 add per (2 reads + 1 write) x 4 bytes
        "bytes-fp16-add": (2 + 1) * 2 * 2**20,
        "elements-per-thread": 1024 // (4 * 32),
    }
    numeric = {q.id: q.answer() for q in quiz.questions if isinstance(q, Numeric)}
    assert numeric == independent


def test_the_key_scores_100_percent_and_records_a_reviewed_result(quiz, lesson, tmp_path):
    path = tmp_path / "answers.yaml"
    path.write_text(yaml.safe_dump(perfect_answers(quiz)))
    report = grading.grade(quiz, grading.load_answers(path, quiz))
    assert report.score == len(quiz.questions) and not report.misses
    record = grading.record_quiz(Lab.open(None), lesson, quiz, report)
    assert load_record(Lab.open(None), record.id).status == "reviewed"


def test_wrong_answers_get_corrections_and_a_record(monkeypatch, capsys, quiz, tmp_path):
    path = tmp_path / "answers.json"
    path.write_text(json.dumps(wrong_answers(quiz)))
    code, out, err = run(monkeypatch, capsys, "quiz", "1", "--answers", str(path))
    assert code == 0, err
    assert "correction" in out and "Score: " in out
    assert "written to record 1" in out
    (record,), problems = list_records(Lab.open(None))
    assert not problems
    assert record.lesson == 1 and record.status == "corrected" and record.links == ["lesson:1"]
    body = load_record(Lab.open(None), record.id).body
    for q in quiz.questions:
        assert f"## {q.id}" in body  # every miss, with its correction
    assert "tl.program_id" in body  # a line question's right answer
    assert "Key points missed" in body
    assert "- In my words: not much" in body  # the recall answer is kept as evidence


def test_partial_recall_scores_the_fraction_of_key_points(quiz):
    q = next(q for q in quiz.questions if isinstance(q, Recall))
    result = q.grade(q.parse({"text": "...", "points": [0]}))
    assert result.score == pytest.approx(1 / len(q.key_points))
    assert q.key_points[1] in result.correction


def test_unanswered_questions_count_as_wrong(monkeypatch, capsys, quiz, tmp_path):
    path = tmp_path / "answers.yaml"
    first = quiz.questions[0]
    path.write_text(yaml.safe_dump({first.id: perfect_answers(quiz)[first.id]}))
    code, out, _ = run(monkeypatch, capsys, "quiz", "1", "--answers", str(path))
    assert code == 0
    assert out.count("unanswered, counts as wrong") == len(quiz.questions) - 1
    assert f"Score: 1/{len(quiz.questions)}" in out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist"),
        ("line-block-idx: [1,\n", "not valid YAML or JSON"),
        ("- 1\n- 2\n", "must map question ids to answers"),
        ("no-such-question: a\n", "unknown question(s) no-such-question"),
        ("shared-memory-scope: 2\n", "one of the letters"),
        ("line-block-idx: 1\n", "must be a line number from"),
        ("intensity-fp32-add: lots\n", "must be a number"),
        ("recall-program-instance: [0]\n", "must be a mapping"),
        ("recall-program-instance: {text: x, points: [99]}\n", "key-point indices"),
    ],
)
def test_bad_answers_files_give_one_clear_error(monkeypatch, capsys, tmp_path, content, message):
    path = tmp_path / "answers.yaml"
    if content is not None:
        path.write_text(content)
    code, out, err = run(monkeypatch, capsys, "quiz", "1", "--answers", str(path))
    assert code == 1
    assert message in err and err.count("error:") == 1
    assert "Traceback" not in err
    assert not list_records(Lab.open(None))[0]  # nothing graded, nothing recorded


def test_load_answers_errors_are_inferlab_errors(quiz, tmp_path):
    path = tmp_path / "a.yaml"
    path.write_text("line-grid: nine\n")
    with pytest.raises(InferlabError, match=r"a\.yaml: answer to 'line-grid'"):
        grading.load_answers(path, quiz)


def test_unknown_lesson_quiz(monkeypatch, capsys):
    code, _, err = run(monkeypatch, capsys, "quiz", "9999")
    assert code == 1 and "no lesson 9999" in err


def test_interrupted_interactive_quiz_says_so_and_records_nothing(monkeypatch, capsys):
    import rich.prompt

    answers = iter(["b"])

    def ask(*args, **kwargs):
        try:
            return next(answers)
        except StopIteration:
            raise KeyboardInterrupt from None

    monkeypatch.setattr(rich.prompt.Prompt, "ask", ask)
    code, _, err = run(monkeypatch, capsys, "quiz", "1")
    assert code == 1
    assert "stopped at question 2 of" in err and "nothing was graded or recorded" in err
    assert not list_records(Lab.open(None))[0]


def test_interactive_quiz_through_stdin(quiz, tmp_path):
    """The real prompts, fed by a pipe: the key typed in scores 100%."""
    lines = []
    for q in quiz.questions:
        answer = perfect_answers(quiz)[q.id]
        if isinstance(q, Recall):
            lines += [answer["text"], " ".join(map(str, answer["points"]))]
        else:
            lines.append(str(answer))
    home = tmp_path / "home"
    result = subprocess.run(
        [sys.executable, "-m", "inferlab", "quiz", "1", "--lab", str(home)],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, "INFERLAB_HOME": str(tmp_path / "unused")},
    )
    assert result.returncode == 1 and "no lab at" in result.stderr  # --lab must be a lab
    subprocess.run([sys.executable, "-m", "inferlab", "init", str(home)], check=True, timeout=60)
    result = subprocess.run(
        [sys.executable, "-m", "inferlab", "quiz", "1", "--lab", str(home)],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert f"Score: {len(quiz.questions)}/{len(quiz.questions)} (100%)" in result.stdout
    assert list((home / "records").glob("0001-*.md"))
