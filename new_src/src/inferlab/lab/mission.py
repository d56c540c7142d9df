"""`MISSION.md` changes: noticed, and answered by a learning record that says what changed and why.

inferlab keeps the hash of the `MISSION.md` it last saw in `.inferlab/mission.json` (with when it
saw it). When the file's hash differs, `inferlab next` and `inferlab lab mission` ask for a record
linking `mission:<hash>` (the first 12 hex digits of the new file's SHA-256; any prefix of 7 or
more digits counts). Once such a record exists, the new hash becomes the one last seen and the
prompt stops. A lab with no state yet takes the current file as seen (first sight is no change).
In a git repository the prompt also names the last commit that touched `MISSION.md`.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from inferlab.lab.layout import Lab
from inferlab.lab.record_file import Record
from inferlab.lab.state import read_state, write_state

MISSION_FILE = "MISSION.md"
STATE_NAME = "mission.json"
SHORT_HASH_CHARS = 12
MIN_PREFIX_CHARS = 7  # like git: a shorter prefix is too easy to match by accident
LINK_KIND = "mission"


@dataclass(frozen=True, slots=True)
class MissionCheck:
    hash: str | None  # sha256 of MISSION.md now, None when there is no MISSION.md
    seen_hash: str | None  # the hash last seen
    seen_at: str | None  # when it was seen (ISO-8601)
    acknowledged_by: int | None  # the record linking mission:<hash> for the current hash
    revision: str | None  # the last git commit touching MISSION.md, when the lab is in git

    @property
    def short_hash(self) -> str:
        return (self.hash or "")[:SHORT_HASH_CHARS]

    @property
    def changed(self) -> bool:
        """Changed since last seen and no record says why yet."""
        return bool(self.hash and self.seen_hash and self.hash != self.seen_hash) and not self.acknowledged_by

    def prompt(self) -> str | None:
        if not self.changed:
            return None
        since = (self.seen_at or "")[:10] or "it was last seen"
        committed = f" (last committed in {self.revision})" if self.revision else ""
        return (
            f"MISSION.md{committed} changed since {since}: write a learning record that says what "
            f"changed and why (`inferlab record new 'What changed in my mission' "
            f"--link mission:{self.short_hash}`)"
        )


def mission_hash(lab: Lab) -> str | None:
    path = lab.root / MISSION_FILE
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def baseline_payload(lab: Lab) -> dict[str, str] | None:
    """What to remember as seen, when there is a MISSION.md and nothing is remembered yet."""
    current = mission_hash(lab)
    if current is None or _seen(lab) is not None:
        return None
    return _payload(current)


def check_mission(lab: Lab, records: Iterable[Record], *, remember: bool = True) -> MissionCheck:
    """Compare MISSION.md with the hash last seen. With `remember`, a first sight and an answered
    change are written down (inferlab's own bookkeeping in `.inferlab/`, never the learner's files)."""
    current = mission_hash(lab)
    seen = _seen(lab)
    if current is None:
        return MissionCheck(None, seen["hash"] if seen else None, seen["seen"] if seen else None, None, None)
    if seen is None:
        if remember:
            _remember(lab, current)
        return MissionCheck(current, current, _now(), None, None)
    if seen["hash"] == current:
        return MissionCheck(current, current, seen["seen"], None, None)
    answer = next((r.id for r in records if _answers(r, current)), None)
    if answer is not None and remember:
        _remember(lab, current)
    revision = _git_revision(lab) if answer is None else None
    return MissionCheck(current, seen["hash"], seen["seen"], answer, revision)


def mission_prompt(lab: Lab, records: Iterable[Record]) -> str | None:
    """The prompt `inferlab next` shows while MISSION.md's change has no record, else None."""
    return check_mission(lab, records).prompt()


def _answers(record: Record, current: str) -> bool:
    for link in record.links:
        kind, _, value = link.partition(":")
        value = value.strip().lower()
        if kind.strip().lower() == LINK_KIND and len(value) >= MIN_PREFIX_CHARS and current.startswith(value):
            return True
    return False


def _seen(lab: Lab) -> dict[str, str] | None:
    state = read_state(lab, STATE_NAME)
    if state is None or not isinstance(state.get("hash"), str) or not isinstance(state.get("seen"), str):
        return None
    return {"hash": state["hash"], "seen": state["seen"]}


def _remember(lab: Lab, current: str) -> None:
    try:
        write_state(lab, STATE_NAME, _payload(current))
    except OSError:
        pass  # a read-only lab: remembering is bookkeeping, and the next run will try again


def _payload(current: str) -> dict[str, str]:
    return {"file": MISSION_FILE, "hash": current, "seen": _now()}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _git_revision(lab: Lab) -> str | None:
    git = shutil.which("git")
    if git is None:
        return None
    try:
        done = subprocess.run(
            [git, "-C", str(lab.root), "log", "-1", "--format=%h", "--", MISSION_FILE],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    revision = done.stdout.strip()
    return revision if done.returncode == 0 and revision else None
