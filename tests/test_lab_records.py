"""Records: new/list/load round trip, ids, validation, backups, and corrupt files kept intact."""

from __future__ import annotations

import dataclasses

import pytest

from inferlab.lab import (
    FrontMatterError,
    Lab,
    LabError,
    list_records,
    load_record,
    new_record,
    update_record,
)
from inferlab.lab.record_file import slugify

BAD_YAML = "---\nid: 3\ntitle: [oops\nstatus: reviewed\n---\nbody\n"


@pytest.fixture
def lab() -> Lab:
    return Lab.open()


def test_new_list_load_round_trip(lab):
    first = new_record(
        lab, "Why masks matter", lesson=1, body="A *mask* guards the tail.", links=["lessons/02"]
    )
    second = new_record(lab, "Tiles: naïve  first!", status="waiting-for-recall")
    assert (first.id, second.id) == (1, 2)
    assert first.path.name == "0001-why-masks-matter.md"
    assert second.path.name == "0002-tiles-naive-first.md"
    records, problems = list_records(lab)
    assert problems == []
    assert [r.id for r in records] == [1, 2]
    loaded = load_record(lab, 1)
    assert loaded == records[0]
    assert (loaded.title, loaded.lesson, loaded.status, loaded.links) == (
        "Why masks matter",
        1,
        "waiting-for-correction",
        ["lessons/02"],
    )
    assert loaded.body.strip() == "A *mask* guards the tail."
    assert load_record(lab, 2).lesson is None


def test_new_record_skips_ids_taken_by_corrupt_files(lab):
    (lab.records_dir / "0007-broken.md").write_text("not a record")
    assert new_record(lab, "After the broken one").id == 8


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [({"title": "  "}, "needs a title"), ({"title": "x", "status": "done"}, "unknown status")],
)
def test_new_record_rejects_bad_fields(lab, kwargs, words):
    with pytest.raises(LabError, match=words):
        new_record(lab, **kwargs)
    assert list(lab.records_dir.glob("*.md")) == []


def test_update_backs_up_the_old_file_and_keeps_hand_added_fields(lab):
    record = new_record(lab, "Reductions", body="first draft")
    text = record.path.read_text().replace("links: []", "links: []\nmood: curious")
    record.path.write_text(text)
    before = record.path.read_bytes()
    updated = update_record(lab, dataclasses.replace(load_record(lab, 1), status="corrected"))
    assert updated.status == "corrected"
    assert updated.extra == {"mood": "curious"}
    assert "mood: curious" in record.path.read_text()
    (backup,) = (lab.records_dir / ".backup").iterdir()
    assert backup.read_bytes() == before
    assert [r.id for r in list_records(lab)[0]] == [1]  # the backup is not a record


def test_corrupt_file_is_reported_with_its_line_and_never_rewritten(lab):
    new_record(lab, "Good one")
    bad = lab.records_dir / "0003-bad.md"
    bad.write_text(BAD_YAML)
    records, problems = list_records(lab)
    assert [r.title for r in records] == ["Good one"]
    (problem,) = problems
    assert problem.startswith(f"{bad}:4: invalid YAML")
    with pytest.raises(FrontMatterError) as info:
        load_record(lab, 3)
    assert (info.value.path, info.value.line) == (bad, 4)
    with pytest.raises(FrontMatterError):
        update_record(lab, dataclasses.replace(records[0], id=3, path=bad))
    assert bad.read_text() == BAD_YAML


GOOD_FRONT = {  # field -> its YAML value; a record file 0005-x.md, fields on lines 2..7
    "id": "5",
    "title": "x",
    "lesson": "null",
    "status": "reviewed",
    "created": "'2025-01-01'",
    "links": "[]",
}


@pytest.mark.parametrize(
    ("field", "value", "line", "words"),
    [
        ("id", "4", 2, "does not match the file name's number 5"),
        ("title", "''", 3, "field 'title' is empty"),
        ("status", "done", 5, "status 'done' is not one of"),
        ("created", None, 1, "missing required field 'created'"),
        ("created", "soon", 6, "not an ISO-8601 timestamp"),
        ("links", "[1]", 7, "list of text"),
    ],
)
def test_invalid_fields_name_their_line(lab, field, value, line, words):
    fields = {**GOOD_FRONT, field: value}
    front = "".join(f"{k}: {v}\n" for k, v in fields.items() if v is not None)
    (lab.records_dir / "0005-x.md").write_text(f"---\n{front}---\n")
    with pytest.raises(FrontMatterError, match=words) as info:
        load_record(lab, 5)
    assert info.value.line == line


def test_an_unquoted_hand_typed_timestamp_is_accepted(lab):
    path = lab.records_dir / "0001-by-hand.md"
    path.write_text(
        "---\nid: 1\ntitle: By hand\nlesson: 2\nstatus: reviewed\n"
        "created: 2025-01-01T10:00:00Z\nlinks: []\n---\nbody\n"
    )
    assert load_record(lab, 1).created.startswith("2025-01-01T10:00:00")


def test_a_duplicate_id_is_reported_not_guessed(lab):
    new_record(lab, "One")
    copy = lab.records_dir / "0001-copy.md"
    copy.write_text((lab.records_dir / "0001-one.md").read_text())
    records, problems = list_records(lab)
    assert len(records) == 1 and "also used by" in problems[0]
    with pytest.raises(LabError, match="claimed by several files"):
        load_record(lab, 1)


def test_unknown_record_is_a_clear_error(lab):
    with pytest.raises(LabError, match="no record 42"):
        load_record(lab, 42)


def test_slugify():
    assert slugify("Why masks matter!") == "why-masks-matter"
    assert slugify("???") == "record"
    assert len(slugify("word " * 40)) <= 50
