"""Experiments: a question, a prediction written before running, a measurement, a conclusion.

Each experiment is a folder `experiments/NNNN-slug/` holding `README.md` (YAML front matter,
then the sections Question, Prediction, Method, Result, Conclusion) and `run.py`, which defines
`measure(ceilings) -> rows` with the benchmark harness (`inferlab.bench.runner`). The README is
the truth: it is only rewritten whole, atomically, after its old bytes are copied to `.backup/`.
The front matter's `predictions:` list is described in `experiment_results`, which also runs
`run.py` and writes the Result section.

A number names an experiment of the lab (`experiments/0003-...`); a path names any folder,
e.g. one shipped in this repository's `experiments/`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from inferlab.lab.atomic import atomic_create_text, atomic_write_text
from inferlab.lab.errors import FrontMatterError, LabError
from inferlab.lab.experiment_results import DTYPES, RESULT_PLACEHOLDER, Prediction, parse_prediction
from inferlab.lab.frontmatter import (
    Document,
    get_choice,
    get_field,
    get_id,
    get_text,
    read_document,
    render_document,
)
from inferlab.lab.layout import Lab
from inferlab.lab.record_file import slugify

STATUSES = ("planned", "predicted", "measured", "concluded")
DEVICES = ("h100", "h200", "t4", "any")
KNOWN_FIELDS = ("id", "title", "lesson", "status", "device_wanted", "created", "dtypes", "packages")
KNOWN_FIELDS += ("predictions",)
README, RUN_SCRIPT, BACKUP_DIRNAME = "README.md", "run.py", ".backup"
_FOLDER = re.compile(r"^(\d+)-[^/\\]+$")


@dataclass(slots=True)
class Experiment:
    id: int
    title: str
    lesson: int | None
    status: str
    device_wanted: str
    created: str  # ISO-8601 timestamp
    predictions: list[Prediction]
    body: str
    folder: Path
    dtypes: list[str] = field(default_factory=list)  # what run.py measures in
    packages: list[str] = field(default_factory=list)  # pip packages a notebook must add
    raw_predictions: list[Any] = field(default_factory=list)  # as written, for rewriting
    extra: dict[str, Any] = field(default_factory=dict)  # hand-added front matter fields

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def readme(self) -> Path:
        return self.folder / README

    @property
    def run_script(self) -> Path:
        return self.folder / RUN_SCRIPT

    @property
    def needs_bf16(self) -> bool:
        """True if it measures bf16 with no fp16 fallback, or predicts bf16 rows: bf16 needs sm_80+,
        and a T4 is sm_75."""
        bf16_only = "bfloat16" in self.dtypes and "float16" not in self.dtypes
        return bf16_only or any(p.dtype == "bfloat16" for p in self.predictions)


# ---------------------------------------------------------------- reading and writing
def read_experiment(folder: Path) -> Experiment:
    """Parse and validate `folder/README.md`; FrontMatterError (file and line) if it is not right."""
    folder = Path(folder)
    match = _FOLDER.match(folder.name)
    if match is None:
        raise FrontMatterError(folder / README, 1, "an experiment folder must be named NNNN-slug")
    doc = read_document(folder / README)
    exp_id = get_id(doc, int(match[1]), "folder name")
    title = get_text(doc, "title")
    lesson = get_field(doc, "lesson", int, nullable=True)
    status = get_choice(doc, "status", STATUSES)
    device_wanted = get_choice(doc, "device_wanted", DEVICES)
    created = get_field(doc, "created", (str, datetime, date))
    created = created.isoformat() if isinstance(created, date) else created
    raw = get_field(doc, "predictions", list)
    try:
        predictions = [parse_prediction(item, i + 1) for i, item in enumerate(raw)]
    except ValueError as e:
        raise doc.error("predictions", str(e)) from None
    dtypes = _text_list(doc, "dtypes")
    if bad := [d for d in dtypes if d not in DTYPES]:
        raise doc.error("dtypes", f"dtype {bad[0]!r} is not one of {', '.join(DTYPES)}")
    return Experiment(
        id=exp_id, title=title, lesson=lesson, status=status, device_wanted=device_wanted,
        created=str(created), predictions=predictions, body=doc.body, folder=folder,
        dtypes=dtypes, packages=_text_list(doc, "packages"), raw_predictions=list(raw),
        extra={k: v for k, v in doc.fields.items() if k not in KNOWN_FIELDS},
    )  # fmt: skip


def render_experiment(exp: Experiment) -> str:
    fields: dict[str, Any] = {
        "id": exp.id, "title": exp.title, "lesson": exp.lesson, "status": exp.status,
        "device_wanted": exp.device_wanted, "created": exp.created,
    }  # fmt: skip
    if exp.dtypes:
        fields["dtypes"] = list(exp.dtypes)
    if exp.packages:
        fields["packages"] = list(exp.packages)
    fields["predictions"] = list(exp.raw_predictions)
    return render_document({**fields, **exp.extra}, exp.body)


def new_experiment(
    lab: Lab, title: str, *, lesson: int | None = None, device_wanted: str = "any"
) -> Experiment:
    """Scaffold `experiments/NNNN-slug/` (README.md and run.py) with the next free number."""
    title = title.strip()
    if not title:
        raise LabError("an experiment needs a title")
    if device_wanted not in DEVICES:
        raise LabError(f"unknown device {device_wanted!r}; use one of {', '.join(DEVICES)}")
    if lesson is not None and (isinstance(lesson, bool) or not isinstance(lesson, int) or lesson < 1):
        raise LabError(f"lesson must be a positive whole number, not {lesson!r}")
    lab.experiments_dir.mkdir(parents=True, exist_ok=True)
    for _ in range(100):
        number = _next_free_id(lab.experiments_dir)
        folder = lab.experiments_dir / f"{number:04d}-{slugify(title)}"
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        if len([f for f in _folders(lab.experiments_dir) if _number(f) == number]) > 1:
            folder.rmdir()  # another process took this number with another title: take the next
            continue
        created = datetime.now(UTC).isoformat(timespec="seconds")
        body = _readme_body(title)
        exp = Experiment(number, title, lesson, "planned", device_wanted, created, [], body, folder)
        atomic_create_text(exp.readme, render_experiment(exp))
        atomic_create_text(exp.run_script, _run_script_text(number, title))
        return read_experiment(folder)
    raise LabError(f"could not find a free experiment number in {lab.experiments_dir}")


def list_experiments(lab: Lab) -> tuple[list[Experiment], list[str]]:
    """(good experiments sorted by id, one `path:line: reason` message per unreadable README)."""
    good, problems = [], []
    for folder in _folders(lab.experiments_dir):
        try:
            good.append(read_experiment(folder))
        except FrontMatterError as e:
            problems.append(str(e))
    return sorted(good, key=lambda e: e.id), problems


def find_experiment(lab: Lab, ref: str) -> Experiment:
    """Experiment `ref`: a number in the lab, or a folder (anywhere) holding a README.md."""
    ref = str(ref).strip()
    if ref.isdigit():
        matches = [f for f in _folders(lab.experiments_dir) if _number(f) == int(ref)]
        if not matches:
            raise LabError(f"no experiment {int(ref)} in {lab.experiments_dir} (`inferlab experiment list`)")
        if len(matches) > 1:
            raise LabError(f"experiment {int(ref)} is claimed by several folders; rename all but one")
        return read_experiment(matches[0])
    path = Path(ref).expanduser()
    path = path.parent if path.name == README and path.is_file() else path
    if not (path / README).is_file():
        raise LabError(f"{ref!r} is neither an experiment number nor a folder holding a {README}")
    return read_experiment(path.resolve())


def update_experiment(exp: Experiment) -> Experiment:
    """Rewrite the README from `exp` (the old one is copied to `.backup/` first); return it reread."""
    if exp.status not in STATUSES:
        raise LabError(f"unknown status {exp.status!r}; use one of {', '.join(STATUSES)}")
    read_experiment(exp.folder)  # refuses to rewrite a README it cannot read
    atomic_write_text(exp.readme, render_experiment(exp), backup_dir=exp.folder / BACKUP_DIRNAME)
    return read_experiment(exp.folder)


# ---------------------------------------------------------------- helpers
def _folders(experiments_dir: Path) -> list[Path]:
    if not experiments_dir.is_dir():
        return []
    return sorted(p for p in experiments_dir.iterdir() if _FOLDER.match(p.name) and p.is_dir())


def _number(folder: Path) -> int:
    return int(_FOLDER.match(folder.name)[1])


def _next_free_id(experiments_dir: Path) -> int:
    return max((_number(f) for f in _folders(experiments_dir)), default=0) + 1


def _text_list(doc: Document, key: str) -> list[str]:
    value = doc.fields.get(key, [])
    if value is None or not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise doc.error(key, f"field '{key}' must be a list of text items")
    return list(value)


# ---------------------------------------------------------------- what `experiment new` writes
def _readme_body(title: str) -> str:
    return f"""# {title}

