"""A /teach-style experiment (`experiments/0001-slug/README.md`, no front matter) read for adoption.

The learner wrote the README by hand: a `# title` heading and some of the sections Question,
Prediction, Method, Result, Conclusion, but none of the fields `inferlab.lab.experiments` needs.
`propose_experiment_front_matter` derives them without changing a byte of the file: the id from
the folder's number, the title from the first `# ` heading (else the slug), the lesson from a
`Lesson: N` line or a link to `lessons/000N-...` (as for records), `device_wanted: any`,
`created` from the README's modification time and no predictions. The status is inferred
conservatively by `infer_status`: `concluded` only if a Conclusion section holds text,
`measured` only if a Result section does, else `planned`; a section holding nothing but a
placeholder ("TODO", "(to write)", the line `inferlab experiment new` writes) counts as empty.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from inferlab.lab.experiment_results import RESULT_PLACEHOLDER
from inferlab.lab.teach_record import _lesson as lesson_in

FOLDER = re.compile(r"^(\d+)-(.+)$")  # what `inferlab.lab.experiments.read_experiment` accepts
_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t]*#*[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_SECTION_NAME = re.compile(r"^(?:\d+[.)]?\s*)?(results?|conclusions?)\b", re.I)
_PLACEHOLDER = re.compile(
    r"[\s\W_]*(?:to ?do|tbd|to (?:be )?(?:written|write|fill(?:ed)?(?: in)?)|not (?:yet|run yet)|pending"
    r"|none yet|n/?a|fill(?:ed)? in later|later)?[\s\W_]*",
    re.I,
)


def folder_number(folder: Path) -> int | None:
    match = FOLDER.match(folder.name)
    return int(match.group(1)) if match else None


def propose_experiment_front_matter(folder: Path, body: str) -> tuple[dict[str, Any], str]:
    """The fields to put above a /teach experiment README's body, and why its status was chosen."""
    number = folder_number(folder)
    if number is None:
        raise ValueError(f"{folder.name} is not named NNNN-slug")
    status, why = infer_status(body)
    mtime = datetime.fromtimestamp((folder / "README.md").stat().st_mtime, UTC)
    fields: dict[str, Any] = {
        "id": number,
        "title": title_of(folder, body),
        "lesson": lesson_in(body),
        "status": status,
        "device_wanted": "any",
        "created": mtime.isoformat(timespec="seconds"),
        "predictions": [],
        "adopted": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return fields, why


def infer_status(body: str) -> tuple[str, str]:
    """(status, the reason in words): concluded, measured or planned, from which sections hold text."""
    written = {name for name, text in sections(body) if _has_text(text)}
    if "conclusion" in written:
        return "concluded", "its Conclusion section is written"
    if "result" in written:
        return "measured", "its Result section is written, its Conclusion is not"
    return "planned", "neither its Result nor its Conclusion section holds text yet"


def sections(body: str) -> list[tuple[str, str]]:
    """("result" or "conclusion", the text under that heading up to the next heading of its level
    or higher), for each such heading outside code blocks, in order."""
    lines = body.splitlines()
    headings: list[tuple[int, int, str]] = []  # (line, level, text)
    fenced = False
    for i, line in enumerate(lines):
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced and (match := _HEADING.match(line)):
            headings.append((i, len(match.group(1)), match.group(2)))
    found = []
    for n, (start, level, text) in enumerate(headings):
        name = _SECTION_NAME.match(text.strip(" *_`"))
        if name is None:
            continue
        end = next((line for line, lvl, _ in headings[n + 1 :] if lvl <= level), len(lines))
        kind = "result" if name.group(1).lower().startswith("result") else "conclusion"
        found.append((kind, "\n".join(lines[start + 1 : end])))
    return found


def title_of(folder: Path, body: str) -> str:
    fenced = False
    for line in body.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced and (match := _HEADING.match(line)) and match.group(1) == "#":
            title = " ".join(match.group(2).split())
            if title:
                return title
    slug = FOLDER.match(folder.name).group(2) if FOLDER.match(folder.name) else folder.name
    return " ".join(slug.replace("-", " ").replace("_", " ").split()) or folder.name


def _has_text(section: str) -> bool:
    text = _COMMENT.sub("", section).replace(RESULT_PLACEHOLDER, "").strip()
    return bool(text) and _PLACEHOLDER.fullmatch(text) is None
