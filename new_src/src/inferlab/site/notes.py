"""Reading notes on the site: each link shown as a link to its page where the site has one, and a
note whose links all name nothing (hand-edited, or what it linked was removed) flagged as
standalone, on the notes page and in the build's problems."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from inferlab.lab.errors import LabError
from inferlab.lab.layout import Lab
from inferlab.lab.note_links import find_link_targets, parse_link
from inferlab.lab.notes import Note, list_notes, standalone_reasons
from inferlab.lab.record_file import Record


@dataclass(frozen=True, slots=True)
class NoteLinkView:
    text: str  # as written: "lesson:3"
    site_path: str | None  # the page it names, when the site has one
    missing: str | None  # why it names nothing, or None


@dataclass(frozen=True, slots=True)
class NoteView:
    note: Note
    links: list[NoteLinkView]
    standalone: list[str] | None  # why no link names anything, or None when one does

    @property
    def site_path(self) -> str:
        return f"notes/{self.note.id:04d}.html"


def note_views(
    lab: Lab,
    lesson_paths: dict[int, str],
    records: Sequence[Record],
    experiment_paths: dict[int, str],
    result_paths: dict[str, str],
    repo_dir: Path | None,
) -> tuple[list[NoteView], list[str]]:
    """(one view per readable note, one `path:line: reason` per unreadable note file)."""
    notes, problems = list_notes(lab)
    targets = find_link_targets(lab, lesson_paths, [repo_dir] if repo_dir else [])
    pages = {
        "lesson": {str(n): p for n, p in lesson_paths.items()},
        "record": {str(r.id): f"records/{r.id:04d}.html" for r in records},
        "experiment": {str(n): p for n, p in experiment_paths.items()},
        "benchmark": result_paths,
    }
    views = []
    for note in notes:
        links = []
        for text in note.links:
            try:
                link = parse_link(text)
            except LabError:
                links.append(NoteLinkView(text, None, "not a KIND:ID link"))
                continue
            page = pages.get(link.kind, {}).get(link.target)
            links.append(NoteLinkView(text, page, targets.why_dangling(link)))
        views.append(NoteView(note, links, standalone_reasons(note, targets)))
    return views, problems


def standalone_problems(views: Sequence[NoteView]) -> list[str]:
    """One line per standalone note, for the build's problems report."""
    return [
        f"notes/{v.note.path.name}: a standalone note, it links nothing: {'; '.join(v.standalone)}"
        for v in views
        if v.standalone is not None
    ]
