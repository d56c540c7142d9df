"""The lab's user-fixable problems: both are `InferlabError`s, so the CLI prints one sentence."""

from __future__ import annotations

from pathlib import Path

from inferlab.errors import InferlabError


class LabError(InferlabError):
    """A problem with the lab itself: no lab at a path, a lab already there, a bad argument."""


class FrontMatterError(LabError):
    """A file whose YAML front matter cannot be read; says `path:line: reason` (line is 1-based)."""

    def __init__(self, path: Path, line: int, reason: str) -> None:
        self.path = path
        self.line = line
        self.reason = reason
        super().__init__(f"{path}:{line}: {reason}")
