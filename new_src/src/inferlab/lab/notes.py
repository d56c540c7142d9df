"""Reading notes: what a book or course said, tied to the lab's work.

Each note is `notes/NNNN-slug.md`: front matter (id, title, source, links, created) and a
Markdown body. A note must link at least one lesson, record, experiment, benchmark result, kernel
or puzzle that exists (`note_links`): there are no standalone book reports. `new_note` refuses
one; a note that became standalone later (hand-edited, or what it linked was removed) is read
fine here and flagged by the site build.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from inferlab.lab.atomic import atomic_create_text
from inferlab.lab.errors import FrontMatterError, LabError
from inferlab.lab.frontmatter import get_field, get_id, get_text, read_document, render_document
from inferlab.lab.layout import Lab
from inferlab.lab.note_links import LinkTargets, parse_link
from inferlab.lab.record_file import candidate_files, number_in_name, slugify

NOTES_DIRNAME = "notes"
NO_STANDALONE = (
    "no standalone book reports: link a lesson, record, experiment, benchmark, kernel or puzzle "
    "(e.g. --link lesson:3)"
)


@dataclass(slots=True)
class Note:
    id: int
    title: str
    source: str  # the book, course or paper
    links: list[str]  # "lesson:3", "kernel:softmax", ... as written
    created: str  # ISO-8601 timestamp
    body: str
    path: Path


def notes_dir(lab: Lab) -> Path:
    return lab.root / NOTES_DIRNAME


def new_note(
    lab: Lab,
    source: str,
    links: Sequence[str],
    targets: LinkTargets,
    *,
    title: str | None = None,
    body: str = "",
) -> tuple[Note, list[str]]:
    """Write a note with the next free id; return it and one warning per link that names nothing.

    LabError when there is no link, a link is malformed, or no link names something that exists.
    """
    source = source.strip()
    if not source:
        raise LabError("a note needs a --source: the book, course or paper it is about")
    if not links:
        raise LabError(NO_STANDALONE)
    parsed = [parse_link(link) for link in links]
    dangling = [why for link in parsed if (why := targets.why_dangling(link))]
    if len(dangling) == len(parsed):
        raise LabError(f"{'; '.join(dangling)}, so the note would link nothing: {NO_STANDALONE}")
    note = Note(
        id=0,
        title=(title or source).strip(),
        source=source,
        links=[str(link) for link in parsed],
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        body=body,
        path=notes_dir(lab),
    )
    notes_dir(lab).mkdir(parents=True, exist_ok=True)
    for _ in range(100):  # another process may take the id first: then try the next one
        note.id = _next_free_id(lab)
        note.path = notes_dir(lab) / f"{note.id:04d}-{slugify(note.title)}.md"
        try:
            atomic_create_text(note.path, render_note(note))
            return note, dangling
        except FileExistsError:
            continue
    raise LabError(f"could not find a free note id in {notes_dir(lab)}")


def list_notes(lab: Lab) -> tuple[list[Note], list[str]]:
    """(readable notes by id, one `path:line: reason` per unreadable file)."""
    notes: dict[int, Note] = {}
    problems: list[str] = []
    for path in candidate_files(notes_dir(lab)):
        try:
            note = read_note(path)
        except FrontMatterError as e:
            problems.append(str(e))
            continue
        if note.id in notes:
            problems.append(f"{path}:1: id {note.id} is also used by {notes[note.id].path.name}; skipped")
            continue
        notes[note.id] = note
    return [notes[i] for i in sorted(notes)], problems


def load_note(lab: Lab, note_id: int) -> Note:
    matches = [p for p in candidate_files(notes_dir(lab)) if number_in_name(p) == note_id]
    if not matches:
        raise LabError(f"no note {note_id} in {notes_dir(lab)}")
    if len(matches) > 1:
        raise LabError(f"note {note_id} is claimed by several files ({', '.join(p.name for p in matches)})")
    return read_note(matches[0])


def standalone_reasons(note: Note, targets: LinkTargets) -> list[str] | None:
    """Why each link names nothing, when none does (the note is standalone); None otherwise."""
    reasons = []
    for text in note.links:
        try:
            why = targets.why_dangling(parse_link(text))
        except LabError:
            why = f"{text!r} is not a KIND:ID link"
        if why is None:
            return None
        reasons.append(why)
    return reasons or ["it has no links"]


def read_note(path: Path) -> Note:
    number = number_in_name(path)
    if number is None:
        raise FrontMatterError(path, 1, "a note file must be named NNNN-slug.md")
    doc = read_document(path)
    note_id = get_id(doc, number)
    title = get_field(doc, "title", str).strip()
    source = get_text(doc, "source")
    links = get_field(doc, "links", list)
    if not all(isinstance(link, str) for link in links):
        raise doc.error("links", "field 'links' must be a list of text items")
    created = get_field(doc, "created", (str, datetime, date))
    created = created.isoformat() if isinstance(created, date) else created
    return Note(note_id, title or source, source, list(links), created, doc.body, path)


def render_note(note: Note) -> str:
    fields = {
        "id": note.id,
        "title": note.title,
        "source": note.source,
        "links": list(note.links),
        "created": note.created,
    }
    return render_document(fields, note.body)


def _next_free_id(lab: Lab) -> int:
    numbers = [number_in_name(p) for p in candidate_files(notes_dir(lab))]
    return max((n for n in numbers if n is not None), default=0) + 1
