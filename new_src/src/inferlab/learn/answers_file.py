"""Reading a scripted answers file (quiz, recall, review): YAML or JSON, one mapping of ids to answers."""

from __future__ import annotations

from pathlib import Path

import yaml

from inferlab.errors import InferlabError


def read_answers_mapping(path: Path, keys: str) -> dict:
    """The mapping in `path` (empty if the file is empty); one InferlabError for a missing file,
    invalid YAML/JSON (with its line) or anything but a mapping. `keys` names what the mapping's
    keys must be, for the message ("question ids", "card ids (like quiz:1:arange-meaning)")."""
    if not path.is_file():
        raise InferlabError(f"answers file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        at = f" (line {line + 1})" if line is not None else ""
        raise InferlabError(f"answers file {path} is not valid YAML or JSON{at}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InferlabError(f"answers file {path} must map {keys} to answers")
    return raw
