"""Grading a whole quiz: read an answers file, score every question, record the corrections.

An answers file is YAML or JSON (JSON is YAML), one entry per question id:

    shared-memory-scope: b
    line-block-idx: 50                   # a line number, as shown beside the source
    intensity-fp32-add: 1/12
    recall-program-instance: {text: "one program per grid point...", points: [0, 2]}

A question with no entry counts as wrong and is reported as unanswered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from inferlab.errors import InferlabError
from inferlab.lab import Lab, Record, new_record
from inferlab.learn.answers_file import read_answers_mapping
from inferlab.learn.curriculum import Lesson
from inferlab.learn.quiz import Quiz, Result

UNANSWERED = "(no answer)"


@dataclass(frozen=True, slots=True)
class Report:
    lesson: int
    results: tuple[Result, ...]

    @property
    def score(self) -> float:
        return sum(r.score for r in self.results)

    @property
    def misses(self) -> tuple[Result, ...]:
        return tuple(r for r in self.results if not r.correct)

    def summary(self) -> str:
        n = len(self.results)
        return f"{self.score:g}/{n} ({self.score / n:.0%})" if n else "no questions"


def load_answers(path: Path, quiz: Quiz) -> dict[str, object]:
    """Question id -> parsed answer, from a YAML/JSON file; one InferlabError for any problem."""
    raw = read_answers_mapping(path, "question ids")
    known = {q.id: q for q in quiz.questions}
    unknown = [str(k) for k in raw if k not in known]
    if unknown:
        raise InferlabError(
            f"answers file {path} answers unknown question(s) {', '.join(unknown)}; "
            f"lesson {quiz.lesson}'s quiz has {', '.join(known)}"
        )
    parsed = {}
    for qid, value in raw.items():
        try:
            parsed[qid] = known[qid].parse(value)
        except InferlabError as e:
            raise InferlabError(f"answers file {path}: {e}") from None
    return parsed


def grade(quiz: Quiz, answers: dict[str, object]) -> Report:
    """Every question's result, in quiz order; unanswered questions score 0."""
    results = []
    for q in quiz.questions:
        if q.id in answers:
            results.append(q.grade(answers[q.id]))
        else:
            results.append(Result(q.id, 0.0, UNANSWERED, q.expected(), q.correction()))
    return Report(quiz.lesson, tuple(results))


def record_markdown(lesson: Lesson, quiz: Quiz, report: Report) -> str:
    """The body of the learning record: the score, then each miss with what is right and why."""
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Quiz on lesson {lesson.number} ({lesson.title}), taken {when}: "
        f"score {report.summary()}, {len(report.misses)} to correct.",
        "",
    ]
    for r in report.misses:
        lines += [
            f"## {r.question_id}",
            "",
            quiz.question(r.question_id).prompt,
            "",
            f"- Given: {r.given}",
            *([f"- In my words: {' '.join(r.words.split())}"] if r.words else []),
            f"- Right: {r.expected}",
            "",
            r.correction,
            "",
        ]
    return "\n".join(lines)


def record_quiz(lab: Lab, lesson: Lesson, quiz: Quiz, report: Report) -> Record:
    """Write the quiz into a learning record of `lab`: the corrections of every miss.

    A quiz with misses makes a `corrected` record (the corrections are in it); a perfect one a
    `reviewed` record, so the lab still shows the lesson was tested.
    """
    n = len(report.misses)
    if n:
        title = f"Lesson {lesson.number} quiz: {n} correction{'s' if n != 1 else ''}"
    else:
        title = f"Lesson {lesson.number} quiz: all {len(report.results)} right"
    return new_record(
        lab,
        title,
        lesson=lesson.number,
        status="corrected" if n else "reviewed",
        body=record_markdown(lesson, quiz, report),
        links=[f"lesson:{lesson.number}"],
    )
