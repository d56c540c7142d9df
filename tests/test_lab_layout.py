"""Making and opening labs: the embedded default lab, explicit paths, never clobbering."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferlab.lab import Lab, LabError, default_lab_path, init_lab


def test_default_lab_is_made_silently_on_first_open(_isolated_lab):
    lab = Lab.open()
    assert lab.root == _isolated_lab.resolve()
    for folder in (lab.records_dir, lab.experiments_dir, lab.results_dir, lab.reviews_dir):
        assert folder.is_dir()
    assert (lab.root / "lab.toml").is_file()
    assert Lab.open() == lab  # the second open finds it


def test_default_lab_path_without_inferlab_home_is_the_user_data_dir(monkeypatch):
    import platformdirs

    monkeypatch.delenv("INFERLAB_HOME")
    expected = Path(platformdirs.user_data_dir("inferlab", appauthor=False)).resolve()
    assert default_lab_path() == expected


def test_an_explicit_path_that_is_not_a_lab_is_an_error(tmp_path):
    with pytest.raises(LabError, match=r"no lab at .*nowhere; create one with `inferlab init"):
        Lab.open(tmp_path / "nowhere")
    assert not (tmp_path / "nowhere").exists()


def test_init_twice_refuses(tmp_path):
    init_lab(tmp_path / "lab")
    with pytest.raises(LabError, match="already a lab"):
        init_lab(tmp_path / "lab")


def test_init_in_a_non_empty_folder_leaves_its_files_alone(tmp_path):
    (tmp_path / "records").mkdir()
    (tmp_path / "records" / "mine.txt").write_text("mine")
    (tmp_path / ".gitignore").write_text("*.pyc\n")
    lab = init_lab(tmp_path)
    assert Lab.open(tmp_path) == lab
    assert (tmp_path / "records" / "mine.txt").read_text() == "mine"
    assert (tmp_path / ".gitignore").read_text() == "*.pyc\n"


def test_init_on_a_file_is_an_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(LabError, match="not a folder"):
        init_lab(tmp_path / "file")


def test_a_lab_from_a_newer_inferlab_is_refused(tmp_path):
    lab = init_lab(tmp_path)
    lab.config_path.write_text("format = 99\n")
    with pytest.raises(LabError, match="newer than this inferlab"):
        Lab.open(tmp_path)
