"""`inferlab explain --lab DIR` quotes that lab's glossary, not the default lab's."""

from __future__ import annotations

import sys
from pathlib import Path

from inferlab.cli.app import main
from inferlab.lab import init_lab

GLOSSARY = """<html><dl>
<dt>Mask</dt><dd>Booleans that stop lanes past the end, in the words of lab two.</dd>
</dl></html>"""


def test_explain_uses_the_glossary_of_the_lab_it_is_given(monkeypatch, capsys, tmp_path):
    lab = init_lab(tmp_path / "lab-two")
    (lab.root / "reference").mkdir()
    (lab.root / "reference" / "glossary.html").write_text(GLOSSARY)
    target = f"{Path(__file__).parents[1] / 'src/inferlab/kernels/elementwise.py'}:_add_kernel"
    for argv, quoted in (([target], False), ([target, "--lab", str(lab.root)], True)):
        monkeypatch.setattr(sys, "argv", ["inferlab", "explain", *argv])
        try:
            main()
        except SystemExit as e:
            assert e.code in (0, None)
        out = " ".join(capsys.readouterr().out.split())
        assert ("in the words of lab two" in out) is quoted
