"""Spaced review: every quiz question, recall prompt and correction is a card scheduled by FSRS.

Cards and where their content comes from (read fresh at review time, so a fixed quiz fixes its card):

    quiz:N:<question id>     a question of lesson N's quiz            made when the quiz is taken
    recall:N:<prompt id>     a recall prompt of lesson N (recall.yaml) made when recall is done, or
                             when the quiz asks that same prompt
    record:<id>              a learning record with status `corrected` that the quiz or recall
                             commands did not write (theirs live on as the two kinds above)

A review shows the prompt only; the learner answers first, then sees the model answer and the key
points and ticks the ones they had. The rating follows mechanically (`rating_for`):

    a core point missed                     -> Again
    every core point, a minor one missed    -> Hard
    every point                             -> Good
    every point, answered in < QUICK_SECONDS -> Easy

A choice, line or numeric question has one core point, being right, decided by the quiz grader.
Key points are core unless their text starts with "(minor)". Taking a quiz or doing a recall is
itself a retrieval, so its outcome is the card's rating for that day (with no time, never Easy).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import fsrs

from inferlab.errors import InferlabError
from inferlab.lab import Lab, Record, list_records, load_record
from inferlab.learn import curriculum
from inferlab.learn.curriculum import Lesson
from inferlab.learn.quiz import Question, Quiz, Recall, load_quiz
from inferlab.learn.review_store import CardState, ReviewState, load_state, new_card, save_state

QUICK_SECONDS = 20.0  # an answer with every point, given faster than this, is rated Easy
MINOR = "(minor)"  # a key point whose text starts with this is minor: missing it costs Hard, not Again
RATING_NAMES = {
    fsrs.Rating.Again: "again",
    fsrs.Rating.Hard: "hard",
    fsrs.Rating.Good: "good",
    fsrs.Rating.Easy: "easy",
}


@dataclass(frozen=True, slots=True)
class Point:
    text: str
    core: bool = True


@dataclass(frozen=True, slots=True)
class Item:
    """What one card asks, resolved from its source."""

    card_id: str
    source: str  # "lesson 1 quiz", "lesson 1 recall", "record 5"
    prompt: str  # Markdown
    question: Question | None  # a choice/line/numeric question: the answer is graded, not ticked
    model_answer: str
    points: tuple[Point, ...]


def point(text: str) -> Point:
    stripped = text.strip()
    if stripped.lower().startswith(MINOR):
        return Point(stripped[len(MINOR) :].strip(), core=False)
    return Point(stripped)


def rating_for(points: tuple[Point, ...], had: set[int], seconds: float | None) -> fsrs.Rating:
    """The rating the ticks earn (see the module docstring); `seconds` None means not timed."""
    missed = [p for i, p in enumerate(points) if i not in had]
    if any(p.core for p in missed):
        return fsrs.Rating.Again
    if missed:
        return fsrs.Rating.Hard
    if seconds is not None and seconds < QUICK_SECONDS:
        return fsrs.Rating.Easy
    return fsrs.Rating.Good


# ---------------------------------------------------------------- which cards exist
def question_card_id(lesson: Lesson, question: Question) -> str:
    """`quiz:N:<id>`, or `recall:N:<id>` when the question is one of the lesson's recall prompts."""
    if isinstance(question, Recall):
        for r in lesson.recall:
            if r.prompt == question.prompt:
                return f"recall:{lesson.number}:{r.id}"
    return f"quiz:{lesson.number}:{question.id}"


def lesson_card_ids(lesson: Lesson, which: tuple[str, ...]) -> list[str]:
    """The card ids of lesson `lesson`'s quiz (`"quiz"` in which) and recall prompts (`"recall"`)."""
    ids: list[str] = []
    if "quiz" in which and lesson.file("quiz.yaml").is_file():
        ids += [question_card_id(lesson, q) for q in load_quiz(lesson).questions]
    if "recall" in which:
        ids += [f"recall:{lesson.number}:{r.id}" for r in lesson.recall]
    return list(dict.fromkeys(ids))


def is_quiz_record(record: Record) -> bool:
    return record.body.startswith("Quiz on lesson ")  # the first words `grading.record_markdown` writes


def is_recall_record(record: Record) -> bool:
    return any(link.startswith("recall:") for link in record.links)  # `recall.record_recall` adds it


def expected_card_ids(lab: Lab) -> list[str]:
    """Every card the lab's records call for: lessons quizzed or recalled, hand-made corrections."""
    records, _problems = list_records(lab)
    lessons = {lesson.number: lesson for lesson in curriculum.list_lessons()}
    ids: list[str] = []
    for r in records:
        lesson = lessons.get(r.lesson) if r.lesson is not None else None
        if is_quiz_record(r) and lesson:
            ids += lesson_card_ids(lesson, ("quiz",))
        elif is_recall_record(r) and lesson:
            ids += lesson_card_ids(lesson, ("recall",))
        elif r.status == "corrected" and not is_quiz_record(r) and not is_recall_record(r):
            ids.append(f"record:{r.id}")
    return list(dict.fromkeys(ids))


def add_missing(state: ReviewState, card_ids: list[str], now: datetime) -> set[str]:
    """Add a new card (due now) for each id the state lacks; return the ids added."""
    added = {cid for cid in card_ids if cid not in state.cards}
    for cid in added:
        state.cards[cid] = new_card(cid, now)
    return added


