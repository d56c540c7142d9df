"""Code extraction: lessons show the package's own source, read with `ast`, never imported."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from fractions import Fraction
from pathlib import Path

import pytest

from inferlab.learn import napkin, source

ADD = "inferlab.kernels.elementwise:_add_kernel"


def test_pull_cuts_the_definition_with_its_decorator_at_its_file_lines():
    snip = source.pull(ADD)
    file_lines = snip.path.read_text(encoding="utf-8").splitlines()
    assert snip.path.name == "elementwise.py"
    assert snip.lines[0] == "@triton.jit"
    assert snip.lines[1].startswith("def _add_kernel(")
    assert list(snip.lines) == file_lines[snip.first_line - 1 : snip.last_line]
    assert "tl.store(" in snip.lines[-1]  # ends where the function ends, nothing after


def test_line_of_needs_exactly_one_matching_line():
    snip = source.pull(ADD)
    number = snip.line_of("tl.program_id")
    assert "tl.program_id" in dict(snip.numbered())[number]
    with pytest.raises(ValueError, match="no line"):
        snip.line_of("this text is in no line")
    with pytest.raises(ValueError, match="2 lines"):
        snip.line_of("tl.load(")


def test_constant_reads_a_module_level_literal():
    assert source.constant("inferlab.kernels.elementwise:BLOCK_SIZE") == 1024


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("inferlab.kernels.elementwise", "not of the form"),
        ("inferlab.kernels.no_such_module:f", "cannot find the source file"),
        ("inferlab.kernels.elementwise:no_such_function", "defines no 'no_such_function'"),
    ],
)
def test_bad_references_say_what_is_wrong(ref, message):
    with pytest.raises(ValueError, match=message):
        source.pull(ref)


def test_a_vanished_line_breaks_extraction(tmp_path: Path, monkeypatch):
    """What a lesson's annotations rely on: once the line is gone, `line_of` fails loudly."""
    pkg = tmp_path / "fakepkg_learn"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("raise RuntimeError('must not be imported')\n")
    (pkg / "kern.py").write_text(
        textwrap.dedent(
            """
            import nothing_that_exists

            def _k(x_ptr, BLOCK_SIZE):
                pid = 0  # the program_id line was deleted
                return pid
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    snip = source.pull("fakepkg_learn.kern:_k")  # found without importing the package
    assert snip.first_line == 4
    with pytest.raises(ValueError, match="no line of fakepkg_learn.kern:_k"):
        snip.line_of("tl.program_id")


def test_extraction_and_napkin_math_never_import_torch():
    code = (
        "import sys\n"
        "from inferlab.learn import source, napkin\n"
        f"source.pull({ADD!r})\n"
        "napkin.evaluate('constant(\"inferlab.kernels.elementwise:BLOCK_SIZE\")')\n"
        "assert 'torch' not in sys.modules and 'triton' not in sys.modules, 'imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_napkin_expressions_are_exact_and_closed():
    assert napkin.evaluate("arithmetic_intensity(flops=1, bytes=12)") == Fraction(1, 12)
    assert napkin.evaluate("elementwise_bytes(n=2**20, bytes_per_element=2)") == 3 * 2 * 2**20
    assert napkin.evaluate("num_programs(n=1000, block_size=256)") == 4
    assert napkin.evaluate("6 / 3") == 2 and isinstance(napkin.evaluate("6 / 3"), int)
    assert napkin.evaluate("1.5 / 3") == 0.5
    for bad in ("__import__('os')", "x + 1", "(1).real", "open('f')", "1 +"):
        with pytest.raises(ValueError):
            napkin.evaluate(bad)


def test_format_number():
    assert napkin.format_number(Fraction(1, 12)) == "1/12"
    assert napkin.format_number(1024) == "1024"
    assert napkin.format_number(6291456) == "6,291,456"
    assert napkin.format_number(0.125) == "0.125"
