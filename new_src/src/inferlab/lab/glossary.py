"""The learner's glossary as data: `reference/glossary.html` -> terms and definitions.

The page is the learner's (written by hand or by the /teach workflow) and stays the truth; it is
read with the standard library's tolerant `html.parser`, from either a definition list

    <dl><dt>mask</dt><dd>A block of booleans ...</dd></dl>

(several `<dt>` may share one `<dd>`; closing tags may be left out, as HTML allows) or a table
whose rows are `term | definition` (header rows of `<th>` only are skipped). `glossary_payload`
is the JSON form `inferlab init --adopt` exports to `.inferlab/glossary.json` for other tools.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from inferlab.lab.errors import LabError
from inferlab.lab.layout import Lab

GLOSSARY_PATH = "reference/glossary.html"
GLOSSARY_JSON = "glossary.json"  # in `.inferlab/`, derived
_NO_TERMS = (
    "no glossary terms found: expected a <dl> of <dt>term</dt><dd>definition</dd> "
    "or a table of term and definition rows"
)


class GlossaryError(LabError):
    """The glossary page cannot be read at all (not UTF-8, or no terms in it)."""


@dataclass(frozen=True, slots=True)
class GlossaryTerm:
    term: str
    definition: str
    line: int  # where the term starts in the page, for messages


@dataclass(slots=True)
class Glossary:
    path: Path
    terms: list[GlossaryTerm] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # `path:line: reason`, e.g. a term with no definition


def load_glossary(lab: Lab) -> Glossary | None:
    """The lab's glossary, or None when it has no `reference/glossary.html`; GlossaryError if unreadable."""
    path = lab.root / GLOSSARY_PATH
    if not path.is_file():
        return None
    return parse_glossary_file(path)


def parse_glossary_file(path: Path) -> Glossary:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as e:
        raise GlossaryError(f"{path}: cannot read the glossary: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise GlossaryError(f"{path}: the glossary is not valid UTF-8") from None
    glossary = parse_glossary(text, path)
    if not glossary.terms:
        raise GlossaryError(f"{path}: {_NO_TERMS}")
    return glossary


def parse_glossary(text: str, path: Path) -> Glossary:
    """Terms from a glossary page's HTML; `path` only names the file in problems."""
    parser = _GlossaryParser()
    parser.feed(text)
    parser.close()
    glossary = Glossary(path)
    for term, definition, line in parser.pairs():
        if definition:
            glossary.terms.append(GlossaryTerm(term, definition, line))
        else:
            glossary.problems.append(f"{path}:{line}: the term {term!r} has no definition")
    return glossary


def find_term(terms: Iterable[GlossaryTerm], names: Iterable[str]) -> GlossaryTerm | None:
    """The first term that names the same thing as one of `names` (case, punctuation and a
    plural `s` ignored): `"Tensor cores"` matches `"tensor core"`."""
    wanted = {normalize_term(n) for n in names} - {""}
    return next((t for t in terms if normalize_term(t.term) in wanted), None)


def normalize_term(text: str) -> str:
    words = re.sub(r"[^a-z0-9]+", " ", text.lower()).split()
    if words and len(words[-1]) > 3 and words[-1].endswith("s") and not words[-1].endswith("ss"):
        words[-1] = words[-1][:-1]
    return " ".join(words)


def glossary_payload(glossary: Glossary, lab: Lab) -> dict[str, Any]:
    return {
        "source": glossary.path.relative_to(lab.root).as_posix(),
        "terms": [{"term": t.term, "definition": t.definition} for t in glossary.terms],
    }


class _GlossaryParser(HTMLParser):
    """Collects `(kind, text, line)` cells: kind is "dt"/"dd" in a definition list, "row" in a table."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.items: list[tuple[str, str, int]] = []  # ("dt"|"dd", text, line)
        self.rows: list[tuple[list[str], bool, int]] = []  # (cells, all header cells, line)
        self._open: str | None = None  # "dt" or "dd" being read
        self._open_line = 0
        self._text: list[str] = []
        self._row: list[str] | None = None
        self._row_header = True
        self._row_line = 0
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in ("dt", "dd"):
            self._close_item()
            self._open, self._open_line, self._text = tag, self.getpos()[0], []
        elif tag == "tr":
            self._close_row()
            self._row, self._row_header, self._row_line = [], True, self.getpos()[0]
        elif tag in ("td", "th") and self._row is not None:
            self._close_cell()
            self._cell = []
            self._row_header = self._row_header and tag == "th"

    def handle_endtag(self, tag: str) -> None:
        if (tag in ("dt", "dd") and self._open == tag) or tag == "dl":
            self._close_item()
        elif tag in ("td", "th"):
            self._close_cell()
        elif tag in ("tr", "table"):
            self._close_row()

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._text.append(data)
        if self._cell is not None:
            self._cell.append(data)

    def close(self) -> None:
        super().close()
        self._close_item()
        self._close_row()

    def pairs(self) -> list[tuple[str, str, int]]:
        """(term, definition or "", line): consecutive `<dt>`s share the `<dd>`s after them."""
        found: list[tuple[str, str, int]] = []
        group: list[tuple[str, int]] = []  # terms waiting for their definitions
        definitions: list[str] = []
        for kind, text, line in self.items:
            if kind == "dt" and definitions:  # a new group starts
                found += [(term, " ".join(definitions), at) for term, at in group]
                group, definitions = [], []
            if kind == "dt" and text:
                group.append((text, line))
            elif kind == "dd" and text and group:
                definitions.append(text)
        found += [(term, " ".join(definitions), at) for term, at in group]
        for cells, header, line in self.rows:
            if not header and len(cells) >= 2 and cells[0]:
                found.append((cells[0], cells[1], line))
        return sorted(found, key=lambda item: item[2])

    def _close_item(self) -> None:
        if self._open is not None:
            self.items.append((self._open, _squash(self._text), self._open_line))
            self._open = None

    def _close_cell(self) -> None:
        if self._cell is not None and self._row is not None:
            self._row.append(_squash(self._cell))
        self._cell = None

    def _close_row(self) -> None:
        self._close_cell()
        if self._row is not None:
            self.rows.append((self._row, self._row_header, self._row_line))
        self._row = None


def _squash(parts: list[str]) -> str:
    return " ".join("".join(parts).split())
