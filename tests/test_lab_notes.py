"""Reading notes: `note new` refuses a note that links nothing (no standalone book reports),
writes and lists one that links the lab's work, and the site flags a note that became standalone
(hand-edited) on its notes page and in the build's problems."""

from __future__ import annotations

import json

import pytest

from cli_run import run
from inferlab.lab import Lab, new_record
from inferlab.lab.errors import LabError
from inferlab.lab.note_links import find_link_targets, parse_link
from inferlab.lab.notes import list_notes, load_note, new_note, standalone_reasons


def test_a_note_without_a_link_is_refused(monkeypatch, capsys):
    code, _, err = run(monkeypatch, capsys, "note", "new", "--source", "PMPP ch. 5", "--body", "Tiling.")
    assert code == 1 and "no standalone book reports: link a lesson, record, experiment" in err
    assert not (Lab.open(None).root / "notes").exists() or not list((Lab.open(None).root / "notes").iterdir())


@pytest.mark.parametrize(
    ("link", "message"),
    [
        ("lesson:999", "lesson 999 does not exist, so the note would link nothing"),
        ("record:4", "record 4 does not exist"),
        ("kernel:no_such_kernel", "no kernel named 'no_such_kernel'"),
        ("chapter:5", "must be KIND:ID with KIND one of lesson, record"),
        ("lesson:three", "must name the lesson by its number"),
    ],
)
def test_links_that_name_nothing_are_refused(monkeypatch, capsys, link, message):
    code, _, err = run(monkeypatch, capsys, "note", "new", "--source", "A book", "--link", link)
    assert code == 1 and message in " ".join(err.split())


def test_a_linked_note_is_written_listed_and_shown(monkeypatch, capsys):
    lab = Lab.open(None)
    new_record(lab, "Why masks matter", lesson=1)
    code, out, err = run(
        monkeypatch,
        capsys,
        *("note", "new", "--source", "PMPP, 4th ed., ch. 5", "--title", "Tiling and reuse"),
        *("--link", "record:1", "--link", "kernel:softmax", "--link", "puzzle:nowhere"),
        *("--body", "Tiles are loaded **once** per block."),
    )
    assert code == 0, err
    assert "Wrote note 1:" in out and "link names nothing: no puzzle named 'nowhere'" in err
    note = load_note(lab, 1)
    assert note.path.name == "0001-tiling-and-reuse.md"
    assert (note.source, note.links) == (
        "PMPP, 4th ed., ch. 5",
        ["record:1", "kernel:softmax", "puzzle:nowhere"],
    )
    assert note.path.read_text().startswith(
        "---\nid: 1\ntitle: Tiling and reuse\nsource: PMPP, 4th ed., ch. 5\n"
    )
    code, out, _ = run(monkeypatch, capsys, "note", "list")
    assert code == 0 and "Tiling and reuse" in out and "record:1" in out and "standalone" not in out
    code, out, _ = run(monkeypatch, capsys, "note", "show", "1")
    assert code == 0 and "PMPP, 4th ed., ch. 5" in out and "Tiles are loaded once per block." in out


def test_every_kind_of_link_resolves_to_what_exists(tmp_path):
    lab = Lab.open(None)
    new_record(lab, "r")
    (lab.experiments_dir / "0002-mask-overrun").mkdir(parents=True)
    (lab.results_dir / "20260101T000000Z-bench.json").write_text("{}")
    (lab.root / "puzzles").mkdir()
    (lab.root / "puzzles" / "0001-nf4.md").write_text("# NF4\n")
    committed = tmp_path / "committed"
    committed.mkdir()
    (committed / "20250101T000000Z-check.json").write_text("{}")
    targets = find_link_targets(lab, [1, 2], [committed])
    good = [
        "lesson:2",
        "record:1",
        "experiment:0002-mask-overrun",
        "experiment:2",
        "benchmark:20260101T000000Z-bench.json",
        "benchmark:results/20260101T000000Z-bench",
        "benchmark:20250101T000000Z-check.json",
        "kernel:softmax",
        "kernel:Softmax",
        "kernel:rmsnorm",
        "puzzle:nf4",
        "puzzle:0001-nf4",
    ]
    assert [targets.why_dangling(parse_link(link)) for link in good] == [None] * len(good)
    assert targets.why_dangling(parse_link("experiment:3")) == "experiment 3 does not exist"
    with pytest.raises(LabError, match="no standalone book reports"):
        new_note(lab, "A book", [], targets)


def test_the_site_flags_a_standalone_note(monkeypatch):
    from inferlab.learn import curriculum
    from inferlab.site import build_site, check_site

    monkeypatch.setattr(curriculum, "list_lessons", lambda: [])  # the site's notes, not the lessons
    lab = Lab.open(None)
    new_record(lab, "Why masks matter")
    (lab.results_dir / "20260101T000000Z-bench.json").write_text(json.dumps({"kind": "bench", "rows": []}))
    targets = find_link_targets(lab, [])
    new_note(lab, "PMPP", ["record:1", "benchmark:20260101T000000Z-bench.json"], targets, body="Good.")
    hand_edited = lab.root / "notes" / "0002-a-book-report.md"
    hand_edited.write_text(
        "---\nid: 2\ntitle: A book report\nsource: Some book\nlinks:\n- lesson:999\n"
        "created: '2025-01-01T00:00:00+00:00'\n---\n\nNo link to the lab's work.\n"
    )
    (lab.root / "notes" / "0003-broken.md").write_text("---\nid: 3\n---\n")
    notes, problems = list_notes(lab)
    assert [n.id for n in notes] == [1, 2] and "missing required field 'title'" in problems[0]
    assert standalone_reasons(notes[1], targets) == ["lesson 999 does not exist"]
    assert standalone_reasons(notes[0], targets) is None

    report = build_site(lab, repo_results=None)
    assert any(p.startswith("notes/0002-a-book-report.md: a standalone note") for p in report.problems)
    assert any("0003-broken.md" in p for p in report.problems)
    assert not any("0001-" in p and "notes/" in p for p in report.problems)
    index = (report.out / "notes" / "index.html").read_text()
    assert "Standalone notes (1)" in index and "lesson 999 does not exist" in index
    assert 'href="../records/0001.html">record:1</a>' in index
    assert 'href="../benchmarks/lab-20260101T000000Z-bench.html">benchmark:' in index
    page = (report.out / "notes" / "0002.html").read_text()
    assert "A standalone note:" in page and "No link to the lab" in page
    assert check_site(report.out) == []
