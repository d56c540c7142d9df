"""The learner's sources as data: `RESOURCES.md` -> title, URL, trust rating, grounding quote.

The file is the learner's and stays the truth. Two shapes are read, tolerantly:

- a Markdown table whose header names the columns (title/source/name, url/link, trust/rating,
  quote, lesson), e.g. `| Title | URL | Trust | Quote |`;
- list items, one source each, e.g.
  `- [Triton tutorials](https://triton-lang.org/) (trust: high): "Each program instance ..."`,
  with the quote either quoted in the item, after `quote:`, or on an indented `> ` line under it.

The latest `#` heading above an item is kept as its section. `resources_payload` is the JSON form
`inferlab init --adopt` exports to `.inferlab/resources.json`.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from inferlab.lab.errors import LabError
from inferlab.lab.layout import Lab

RESOURCES_PATH = "RESOURCES.md"
RESOURCES_JSON = "resources.json"  # in `.inferlab/`, derived
_LINK = re.compile(r"\[([^\]]+)\]\(\s*<?([^)\s>]+)>?[^)]*\)")
_URL = re.compile(r"https?://[^\s)>\]|]+")
_ITEM = re.compile(r"^\s{0,3}(?:[-*+]|\d+[.)])\s+(.*)$")
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
_TRUST = re.compile(r"\btrust\b(?:\s*rating)?\s*[:=]?\s*[*_]*\s*(\d+\s*/\s*\d+|\d+|★+|[A-Za-z-]+)", re.I)
_QUOTE_LABEL = re.compile(r"\bquote[*_]*\s*:\s*(.+)$", re.I)
_QUOTED = re.compile(r"[“\"]([^”\"]{8,})[”\"]")
_LESSON = re.compile(r"\blesson\s*(\d+)", re.I)
_COLUMNS = {
    "title": ("title", "source", "name", "resource"),
    "url": ("url", "link", "where"),
    "trust": ("trust", "rating"),
    "quote": ("quote", "ground", "excerpt", "evidence"),
    "lesson": ("lesson",),
}


@dataclass(frozen=True, slots=True)
class Resource:
    title: str
    url: str  # "" when the item names none
    trust: str  # as written ("high", "4/5", "★★★"), or ""
    quote: str  # the words that ground a lesson, or ""
    lesson: int | None  # the lesson it grounds, when the item says so
    section: str  # the heading above it, or ""
    line: int


def load_resources(lab: Lab) -> list[Resource] | None:
    """The lab's `RESOURCES.md` as resources, or None when there is none; LabError if unreadable."""
    path = lab.root / RESOURCES_PATH
    if not path.is_file():
        return None
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as e:
        raise LabError(f"{path}: cannot read the resources list: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise LabError(f"{path}: the resources list is not valid UTF-8") from None
    return parse_resources(text)


def parse_resources(text: str) -> list[Resource]:
    found: list[Resource] = []
    section = ""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        heading = _HEADING.match(line)
        if heading:
            section = _plain(heading.group(1))
        elif line.lstrip().startswith("|"):
            table_end = _block_end(lines, i, lambda s: s.lstrip().startswith("|"))
            found += _table(lines[i:table_end], i + 1, section)
            i = table_end
            continue
        elif _ITEM.match(line):
            item_end = _block_end(lines, i + 1, lambda s: s.startswith((" ", "\t", ">")) and s.strip() != "")
            resource = _item(lines[i:item_end], i + 1, section)
            if resource is not None:
                found.append(resource)
            i = item_end
            continue
        i += 1
    return found


def resources_payload(resources: list[Resource]) -> dict[str, Any]:
    return {"source": RESOURCES_PATH, "resources": [asdict(r) for r in resources]}


def _item(lines: list[str], line_number: int, section: str) -> Resource | None:
    first = _ITEM.match(lines[0]).group(1)  # type: ignore[union-attr]  # checked by the caller
    rest = [s.strip() for s in lines[1:]]
    quoted_lines = [s.lstrip("> ").strip() for s in rest if s.startswith(">")]
    text = " ".join([first, *(s for s in rest if not s.startswith(">"))])
    link = _LINK.search(text)
    url_match = _URL.search(text)
    url = link.group(2) if link else (url_match.group(0) if url_match else "")
    if link:
        title = link.group(1)
    else:
        head = _URL.sub("", text)
        title = re.split(r"\s+[—–-]\s+|\(|:\s|\btrust\b", head, maxsplit=1, flags=re.I)[0]
    quote = _quote(text, quoted_lines)
    trust = _TRUST.search(text)
    lesson = _LESSON.search(text)
    title = _plain(title)
    if not (title or url):
        return None
    return Resource(
        title=title,
        url=url,
        trust=trust.group(1).strip() if trust else "",
        quote=quote,
        lesson=int(lesson.group(1)) if lesson else None,
        section=section,
        line=line_number,
    )


def _table(rows: list[str], line_number: int, section: str) -> list[Resource]:
    cells = [[_plain_cell(c) for c in row.strip().strip("|").split("|")] for row in rows]
    if len(cells) < 2:
        return []
    header = [c.lower() for c in cells[0]]
    column = {
        field: next((k for k, name in enumerate(header) if any(w in name for w in words)), None)
        for field, words in _COLUMNS.items()
    }
    found = []
    for offset, row in enumerate(cells[1:], start=1):
        if all(re.fullmatch(r":?-{2,}:?|", c) for c in row):
            continue  # the |---|---| separator

        def cell(field: str, row: list[str] = row) -> str:
            k = column[field]
            return row[k] if k is not None and k < len(row) else ""

        raw_title = cell("title") or (row[0] if row else "")
        link = _LINK.search(raw_title)
        url_text = cell("url")
        url_match = _LINK.search(url_text) or _URL.search(url_text) or _URL.search(raw_title)
        url = link.group(2) if link else ""
        if url_match:
            url = url_match.group(2) if url_match.re is _LINK else url_match.group(0)
        lesson = re.search(r"\d+", cell("lesson"))
        title = _plain(link.group(1) if link else raw_title)
        if title or url:
            found.append(
                Resource(
                    title=title,
                    url=url,
                    trust=_plain(cell("trust")),
                    quote=_plain(cell("quote")).strip('“”"'),
                    lesson=int(lesson.group(0)) if lesson else None,
                    section=section,
                    line=line_number + offset,
                )
            )
    return found


def _quote(text: str, quoted_lines: list[str]) -> str:
    label = _QUOTE_LABEL.search(text)
    if label:
        return _plain(label.group(1)).strip('“”"')
    if quoted_lines:
        return _plain(" ".join(quoted_lines)).strip('“”"')
    quoted = _QUOTED.search(text)
    return quoted.group(1).strip() if quoted else ""


def _block_end(lines: list[str], start: int, belongs) -> int:
    end = start
    while end < len(lines) and belongs(lines[end]):
        end += 1
    return end


def _plain_cell(cell: str) -> str:
    return cell.strip()


def _plain(text: str) -> str:
    """Markdown emphasis and code marks dropped, whitespace squashed, trailing separators cut."""
    text = re.sub(r"\*\*|__|[*`]", "", text)
    return " ".join(text.split()).strip(" -—–:,;")
