"""Spaced review: cards from quizzes, recall and corrections; FSRS schedules; the rating rule;
a state file that survives upgrades, interruptions and corruption."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import fsrs
import pytest
import yaml

from cli_run import run
from inferlab.lab import Lab, new_record
from inferlab.learn import curriculum, review
from inferlab.learn.quiz import Choice, Line, Numeric, load_quiz
from inferlab.learn.review import Point, point, rating_for
from inferlab.learn.review_store import (
    SCHEMA_VERSION,
    ReviewStateError,
    load_state,
    new_card,
    save_state,
    state_path,
)

CORE, MINOR = Point("core"), Point("minor", core=False)


@pytest.fixture(scope="module")
def lesson():
    return curriculum.get_lesson(1)


@pytest.fixture(scope="module")
def quiz(lesson):
    return load_quiz(lesson)


def right_answer(q):
    if isinstance(q, Choice):
        return q.letter(q.answer)
    if isinstance(q, Line):
        return q.answer()
    if isinstance(q, Numeric):
        return str(q.answer())
    return {"text": "everything", "points": list(range(len(q.key_points)))}


def take_quiz(monkeypatch, capsys, tmp_path, answers: dict) -> None:
    path = tmp_path / "quiz.yaml"
    path.write_text(yaml.safe_dump(answers))
    code, _, err = run(monkeypatch, capsys, "quiz", "1", "--answers", str(path))
    assert code == 0, err


# ---------------------------------------------------------------- the rating rule
@pytest.mark.parametrize(
    ("points", "had", "seconds", "rating"),
    [
        ((CORE, CORE), {0}, 5.0, fsrs.Rating.Again),  # a core point missed, however fast
        ((CORE, MINOR), {1}, None, fsrs.Rating.Again),
        ((CORE, MINOR), {0}, 5.0, fsrs.Rating.Hard),  # every core point, a minor one missed
        ((CORE, MINOR), {0, 1}, None, fsrs.Rating.Good),  # all, not timed
        ((CORE, MINOR), {0, 1}, 45.0, fsrs.Rating.Good),  # all, slowly
        ((CORE, MINOR), {0, 1}, 12.0, fsrs.Rating.Easy),  # all, quickly
        ((CORE,), set(), None, fsrs.Rating.Again),  # a choice question answered wrong
        ((CORE,), {0}, review.QUICK_SECONDS, fsrs.Rating.Good),  # the threshold itself is not quick
    ],
)
def test_rating_follows_mechanically_from_the_ticks(points, had, seconds, rating):
    assert rating_for(points, had, seconds) == rating


def test_key_points_are_core_unless_marked_minor():
    assert point("one program per grid point") == Point("one program per grid point", core=True)
    assert point("(minor) warps are 32 threads") == Point("warps are 32 threads", core=False)


# ---------------------------------------------------------------- cards from the quiz
def test_a_quiz_makes_a_card_per_question_rated_by_its_result(monkeypatch, capsys, tmp_path, lesson, quiz):
    answers = {q.id: right_answer(q) for q in quiz.questions}
    wrong = next(q for q in quiz.questions if isinstance(q, Choice))
    answers[wrong.id] = wrong.letter((wrong.answer + 1) % len(wrong.options))
    take_quiz(monkeypatch, capsys, tmp_path, answers)
    cards = load_state(Lab.open(None)).cards
    ids = {review.question_card_id(lesson, q) for q in quiz.questions}
    assert ids <= set(cards) and len(ids) == len(quiz.questions)
    assert "recall:1:program-instance" in ids  # the quiz's recall question is the recall prompt's card
    assert cards[f"quiz:1:{wrong.id}"].log[-1] | {"at": None} == {
        "at": None, "via": "quiz", "rating": "again", "seconds": None, "had": [], "of": 1,
        "answer": f"{wrong.letter((wrong.answer + 1) % len(wrong.options))}) "
        f"{wrong.options[(wrong.answer + 1) % len(wrong.options)]}",
    }  # fmt: skip
    right = next(q for q in quiz.questions if isinstance(q, Numeric))
    assert cards[f"quiz:1:{right.id}"].log[-1]["rating"] == "good"
    # an Again comes back within minutes, a Good later: FSRS's learning steps
    assert cards[f"quiz:1:{wrong.id}"].card.due < cards[f"quiz:1:{right.id}"].card.due


def test_ensure_cards_makes_each_card_once(lesson):
    lab = Lab.open(None)
    first = review.ensure_cards(lab, lesson)
    assert len(first) == len(set(first)) >= len(lesson.recall)
    assert review.ensure_cards(lab, lesson) == []


# ---------------------------------------------------------------- reviewing
def test_review_from_a_file_rates_each_due_card_and_saves_it(monkeypatch, capsys, tmp_path, lesson, quiz):
    review.ensure_cards(Lab.open(None), lesson)
    choice = next(q for q in quiz.questions if isinstance(q, Choice))
    answers = {
        f"quiz:1:{choice.id}": {"answer": choice.letter(choice.answer), "seconds": 4},
        "recall:1:cuda-hierarchy": {"text": "grids of blocks", "points": [0, 1, 2, 3, 4], "seconds": 60},
        "recall:1:vector-add-bound": {"text": "12 bytes", "points": [0, 1]},
    }
    path = tmp_path / "due.yaml"
    path.write_text(yaml.safe_dump(answers))
    code, out, err = run(monkeypatch, capsys, "review", "--answers", str(path))
    assert code == 0, err
    assert "Reviewed 3 card(s)" in out and "again 1" in out and "good 1" in out and "easy 1" in out
    cards = load_state(Lab.open(None)).cards
    assert cards[f"quiz:1:{choice.id}"].log[-1]["rating"] == "easy"  # right, in 4 s
    assert cards["recall:1:cuda-hierarchy"].log[-1]["rating"] == "good"  # all points, 60 s
    assert cards["recall:1:vector-add-bound"].log[-1] | {"at": None} == {
        "at": None, "via": "review", "rating": "again", "seconds": None, "had": [0, 1], "of": 3,
        "answer": "12 bytes",
    }  # fmt: skip
    now = datetime.now(UTC)
    assert all(cards[cid].card.due > now for cid in answers)  # none is due any more
    # the prompt was shown before the answer (the file stands in for the typing)
    assert out.index("Describe CUDA") < out.index("model answer")


def test_review_refuses_an_empty_answer_and_unknown_cards_before_rating_anything(
    monkeypatch, capsys, tmp_path, lesson
):
    review.ensure_cards(Lab.open(None), lesson)
    path = tmp_path / "due.yaml"
    path.write_text(yaml.safe_dump({"recall:1:cuda-hierarchy": {"text": " ", "points": []}}))
    code, _, err = run(monkeypatch, capsys, "review", "--answers", str(path))
    assert code == 1 and "is empty" in err
    path.write_text(yaml.safe_dump({"quiz:9:nope": "a"}))
    code, _, err = run(monkeypatch, capsys, "review", "--answers", str(path))
    assert code == 1 and "unknown card" in err
    assert all(not c.log for c in load_state(Lab.open(None)).cards.values())


def test_nothing_due_says_when_the_next_card_is(monkeypatch, capsys, lesson):
    code, out, _ = run(monkeypatch, capsys, "review")
    assert code == 0 and "Nothing to review now" in out
    lab = Lab.open(None)
    state = load_state(lab)
    later = datetime.now(UTC) + timedelta(days=3)
    state.cards["recall:1:cuda-hierarchy"] = new_card("recall:1:cuda-hierarchy", later)
    save_state(lab, state, {"recall:1:cuda-hierarchy"})
    code, out, _ = run(monkeypatch, capsys, "review")
    assert "the next card is due in 3 days" in out


def test_interactive_review_asks_first_then_ticks(monkeypatch, capsys, lesson):
    review.ensure_cards(Lab.open(None), lesson, which=("recall",))
    # card 1: answer, then the points had; card 2: interrupted by end of input
    code, out, err = run(monkeypatch, capsys, "review", "--limit", "2", stdin="my answer\n\n0\n")
    assert (
        code == 1 and "review stopped at card 2 of 2" in err and "1 card(s) rated before it are saved" in err
    )
    rated = [c for c in load_state(Lab.open(None)).cards.values() if c.log]
    assert len(rated) == 1 and rated[0].log[0]["answer"] == "my answer" and rated[0].log[0]["had"] == [0]
    assert out.index("Your answer") < out.index("model answer")


def test_limit_reviews_only_the_first_cards(monkeypatch, capsys, lesson):
    review.ensure_cards(Lab.open(None), lesson, which=("recall",))
    stdin = "a\n\n0\n" * 2
    code, out, err = run(monkeypatch, capsys, "review", "--limit", "2", stdin=stdin)
    assert code == 0, err
    assert sum(bool(c.log) for c in load_state(Lab.open(None)).cards.values()) == 2


def test_a_hand_written_correction_becomes_a_record_card():
    lab = Lab.open(None)
    mine = new_record(
        lab, "I read BLOCK_SIZE as threads", lesson=1, status="corrected", body="It counts elements."
    )
    waiting = new_record(lab, "Why masks?", lesson=1, status="waiting-for-correction")
    ids = review.expected_card_ids(lab)
    assert f"record:{mine.id}" in ids and f"record:{waiting.id}" not in ids
    item = review.Resolver(lab).item(f"record:{mine.id}")
    assert "BLOCK_SIZE as threads" in item.prompt and item.model_answer == "It counts elements."


def test_quiz_and_recall_records_make_question_cards_not_record_cards(monkeypatch, capsys, tmp_path, quiz):
    take_quiz(monkeypatch, capsys, tmp_path, {quiz.questions[0].id: "d"})
    ids = review.expected_card_ids(Lab.open(None))
    assert not any(i.startswith("record:") for i in ids)
    assert f"quiz:1:{quiz.questions[0].id}" in ids


def test_a_card_whose_question_is_gone_is_left_alone(monkeypatch, capsys):
    lab = Lab.open(None)
    state = load_state(lab)
    state.cards["quiz:1:removed-question"] = new_card("quiz:1:removed-question", datetime.now(UTC))
    save_state(lab, state, {"quiz:1:removed-question"})
    code, out, _ = run(monkeypatch, capsys, "review")
    assert code == 0 and "no longer exists" in out and "quiz:1:removed-question" in out
    assert "quiz:1:removed-question" in load_state(lab).cards


# ---------------------------------------------------------------- the state file
def test_state_round_trips_with_a_schema_version(lesson):
    lab = Lab.open(None)
    review.ensure_cards(lab, lesson, which=("recall",))
    state = load_state(lab)
    cid = "recall:1:cuda-hierarchy"
    review.rate(
        state,
        cid,
        fsrs.Rating.Good,
        had={0},
        of=5,
        seconds=3.0,
        answer="x",
        via="review",
        now=datetime.now(UTC),
    )
    save_state(lab, state, {cid})
    raw = json.loads(state_path(lab).read_text())
    assert raw["schema"] == SCHEMA_VERSION and raw["scheduler"]["desired_retention"] == 0.9
    again = load_state(lab).cards[cid]
    assert again.card.to_dict() == state.cards[cid].card.to_dict() and again.log == state.cards[cid].log


def test_saving_keeps_cards_another_process_changed(lesson):
    lab = Lab.open(None)
    review.ensure_cards(lab, lesson, which=("recall",))
    mine, theirs = load_state(lab), load_state(lab)
    now = datetime.now(UTC)
    ids = sorted(mine.cards)
    review.rate(mine, ids[0], fsrs.Rating.Good, had={0}, of=1, seconds=None, answer="", via="review", now=now)
    review.rate(
        theirs, ids[1], fsrs.Rating.Again, had=set(), of=1, seconds=None, answer="", via="review", now=now
    )
    save_state(lab, mine, {ids[0]})
    save_state(lab, theirs, {ids[1]})
    cards = load_state(lab).cards
    assert cards[ids[0]].log and cards[ids[1]].log


@pytest.mark.parametrize(
    "content",
    [b"{not json", b'{"cards": {}}', b'{"schema": 1, "cards": {"x": {"fsrs": {}}}}', b"\xff\xfe", b"[]"],
)
def test_a_corrupt_state_is_set_aside_with_a_warning_never_silently_reset(
    monkeypatch, capsys, lesson, content
):
    lab = Lab.open(None)
    review.ensure_cards(lab, lesson, which=("recall",))
    new_record(lab, "Lesson 1 recall: 1 key point missing", lesson=1, status="corrected", links=["recall:1"])
    state_path(lab).write_bytes(content)
    # read-only commands report it and move nothing
    code, out, _ = run(monkeypatch, capsys, "next")
    assert code == 0 and "unreadable" in out and state_path(lab).read_bytes() == content
    with pytest.raises(ReviewStateError):
        load_state(lab, repair=False)
    # review sets it aside, says so, and starts again from the records
    code, out, err = run(monkeypatch, capsys, "review", "--limit", "1", stdin="words\n\n0\n")
    assert code == 0, err
    aside = list(lab.reviews_dir.glob("cards.json.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == content
    assert "could not be read" in out and aside[0].name in out and "fresh state" in out
    assert "again from the lab's records" in out
    assert len(load_state(lab).cards) == len(lesson.recall)


def test_a_state_from_a_newer_inferlab_is_refused_untouched(monkeypatch, capsys):
    lab = Lab.open(None)
    lab.reviews_dir.mkdir(exist_ok=True)
    text = json.dumps({"schema": SCHEMA_VERSION + 1, "cards": {}})
    state_path(lab).write_text(text)
    code, _, err = run(monkeypatch, capsys, "review")
    assert code == 1 and "newer than this inferlab" in err
    assert state_path(lab).read_text() == text and not list(lab.reviews_dir.glob("*.corrupt-*"))
