"""The results store: one JSON file per benchmark or experiment run, never overwritten.

Files are `results/<UTC timestamp>-<kind>.json`, e.g. `20250101T120000Z-bench.json`; a second
result of the same kind in the same second gets `.2`, `.3`... before `.json`. The dot (not a
hyphen) keeps the kind unambiguous, since kinds may contain hyphens but never dots.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

from inferlab.lab.atomic import atomic_create_text
from inferlab.lab.errors import LabError
from inferlab.lab.layout import Lab

_KIND = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_NAME = re.compile(r"^(?P<stamp>\d{8}T\d{6}Z)-(?P<kind>[a-z0-9][a-z0-9_-]*)(?:\.\d+)?\.json$")


def save_result(lab: Lab, kind: str, payload: dict) -> Path:
    """Write `payload` as JSON to a new file in `results/` and return its path."""
    _check_kind(kind)
    text = json.dumps(payload, indent=2, ensure_ascii=False) + "\n"  # TypeError if not JSON-able
    lab.results_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-{kind}"
    for n in range(1, 10_000):
        path = lab.results_dir / (f"{stem}.json" if n == 1 else f"{stem}.{n}.json")
        try:
            atomic_create_text(path, text)
            return path
        except FileExistsError:
            continue
    raise LabError(f"no free result name for {stem} in {lab.results_dir}")


def list_results(lab: Lab, kind: str | None = None) -> list[Path]:
    """Result files, oldest first; only those of `kind` if given."""
    if kind is not None:
        _check_kind(kind)
    if not lab.results_dir.is_dir():
        return []
    found = []
    for path in lab.results_dir.iterdir():
        match = _NAME.match(path.name)
        if match and (kind is None or match["kind"] == kind) and path.is_file():
            found.append((match["stamp"], _copy_number(path.name), path))
    return [path for _, _, path in sorted(found)]


def _copy_number(name: str) -> int:
    parts = name.split(".")
    return int(parts[-2]) if len(parts) == 3 else 1


def _check_kind(kind: str) -> None:
    if not _KIND.match(kind):
        raise LabError(f"result kind {kind!r} must be lowercase letters, digits, '-' or '_' (e.g. 'bench')")
