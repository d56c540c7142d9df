"""What to learn next, in one line: the first lesson whose quiz left no trail in the lab yet.

A lesson counts as started once any learning record names it (the quiz writes one for every
miss; `inferlab record new --lesson N` does too). The fuller `inferlab next` (due reviews,
records waiting for a correction, experiments waiting for a GPU) builds on this.
"""

from __future__ import annotations

from inferlab.lab import Lab
from inferlab.lab.records import list_records
from inferlab.learn.curriculum import list_lessons


def next_step(lab: Lab) -> str:
    records, _problems = list_records(lab)
    started = {r.lesson for r in records if r.lesson is not None}
    waiting = [r for r in records if r.status in ("waiting-for-recall", "waiting-for-correction")]
    if waiting:
        first = waiting[0]
        return f"record {first.id} ({first.title!r}) is {first.status}: `inferlab record show {first.id}`"
    for lesson in list_lessons():
        if lesson.number not in started:
            return (
                f"lesson {lesson.number}, {lesson.title}: `inferlab lesson show {lesson.number}`, "
                f"then `inferlab quiz {lesson.number}`"
            )
    return "every lesson has a record; review them with `inferlab record list`"
