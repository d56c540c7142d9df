"""What a reading note links to: `KIND:ID` naming a lesson, record, experiment, benchmark result,
kernel or puzzle, and whether that thing exists.

    lesson:3        a curriculum lesson by number
    record:12       a learning record of the lab
    experiment:2    an experiment of the lab (`experiment:0002-slug` works too)
    benchmark:NAME  a result file, in the lab's `results/` or the checkout's `benchmarks/results/`
    kernel:softmax  a kernel module of the package, or a kernel's registry name
    puzzle:nf4      a puzzle, in the lab's `puzzles/` or the package's curriculum

`find_link_targets` gathers what exists without importing torch: lesson numbers come from the
caller (the curriculum is a layer above the lab), kernels are found by reading the kernels
folder, not importing it.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from inferlab.lab.errors import LabError
from inferlab.lab.layout import Lab
from inferlab.lab.record_file import candidate_files, number_in_name
from inferlab.lab.results import list_results

KINDS = ("lesson", "record", "experiment", "benchmark", "kernel", "puzzle")
NUMBERED = ("lesson", "record", "experiment")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SPEC_NAME = re.compile(r"\bname\s*=\s*[\"']([a-z0-9_]+)[\"']")
_NOT_KERNELS = {"__init__", "spec", "device"}


@dataclass(frozen=True, slots=True)
class NoteLink:
    kind: str
    target: str  # "3", "softmax", "20250101T120000Z-bench.json"

    def __str__(self) -> str:
        return f"{self.kind}:{self.target}"

    @property
    def number(self) -> int | None:
        """The number of a lesson, record or experiment link (`experiment:0002-x` -> 2)."""
        if self.kind not in NUMBERED:
            return None
        match = re.match(r"\d+", self.target)
        return int(match.group(0)) if match else None


@dataclass(slots=True)
class LinkTargets:
    """Everything a note may link to, as it exists now."""

    lessons: set[int] = field(default_factory=set)
    records: set[int] = field(default_factory=set)
    experiments: set[int] = field(default_factory=set)
    benchmarks: set[str] = field(default_factory=set)  # file names and their stems
    kernels: set[str] = field(default_factory=set)
    puzzles: set[str] = field(default_factory=set)

    def why_dangling(self, link: NoteLink) -> str | None:
        """Why `link` names nothing ("lesson 99 does not exist"), or None when it resolves."""
        known = getattr(self, f"{link.kind}s")  # each kind's field is its plural
        if link.kind in NUMBERED:
            return None if link.number in known else f"{link.kind} {link.number} does not exist"
        return None if link.target in known else f"no {link.kind} named {link.target!r}"


def parse_link(text: str) -> NoteLink:
    """`"lesson:3"` -> NoteLink("lesson", "3"); LabError (one sentence) when it is not a link."""
    kind, sep, target = text.strip().partition(":")
    kind, target = kind.strip().lower(), target.strip()
    if not sep or kind not in KINDS:
        raise LabError(f"link {text!r} must be KIND:ID with KIND one of {', '.join(KINDS)} (e.g. lesson:3)")
    if kind in NUMBERED and not re.match(r"^\d+(-[A-Za-z0-9._-]*)?$", target):
        raise LabError(f"link {text!r} must name the {kind} by its number (e.g. {kind}:3)")
    if kind == "benchmark":
        target = Path(target).name  # `results/x.json` and `benchmarks/results/x.json` name x.json
    if not _NAME.match(target):
        raise LabError(f"link {text!r} has no usable id after '{kind}:'")
    if kind in NUMBERED:
        target = str(int(re.match(r"\d+", target).group(0)))  # type: ignore[union-attr]
    return NoteLink(kind, target.lower() if kind == "kernel" else target)


def find_link_targets(
    lab: Lab, lesson_numbers: Iterable[int], results_dirs: Sequence[Path] = ()
) -> LinkTargets:
    """What exists now. `results_dirs`: more folders of result files (the committed ones)."""
    targets = LinkTargets(lessons=set(lesson_numbers))
    targets.records = {n for p in candidate_files(lab.records_dir) if (n := number_in_name(p)) is not None}
    if lab.experiments_dir.is_dir():
        targets.experiments = {
            int(m.group(1))
            for p in lab.experiments_dir.iterdir()
            if p.is_dir() and (m := re.match(r"^(\d+)-", p.name))
        }
    result_files = [*list_results(lab), *(p for d in results_dirs if d.is_dir() for p in d.glob("*.json"))]
    targets.benchmarks = {p.name for p in result_files} | {p.stem for p in result_files}
    targets.kernels = _kernel_names()
    targets.puzzles = _puzzle_names([lab.root / "puzzles", *_package_dirs("inferlab.curriculum", "puzzles")])
    return targets


def checkout_results_dir() -> Path | None:
    """`benchmarks/results/` of the checkout this package runs from, or None when installed.

    The same folder `inferlab.site.results.repo_results_dir` shows (the site is a layer above).
    """
    import inferlab

    checkout = Path(inferlab.__file__).resolve().parent.parent.parent  # <checkout>/src/inferlab
    folder = checkout / "benchmarks" / "results"
    return folder if (checkout / "pyproject.toml").is_file() and folder.is_dir() else None


def _kernel_names() -> set[str]:
    names: set[str] = set()
    for folder in _package_dirs("inferlab.kernels"):
        for module in folder.glob("*.py"):
            if module.stem in _NOT_KERNELS or module.stem.startswith("_"):
                continue
            names.add(module.stem)
            names.update(_SPEC_NAME.findall(module.read_text(encoding="utf-8", errors="replace")))
    return names


def _puzzle_names(folders: Iterable[Path]) -> set[str]:
    names: set[str] = set()
    for folder in folders:
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            if entry.name.startswith((".", "_")):
                continue
            stem = entry.stem if entry.is_file() else entry.name
            names.add(stem)
            names.add(re.sub(r"^\d+-", "", stem))  # `0003-nf4` is also `nf4`
    return names


def _package_dirs(package: str, *under: str) -> list[Path]:
    """A package's folders found without importing it (importing the kernels would import torch)."""
    try:
        spec = importlib.util.find_spec(package)
    except ImportError:
        return []
    locations = spec.submodule_search_locations if spec else None
    return [Path(location, *under) for location in (locations or [])]
