"""`inferlab init --adopt DIR`: take a lab kept in the /teach layout, in place.

A /teach lab holds `MISSION.md`, `RESOURCES.md`, `lessons/0001-slug.html`, `reference/*.html`,
`records/0001-slug.md` (no front matter, a free-text `Status:` line) and `experiments/0001-slug/`
(a hand-written `README.md`, no front matter). Adoption is two steps so that a dry run and a
confirmation per file are easy:

1. `plan_adoption(dir)` only reads: what is there (counts), the front matter each record
   (`RecordProposal`) and each experiment README (`ExperimentProposal`, see
   `inferlab.lab.teach_experiment`) without one would get, links that point at nothing, files it
   must leave alone (an experiment folder with no README.md among them: none is made), and the
   bookkeeping to write (`.inferlab/glossary.json`, `resources.json`, `mission.json`).
2. `make_lab_marker`, `add_front_matter` (one file, its old bytes backed up first: a record's to
   `records/.backup/`, a README's to its folder's `.backup/`, as `experiment run` does) and
   `write_bookkeeping` apply it.

The learner's bytes are never rewritten: front matter goes *above* the body, which follows it
byte for byte after one blank line; `lab.toml` is only written where there is none. Adopting
twice is safe: the second plan finds nothing to change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inferlab.lab.atomic import atomic_write_text, backup_file
from inferlab.lab.errors import FrontMatterError, LabError
from inferlab.lab.experiments import BACKUP_DIRNAME, README, read_experiment
from inferlab.lab.frontmatter import FENCE, render_document
from inferlab.lab.glossary import GLOSSARY_JSON, GlossaryError, glossary_payload, load_glossary
from inferlab.lab.layout import Lab, init_lab, is_lab
from inferlab.lab.mission import STATE_NAME as MISSION_STATE
from inferlab.lab.mission import baseline_payload
from inferlab.lab.record_file import candidate_files, number_in_name, read_record
from inferlab.lab.records import backup_dir
from inferlab.lab.resources import RESOURCES_JSON, load_resources, resources_payload
from inferlab.lab.state import STATE_DIRNAME, would_change, write_state
from inferlab.lab.teach_experiment import folder_number, propose_experiment_front_matter
from inferlab.lab.teach_record import StatusMapping, dangling_links, propose_front_matter

SEPARATOR = "\n"  # one blank line between the new front matter and the learner's first line


@dataclass(slots=True)
class Proposal:
    path: Path
    original: bytes  # the file as read: it must still be exactly this when the change is applied
    fields: dict[str, Any]

    @property
    def front_matter(self) -> str:
        return render_document(self.fields, "")

    def new_text(self) -> str:
        return self.front_matter + SEPARATOR + self.original.decode("utf-8")


@dataclass(slots=True)
class RecordProposal(Proposal):
    status: StatusMapping

    def backup_folder(self, lab: Lab) -> Path:
        return backup_dir(lab)

    def check(self) -> None:
        read_record(self.path)


@dataclass(slots=True)
class ExperimentProposal(Proposal):  # path: the experiment folder's README.md
    why: str  # why this status, in words: "its Result section is written, ..."

    def backup_folder(self, lab: Lab) -> Path:
        return self.path.parent / BACKUP_DIRNAME

    def check(self) -> None:
        read_experiment(self.path.parent)


@dataclass(slots=True)
class AdoptionPlan:
    root: Path
    has_lab_toml: bool
    counts: dict[str, int]  # record, experiment, lesson, reference, resource, glossary term -> count
    proposals: list[RecordProposal] = field(default_factory=list)
    experiment_proposals: list[ExperimentProposal] = field(default_factory=list)
    dangling: list[str] = field(default_factory=list)  # "records/0002-x.md: experiments/0003-y"
    problems: list[str] = field(default_factory=list)  # files left alone, and why
    bookkeeping: dict[str, dict[str, Any]] = field(default_factory=dict)  # `.inferlab/` name -> payload

    @property
    def lab(self) -> Lab:
        return Lab(self.root)

    @property
    def has_changes(self) -> bool:
        proposals = self.proposals or self.experiment_proposals
        return not self.has_lab_toml or bool(proposals) or bool(self.bookkeeping)


def plan_adoption(directory: str | Path) -> AdoptionPlan:
    """Read a /teach-style lab and say what adopting it would change; writes nothing."""
    root = Path(directory).expanduser().resolve()
    if not root.is_dir():
        raise LabError(f"no folder at {root} to adopt")
    has_lab_toml = is_lab(root)
    lab = Lab.open(root) if has_lab_toml else Lab(root)  # open() checks an existing lab.toml's format
    plan = AdoptionPlan(root, has_lab_toml, _counts(lab))
    for path in candidate_files(lab.records_dir):
        _plan_record(plan, path)
    for folder in _experiment_folders(plan, lab):
        _plan_experiment(plan, folder)
    _plan_glossary(plan, lab)
    _plan_resources(plan, lab)
    baseline = baseline_payload(lab)
    if baseline is not None:
        plan.bookkeeping[MISSION_STATE] = baseline
    return plan


def make_lab_marker(plan: AdoptionPlan) -> Lab:
    """Write `lab.toml` (and the folders and `.gitignore` a lab has) where missing; open the lab."""
    if not is_lab(plan.root):
        init_lab(plan.root)  # leaves every existing file alone
        plan.has_lab_toml = True
    return Lab.open(plan.root)


def add_front_matter(lab: Lab, proposal: RecordProposal | ExperimentProposal) -> Path:
    """Put the proposed front matter above the file's unchanged bytes; return the backup's path."""
    try:
        current = proposal.path.read_bytes()
    except OSError as e:
        raise LabError(f"cannot read {proposal.path}: {e.strerror or e}") from None
    if current != proposal.original:
        raise LabError(f"{proposal.path} changed since it was read; run the adoption again")
    backup = backup_file(proposal.path, proposal.backup_folder(lab))
    atomic_write_text(proposal.path, proposal.new_text())
    try:
        proposal.check()
    except FrontMatterError as e:  # cannot happen with fields we made; say where the old file is
        raise LabError(f"{e}; the file as it was is kept at {backup}") from None
    return backup


def write_bookkeeping(lab: Lab, plan: AdoptionPlan) -> list[str]:
    """Write the planned `.inferlab/` files that changed; return their lab-relative paths."""
    return [
        f"{STATE_DIRNAME}/{name}"
        for name, payload in plan.bookkeeping.items()
        if write_state(lab, name, payload)
    ]


def _plan_record(plan: AdoptionPlan, path: Path) -> None:
    shown = _relative(path, plan.root)
    if number_in_name(path) is None:
        plan.problems.append(f"{shown}: not named NNNN-slug.md, so not a record; left alone")
        return
    if (read := _read_text(plan, path)) is None:
        return
    original, text = read
    for link in dangling_links(plan.root, text):
        points = "" if link.target.rstrip("/") == link.where else f"{link.target} names "
        plan.dangling.append(f"{shown}: {points}{link.where}, which does not exist (not written yet?)")
    if text.lstrip("\ufeff").startswith(FENCE):
        try:
            read_record(path)
        except FrontMatterError as e:
            plan.problems.append(f"{_relative_message(str(e), plan.root)}; left alone")
        return  # it already has front matter: nothing to add
    fields, status = propose_front_matter(path, text)
    plan.proposals.append(RecordProposal(path, original, fields, status))


def _plan_experiment(plan: AdoptionPlan, folder: Path) -> None:
    readme = folder / README
    shown = _relative(readme, plan.root)
    if not readme.is_file():
        plan.problems.append(f"{_relative(folder, plan.root)}: no {README}, so nothing to adopt; left alone")
        return
    if (read := _read_text(plan, readme)) is None:
        return
    original, text = read
    if text.lstrip("\ufeff").startswith(FENCE):
        try:
            read_experiment(folder)
        except FrontMatterError as e:
            plan.problems.append(f"{_relative_message(str(e), plan.root)}; left alone")
        return  # it already has front matter: nothing to add
    try:
        fields, why = propose_experiment_front_matter(folder, text)
    except OSError as e:
        plan.problems.append(f"{shown}: cannot be read ({e.strerror or e}); left alone")
        return
    plan.experiment_proposals.append(ExperimentProposal(readme, original, fields, why))


def _experiment_folders(plan: AdoptionPlan, lab: Lab) -> list[Path]:
    """Numbered folders of `experiments/`, as `_counts` counts them; a number claimed twice is reported."""
    where = lab.experiments_dir
    if not where.is_dir():
        return []
    folders = sorted(p for p in where.iterdir() if p.is_dir() and folder_number(p) is not None)
    numbers = [folder_number(p) for p in folders]
    for n in sorted({n for n in numbers if numbers.count(n) > 1}):
        names = ", ".join(f"experiments/{p.name}" for p in folders if folder_number(p) == n)
        plan.problems.append(f"{names} all claim experiment number {n}; rename all but one")
    return folders


def _read_text(plan: AdoptionPlan, path: Path) -> tuple[bytes, str] | None:
    """(bytes, text) of a learner's file, or None with the reason added to the plan's problems."""
    shown = _relative(path, plan.root)
    try:
        original = path.read_bytes()
        return original, original.decode("utf-8")
    except OSError as e:
        plan.problems.append(f"{shown}: cannot be read ({e.strerror or e}); left alone")
    except UnicodeDecodeError:
        plan.problems.append(f"{shown}: not valid UTF-8; left alone")
    return None


def _plan_glossary(plan: AdoptionPlan, lab: Lab) -> None:
    try:
        glossary = load_glossary(lab)
    except GlossaryError as e:
        plan.problems.append(_relative_message(str(e), plan.root))
        return
    if glossary is None:
        return
    plan.counts["glossary term"] = len(glossary.terms)
    plan.problems += [_relative_message(p, plan.root) for p in glossary.problems]
    payload = glossary_payload(glossary, lab)
    if would_change(lab, GLOSSARY_JSON, payload):
        plan.bookkeeping[GLOSSARY_JSON] = payload


def _plan_resources(plan: AdoptionPlan, lab: Lab) -> None:
    try:
        resources = load_resources(lab)
    except LabError as e:
        plan.problems.append(_relative_message(str(e), plan.root))
        return
    if resources is None:
        return
    plan.counts["resource"] = len(resources)
    payload = resources_payload(resources)
    if would_change(lab, RESOURCES_JSON, payload):
        plan.bookkeeping[RESOURCES_JSON] = payload


def _counts(lab: Lab) -> dict[str, int]:
    def files(folder: str, suffixes: tuple[str, ...]) -> int:
        where = lab.root / folder
        if not where.is_dir():
            return 0
        return sum(
            1 for p in where.iterdir() if p.is_file() and p.suffix in suffixes and not p.name.startswith(".")
        )

    experiments = lab.experiments_dir
    return {
        "record": sum(1 for p in candidate_files(lab.records_dir) if number_in_name(p) is not None),
        "experiment": sum(1 for p in experiments.iterdir() if p.is_dir() and folder_number(p) is not None)
        if experiments.is_dir()
        else 0,
        "lesson": files("lessons", (".html", ".md")),
        "reference": files("reference", (".html", ".md")),
        "resource": 0,  # counted as RESOURCES.md is read
        "glossary term": 0,  # counted as the glossary is read
    }


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _relative_message(message: str, root: Path) -> str:
    prefix = f"{root}/"
    return message.replace(prefix, "")
