"""Lesson 1 as shipped: its data, its pulled code, its computed numbers, and its rendering."""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from importlib.resources import files

import pytest
from rich.console import Console

from inferlab.errors import InferlabError
from inferlab.learn import curriculum, render, source, terminal


@pytest.fixture(scope="module")
def lesson() -> curriculum.Lesson:
    return curriculum.get_lesson(1)


def test_lesson_1_is_listed_with_its_front_matter(lesson):
    assert [x.number for x in curriculum.list_lessons()][:1] == [1]
    assert lesson.slug == "thread-block-grid"
    assert "Triton deletes a level" in lesson.title
    assert lesson.prerequisites == ()
    assert "inferlab.kernels.elementwise:_add_kernel" in lesson.kernels


def test_lesson_files_are_package_data():
    folder = files("inferlab.curriculum") / "lessons" / "0001-thread-block-grid"
    for name in ("lesson.md", "quiz.yaml", "annotations.yaml", "recall.yaml"):
        assert (folder / name).is_file(), name


def test_every_code_reference_resolves(lesson):
    refs = set(lesson.kernels) | set(lesson.annotations)
    refs |= set(re.findall(r"\{\{\s*(?:code|annotations|where):\s*([\w.:]+)", lesson.body))
    assert set(lesson.kernels) >= refs - {"inferlab.kernels.elementwise:add"}
    for ref in refs:
        assert source.pull(ref).lines


def test_every_annotated_line_is_in_the_pulled_source_exactly_once(lesson):
    """Fails as soon as a kernel line that the lesson explains changes or disappears."""
    for ref, notes in lesson.annotations.items():
        snippet = source.pull(ref)
        for note in notes:
            hits = [line for line in snippet.lines if note.match in line]
            assert len(hits) == 1, f"{ref}: {note.match!r} is on {len(hits)} lines"


def test_the_vocabulary_the_lesson_teaches_is_in_the_kernel(lesson):
    kernel = source.pull("inferlab.kernels.elementwise:_add_kernel").text
    for word in ("tl.program_id", "tl.arange(0, BLOCK_SIZE)", "mask=mask", "BLOCK_SIZE: tl.constexpr"):
        assert word in kernel


def test_rendered_markdown_pulls_the_code_and_computes_the_numbers(lesson):
    md = render.to_markdown(lesson)
    assert "{{" not in md and "}}" not in md
    assert source.pull("inferlab.kernels.elementwise:_add_kernel").text in md
    assert "1/12" in md  # fp32 add: 1 FLOP per 12 bytes, computed by napkin
    assert f"{3 * 4 * 2**20:,} bytes" in md
    assert "![" in md and "grid-vs-programs.svg" in md
    assert re.search(r"\*\*line \d+\*\* `pid = tl.program_id", md)


def test_no_number_in_the_prose_is_a_stale_calc(lesson):
    """Every `calc` directive evaluates; a renamed computation fails here, not for a learner."""
    for expr in re.findall(r"\{\{\s*calc:\s*(.*?)\s*(?:\|[^}]*)?\}\}", lesson.body):
        render.inline.expand(f"{{{{ calc: {expr} }}}}", "test")


def test_bad_directives_are_refused(lesson):
    from dataclasses import replace

    with pytest.raises(ValueError, match="unknown computation"):
        render.segments(replace(lesson, body="{{ calc: no_such_thing(n=1) }}\n"))
    with pytest.raises(ValueError, match="not an inline directive"):
        render.segments(replace(lesson, body="text {{ code: x:y }} more\n"))


def test_diagram_is_a_well_formed_svg_with_a_caption(lesson):
    (diagram,) = lesson.diagrams
    svg = lesson.file(diagram.file)
    root = ET.fromstring(svg.read_text(encoding="utf-8"))
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    text = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert "blockIdx.x" in text and "program_id(0)" in text and "tl.arange" in text
    assert diagram.caption


def test_recall_prompts(lesson):
    assert 3 <= len(lesson.recall) <= 5
    for prompt in lesson.recall:
        assert prompt.prompt and prompt.answer and len(prompt.key_points) >= 2
        assert "{{" not in prompt.answer + "".join(prompt.key_points)
    assert any("1/12" in p.answer for p in lesson.recall)


def test_terminal_rendering(lesson):
    console = Console(record=True, width=100, color_system=None)
    terminal.show_lesson(console, lesson)
    out = console.export_text()
    assert "tl.program_id(axis=0)" in out
    assert "grid-vs-programs.svg" in out  # the SVG cannot show: its path is printed
    assert "{{" not in out


def test_unknown_lesson_is_a_clear_error():
    with pytest.raises(InferlabError, match="no lesson 99; `inferlab lesson list`"):
        curriculum.get_lesson(99)


def test_lesson_commands(monkeypatch, capsys):
    from inferlab.cli.app import main

    def run(*args):
        monkeypatch.setattr(sys, "argv", ["inferlab", *args])
        with pytest.raises(SystemExit) as info:
            main()
        return info.value.code, *capsys.readouterr()

    code, out, _ = run("lesson", "list")
    assert code == 0 and "Thread" in out and "questions" in out
    code, out, _ = run("lesson", "show", "1")
    assert code == 0 and "tl.program_id" in out
    code, out, _ = run("lesson", "show", "1", "--markdown")
    assert code == 0 and out.startswith("# Lesson 1:")
    code, _, err = run("lesson", "show", "42")
    assert code == 1 and "no lesson 42" in err


def test_code_references_reach_definitions_guarded_by_a_module_level_if():
    # w4a16_wgmma defines its Gluon kernels only `if HAVE_TRITON:`
    snippet = source.pull("inferlab.kernels.w4a16_wgmma:_unpack_words")
    assert snippet.text.startswith("@gluon.jit")  # shown flush left
    assert "def _unpack_words(" in snippet.text
