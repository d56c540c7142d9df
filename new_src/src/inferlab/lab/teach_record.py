"""A /teach-style record (`records/0001-slug.md`, no front matter) read for adoption.

The /teach workflow writes the sections Prompt, My cold-recall answer, Correction, Link to
experiment, and a free-text `Status:` line. `propose_front_matter` derives our fields from them
without changing a byte of the file: the title from the first heading, the lesson from a
`Lesson: N` line or a link to `lessons/000N-...`, the status from the Status line
(`map_status`), `created` from a `Date:` line or the file's modification time, and the links
from the Markdown links and bare `experiments/NNNN-...` paths in the body. `links_in` and
`dangling_links` serve every record, adopted or not.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from inferlab.lab.record_file import STATUSES, number_in_name

_LABEL = r"^\s*(?:[-*+]\s+)?(?:\*\*|__)?{}(?:\*\*|__)?\s*:\s*(?:\*\*|__)?\s*(.*?)\s*$"
_STATUS_LINE = re.compile(_LABEL.format("status"), re.I | re.M)
_STATUS_HEADING = re.compile(r"^#{1,6}\s*status\s*#*\s*\n+\s*(.+?)\s*$", re.I | re.M)
_LESSON_LINE = re.compile(_LABEL.format("lesson"), re.I | re.M)
_DATE_LINE = re.compile(_LABEL.format("(?:date|created)"), re.I | re.M)
_HEADING = re.compile(r"^#{1,2}\s+(.+?)\s*#*\s*$", re.M)
_MD_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+[\"'][^\"']*[\"'])?\s*\)")
_REF_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.M)
_BARE_EXPERIMENT = re.compile(r"(?<![\w/.(<-])experiments/\d{4}-[A-Za-z0-9._-]*[A-Za-z0-9_]")
_LESSON_LINK = re.compile(r"lessons/(\d{4})-")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_NEGATED = re.compile(r"\b(not|no|yet|un\w*)\b")
# (pattern, status), first match wins; checked after an exact status name
_STATUS_WORDS = (
    (re.compile(r"\breviewed\b"), "reviewed"),
    (re.compile(r"\b(corrected|fixed|resolved|done|complete|completed)\b"), "corrected"),
    (re.compile(r"\bcorrect(ion|ed)?\b"), "waiting-for-correction"),
    (re.compile(r"\brecall\b"), "waiting-for-recall"),
    (re.compile(r"\b(wait|waiting|awaiting|todo|to do|pending|open|draft)\b"), "waiting-for-correction"),
)
UNKNOWN_STATUS = "waiting-for-correction"


@dataclass(frozen=True, slots=True)
class StatusMapping:
    written: str | None  # the Status line as the learner wrote it, or None if there is none
    status: str  # one of STATUSES
    known: bool  # False: `written` meant nothing we know, so UNKNOWN_STATUS was chosen


@dataclass(frozen=True, slots=True)
class Link:
    target: str  # as written
    where: str  # the lab-relative path it resolves to, e.g. "experiments/0003-x"
    bare: bool  # a bare `experiments/...` path rather than a Markdown link


def map_status(written: str | None) -> StatusMapping:
    """`"Waiting for correction"` -> waiting-for-correction; unknown text -> UNKNOWN_STATUS, not known."""
    if written is None or not written.strip():
        return StatusMapping(written, UNKNOWN_STATUS, False)
    text = re.sub(r"[*_`]+", "", written).lower().strip(" .!")
    slug = re.sub(r"[^a-z]+", "-", text).strip("-")
    if slug in STATUSES:
        return StatusMapping(written, slug, True)
    negated = bool(_NEGATED.search(text))
    for pattern, status in _STATUS_WORDS:
        if status in ("reviewed", "corrected") and negated:
            continue  # "not yet corrected" is still waiting
        if pattern.search(text):
            return StatusMapping(written, status, True)
    return StatusMapping(written, UNKNOWN_STATUS, False)


def status_line(body: str) -> str | None:
    match = _STATUS_LINE.search(body) or _STATUS_HEADING.search(body)
    return match.group(1) if match else None


def links_in(body: str) -> list[Link]:
    """Internal links of a record body (web addresses and `#anchors` left out), in order, once each.

    A Markdown link is relative to `records/`; a bare `experiments/NNNN-...` path to the lab root.
    """
    found: dict[str, Link] = {}
    for pattern, bare in ((_MD_LINK, False), (_REF_LINK, False), (_BARE_EXPERIMENT, True)):
        for match in pattern.finditer(body):
            target = match.group(1) if not bare else match.group(0)
            where = _lab_relative(target, bare)
            if where is not None and where not in found:
                found[where] = Link(target, where, bare)
    return list(found.values())


def dangling_links(lab_root: Path, body: str) -> list[Link]:
    """Links that name nothing in the lab. A Markdown link counts as found relative to `records/`
    or, as learners often mean it, relative to the lab root."""
    missing = []
    for link in links_in(body):
        places = {link.where}
        if not link.bare:
            from_root = posixpath.normpath(_path_part(link.target))
            if from_root != ".." and not from_root.startswith("../"):
                places.add(from_root)
        if not any((lab_root / place).exists() for place in places):
            missing.append(link)
    return missing


def propose_front_matter(path: Path, body: str) -> tuple[dict[str, Any], StatusMapping]:
    """The fields to put above a /teach record's body, and how its Status line was read."""
    number = number_in_name(path)
    if number is None:
        raise ValueError(f"{path.name} is not named NNNN-slug.md")
    mapping = map_status(status_line(body))
    fields: dict[str, Any] = {
        "id": number,
        "title": _title(path, body),
        "lesson": _lesson(body),
        "status": mapping.status,
        "created": _created(path, body),
        "links": [link.where for link in links_in(body)],
        "adopted": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return fields, mapping


def _title(path: Path, body: str) -> str:
    heading = _HEADING.search(body)
    if heading and heading.group(1).strip(" #"):
        return " ".join(heading.group(1).split())
    slug = path.stem.split("-", 1)[1] if "-" in path.stem else path.stem
    return slug.replace("-", " ").strip() or path.stem


def _lesson(body: str) -> int | None:
    line = _LESSON_LINE.search(body)
    if line:
        number = re.match(r"\d+", line.group(1))
        if number:
            return int(number.group(0))
    link = _LESSON_LINK.search(body)
    return int(link.group(1)) if link else None


def _created(path: Path, body: str) -> str:
    line = _DATE_LINE.search(body)
    if line:
        day = re.match(r"\d{4}-\d{2}-\d{2}", line.group(1))
        if day:
            try:
                datetime.fromisoformat(day.group(0))
                return day.group(0)
            except ValueError:
                pass  # not a real date: fall back to the file's time
    mtime = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    return mtime.isoformat(timespec="seconds")


def _lab_relative(target: str, bare: bool) -> str | None:
    """`../experiments/0003-x/` (from records/) -> `experiments/0003-x`; None for outside links."""
    if _SCHEME.match(target) or target.startswith(("#", "/")):
        return None
    path = _path_part(target)
    if not path:
        return None
    joined = posixpath.normpath(path if bare else posixpath.join("records", path))
    if joined == ".." or joined.startswith("../"):
        return None  # outside the lab: not ours to check
    return joined


def _path_part(target: str) -> str:
    return unquote(target.split("#")[0].split("?")[0])
