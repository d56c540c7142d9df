"""Result files for the site: the lab's `results/` and, in a checkout, `benchmarks/results/`.

Files committed under `benchmarks/results/` are this repository's own evidence (every speed claim
points at one); the lab's are the learner's runs. `bench --save-to` writes the same file to both,
so a lab file with a committed file's name is shown once, as the committed one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import inferlab
from inferlab.lab.layout import Lab
from inferlab.lab.results import list_results

REPO = "repo"  # committed under benchmarks/results/ of this checkout
LAB = "lab"


@dataclass(frozen=True, slots=True)
class ResultFile:
    source: str  # REPO or LAB
    path: Path
    payload: dict
    digest: str  # sha256 of the bytes, to reuse plots of an unchanged file

    @property
    def kind(self) -> str:
        return str(self.payload.get("kind", "unknown"))

    @property
    def slug(self) -> str:
        """Unique among results: names the result's page and its folders in the site."""
        return f"{self.source}-{self.path.stem}"

    @property
    def committed(self) -> bool:
        return self.source == REPO

    @property
    def file_site_path(self) -> str:
        """Where the site keeps a copy of the raw JSON, so every claim can link to it."""
        return f"benchmarks/files/{self.source}/{self.path.name}"

    @property
    def page_site_path(self) -> str:
        return f"benchmarks/{self.slug}.html"

    @property
    def environment(self) -> dict:
        env = self.payload.get("environment")
        return env if isinstance(env, dict) else {}

    @property
    def device(self) -> str:
        gpu = self.environment.get("gpu")
        if isinstance(gpu, dict) and gpu.get("name"):
            return str(gpu["name"])
        return str(self.environment.get("backend") or "no GPU")

    @property
    def repo_path(self) -> str:
        """How a reader finds the file: `benchmarks/results/NAME` or `<lab>/results/NAME`."""
        return f"benchmarks/results/{self.path.name}" if self.committed else f"<lab>/results/{self.path.name}"


def repo_results_dir() -> Path | None:
    """`benchmarks/results/` of the checkout this package runs from, or None when installed."""
    package_dir = Path(inferlab.__file__).resolve().parent  # <checkout>/src/inferlab
    checkout = package_dir.parent.parent
    folder = checkout / "benchmarks" / "results"
    if (checkout / "pyproject.toml").is_file() and folder.is_dir():
        return folder
    return None


def load_results(lab: Lab, repo_dir: Path | None) -> tuple[list[ResultFile], list[str]]:
    """(readable result files, newest first; one problem line per unreadable one)."""
    found: list[ResultFile] = []
    problems: list[str] = []
    repo_names = set()
    if repo_dir is not None:
        for path in sorted(repo_dir.glob("*.json")):
            repo_names.add(path.name)
            _load(path, REPO, f"benchmarks/results/{path.name}", found, problems)
    for path in list_results(lab):
        if path.name not in repo_names:
            _load(path, LAB, f"results/{path.name}", found, problems)
    found.sort(key=lambda r: (r.path.name, r.source), reverse=True)
    return found, problems


def _load(path: Path, source: str, shown: str, found: list[ResultFile], problems: list[str]) -> None:
    try:
        data = path.read_bytes()
        payload = json.loads(data)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        problems.append(f"{shown}: cannot be read as JSON ({_one_line(e)})")
        return
    if not isinstance(payload, dict):
        problems.append(f"{shown}: a result file must hold a JSON object")
        return
    found.append(ResultFile(source, path, payload, hashlib.sha256(data).hexdigest()))


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split())
