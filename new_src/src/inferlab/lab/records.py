"""Learning records: make, list, load and update them.

Each record is one file, `records/NNNN-slug.md` (see `record_file`); ids are the next free
number. `list_records` reads the SQLite index (rebuilt when stale); `load_record` reads the file
itself, so its errors are always current. `update_record` first copies the old file to
`records/.backup/NNNN-slug.md.<UTC timestamp>`; nothing is ever deleted, and a corrupt file is
never rewritten (it can only be reported).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from inferlab.lab.atomic import atomic_create_text, atomic_write_text
from inferlab.lab.errors import LabError
from inferlab.lab.index import indexed_records
from inferlab.lab.layout import Lab
from inferlab.lab.record_file import (
    STATUSES,
    Record,
    candidate_files,
    number_in_name,
    read_record,
    record_filename,
    render_record,
)

__all__ = ["STATUSES", "Record", "list_records", "load_record", "new_record", "update_record"]

BACKUP_DIRNAME = ".backup"


def new_record(
    lab: Lab,
    title: str,
    *,
    lesson: int | None = None,
    status: str = "waiting-for-correction",
    body: str = "",
    links: Sequence[str] = (),
) -> Record:
    """Write a new record with the next free id and return it."""
    lab.records_dir.mkdir(parents=True, exist_ok=True)
    record = Record(
        id=0,
        title=title.strip(),
        lesson=lesson,
        status=status,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        links=[str(link) for link in links],
        body=body,
        path=lab.records_dir,
    )
    _validate(record)
    # Another process may take the same id between choosing and writing: then try the next one.
    for _ in range(100):
        record.id = _next_free_id(lab)
        record.path = lab.records_dir / record_filename(record.id, record.title)
        try:
            atomic_create_text(record.path, render_record(record))
            return record
        except FileExistsError:
            continue
    raise LabError(f"could not find a free record id in {lab.records_dir}")


def list_records(lab: Lab) -> tuple[list[Record], list[str]]:
    """(good records sorted by id, one `path:line: reason` message per unreadable file)."""
    return indexed_records(lab)


def load_record(lab: Lab, record_id: int) -> Record:
    """The record with this id, read from its file; LabError if unknown, FrontMatterError if corrupt."""
    matches = [p for p in candidate_files(lab.records_dir) if number_in_name(p) == record_id]
    if not matches:
        raise LabError(f"no record {record_id} in {lab.records_dir}")
    if len(matches) > 1:
        names = ", ".join(p.name for p in matches)
        raise LabError(f"record {record_id} is claimed by several files ({names}); rename all but one")
    return read_record(matches[0])


def update_record(lab: Lab, record: Record) -> Record:
    """Rewrite `record`'s file from its fields (the old file is backed up first); return it reread."""
    _validate(record)
    current = load_record(lab, record.id)  # refuses to rewrite a file it cannot read
    if Path(record.path).resolve() != current.path.resolve():
        raise LabError(f"record {record.id} lives at {current.path}, not {record.path}")
    atomic_write_text(current.path, render_record(record), backup_dir=backup_dir(lab))
    return read_record(current.path)


def backup_dir(lab: Lab) -> Path:
    return lab.records_dir / BACKUP_DIRNAME


def _next_free_id(lab: Lab) -> int:
    # counts every numbered file, corrupt ones too: their id is taken even if unreadable
    numbers = [number_in_name(p) for p in candidate_files(lab.records_dir)]
    return max((n for n in numbers if n is not None), default=0) + 1


def _validate(record: Record) -> None:
    if not record.title.strip():
        raise LabError("a record needs a title")
    if record.status not in STATUSES:
        raise LabError(f"unknown status {record.status!r}; use one of {', '.join(STATUSES)}")
    if record.lesson is not None and (isinstance(record.lesson, bool) or not isinstance(record.lesson, int)):
        raise LabError(f"lesson must be a whole number, not {record.lesson!r}")