## Question

What do you want to find out, in one sentence? E.g. "Does fusing silu and mul make SwiGLU
faster, and by how much?"

## Prediction

Numbers, written before running, with the napkin math behind them: bytes moved over the copy
bandwidth (H100 ~3.0 TB/s, H200 ~4.2 TB/s, T4 ~0.25 TB/s). E.g. "one pass instead of three, so
1.2 ms toward 0.4 ms". Put each number in the front matter's `predictions:` list as well, e.g.
`{{metric: time_us, provider: inferlab, shape: "8192x14336", device: H100, value: 400, unit: us}}`
(metrics: time_us, gbps, percent_of_ceiling, speedup with `vs: torch`; `tolerance: 0.2` is the
default), then set `status: predicted`.

## Method

What `run.py` times (kernel, providers, shapes, dtype), and why those shapes.

## Result

{RESULT_PLACEHOLDER}

## Conclusion

Was the prediction right? For each MISS, explain what the napkin math left out.
"""


def _run_script_text(number: int, title: str) -> str:
    return f'''"""Experiment {number}: {title}

`inferlab experiment run {number}` imports this file and calls `measure(ceilings)` on a GPU: the
harness checks every provider against the SPEC's reference, then times the correct ones (cold
L2, CUDA-graph replays, interleaved rounds) and returns one row per provider and shape.
Nothing runs at import. Change SPEC, SHAPES and the providers to what your question needs.
"""

from inferlab.bench import runner
from inferlab.bench.providers import providers_for
from inferlab.kernels import get_spec
from inferlab.kernels.spec import BenchShape

SPEC = get_spec("add")  # what to time: a kernel of the registry, or a KernelSpec of your own
SHAPES = [BenchShape((1 << 26,), "synthetic", "64M elements: 384 MB per tensor in bf16, past L2")]


def measure(ceilings: dict | None) -> list[dict]:
    """Check, then time, ours and eager PyTorch at each shape: the harness's rows."""
    providers = providers_for(SPEC, ["inferlab", "torch"])
    return runner.run_kernel(SPEC, SHAPES, providers, ceilings, runner.QUICK, dtype=runner.bench_dtype())


if __name__ == "__main__":  # `python run.py` is `inferlab experiment run <this folder>`
    from inferlab.cli.experiment_commands import run_script_main

    run_script_main(__file__)
'''
