"""`inferlab init --adopt`: a /teach-style lab taken in place. A dry run changes no byte; adopting
puts front matter above each record's and experiment README's unchanged bytes (backups kept),
maps free-text Status lines, infers an experiment's status from its sections, reports dangling
links and README-less experiment folders, never overwrites lab.toml, and a second run changes
nothing. The glossary and RESOURCES.md become data, and `inferlab explain` quotes the learner's
glossary."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from cli_run import run
from inferlab.lab import Lab, list_records
from inferlab.lab.adopt import SEPARATOR, plan_adoption
from inferlab.lab.experiments import find_experiment, read_experiment
from inferlab.lab.glossary import GlossaryError, find_term, load_glossary, parse_glossary
from inferlab.lab.record_file import read_record
from inferlab.lab.resources import load_resources, parse_resources
from inferlab.lab.teach_experiment import infer_status, title_of
from inferlab.lab.teach_record import dangling_links, links_in, map_status

RECORD_1 = """\
# Program ids and the grid

Lesson: 1
Status: waiting for correction

## Prompt
What does `tl.program_id(0)` return?

## My cold-recall answer
The thread index.

## Correction
(to write)

## Link to experiment
[add bandwidth](../experiments/0001-add-bandwidth/) and the [lesson](../lessons/0001-execution-model.html).
"""
# CRLF line ends and a status nobody maps: both must survive byte for byte
RECORD_2 = (
    "# Masks at the ragged edge\r\n\r\n**Status:** needs a second look\r\n\r\n## Prompt\r\nWhy mask?\r\n\r\n"
    "## Link to experiment\r\nTo do: experiments/0002-mask-overrun (not written yet); see https://triton-lang.org\r\n"
)
# an experiment measured but not concluded: the Conclusion holds only a placeholder
EXPERIMENT_1 = """\
# Add at full bandwidth

Lesson: 1

## Question
Does `add` reach the copy bandwidth?

## Prediction
About 3 TB/s on an H100.

## Result
Measured 2.9 TB/s at 64M elements (see notes.md).

### Numbers
| n | TB/s |
|---|---|
| 64M | 2.9 |

## Conclusion
(to write)
"""
# CRLF, no `# ` title, nothing measured yet: planned, titled from the slug
EXPERIMENT_3 = (
    "## Question\r\nIs a fused SwiGLU faster?\r\n\r\n## Prediction\r\n3x fewer bytes.\r\n\r\n"
    "## Result\r\n<!-- after the run -->\r\n\r\n## Conclusion\r\n\r\n"
)
GLOSSARY = """\
<!doctype html><html><body><h1>Glossary</h1>
<dl>
  <dt id="mask">Mask</dt><dd>My words: booleans that stop lanes reading past the end.</dd>
  <dt>Program instance<dt>Program<dd>One copy of the kernel running on its own block, like a CUDA block.
</dl>
</body></html>
"""
RESOURCES = """\
# Resources

