"""inferlab's own bookkeeping inside a lab: `.inferlab/*.json`.

Nothing here is the learner's writing: the glossary and resources exported as JSON (derived from
`reference/glossary.html` and `RESOURCES.md`) and the hash of `MISSION.md` last seen. A file is
only rewritten when its content changes, so running a command twice changes nothing the second
time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from inferlab.lab.atomic import atomic_write_text
from inferlab.lab.layout import Lab

STATE_DIRNAME = ".inferlab"


def state_path(lab: Lab, name: str) -> Path:
    return lab.root / STATE_DIRNAME / name


def read_state(lab: Lab, name: str) -> dict[str, Any] | None:
    """The JSON object in `.inferlab/<name>`, or None when it is missing or not a JSON object."""
    try:
        payload = json.loads(state_path(lab, name).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None  # bookkeeping only: unreadable counts as never written
    return payload if isinstance(payload, dict) else None


def state_text(payload: dict[str, Any]) -> str:
    return json.dumps(payload, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def would_change(lab: Lab, name: str, payload: dict[str, Any]) -> bool:
    path = state_path(lab, name)
    try:
        return path.read_text(encoding="utf-8") != state_text(payload)
    except (OSError, UnicodeDecodeError):
        return True


def write_state(lab: Lab, name: str, payload: dict[str, Any]) -> bool:
    """Write `payload` to `.inferlab/<name>` atomically if it differs; True when it was written."""
    if not would_change(lab, name, payload):
        return False
    path = state_path(lab, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, state_text(payload))
    return True
