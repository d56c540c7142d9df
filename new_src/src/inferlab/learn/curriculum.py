"""The curriculum loader: lessons shipped as package data under `inferlab/curriculum/lessons/`.

One lesson is one folder, `NNNN-slug/`:

    lesson.md         front matter (number, title, slug, prerequisites, kernels, diagrams) + prose
    annotations.yaml  per code reference, notes on its lines, each naming a substring of the line
    recall.yaml       recall prompts: prompt, model answer, key points
    quiz.yaml         the quiz (see `inferlab.learn.quiz`)
    *.svg             diagrams named in the front matter
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable

import yaml

from inferlab.errors import InferlabError
from inferlab.learn.inline import expand

_FOLDER = re.compile(r"^(\d{4})-([a-z0-9-]+)$")


@dataclass(frozen=True, slots=True)
class Annotation:
    """A note on the one line of a code reference that contains `match`."""

    match: str
    note: str


@dataclass(frozen=True, slots=True)
class RecallPrompt:
    id: str
    prompt: str
    answer: str
    key_points: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Diagram:
    file: str
    caption: str


@dataclass(frozen=True, slots=True)
class Lesson:
    number: int
    title: str
    slug: str
    prerequisites: tuple[int, ...]
    kernels: tuple[str, ...]  # code references (`module:name`) the lesson pulls source from
    diagrams: tuple[Diagram, ...]
    body: str  # Markdown with `{{ ... }}` directives, see `inferlab.learn.render`
    annotations: dict[str, tuple[Annotation, ...]]
    recall: tuple[RecallPrompt, ...]
    folder: Traversable

    def file(self, name: str) -> Traversable:
        return self.folder / name

    def diagram(self, name: str) -> Diagram:
        for d in self.diagrams:
            if d.file == name:
                return d
        raise ValueError(f"lesson {self.number} lists no diagram {name!r} in its front matter")


def lessons_root() -> Traversable:
    return files("inferlab.curriculum") / "lessons"


def list_lessons() -> list[Lesson]:
    """Every lesson, by number."""
    folders = [f for f in lessons_root().iterdir() if f.is_dir() and _FOLDER.match(f.name)]
    return sorted((_load(f) for f in folders), key=lambda lesson: lesson.number)


def get_lesson(number: int) -> Lesson:
    """Lesson `number`, or an InferlabError that says where to look."""
    for folder in lessons_root().iterdir():
        m = _FOLDER.match(folder.name)
        if m and int(m.group(1)) == number and folder.is_dir():
            return _load(folder)
    raise InferlabError(f"no lesson {number}; `inferlab lesson list` shows the lessons")


def split_front_matter(text: str, where: str) -> tuple[dict, str]:
    """(`---`-fenced YAML front matter, the rest) of a Markdown file."""
    if not text.startswith("---\n"):
        raise ValueError(f"{where} has no front matter (a first line of ---)")
    head, sep, body = text[4:].partition("\n---\n")
    if not sep:
        raise ValueError(f"{where}: front matter is not closed by a line of ---")
    meta = yaml.safe_load(head) or {}
    if not isinstance(meta, dict):
        raise ValueError(f"{where}: front matter is not a mapping")
    return meta, body.lstrip("\n")


def _yaml(folder: Traversable, name: str, default: object) -> object:
    f = folder / name
    return yaml.safe_load(f.read_text(encoding="utf-8")) if f.is_file() else default


def _load(folder: Traversable) -> Lesson:
    where = f"lesson folder {folder.name}"
    meta, body = split_front_matter((folder / "lesson.md").read_text(encoding="utf-8"), where)
    number, slug = int(_FOLDER.match(folder.name).group(1)), _FOLDER.match(folder.name).group(2)
    if meta.get("number") != number or meta.get("slug") != slug:
        raise ValueError(f"{where}: front matter number/slug must match the folder name")
    annotations = {
        ref: tuple(Annotation(match=a["match"], note=a["note"].strip()) for a in notes)
        for ref, notes in (_yaml(folder, "annotations.yaml", {}) or {}).items()
    }
    recall = tuple(
        RecallPrompt(
            id=r["id"],
            prompt=expand(r["prompt"].strip(), f"{where}, recall {r['id']}"),
            answer=expand(r["answer"].strip(), f"{where}, recall {r['id']}"),
            key_points=tuple(expand(p.strip(), f"{where}, recall {r['id']}") for p in r["key_points"]),
        )
        for r in (_yaml(folder, "recall.yaml", {}) or {}).get("prompts", [])
    )
    return Lesson(
        number=number,
        title=meta["title"],
        slug=slug,
        prerequisites=tuple(meta.get("prerequisites") or ()),
        kernels=tuple(meta.get("kernels") or ()),
        diagrams=tuple(Diagram(d["file"], d["caption"].strip()) for d in meta.get("diagrams", [])),
        body=body,
        annotations=annotations,
        recall=recall,
        folder=folder,
    )
