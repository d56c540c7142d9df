"""Where a lab lives and what is in it; making one; opening one.

A lab is a folder with `lab.toml` (its marker, with a format version), `records/`,
`experiments/`, `results/`, `reviews/` and a derived `index.sqlite`. The default lab is
"embedded": `$INFERLAB_HOME` if set, else the per-user data directory, created silently on first
use. A lab path given explicitly must already be a lab, so a typo never scatters a new lab.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from inferlab.lab.atomic import atomic_create_text
from inferlab.lab.errors import LabError

LAB_FORMAT = 1  # bump when the on-disk layout changes incompatibly
MARKER = "lab.toml"
SUBDIRS = ("records", "experiments", "results", "reviews")
_GITIGNORE = "# Derived from the files; `inferlab lab reindex` rebuilds it.\nindex.sqlite\n"


@dataclass(frozen=True, slots=True)
class Lab:
    root: Path

    @property
    def records_dir(self) -> Path:
        return self.root / "records"

    @property
    def experiments_dir(self) -> Path:
        return self.root / "experiments"

    @property
    def results_dir(self) -> Path:
        return self.root / "results"

    @property
    def reviews_dir(self) -> Path:
        return self.root / "reviews"

    @property
    def index_path(self) -> Path:
        return self.root / "index.sqlite"

    @property
    def config_path(self) -> Path:
        return self.root / MARKER

    @classmethod
    def open(cls, path: str | Path | None = None) -> Lab:
        """The lab at `path` (LabError if there is none), or the default lab, made if missing."""
        if path is None:
            root = default_lab_path()
            if not is_lab(root):
                try:
                    return init_lab(root)
                except LabError:  # another process made it between our check and init
                    if not is_lab(root):
                        raise
        else:
            root = _absolute(path)
            if not is_lab(root):
                raise LabError(f"no lab at {root}; create one with `inferlab init {root}`")
        lab = cls(root)
        _check_config(lab.config_path)
        return lab


def default_lab_path() -> Path:
    """`$INFERLAB_HOME` if set and non-empty, else the per-user data directory for inferlab."""
    home = os.environ.get("INFERLAB_HOME", "").strip()
    if home:
        return _absolute(home)
    import platformdirs  # only needed when no home is set

    return _absolute(platformdirs.user_data_dir("inferlab", appauthor=False))


def is_lab(path: Path) -> bool:
    return (Path(path) / MARKER).is_file()


def init_lab(path: str | Path | None = None) -> Lab:
    """Make a lab at `path` (default: `default_lab_path()`); never overwrites an existing file.

    A non-empty folder that is not a lab is fine (its files are left alone); a folder that
    already is a lab is refused.
    """
    root = default_lab_path() if path is None else _absolute(path)
    if is_lab(root):
        raise LabError(f"there is already a lab at {root}")
    if root.exists() and not root.is_dir():
        raise LabError(f"cannot make a lab at {root}: it is a file, not a folder")
    lab = Lab(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
        for name in SUBDIRS:
            (root / name).mkdir(exist_ok=True)
        _create_if_missing(root / ".gitignore", _GITIGNORE)
        created = datetime.now(UTC).isoformat(timespec="seconds")
        # the marker goes last: a half-made lab is not mistaken for a lab
        atomic_create_text(lab.config_path, _config_text(created))
    except FileExistsError:
        raise LabError(f"there is already a lab at {root}") from None
    except OSError as e:
        raise LabError(f"cannot make a lab at {root}: {e.strerror or e}") from None
    return lab


def _config_text(created: str) -> str:
    return (
        "# An inferlab lab: learning records, experiments, results and reviews.\n"
        "# The Markdown, YAML and JSON files are the truth; index.sqlite is derived from them.\n"
        f"format = {LAB_FORMAT}\n"
        f'created = "{created}"\n'
    )


def _check_config(config_path: Path) -> None:
    try:
        config = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise LabError(f"cannot read {config_path}: {e}") from None
    version = config.get("format", LAB_FORMAT)
    if not isinstance(version, int) or version > LAB_FORMAT:
        raise LabError(
            f"{config_path} has format {version!r}, newer than this inferlab understands "
            f"({LAB_FORMAT}); upgrade inferlab"
        )


def _create_if_missing(path: Path, text: str) -> None:
    try:
        atomic_create_text(path, text)
    except FileExistsError:
        pass  # the learner's own file wins


def _absolute(path: str | Path) -> Path:
    return Path(path).expanduser().resolve()
