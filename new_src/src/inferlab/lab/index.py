"""`index.sqlite`: a derived, disposable index of the records, rebuilt whenever it is stale.

The files are the truth. The index remembers, for every record file (good or bad), its size,
mtime_ns and inode as seen *before* it was read; if any of those differ now, or a file was added
or removed, the index is stale and is rebuilt from scratch (no incremental updates to get wrong).
A rebuild writes a new database beside the old one and renames it into place, so a reader never
sees a half-built index. Bad files are indexed as problems (one `path:line: reason` line each),
so `record list` shows the good records and warns about the bad ones.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import tempfile
from pathlib import Path

import yaml

from inferlab.lab.errors import FrontMatterError
from inferlab.lab.layout import Lab
from inferlab.lab.record_file import Record, candidate_files, read_record

SCHEMA_VERSION = "1"  # bump when the tables change: an old index then counts as stale
_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE files (name TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, inode INTEGER);
CREATE TABLE records (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, title TEXT NOT NULL, lesson INTEGER,
    status TEXT NOT NULL, created TEXT NOT NULL, links TEXT NOT NULL, body TEXT NOT NULL,
    extra TEXT NOT NULL
);
CREATE TABLE problems (message TEXT NOT NULL);
"""

FileStamp = tuple[int, int, int]  # (size, mtime_ns, inode): any change means "read it again"


def reindex(lab: Lab) -> int:
    """Rebuild `index.sqlite` from the record files; return the number of records indexed."""
    records, _ = _rebuild(lab)
    return len(records)


def indexed_records(lab: Lab) -> tuple[list[Record], list[str]]:
    """(good records sorted by id, problems), from the index, rebuilding it first if stale."""
    stamps = _stamp_files(lab)
    fresh = _read_if_fresh(lab, stamps)
    return fresh if fresh is not None else _rebuild(lab)


def scan_records(lab: Lab) -> tuple[list[Record], list[str], dict[str, FileStamp]]:
    """Read every record file: (good records by id, problems, the stamps taken before reading)."""
    stamps = _stamp_files(lab)  # before reading: an edit during the scan makes the index stale
    by_id: dict[int, Record] = {}
    problems: list[str] = []
    for name in stamps:
        path = lab.records_dir / name
        try:
            record = read_record(path)
        except FrontMatterError as e:
            problems.append(str(e))
            continue
        if record.id in by_id:
            other = by_id[record.id].path.name
            problems.append(f"{path}:1: id {record.id} is also used by {other}; this file is skipped")
            continue
        by_id[record.id] = record
    return [by_id[i] for i in sorted(by_id)], problems, stamps


def _rebuild(lab: Lab) -> tuple[list[Record], list[str]]:
    records, problems, stamps = scan_records(lab)
    fd, tmp_name = tempfile.mkstemp(dir=lab.root, prefix=".index-", suffix=".sqlite.tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with contextlib.closing(sqlite3.connect(tmp)) as db:
            db.executescript(_SCHEMA)
            db.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
            db.executemany(
                "INSERT INTO files VALUES (?, ?, ?, ?)",
                [(name, *stamp) for name, stamp in stamps.items()],
            )
            db.executemany(
                "INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [_record_row(r) for r in records],
            )
            db.executemany("INSERT INTO problems VALUES (?)", [(m,) for m in problems])
            db.commit()
        os.replace(tmp, lab.index_path)
    finally:
        tmp.unlink(missing_ok=True)
    return records, problems


def _read_if_fresh(lab: Lab, stamps: dict[str, FileStamp]) -> tuple[list[Record], list[str]] | None:
    if not lab.index_path.is_file():
        return None
    try:
        with contextlib.closing(sqlite3.connect(lab.index_path)) as db:
            schema = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if schema is None or schema[0] != SCHEMA_VERSION:
                return None
            indexed = {row[0]: tuple(row[1:]) for row in db.execute("SELECT * FROM files")}
            if indexed != stamps:
                return None
            rows = db.execute("SELECT * FROM records ORDER BY id").fetchall()
            problems = [row[0] for row in db.execute("SELECT message FROM problems ORDER BY rowid")]
    except sqlite3.DatabaseError:  # a damaged or foreign file: it is derived, so rebuild it
        return None
    return [_row_record(lab, row) for row in rows], problems


def _stamp_files(lab: Lab) -> dict[str, FileStamp]:
    stamps: dict[str, FileStamp] = {}
    for path in candidate_files(lab.records_dir):
        try:
            st = path.stat()
        except FileNotFoundError:  # removed while we looked
            continue
        stamps[path.name] = (st.st_size, st.st_mtime_ns, st.st_ino)
    return stamps


def _record_row(r: Record) -> tuple:
    extra = yaml.safe_dump(r.extra, sort_keys=False, allow_unicode=True) if r.extra else ""
    return (
        r.id,
        r.path.name,
        r.title,
        r.lesson,
        r.status,
        r.created,
        json.dumps(r.links),
        r.body,
        extra,
    )


def _row_record(lab: Lab, row: tuple) -> Record:
    record_id, name, title, lesson, status, created, links, body, extra = row
    return Record(
        id=record_id,
        title=title,
        lesson=lesson,
        status=status,
        created=created,
        links=json.loads(links),
        body=body,
        path=lab.records_dir / name,
        extra=yaml.safe_load(extra) if extra else {},
    )
