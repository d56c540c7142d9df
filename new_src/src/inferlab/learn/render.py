"""Lesson rendering: expand the `{{ ... }}` directives of a lesson body into segments.

Block directives stand alone on their line:

    {{ code: inferlab.kernels.elementwise:_add_kernel }}         the function's source, pulled now
    {{ annotations: inferlab.kernels.elementwise:_add_kernel }}  its notes (annotations.yaml),
                                                                 each placed at its line's number
    {{ diagram: grid-vs-programs.svg }}                          a diagram from the front matter

Inline directives (`calc`, `where`, `line`: see `inferlab.learn.inline`) may sit anywhere in prose.
The result is a list of segments: terminals render them with Rich (`inferlab.learn.terminal`),
the site with `to_markdown`.
"""

from __future__ import annotations

from dataclasses import dataclass

from inferlab.learn import inline, source
from inferlab.learn.curriculum import Diagram, Lesson
from inferlab.learn.inline import where

_BLOCK = ("code", "annotations", "diagram")


@dataclass(frozen=True, slots=True)
class Prose:
    markdown: str


@dataclass(frozen=True, slots=True)
class Code:
    snippet: source.Snippet


@dataclass(frozen=True, slots=True)
class AnnotatedLine:
    line_number: int  # in the file, as the code block shows it
    line: str
    note: str


@dataclass(frozen=True, slots=True)
class Annotations:
    snippet: source.Snippet
    lines: tuple[AnnotatedLine, ...]


@dataclass(frozen=True, slots=True)
class Figure:
    diagram: Diagram
    path: str  # where the file lies (inside the installed package)


Segment = Prose | Code | Annotations | Figure


def annotate(lesson: Lesson, ref: str) -> Annotations:
    """The lesson's notes on `ref`, each tied to the one line that contains its `match`."""
    snippet = source.pull(ref)
    notes = lesson.annotations.get(ref)
    if not notes:
        raise ValueError(f"lesson {lesson.number} has no annotations for {ref!r}")
    rows = []
    for note in notes:
        number = snippet.line_of(note.match)
        text = inline.expand(note.note, f"lesson {lesson.number}, notes on {ref}")
        rows.append(AnnotatedLine(number, snippet.lines[number - snippet.first_line], text))
    return Annotations(snippet, tuple(rows))


def segments(lesson: Lesson) -> list[Segment]:
    """The lesson body with every directive expanded; ValueError on a bad directive."""
    out: list[Segment] = []
    prose: list[str] = []

    def flush() -> None:
        text = inline.expand("\n".join(prose).strip("\n"), f"lesson {lesson.number}")
        if text:
            out.append(Prose(text + "\n"))
        prose.clear()

    for line in lesson.body.splitlines():
        m = inline.DIRECTIVE.fullmatch(line.strip())
        if m and m.group(1) in _BLOCK:
            flush()
            out.append(_block(lesson, m.group(1), m.group(2)))
        else:
            prose.append(line)
    flush()
    return out


def _block(lesson: Lesson, kind: str, arg: str) -> Segment:
    if kind == "code":
        return Code(source.pull(arg))
    if kind == "annotations":
        return annotate(lesson, arg)
    diagram = lesson.diagram(arg)
    return Figure(diagram, str(lesson.file(diagram.file)))


def to_markdown(lesson: Lesson) -> str:
    """The lesson as plain Markdown (code fenced, notes as a list, diagrams as images)."""
    parts = [f"# Lesson {lesson.number}: {lesson.title}\n"]
    for seg in segments(lesson):
        if isinstance(seg, Prose):
            parts.append(seg.markdown)
        elif isinstance(seg, Code):
            parts.append(f"`{where(seg.snippet)}`\n\n```python\n{seg.snippet.text}```\n")
        elif isinstance(seg, Annotations):
            items = [
                f"- **line {a.line_number}** `{a.line.strip()}`: {' '.join(a.note.split())}"
                for a in seg.lines
            ]
            parts.append("\n".join(items) + "\n")
        else:
            parts.append(f"![{seg.diagram.caption}]({seg.diagram.file})\n")
    return "\n".join(parts)
