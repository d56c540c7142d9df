"""Atomic file writes: a reader sees the old file or the new one, never half of either.

The new content goes to a temporary file in the same directory (same filesystem, so the rename
is atomic), is flushed and fsynced, then `os.replace`d over the target; the directory is fsynced
so the rename itself survives a crash. Temporary names start with "." and end with ".tmp", so
listings that skip hidden files never see them.

Backups: when `backup_dir` is given and the target exists, its old bytes are first copied to
`backup_dir/<name>.<UTC timestamp>` (e.g. `records/.backup/0003-masks.md.20250101T120000.123456Z`),
fsynced, and only then is the target replaced. Backups are never overwritten or deleted.
"""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

_NEW_FILE_MODE = 0o644  # mkstemp makes 0600; lab files are ordinary user documents


def atomic_write_text(path: Path, text: str, *, backup_dir: Path | None = None) -> None:
    """Write `text` (UTF-8) to `path` atomically, first backing up any old content to `backup_dir`."""
    path = Path(path)
    if backup_dir is not None and path.exists():
        backup_file(path, backup_dir)
    tmp = _write_temp(path, text.encode("utf-8"))
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_create_text(path: Path, text: str) -> None:
    """Write `text` to a new file `path` atomically; raise FileExistsError if `path` exists."""
    _create_bytes(Path(path), text.encode("utf-8"))


def backup_file(path: Path, backup_dir: Path) -> Path:
    """Copy `path` to a new, uniquely named file in `backup_dir` (fsynced); return the copy's path."""
    backup_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    data = path.read_bytes()  # bytes, not text: a backup keeps the old file exactly
    for attempt in range(1000):
        suffix = "" if attempt == 0 else f".{attempt}"
        target = backup_dir / f"{path.name}.{stamp}{suffix}"
        try:
            _create_bytes(target, data)
            return target
        except FileExistsError:
            continue
    raise FileExistsError(f"no free backup name for {path} in {backup_dir}")


def _create_bytes(path: Path, data: bytes) -> None:
    # Hard-link the complete temporary file to `path`: the link fails if the name is taken, so
    # two writers racing for one name can never overwrite each other.
    tmp = _write_temp(path, data)
    try:
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise
        except OSError:  # a filesystem without hard links: check, then rename (tiny race window)
            if path.exists():
                raise FileExistsError(path) from None
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def _write_temp(path: Path, data: bytes) -> Path:
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _existing_mode(path))
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _existing_mode(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        return _NEW_FILE_MODE


def _fsync_dir(directory: Path) -> None:
    """Make a rename durable; directories cannot be opened for fsync on Windows, so skip there."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
