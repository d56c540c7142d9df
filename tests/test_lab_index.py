"""The SQLite index: derived, rebuilt when stale, and equal to a fresh rebuild from the files."""

from __future__ import annotations

import pytest

from inferlab.lab import Lab, list_records, new_record, reindex
from inferlab.lab import index as index_module


@pytest.fixture
def lab() -> Lab:
    lab = Lab.open()
    new_record(lab, "One", lesson=1, body="first", links=["a"])
    new_record(lab, "Two", status="reviewed")
    (lab.records_dir / "0003-bad.md").write_text("---\nid: 3\n")
    return lab


def test_deleting_the_index_then_reindexing_gives_the_same_listing(lab):
    before = list_records(lab)
    assert lab.index_path.is_file()
    lab.index_path.unlink()
    assert reindex(lab) == 2
    assert list_records(lab) == before


def test_a_fresh_index_is_read_without_rereading_the_files(lab, monkeypatch):
    expected = list_records(lab)

    def no_rebuild(lab):
        raise AssertionError("the index was fresh; it should not be rebuilt")

    monkeypatch.setattr(index_module, "_rebuild", no_rebuild)
    assert list_records(lab) == expected  # problems are indexed too


def test_hand_edits_additions_and_removals_make_the_index_stale(lab):
    list_records(lab)
    one = lab.records_dir / "0001-one.md"
    one.write_text(one.read_text().replace("title: One", "title: Uno"))
    assert [r.title for r in list_records(lab)[0]] == ["Uno", "Two"]
    (lab.records_dir / "0002-two.md").unlink()
    assert [r.id for r in list_records(lab)[0]] == [1]
    new_record(lab, "Four")
    assert [r.id for r in list_records(lab)[0]] == [1, 4]
    (lab.records_dir / "0003-bad.md").unlink()
    assert list_records(lab)[1] == []


def test_a_damaged_index_is_rebuilt(lab):
    expected = list_records(lab)
    lab.index_path.write_bytes(b"this is not sqlite" * 100)
    assert list_records(lab) == expected


def test_reindex_leaves_no_temporary_files(lab):
    reindex(lab)
    hidden = [p.name for p in lab.root.iterdir() if p.name.startswith(".index")]
    assert hidden == []
