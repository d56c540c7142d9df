"""Cold recall: answer a lesson's recall prompts from memory, then see what was missing.

The flow (`inferlab recall N`): the prompts only, never the lesson; the learner's own words; then
the model answer and the key points, and the learner marks the ones they missed. The result is a
learning record (the cold answers kept as evidence, the missing points as the correction) and a
rating of each prompt's review card (`inferlab.learn.review`).

A scripted run reads an answers file, YAML or JSON, one entry per prompt id:

    cuda-hierarchy: {text: "a grid of blocks of threads...", points: [0, 1, 3]}
    program-instance: {text: "...", points: [], seconds: 40}    # seconds: optional, how long it took

`points` lists the key points the answer had (indices from 0). Prompts with no entry are skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from inferlab.errors import InferlabError
from inferlab.lab import Lab, Record, new_record
from inferlab.learn.answers_file import read_answers_mapping
from inferlab.learn.curriculum import Lesson, RecallPrompt
from inferlab.learn.review import Outcome, add_missing, point, rate, rating_for
from inferlab.learn.review_store import ReviewState, save_state


@dataclass(frozen=True, slots=True)
class ColdAnswer:
    prompt: RecallPrompt
    text: str
    had: frozenset[int]  # indices of the key points the answer contained
    seconds: float | None = None  # time to write it, when timed

    @property
    def missing(self) -> list[str]:
        return [p for i, p in enumerate(self.prompt.key_points) if i not in self.had]


def prompts_of(lesson: Lesson) -> tuple[RecallPrompt, ...]:
    if not lesson.recall:
        raise InferlabError(
            f"lesson {lesson.number} has no recall prompts yet; try `inferlab quiz {lesson.number}`"
        )
    return lesson.recall


def select(lesson: Lesson, ids: Sequence[str] | None) -> tuple[RecallPrompt, ...]:
    """The lesson's prompts, or only those named in `ids` (in the lesson's order)."""
    prompts = prompts_of(lesson)
    if not ids:
        return prompts
    known = {p.id for p in prompts}
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise InferlabError(
            f"lesson {lesson.number} has no recall prompt {', '.join(map(repr, unknown))}; "
            f"it has {', '.join(known)}"
        )
    return tuple(p for p in prompts if p.id in ids)


def checked_text(text: str | None, prompt_id: str) -> str:
    """The answer's text, or an InferlabError when it is empty (a blank recall records nothing)."""
    if text is None or not str(text).strip():
        raise InferlabError(
            f"the answer to {prompt_id!r} is empty; write what you remember, even one sentence "
            '("I don\'t remember" is an answer, an empty one is not)'
        )
    return str(text).strip()


def checked_points(raw: object, prompt: RecallPrompt) -> frozenset[int]:
    n = len(prompt.key_points)
    if not isinstance(raw, list) or any(
        isinstance(p, bool) or not isinstance(p, int) or not 0 <= p < n for p in raw
    ):
        raise InferlabError(
            f"points of {prompt.id!r} must be a list of key-point numbers from 0 to {n - 1} ([] for none)"
        )
    return frozenset(raw)


def load_answers(path: Path, lesson: Lesson) -> list[ColdAnswer]:
    """The answers in `path`, in the lesson's prompt order; one InferlabError for any problem."""
    raw = read_answers_mapping(path, "recall prompt ids")
    prompts = {p.id: p for p in prompts_of(lesson)}
    if not isinstance(raw, dict) or not raw:
        raise InferlabError(
            f"answers file {path} must map recall prompt ids ({', '.join(prompts)}) to answers"
        )
    unknown = [str(k) for k in raw if k not in prompts]
    if unknown:
        raise InferlabError(
            f"answers file {path} answers unknown prompt(s) {', '.join(unknown)}; "
            f"lesson {lesson.number} has {', '.join(prompts)}"
        )
    answers = []
    for pid, prompt in prompts.items():
        if pid not in raw:
            continue
        entry = raw[pid]
        if not isinstance(entry, dict) or set(entry) - {"text", "points", "seconds"} or "points" not in entry:
            raise InferlabError(
                f"answers file {path}: {pid!r} must be a mapping {{text: ..., points: [...]}}"
            )
        seconds = entry.get("seconds")
        if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, int | float)):
            raise InferlabError(f"answers file {path}: seconds of {pid!r} must be a number")
        try:
            text = checked_text(entry.get("text"), pid)
            had = checked_points(entry["points"], prompt)
        except InferlabError as e:
            raise InferlabError(f"answers file {path}: {e}") from None
        answers.append(ColdAnswer(prompt, text, had, None if seconds is None else float(seconds)))
    return answers


