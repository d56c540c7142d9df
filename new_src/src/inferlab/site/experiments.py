"""Experiments as the site reads them: `<lab>/experiments/NNNN-slug/README.md`.

The README is front matter (title, status, predictions...) and a Markdown body with the sections
Question, Prediction, Method, Result, Conclusion (see `inferlab.lab.experiments`). The site reads
it with `inferlab.lab.frontmatter` and requires nothing but readable front matter, so a README
of any vintage is shown. The folder's data files and `run.py` are published beside the page, so
the README's relative links resolve; SVG and HTML are not: opened on their own they could run
the learner's script.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from inferlab.lab.errors import FrontMatterError
from inferlab.lab.frontmatter import read_document
from inferlab.lab.layout import Lab

README, RUN_SCRIPT = "README.md", "run.py"
ASSET_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".json", ".csv", ".txt", ".log", ".py"}
CONCLUDED = "concluded"  # the status of an experiment whose Conclusion section is written
_FOLDER = re.compile(r"^(\d+)-([A-Za-z0-9._-]+)$")
# shown in the header of the page, in this order, when present; any other field goes in a table
HEADLINE_FIELDS = ("status", "created", "lesson", "device_wanted", "dtypes")


@dataclass(frozen=True, slots=True)
class Experiment:
    number: int
    slug: str
    title: str
    fields: dict[str, str]  # every scalar or list-of-scalars front matter field, as text
    tables: dict[str, list[dict[str, str]]]  # fields that are lists of mappings (predictions)
    body: str  # without a first `# title` line: the page shows the title already
    assets: tuple[Path, ...]

    @property
    def run_script(self) -> str:
        """The source of `run.py` (what the experiment measures), or ""."""
        script = next((p for p in self.assets if p.name == RUN_SCRIPT), None)
        return script.read_text(encoding="utf-8", errors="replace") if script else ""

    @property
    def site_dir(self) -> str:
        return f"experiments/{self.number:04d}-{self.slug}"

    @property
    def page_site_path(self) -> str:
        return f"{self.site_dir}/index.html"

    @property
    def status(self) -> str:
        return self.fields.get("status", "")

    @property
    def conclusion(self) -> str:
        """The first paragraph of the Conclusion, once the experiment is concluded; else ""."""
        if self.fields.get("conclusion"):
            return self.fields["conclusion"]
        if self.status != CONCLUDED:
            return ""  # before that, the section still holds the template's prompt
        paragraphs = section(self.body, "Conclusion").split("\n\n")
        return " ".join(paragraphs[0].split()) if paragraphs else ""


def list_experiments(lab: Lab) -> tuple[list[Experiment], list[str]]:
    """(readable experiments by number, one `path:line: reason` line per unreadable one)."""
    folder = lab.experiments_dir
    if not folder.is_dir():
        return [], []
    experiments, problems = [], []
    for path in sorted(folder.iterdir()):
        match = _FOLDER.match(path.name)
        if not match or not path.is_dir():
            continue
        readme = path / README
        if not readme.is_file():
            problems.append(f"experiments/{path.name}: no {README}")
            continue
        try:
            doc = read_document(readme)
        except FrontMatterError as e:
            problems.append(f"experiments/{path.name}/{README}:{e.line}: {e.reason}")
            continue
        experiments.append(_experiment(path, int(match.group(1)), match.group(2), doc.fields, doc.body))
    return experiments, problems


def _experiment(folder: Path, number: int, slug: str, raw: dict, body: str) -> Experiment:
    tables = {str(k): [_row(item) for item in v] for k, v in raw.items() if _is_table(v)}
    fields = {str(k): _as_text(v) for k, v in raw.items() if str(k) not in tables}
    title = fields.get("title") or slug.replace("-", " ")
    lines = body.lstrip("\n").split("\n", 1)
    if lines[0].strip() == f"# {title}":
        body = lines[1] if len(lines) > 1 else ""
    assets = [
        p
        for p in sorted(folder.iterdir())
        if p.is_file() and p.suffix.lower() in ASSET_SUFFIXES and not p.name.startswith(".")
    ]
    return Experiment(number, slug, title, fields, tables, body, tuple(assets))


def section(body: str, name: str) -> str:
    """The text under `## name` up to the next `## ` heading, stripped; "" if there is none."""
    lines = body.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip().lower() == f"## {name.lower()}"), None)
    if start is None:
        return ""
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return "\n".join(lines[start + 1 : end]).strip()


def headline(experiment: Experiment) -> list[tuple[str, str]]:
    return [(k, experiment.fields[k]) for k in HEADLINE_FIELDS if experiment.fields.get(k)]


def other_fields(experiment: Experiment) -> list[tuple[str, str]]:
    return [
        (k, v) for k, v in experiment.fields.items() if k not in HEADLINE_FIELDS and k not in ("id", "title")
    ]


def _is_table(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _row(item: dict) -> dict[str, str]:
    return {str(k): _as_text(v) for k, v in item.items()}


def _as_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list):
        return ", ".join(_as_text(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_as_text(v)}" for k, v in value.items())
    return str(value).strip()
