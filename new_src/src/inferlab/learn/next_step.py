"""What is due: review cards, the next lesson, records waiting for a correction, experiments
waiting for a GPU. `inferlab next` shows all of it; `next_step` (printed by `inferlab run`) says
the one thing to do first.

Nothing here writes to the lab (but for `.inferlab/mission.json`, the hash of MISSION.md last
seen, see `inferlab.lab.mission`): a corrupt review state is reported (`inferlab review` sets it
aside), and cards the records call for but that do not exist yet count as due now.

A lesson is done once its quiz has been taken (or, for a lesson with no quiz, once any record
names it); the next lesson is the first one not done whose prerequisites are all done.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime

from inferlab.errors import InferlabError
from inferlab.lab import Lab
from inferlab.lab.frontmatter import read_document
from inferlab.lab.mission import mission_prompt
from inferlab.lab.records import Record, list_records
from inferlab.learn.curriculum import Lesson, list_lessons
from inferlab.learn.review import (
    Item,
    Resolver,
    add_missing,
    due_items,
    expected_card_ids,
    is_quiz_record,
    next_due,
)
from inferlab.learn.review_store import load_state

WAITING = ("waiting-for-recall", "waiting-for-correction")
WAITING_FOR_GPU = ("planned", "predicted")  # an experiment with no measurement yet
_EXPERIMENT_DIR = re.compile(r"^\d{4}-[a-z0-9-]+$")


@dataclass(frozen=True, slots=True)
class Experiment:
    folder: str  # "0003-fused-add-bandwidth"
    title: str
    status: str
    device_wanted: str


@dataclass(slots=True)
class Due:
    reviews: list[Item] = field(default_factory=list)  # due now, earliest first
    next_review: datetime | None = None  # when the next card comes due, if none is due now
    lesson: Lesson | None = None  # the next lesson whose prerequisites are met
    blocked: list[Lesson] = field(default_factory=list)  # not done, prerequisites not met
    waiting_records: list[Record] = field(default_factory=list)
    experiments: list[Experiment] = field(default_factory=list)  # waiting for a GPU
    review_problem: str | None = None  # the review state cannot be read
    problems: list[str] = field(default_factory=list)  # unreadable files, one sentence each
    mission: str | None = None  # MISSION.md changed and no record says why yet


def lessons_done(records: list[Record], lessons: list[Lesson]) -> set[int]:
    quizzed = {r.lesson for r in records if is_quiz_record(r)}
    named = {r.lesson for r in records if r.lesson is not None}
    return {
        lesson.number
        for lesson in lessons
        if lesson.number in quizzed or (lesson.number in named and not lesson.file("quiz.yaml").is_file())
    }


def experiments_waiting(lab: Lab) -> tuple[list[Experiment], list[str]]:
    """Experiments planned or predicted (measured on no GPU yet), and unreadable ones as problems."""
    if not lab.experiments_dir.is_dir():
        return [], []
    found, problems = [], []
    for folder in sorted(lab.experiments_dir.iterdir()):
        readme = folder / "README.md"
        if not (_EXPERIMENT_DIR.match(folder.name) and readme.is_file()):
            continue
        try:
            fields = read_document(readme).fields
        except InferlabError as e:
            problems.append(str(e))
            continue
        status = str(fields.get("status", ""))
        if status in WAITING_FOR_GPU:
            title = str(fields.get("title") or folder.name)
            found.append(
                Experiment(folder.name, title, status, str(fields.get("device_wanted") or "any GPU"))
            )
    return found, problems


def what_is_due(lab: Lab, now: datetime | None = None) -> Due:
    now = now or datetime.now(UTC)
    due = Due()
    records, problems = list_records(lab)
    due.problems += problems
    due.waiting_records = [r for r in records if r.status in WAITING]
    due.mission = mission_prompt(lab, records)
    lessons = list_lessons()
    done = lessons_done(records, lessons)
    for lesson in lessons:
        if lesson.number in done:
            continue
        if all(p in done for p in lesson.prerequisites):
            due.lesson = due.lesson or lesson
        else:
            due.blocked.append(lesson)
    try:
        state = load_state(lab, repair=False)
    except InferlabError as e:
        due.review_problem = str(e)
    else:
        add_missing(state, expected_card_ids(lab), now)  # in memory only: counted, not written
        due.reviews, _orphans = due_items(state, Resolver(lab), now)
        upcoming = next_due(state)
        due.next_review = upcoming.card.due if upcoming and not due.reviews else None
    due.experiments, problems = experiments_waiting(lab)
    due.problems += problems
    return due


def gpu_here() -> bool:
    """True when this process already chose compiled kernels on a GPU (never imports torch itself)."""
    if "inferlab.kernels.device" not in sys.modules:
        return False
    backend = sys.modules["inferlab.kernels.device"].select_backend()
    return backend.triton_available and not backend.interpreted


def next_step(lab: Lab) -> str:
    """The one thing to do first, in one line with its command."""
    return one_line(what_is_due(lab), gpu=gpu_here())


def one_line(due: Due, *, gpu: bool = False) -> str:
    if due.review_problem:
        return due.review_problem
    if due.mission:
        return due.mission
    if due.waiting_records:
        first = due.waiting_records[0]
        return f"record {first.id} ({first.title!r}) is {first.status}: `inferlab record show {first.id}`"
    if due.reviews:
        n = len(due.reviews)
        return f"{n} review card{'s' if n != 1 else ''} due: `inferlab review`"
    if gpu and due.experiments:
        return _experiment_line(due.experiments[0]) + " (this machine has one)"
    if due.lesson:
        n = due.lesson.number
        return (
            f"lesson {n}, {due.lesson.title}: `inferlab lesson show {n}`, then `inferlab recall {n}` "
            f"and `inferlab quiz {n}`"
        )
    if due.experiments:
        return _experiment_line(due.experiments[0])
    if due.blocked:
        return (
            f"lesson {due.blocked[0].number} waits for its prerequisites {list(due.blocked[0].prerequisites)}"
        )
    return (
        "nothing is due: every lesson is done and no review card is due; "
        "`inferlab record list` shows your records"
    )


def _experiment_line(e: Experiment) -> str:
    return f"experiment {e.folder} ({e.status}) waits for a GPU ({e.device_wanted}): experiments/{e.folder}"
