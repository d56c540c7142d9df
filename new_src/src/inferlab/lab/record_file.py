"""One learning record as a file: `records/NNNN-slug.md`, YAML front matter, Markdown body.

The number in the file name is how a record is found (even when its front matter is broken);
the front matter's `id` must agree with it. Fields the learner adds by hand beyond the six known
ones are kept in `Record.extra` and written back in place, so an update never drops them.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from inferlab.lab.errors import FrontMatterError
from inferlab.lab.frontmatter import (
    Document,
    get_choice,
    get_field,
    get_id,
    get_text,
    read_document,
    render_document,
)

STATUSES = ("waiting-for-recall", "waiting-for-correction", "corrected", "reviewed")
KNOWN_FIELDS = ("id", "title", "lesson", "status", "created", "links")
_NAME = re.compile(r"^(\d+)-.*\.md$")
_SLUG_MAX_CHARS = 50


@dataclass(slots=True)
class Record:
    id: int
    title: str
    lesson: int | None
    status: str
    created: str  # ISO-8601 timestamp
    links: list[str]
    body: str
    path: Path
    extra: dict[str, Any] = field(default_factory=dict)  # hand-added front matter fields


def record_filename(record_id: int, title: str) -> str:
    return f"{record_id:04d}-{slugify(title)}.md"


def number_in_name(path: Path) -> int | None:
    """The id a record file's name claims (`0003-x.md` -> 3), or None if it is not so named."""
    match = _NAME.match(path.name)
    return int(match.group(1)) if match else None


def candidate_files(records_dir: Path) -> list[Path]:
    """Every visible `.md` file in `records_dir`, sorted; hidden names are temporaries/backups."""
    if not records_dir.is_dir():
        return []
    return sorted(
        p for p in records_dir.iterdir() if p.suffix == ".md" and not p.name.startswith(".") and p.is_file()
    )


def read_record(path: Path) -> Record:
    """Parse and validate one record file; FrontMatterError (file and line) if it is not right."""
    number = number_in_name(path)
    if number is None:
        raise FrontMatterError(path, 1, "a record file must be named NNNN-slug.md")
    doc = read_document(path)
    # checked in the order the fields are written, so the first error is the topmost one
    record_id = get_id(doc, number)
    title = get_text(doc, "title")
    lesson = get_field(doc, "lesson", int, nullable=True)
    status = get_choice(doc, "status", STATUSES)
    created = _created(doc)
    links = get_field(doc, "links", list)
    if not all(isinstance(link, str) for link in links):
        raise doc.error("links", "field 'links' must be a list of text items")
    return Record(
        id=record_id,
        title=title,
        lesson=lesson,
        status=status,
        created=created,
        links=list(links),
        body=doc.body,
        path=path,
        extra={k: v for k, v in doc.fields.items() if k not in KNOWN_FIELDS},
    )


def render_record(record: Record) -> str:
    fields: dict[str, Any] = {
        "id": record.id,
        "title": record.title,
        "lesson": record.lesson,
        "status": record.status,
        "created": record.created,
        "links": list(record.links),
        **record.extra,
    }
    return render_document(fields, record.body)


def slugify(title: str) -> str:
    """`"Why masks matter!"` -> `"why-masks-matter"`: ASCII, lowercase, at most 50 characters."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")
    if len(slug) > _SLUG_MAX_CHARS:
        slug = slug[:_SLUG_MAX_CHARS].rsplit("-", 1)[0] or slug[:_SLUG_MAX_CHARS]
    return slug or "record"


def _created(doc: Document) -> str:
    value = get_field(doc, "created", (str, datetime, date))
    # An unquoted timestamp typed by hand is loaded by YAML as a datetime: accept it as text.
    if isinstance(value, date):
        return value.isoformat()
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise doc.error("created", f"created {value!r} is not an ISO-8601 timestamp") from None
    return value
