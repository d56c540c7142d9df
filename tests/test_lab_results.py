"""The results store: JSON files named by time and kind, never overwritten."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from inferlab.lab import Lab, LabError, list_results, save_result
from inferlab.lab import results as results_module


class FrozenClock(datetime):
    @classmethod
    def now(cls, tz=None):
        return datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_save_writes_indented_json_and_never_overwrites(monkeypatch):
    monkeypatch.setattr(results_module, "datetime", FrozenClock)
    lab = Lab.open()
    first = save_result(lab, "bench", {"kernel": "add", "ms": 0.5})
    second = save_result(lab, "bench", {"kernel": "add", "ms": 0.6})
    assert first.name == "20250102T030405Z-bench.json"
    assert second.name == "20250102T030405Z-bench.2.json"
    assert json.loads(first.read_text()) == {"kernel": "add", "ms": 0.5}
    assert first.read_text().startswith('{\n  "kernel"')
    assert [p.name for p in lab.results_dir.iterdir() if p.name.startswith(".")] == []


def test_list_results_filters_by_kind_oldest_first(monkeypatch):
    monkeypatch.setattr(results_module, "datetime", FrozenClock)
    lab = Lab.open()
    paths = [save_result(lab, "bench", {"n": n}) for n in range(3)]
    other = save_result(lab, "bench-check", {})
    assert list_results(lab, "bench") == paths
    assert list_results(lab, "bench-check") == [other]
    assert set(list_results(lab)) == {*paths, other}


def test_a_kind_that_is_not_a_plain_name_is_refused():
    with pytest.raises(LabError, match="result kind"):
        save_result(Lab.open(), "../escape", {})