def record_markdown(lesson: Lesson, answers: list[ColdAnswer], skipped: list[str]) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    missing = sum(len(a.missing) for a in answers)
    total = sum(len(a.prompt.key_points) for a in answers)
    lines = [
        f"Cold recall on lesson {lesson.number} ({lesson.title}), {when}: "
        f"{total - missing}/{total} key points from memory, {missing} to correct.",
        "",
    ]
    if skipped:
        lines += [f"Prompts not attempted: {', '.join(skipped)}.", ""]
    for a in answers:
        n = len(a.prompt.key_points)
        timed = f", {a.seconds:.0f} s" if a.seconds is not None else ""
        lines += [f"## {a.prompt.id}", "", a.prompt.prompt, "", f"Cold answer (from memory{timed}):", ""]
        lines += [f"> {line}" if line else ">" for line in a.text.splitlines()]
        lines += ["", f"Key points: {n - len(a.missing)}/{n}.", ""]
        if a.missing:
            lines += ["Missing (the correction):", "", *(f"- {p}" for p in a.missing), ""]
        lines += [f"Model answer: {' '.join(a.prompt.answer.split())}", ""]
    return "\n".join(lines)


def record_recall(
    lab: Lab, lesson: Lesson, answers: list[ColdAnswer], experiments: Sequence[str] = ()
) -> Record:
    """Write the recall into a learning record: `corrected` if any key point was missing, else `reviewed`."""
    if not answers:
        raise InferlabError("no recall answers to record")
    skipped = [p.id for p in lesson.recall if p.id not in {a.prompt.id for a in answers}]
    missing = sum(len(a.missing) for a in answers)
    if missing:
        title = f"Lesson {lesson.number} recall: {missing} key point{'s' if missing != 1 else ''} missing"
    else:
        title = (
            f"Lesson {lesson.number} recall: all {sum(len(a.prompt.key_points) for a in answers)} key points"
        )
    links = [f"lesson:{lesson.number}", f"recall:{lesson.number}", *(f"experiment:{e}" for e in experiments)]
    return new_record(
        lab,
        title,
        lesson=lesson.number,
        status="corrected" if missing else "reviewed",
        body=record_markdown(lesson, answers, skipped),
        links=links,
    )


def rate_cards(
    lab: Lab, state: ReviewState, lesson: Lesson, answers: list[ColdAnswer], record: Record
) -> list[Outcome]:
    """Make the lesson's recall cards and rate each answered prompt (the recall was its review)."""
    now = datetime.now(UTC)
    changed = add_missing(state, [f"recall:{lesson.number}:{p.id}" for p in lesson.recall], now)
    outcomes = []
    for a in answers:
        cid = f"recall:{lesson.number}:{a.prompt.id}"
        points = tuple(point(p) for p in a.prompt.key_points)
        rating = rating_for(points, set(a.had), a.seconds)
        outcomes.append(
            rate(
                state,
                cid,
                rating,
                had=set(a.had),
                of=len(points),
                seconds=a.seconds,
                answer=f"record {record.id}",
                via="recall",
                now=now,
            )  # fmt: skip
        )
        changed.add(cid)
    save_state(lab, state, changed)
    return outcomes
