"""Atomic writes: no temporary files left behind, old content backed up, failures change nothing."""

from __future__ import annotations

import os

import pytest

from inferlab.lab.atomic import atomic_create_text, atomic_write_text


def test_new_file_is_written_and_no_temporary_file_is_left(tmp_path):
    target = tmp_path / "note.md"
    atomic_write_text(target, "héllo\n")
    assert target.read_text(encoding="utf-8") == "héllo\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["note.md"]


def test_overwrite_keeps_a_byte_exact_backup(tmp_path):
    target, backups = tmp_path / "note.md", tmp_path / ".backup"
    target.write_bytes(b"old\r\nwords\n")
    atomic_write_text(target, "new\n", backup_dir=backups)
    assert target.read_text() == "new\n"
    (backup,) = backups.iterdir()
    assert backup.name.startswith("note.md.")
    assert backup.read_bytes() == b"old\r\nwords\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".backup", "note.md"]


def test_two_overwrites_keep_two_backups(tmp_path):
    target, backups = tmp_path / "note.md", tmp_path / ".backup"
    for text in ("one", "two", "three"):
        atomic_write_text(target, text, backup_dir=backups)
    assert sorted(p.read_text() for p in backups.iterdir()) == ["one", "two"]


def test_a_failed_rename_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "note.md"
    target.write_text("precious")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(target, "new")
    assert target.read_text() == "precious"
    assert [p.name for p in tmp_path.iterdir()] == ["note.md"]


def test_create_refuses_an_existing_file(tmp_path):
    target = tmp_path / "result.json"
    atomic_create_text(target, "first")
    with pytest.raises(FileExistsError):
        atomic_create_text(target, "second")
    assert target.read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]