def ensure_cards(
    lab: Lab, lesson: Lesson, which: tuple[str, ...] = ("quiz", "recall"), state: ReviewState | None = None
) -> list[str]:
    """Make the review cards of `lesson` that do not exist yet; return the new ids (saved)."""
    state = load_state(lab) if state is None else state
    added = add_missing(state, lesson_card_ids(lesson, which), datetime.now(UTC))
    save_state(lab, state, added)
    return sorted(added)


# ---------------------------------------------------------------- what a card asks
class Resolver:
    """Card id -> Item, with each lesson and quiz loaded once."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self._lessons: dict[int, Lesson | None] = {}
        self._quizzes: dict[int, Quiz | None] = {}

    def _lesson(self, number: int) -> Lesson | None:
        if number not in self._lessons:
            try:
                self._lessons[number] = curriculum.get_lesson(number)
            except InferlabError:
                self._lessons[number] = None
        return self._lessons[number]

    def _quiz(self, lesson: Lesson) -> Quiz | None:
        if lesson.number not in self._quizzes:
            try:
                self._quizzes[lesson.number] = load_quiz(lesson)
            except InferlabError:
                self._quizzes[lesson.number] = None
        return self._quizzes[lesson.number]

    def item(self, card_id: str) -> Item | None:
        """What the card asks, or None when its source is gone (a removed question or record)."""
        kind, _, rest = card_id.partition(":")
        if kind == "record":
            return self._record_item(card_id, rest)
        number, _, name = rest.partition(":")
        lesson = self._lesson(int(number)) if number.isdigit() else None
        if lesson is None:
            return None
        if kind == "recall":
            r = next((r for r in lesson.recall if r.id == name), None)
            if r is None:
                return None
            points = tuple(point(p) for p in r.key_points)
            return Item(card_id, f"lesson {lesson.number} recall", r.prompt, None, r.answer, points)
        quiz = self._quiz(lesson) if kind == "quiz" else None
        q = next((q for q in quiz.questions if q.id == name), None) if quiz else None
        if q is None:
            return None
        where = f"lesson {lesson.number} quiz"
        if isinstance(q, Recall):
            return Item(card_id, where, q.prompt, None, q.model_answer, tuple(point(p) for p in q.key_points))
        answer = f"{q.expected()}\n\n{q.correction()}".strip()
        return Item(card_id, where, q.prompt, q, answer, (Point(f"the right answer: {q.expected()}"),))

    def _record_item(self, card_id: str, rest: str) -> Item | None:
        if not rest.isdigit():
            return None
        try:
            record = load_record(self.lab, int(rest))
        except InferlabError:
            return None
        prompt = f"Record {record.id}: **{record.title}**. What was the mistake, and what is right?"
        points = (Point("the correction, as the record states it"),)
        return Item(card_id, f"record {record.id}", prompt, None, record.body.strip(), points)


# ---------------------------------------------------------------- rating cards
@dataclass(frozen=True, slots=True)
class Outcome:
    card_id: str
    rating: fsrs.Rating
    had: frozenset[int]
    of: int
    seconds: float | None
    due: datetime  # when the card comes back


def rate(
    state: ReviewState,
    card_id: str,
    rating: fsrs.Rating,
    *,
    had: set[int],
    of: int,
    seconds: float | None,
    answer: str,
    via: str,
    now: datetime,
) -> Outcome:
    """Schedule `card_id` by FSRS after `rating`, and log the evidence; the caller saves."""
    entry = state.cards.get(card_id) or new_card(card_id, now)
    duration_ms = None if seconds is None else int(seconds * 1000)
    card, _log = state.scheduler.review_card(
        entry.card, rating, review_datetime=now, review_duration=duration_ms
    )
    entry.card = card
    entry.log.append(
        {
            "at": now.isoformat(timespec="seconds"),
            "via": via,
            "rating": RATING_NAMES[rating],
            "seconds": None if seconds is None else round(seconds, 1),
            "had": sorted(had),
            "of": of,
            "answer": answer,
        }
    )
    state.cards[card_id] = entry
    return Outcome(card_id, rating, frozenset(had), of, seconds, card.due)


def record_quiz_outcomes(
    lab: Lab, state: ReviewState, lesson: Lesson, quiz: Quiz, given: dict[str, object]
) -> list[Outcome]:
    """After a quiz: make the lesson's quiz cards and rate each answered question by its result."""
    now = datetime.now(UTC)
    changed = add_missing(state, lesson_card_ids(lesson, ("quiz",)), now)
    outcomes = []
    for q in quiz.questions:
        if q.id not in given:
            continue
        result = q.grade(given[q.id])
        if isinstance(q, Recall):
            points = tuple(point(p) for p in q.key_points)
            had = set(given[q.id].points)
        else:
            points, had = (Point("right"),), ({0} if result.correct else set())
        cid = question_card_id(lesson, q)
        rating = rating_for(points, had, None)
        outcomes.append(
            rate(
                state,
                cid,
                rating,
                had=had,
                of=len(points),
                seconds=None,
                answer=result.given,
                via="quiz",
                now=now,
            )
        )
        changed.add(cid)
    save_state(lab, state, changed)
    return outcomes


def due_items(state: ReviewState, resolver: Resolver, now: datetime) -> tuple[list[Item], list[str]]:
    """(items of the cards due at `now`, earliest due first; ids of due cards whose source is gone)."""
    due = sorted((c for c in state.cards.values() if c.card.due <= now), key=lambda c: (c.card.due, c.id))
    items, orphans = [], []
    for c in due:
        item = resolver.item(c.id)
        if item is None:
            orphans.append(c.id)
        else:
            items.append(item)
    return items, orphans


def next_due(state: ReviewState) -> CardState | None:
    return min(state.cards.values(), key=lambda c: c.card.due, default=None)