## Triton
- [Triton tutorials](https://triton-lang.org/) — trust: high — lesson 1: "Each program instance runs a block."
- **PMPP, 4th edition** https://example.org/pmpp (trust: high)
  > Tiling reduces global memory traffic by reusing data.

## Papers
| Title | URL | Trust | Quote |
|---|---|---|---|
| FlashAttention | https://arxiv.org/abs/2205.14135 | medium | "IO-aware exact attention" |
"""
KERNEL = """\
import triton
import triton.language as tl


@triton.jit
def copy_kernel(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(y_ptr + offs, tl.load(x_ptr + offs, mask=mask), mask=mask)
"""


def make_teach_lab(root: Path) -> Path:
    """A lab in the /teach layout: no lab.toml, records without front matter, one dangling link."""
    files = {
        "MISSION.md": "# Mission\n\nBecome an inference engineer who can prove it.\n",
        "RESOURCES.md": RESOURCES,
        "lessons/0001-execution-model.html": "<h1>Execution model</h1>\n",
        "reference/glossary.html": GLOSSARY,
        "reference/cheat-sheet.html": "<h1>Cheat sheet</h1>\n",
        "records/0001-program-ids.md": RECORD_1,
        "experiments/0001-add-bandwidth/notes.md": "Measured 2.9 TB/s.\n",
        "experiments/0001-add-bandwidth/README.md": EXPERIMENT_1,
        "experiments/0004-no-readme/notes.md": "Nothing written up yet.\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (root / "records/0002-masks.md").write_bytes(RECORD_2.encode())
    (root / "experiments/0003-fused-swiglu").mkdir()
    (root / "experiments/0003-fused-swiglu/README.md").write_bytes(EXPERIMENT_3.encode())
    return root


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def teach(tmp_path) -> Path:
    return make_teach_lab(tmp_path / "teach")


def test_a_dry_run_reports_what_it_found_and_changes_no_byte(monkeypatch, capsys, teach):
    before = snapshot(teach)
    code, out, err = run(monkeypatch, capsys, "init", "--adopt", str(teach), "--dry-run")
    assert code == 0, err
    assert snapshot(teach) == before
    assert "2 records, 3 experiments, 1 lesson, 2 references, 3 resources, 3 glossary terms" in out
    assert "Would write lab.toml" in out and "Would add this front matter" in out
    assert "status: waiting-for-correction" in out and "Dry run: nothing was changed." in out
    assert "Status 'needs a second look' is not one inferlab knows" in " ".join(err.split())
    assert (
        "dangling link: records/0002-masks.md: experiments/0002-mask-overrun, which does not exist"
        in " ".join(err.split())
    )


def test_adopting_puts_front_matter_above_unchanged_bytes_with_backups(monkeypatch, capsys, teach):
    originals = {
        name: (teach / "records" / name).read_bytes() for name in ("0001-program-ids.md", "0002-masks.md")
    }
    code, out, err = run(monkeypatch, capsys, "init", "--adopt", str(teach), "--yes")
    assert code == 0, err
    assert "Wrote lab.toml" in out and "Wrote .inferlab/glossary.json" in out
    for name, original in originals.items():
        new = (teach / "records" / name).read_bytes()
        front, sep, body = new.partition(b"\n---\n")
        assert new.startswith(b"---\n") and sep and body == SEPARATOR.encode() + original
        backups = list((teach / "records" / ".backup").glob(f"{name}.*"))
        assert [b.read_bytes() for b in backups] == [original]
    first = read_record(teach / "records/0001-program-ids.md")
    assert (first.id, first.title, first.lesson, first.status) == (
        1,
        "Program ids and the grid",
        1,
        "waiting-for-correction",
    )
    assert "experiments/0001-add-bandwidth" in first.links and "adopted" in first.extra
    second = read_record(teach / "records/0002-masks.md")
    assert second.status == "waiting-for-correction" and second.lesson is None
    records, problems = list_records(Lab.open(teach))
    assert [r.id for r in records] == [1, 2] and problems == []
    assert (teach / "MISSION.md").read_text().startswith("# Mission")  # the learner's files untouched


def test_a_second_run_changes_nothing_and_says_so(monkeypatch, capsys, teach):
    assert run(monkeypatch, capsys, "init", "--adopt", str(teach), "--yes")[0] == 0
    before = snapshot(teach)
    code, out, _ = run(monkeypatch, capsys, "init", "--adopt", str(teach), "--yes")
    assert code == 0 and "Nothing to change" in out and "already adopted" in out
    assert snapshot(teach) == before
    assert not plan_adoption(teach).has_changes


def test_each_record_is_asked_about_and_a_no_leaves_it_alone(monkeypatch, capsys, teach):
    untouched = (teach / "records/0002-masks.md").read_bytes()
    readme = teach / "experiments/0003-fused-swiglu/README.md"
    untouched_readme = readme.read_bytes()
    code, out, err = run(monkeypatch, capsys, "init", "--adopt", str(teach), stdin="y\nn\ny\nn\n")
    assert code == 0, err
    assert read_record(teach / "records/0001-program-ids.md").id == 1
    assert (teach / "records/0002-masks.md").read_bytes() == untouched and "Left records/0002-masks.md" in out
    assert read_experiment(teach / "experiments/0001-add-bandwidth").id == 1
    assert readme.read_bytes() == untouched_readme and f"Left {readme.relative_to(teach).as_posix()}" in out
    plan = plan_adoption(teach)  # asked again next time
    assert len(plan.proposals) == 1 and [p.path for p in plan.experiment_proposals] == [readme]


def test_an_existing_lab_toml_is_never_overwritten(monkeypatch, capsys, teach):
    (teach / "lab.toml").write_text("# mine\nformat = 1\n")
    assert run(monkeypatch, capsys, "init", "--adopt", str(teach), "--yes")[0] == 0
    assert (teach / "lab.toml").read_text() == "# mine\nformat = 1\n"


def test_adoption_mistakes_are_one_sentence(monkeypatch, capsys, tmp_path):
    code, _, err = run(monkeypatch, capsys, "init", "--adopt", str(tmp_path / "nowhere"))
    assert code == 1 and "no folder at" in err
    code, _, err = run(monkeypatch, capsys, "init", str(tmp_path / "x"), "--yes")
    assert code == 1 and "only go with --adopt" in err


@pytest.mark.parametrize(
    ("written", "status", "known"),
    [
        ("waiting for correction", "waiting-for-correction", True),
        ("**Waiting-for-recall**", "waiting-for-recall", True),
        ("Corrected on 2025-02-01", "corrected", True),
        ("not yet corrected", "waiting-for-correction", True),
        ("reviewed twice", "reviewed", True),
        ("recall pending", "waiting-for-recall", True),
        ("needs a second look", "waiting-for-correction", False),
        (None, "waiting-for-correction", False),
    ],
)
def test_free_text_status_lines_map_to_statuses(written, status, known):
    mapping = map_status(written)
    assert (mapping.status, mapping.known) == (status, known)


def test_links_relative_to_records_and_bare_experiment_paths(tmp_path):
    (tmp_path / "experiments/0001-a").mkdir(parents=True)
    body = "[a](../experiments/0001-a/) [w](https://x.org) [t](#top) experiments/0003-b `experiments/0001-a`"
    assert [link.where for link in links_in(body)] == ["experiments/0001-a", "experiments/0003-b"]
    assert [link.where for link in dangling_links(tmp_path, body)] == ["experiments/0003-b"]
    # a learner's link written from the lab root still counts as found
    assert dangling_links(tmp_path, "[a](experiments/0001-a)") == []


def test_the_glossary_and_resources_become_data(teach):
    lab = Lab(teach)
    glossary = load_glossary(lab)
    terms = {t.term: t.definition for t in glossary.terms}
    assert terms["Mask"].startswith("My words: booleans")
    assert terms["Program instance"] == terms["Program"]  # two <dt> share one <dd>, closing tags left out
    assert find_term(glossary.terms, ["masks"]).term == "Mask" and find_term(glossary.terms, ["tile"]) is None
    table = parse_glossary(
        "<table><tr><th>Term</th><th>Meaning</th></tr><tr><td>Tile</td><td>a block</td></tr></table>",
        Path("g"),
    )
    assert [(t.term, t.definition) for t in table.terms] == [("Tile", "a block")]
    resources = {r.title: r for r in load_resources(lab)}
    tutorials = resources["Triton tutorials"]
    assert (
        tutorials.trust == "high"
        and tutorials.lesson == 1
        and tutorials.quote == "Each program instance runs a block."
    )
    assert tutorials.url.startswith("https://triton-lang.org") and tutorials.section == "Triton"
    pmpp = resources["PMPP, 4th edition"]
    assert pmpp.url == "https://example.org/pmpp" and pmpp.quote.startswith("Tiling reduces")
    flash = resources["FlashAttention"]
    assert (flash.url, flash.trust, flash.quote) == (
        "https://arxiv.org/abs/2205.14135",
        "medium",
        "IO-aware exact attention",
    )
    assert parse_resources("no list here\n") == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xfe not utf-8", "not valid UTF-8"),
        (b"<html><p>just prose</p></html>", "no glossary terms found"),
    ],
)
def test_a_corrupt_glossary_is_reported_and_nothing_else_breaks(monkeypatch, capsys, teach, content, message):
    (teach / "reference/glossary.html").write_bytes(content)
    with pytest.raises(GlossaryError, match=message):
        load_glossary(Lab(teach))
    code, out, err = run(monkeypatch, capsys, "init", "--adopt", str(teach), "--yes")
    assert code == 0 and message in err and "reference/glossary.html" in err
    assert len(list_records(Lab.open(teach))[0]) == 2  # the records were adopted all the same
    monkeypatch.setenv("INFERLAB_HOME", str(teach))
    kernel = teach / "copy.py"
    kernel.write_text(KERNEL)
    code, out, _ = run(monkeypatch, capsys, "explain", str(kernel))
    assert code == 0 and "program instance" in out and "your glossary was not used" in out


def test_explain_quotes_the_learners_glossary(monkeypatch, capsys, teach):
    assert run(monkeypatch, capsys, "init", "--adopt", str(teach), "--yes")[0] == 0
    monkeypatch.setenv("INFERLAB_HOME", str(teach))
    kernel = teach / "copy.py"
    kernel.write_text(textwrap.dedent(KERNEL))
    code, out, err = run(monkeypatch, capsys, "explain", str(kernel))
    assert code == 0, err
    flat = " ".join(out.split())
    assert "your glossary: Mask: My words: booleans that stop lanes reading past the end." in flat
    assert "your glossary: Program instance: One copy of the kernel" in flat


def test_glossary_and_resources_commands(monkeypatch, capsys, teach):
    assert run(monkeypatch, capsys, "init", "--adopt", str(teach), "--yes")[0] == 0
    code, out, _ = run(monkeypatch, capsys, "lab", "glossary", "masks", "--lab", str(teach))
    assert code == 0 and "My words" in out and "Program instance" not in out
    code, out, _ = run(monkeypatch, capsys, "lab", "resources", "--lab", str(teach))
    assert code == 0 and "FlashAttention" in out and "medium" in out


def test_a_dry_run_proposes_experiment_front_matter_and_changes_nothing(monkeypatch, capsys, teach):
    before = snapshot(teach)
    code, out, err = run(monkeypatch, capsys, "init", "--adopt", str(teach), "--dry-run")
    assert code == 0, err
    assert snapshot(teach) == before and not (teach / "experiments/0001-add-bandwidth/.backup").exists()
    flat = " ".join(out.split())
    assert (
        "Would add this front matter above the first line of experiments/0001-add-bandwidth/README.md" in flat
    )
    assert "title: Add at full bandwidth" in out and "device_wanted: any" in out and "predictions: []" in out
    assert "(status measured: its Result section is written, its Conclusion is not)" in flat
    assert "title: fused swiglu" in out and "status planned" in flat
    assert "experiments/0004-no-readme: no README.md, so nothing to adopt" in " ".join(err.split())
    assert not (teach / "experiments/0004-no-readme/README.md").exists()


def test_adopting_experiments_keeps_their_bytes_and_inferlab_reads_them(monkeypatch, capsys, teach):
    readmes = {
        name: (teach / "experiments" / name / "README.md").read_bytes()
        for name in ("0001-add-bandwidth", "0003-fused-swiglu")
    }
    monkeypatch.setenv("INFERLAB_HOME", str(teach))
    assert run(monkeypatch, capsys, "init", "--adopt", str(teach), "--dry-run")[0] == 0
    code, out, err = run(monkeypatch, capsys, "init", "--adopt", str(teach), "--yes")
    assert code == 0, err
    for name, original in readmes.items():
        new = (teach / "experiments" / name / "README.md").read_bytes()
        front, sep, body = new.partition(b"\n---\n")
        assert new.startswith(b"---\n") and sep and body == SEPARATOR.encode() + original
        backups = list((teach / "experiments" / name / ".backup").glob("README.md.*"))
        assert [b.read_bytes() for b in backups] == [original]
        assert f"experiments/{name}/.backup/README.md." in out
    first = read_experiment(teach / "experiments/0001-add-bandwidth")
    assert (first.id, first.title, first.lesson, first.status, first.device_wanted, first.predictions) == (
        1,
        "Add at full bandwidth",
        1,
        "measured",
        "any",
        [],
    )
    assert "adopted" in first.extra and first.created.startswith("20")
    third = find_experiment(Lab.open(teach), "3")
    assert (third.title, third.status, third.lesson) == ("fused swiglu", "planned", None)
    assert not (teach / "experiments/0004-no-readme/README.md").exists()  # reported, never made
    code, out, err = run(monkeypatch, capsys, "next")
    assert code == 0, err
    assert "Experiments waiting for a GPU: 1" in out and "0003-fused-swiglu (planned) fused swiglu" in out
    assert "unreadable" not in out
    from inferlab.site.experiments import list_experiments as site_experiments

    shown, problems = site_experiments(Lab.open(teach))
    assert [(e.number, e.status) for e in shown] == [(1, "measured"), (3, "planned")]
    assert problems == ["experiments/0004-no-readme: no README.md"]


def test_a_second_run_leaves_adopted_experiments_alone(monkeypatch, capsys, teach):
    assert run(monkeypatch, capsys, "init", "--adopt", str(teach), "--yes")[0] == 0
    before = snapshot(teach)
    plan = plan_adoption(teach)
    assert plan.experiment_proposals == [] and not plan.has_changes
    code, out, _ = run(monkeypatch, capsys, "init", "--adopt", str(teach), "--yes")
    assert code == 0 and "Nothing to change" in out and snapshot(teach) == before


def test_an_experiment_readme_with_bad_front_matter_is_left_alone(monkeypatch, capsys, teach):
    readme = teach / "experiments/0001-add-bandwidth/README.md"
    readme.write_text("---\ntitle: half done\n---\n\n# Add\n")
    code, _, err = run(monkeypatch, capsys, "init", "--adopt", str(teach), "--yes")
    assert code == 0 and "missing required field 'id'" in err and "left alone" in err
    assert readme.read_text() == "---\ntitle: half done\n---\n\n# Add\n"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ("# T\n\n## Question\nWhy?\n\n## Prediction\n2x\n", "planned"),
        ("## Result\n\n## Conclusion\n\n", "planned"),
        ("## Result\nTODO\n\n## Conclusion\n_(to write)_\n", "planned"),
        ("## Result\n_Filled in by `inferlab experiment run`._\n", "planned"),
        ("## Result\n<!-- later -->\n## Conclusion\n...\n", "planned"),
        ("## Result\n```\n## Conclusion\n```\n", "measured"),  # a heading in code is code
        ("## Results\n1.8 us\n\n## Conclusion\n", "measured"),
        ("## Result\n### H100\n1.8 us\n## Conclusion\n", "measured"),
        ("## Result\n1.8 us\n## Conclusion\nThe napkin math held.\n", "concluded"),
        ("# Conclusions\nFusing wins.\n", "concluded"),
    ],
)
def test_experiment_status_is_inferred_conservatively(body, status):
    assert infer_status(body)[0] == status


def test_an_experiment_title_is_its_first_top_heading_or_its_slug(tmp_path):
    folder = tmp_path / "0007-split_k-matmul"
    assert title_of(folder, "## Question\n# Split-K  matmul\n") == "Split-K matmul"
    assert title_of(folder, "```\n# a comment\n```\n## Question\n") == "split k matmul"
