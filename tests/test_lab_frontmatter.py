"""Front matter: round trip, and every error names the file and the line in the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferlab.lab.errors import FrontMatterError
from inferlab.lab.frontmatter import get_field, parse_document, read_document, render_document

P = Path("records/0001-x.md")


def error_of(text: str) -> FrontMatterError:
    with pytest.raises(FrontMatterError) as info:
        parse_document(text, P)
    return info.value


def test_render_then_parse_round_trips():
    fields = {"id": 1, "title": "Masks: why?", "lesson": None, "links": ["a", "b"]}
    doc = parse_document(render_document(fields, "# Body\n\ntext"), P)
    assert doc.fields == fields
    assert doc.body == "# Body\n\ntext\n"
    assert doc.field_lines == {"id": 2, "title": 3, "lesson": 4, "links": 5}


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("# no front matter\n", 1, "must start with a '---' line"),
        ("---\nid: 1\ntitle: x\n", 1, "no closing '---' line"),
        ("---\nid: 1\ntitle: [oops\nstatus: x\n---\n", 4, "invalid YAML"),
        ("---\nid: 1\n  bad: indent\n---\n", 3, "invalid YAML"),
        ("---\n- a\n- b\n---\n", 2, "must be a mapping"),
        ("---\n---\nbody\n", 1, "empty"),
    ],
)
def test_errors_name_the_file_and_the_line(text, line, words):
    e = error_of(text)
    assert (e.path, e.line) == (P, line)
    assert words in e.reason
    assert str(e).startswith(f"{P}:{line}: ")
    assert "\n" not in str(e)


def test_field_errors_point_at_the_field():
    doc = parse_document("---\nid: 1\n\nlesson: one\nflag: true\n---\n", P)
    assert get_field(doc, "id", int) == 1
    with pytest.raises(FrontMatterError, match=r":4: field 'lesson' must be an integer or null"):
        get_field(doc, "lesson", int, nullable=True)
    with pytest.raises(FrontMatterError, match=r":5: field 'flag' must be an integer"):
        get_field(doc, "flag", int)  # a YAML bool is not a number
    with pytest.raises(FrontMatterError, match=r":1: missing required field 'title'"):
        get_field(doc, "title", str)


def test_invalid_utf8_names_its_line(tmp_path):
    path = tmp_path / "0001-x.md"
    path.write_bytes(b"---\nid: 1\ntitle: \xff\n---\n")
    with pytest.raises(FrontMatterError, match=r"0001-x.md:3: the file is not valid UTF-8"):
        read_document(path)
