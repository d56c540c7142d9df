"""The output folder: built beside the old site, then swapped in, so a reader never sees half a site.

A folder is only ever replaced if a previous build marked it as a site (`.inferlab-site`), so
`--out ~/notes` can never delete someone's notes. Files of the previous build stay readable during
the build, so slow derived files (plots) can be reused when their source has not changed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from importlib.resources.abc import Traversable
from pathlib import Path, PurePosixPath

from inferlab.errors import InferlabError

MARKER = ".inferlab-site"


class SiteWriter:
    """Writes site files by their site path (`records/0001.html`); `publish()` puts them in place."""

    def __init__(self, out: Path) -> None:
        self.out = Path(out)
        _check_replaceable(self.out)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.building-", dir=self.out.parent))
        self.published: set[str] = set()

    def reserve(self, site_path: str) -> str:
        """Claim `site_path` for a file written later (pages are claimed before any is rendered,
        so Markdown on one page can tell whether a link to another will resolve)."""
        clean = PurePosixPath(site_path)
        if clean.is_absolute() or ".." in clean.parts:
            raise ValueError(f"site path {site_path!r} must stay inside the site")
        self.published.add(clean.as_posix())
        return clean.as_posix()

    def write_text(self, site_path: str, text: str) -> None:
        self._target(site_path).write_text(text, encoding="utf-8")

    def copy(self, source: Path | Traversable, site_path: str) -> None:
        self._target(site_path).write_bytes(source.read_bytes())

    def folder(self, site_path: str) -> Path:
        """A folder in the new site for a tool that writes files itself (plots); its files must
        then be claimed with `reserve`."""
        path = self._tmp / site_path
        path.mkdir(parents=True, exist_ok=True)
        return path

    def previous(self, site_path: str) -> Path | None:
        """That path in the site being replaced, if it is there."""
        path = self.out / site_path
        return path if (self.out / MARKER).is_file() and path.exists() else None

    def publish(self) -> None:
        (self._tmp / MARKER).write_text(
            "Made by `inferlab site build`; the next build replaces this folder.\n"
        )
        old = None
        if self.out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.old-", dir=self.out.parent))
            os.replace(self.out, old / "site")
        os.replace(self._tmp, self.out)
        if old is not None:
            shutil.rmtree(old)

    def discard(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)

    def _target(self, site_path: str) -> Path:
        path = self._tmp / self.reserve(site_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path


def _check_replaceable(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise InferlabError(f"cannot build the site at {out}: it is a file, not a folder")
    if out.is_dir() and not (out / MARKER).is_file() and any(out.iterdir()):
        raise InferlabError(
            f"{out} is not empty and was not made by `inferlab site build`; "
            "choose another --out (a build replaces its folder)"
        )
