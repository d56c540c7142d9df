"""Spaced-review state on disk: `reviews/cards.json` in the lab, one entry per review card.

    {
      "schema": 1,
      "scheduler": {...},            # fsrs.Scheduler.to_dict(): the parameters the cards were scheduled with
      "cards": {
        "quiz:1:shared-memory-scope": {
          "created": "2025-01-01T12:00:00+00:00",
          "fsrs": {...},             # fsrs.Card.to_dict(): state, stability, difficulty, due, ...
          "log": [                   # every rating, oldest first: the evidence behind the schedule
            {"at": "...", "via": "review", "rating": "good", "seconds": 14.2,
             "had": [0, 1], "of": 2, "answer": "..."}
          ]
        }
      }
    }

The scheduling is FSRS (the `fsrs` package), never our own arithmetic. Writes are atomic, and a
save re-reads the file and replaces only the cards this process changed, so two commands run side
by side lose nothing but a simultaneous rating of the same card. A file that cannot be read is
never silently reset: it is renamed to `cards.json.corrupt-<UTC timestamp>` and the caller gets a
notice to print; a file from a newer inferlab (a higher schema) is refused instead.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import fsrs

from inferlab.errors import InferlabError
from inferlab.lab import Lab, atomic_write_text

SCHEMA_VERSION = 1  # bump when the layout changes; add a migration from the old one in _parse
STATE_FILE = "cards.json"


class ReviewStateError(InferlabError):
    """The review state file cannot be used as it is (corrupt, or written by a newer inferlab)."""


@dataclass(slots=True)
class CardState:
    id: str  # "quiz:1:<question id>", "recall:1:<prompt id>" or "record:<record id>"
    card: fsrs.Card
    created: str  # ISO-8601
    log: list[dict] = field(default_factory=list)


@dataclass(slots=True)
class ReviewState:
    cards: dict[str, CardState]
    scheduler: fsrs.Scheduler
    notices: list[str] = field(default_factory=list)  # what loading had to do, for the learner


def state_path(lab: Lab) -> Path:
    return lab.reviews_dir / STATE_FILE


def fsrs_card_id(card_id: str) -> int:
    """A stable integer id for fsrs (it wants an int): 48 bits of the card id's SHA-256."""
    return int.from_bytes(hashlib.sha256(card_id.encode()).digest()[:6], "big")


def new_card(card_id: str, now: datetime) -> CardState:
    return CardState(
        card_id, fsrs.Card(card_id=fsrs_card_id(card_id), due=now), now.isoformat(timespec="seconds")
    )


def load_state(lab: Lab, *, repair: bool = True) -> ReviewState:
    """The lab's review state (empty if there is none yet).

    A corrupt file is set aside and a fresh state returned with a notice saying so; with
    `repair=False` (read-only callers) a ReviewStateError is raised instead and nothing moves.
    """
    path = state_path(lab)
    if not path.exists():
        return ReviewState({}, fsrs.Scheduler())
    try:
        return _parse(path.read_bytes(), path)
    except _Corrupt as e:
        if not repair:
            raise ReviewStateError(
                f"the review state {path} is unreadable ({e}); `inferlab review` sets it aside"
            ) from None
        aside = set_aside(path)
        notice = (
            f"The review state {path} could not be read ({e}). It was renamed to {aside.name} "
            "(nothing in it is deleted) and review starts from a fresh state: cards are made "
            "again from your quiz and recall records, with no history."
        )
        return ReviewState({}, fsrs.Scheduler(), [notice])


def save_state(lab: Lab, state: ReviewState, changed: set[str]) -> None:
    """Write the cards in `changed` into the state file, keeping every other card as it is on disk."""
    if not changed:
        return
    path = state_path(lab)
    on_disk: dict[str, CardState] = {}
    if path.exists():
        try:
            on_disk = _parse(path.read_bytes(), path).cards
        except _Corrupt as e:  # broken since we loaded it: keep the broken copy, write ours
            aside = set_aside(path)
            state.notices.append(
                f"The review state {path} became unreadable ({e}); it was renamed to {aside.name}."
            )
    for card_id in changed:
        on_disk[card_id] = state.cards[card_id]
    lab.reviews_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, _dump(on_disk, state.scheduler))


def set_aside(path: Path) -> Path:
    """Rename `path` to `<name>.corrupt-<UTC timestamp>`, never over an existing file; return the new path."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for n in range(1000):
        target = path.with_name(f"{path.name}.corrupt-{stamp}" + (f".{n}" if n else ""))
        if not target.exists():
            os.replace(path, target)
            return target
    raise ReviewStateError(f"no free name to set {path} aside; move it away by hand")


class _Corrupt(Exception):
    """Why a state file cannot be read (internal: becomes a set-aside or a ReviewStateError)."""


def _parse(data: bytes, path: Path) -> ReviewState:
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _Corrupt(f"not valid JSON: {e}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("schema"), int):
        raise _Corrupt("no schema version")
    if raw["schema"] > SCHEMA_VERSION:
        raise ReviewStateError(
            f"{path} has review schema {raw['schema']}, newer than this inferlab understands "
            f"({SCHEMA_VERSION}); upgrade inferlab"
        )
    cards_raw = raw.get("cards")
    if not isinstance(cards_raw, dict):
        raise _Corrupt("'cards' is not a mapping")
    cards = {}
    for card_id, entry in cards_raw.items():
        try:
            card = fsrs.Card.from_dict(entry["fsrs"])
            created = str(entry["created"])
            log = entry.get("log", [])
            if not isinstance(log, list):
                raise TypeError("log is not a list")
        except (KeyError, TypeError, ValueError) as e:
            raise _Corrupt(f"card {card_id!r} is malformed ({type(e).__name__}: {e})") from None
        cards[card_id] = CardState(card_id, card, created, log)
    try:
        scheduler = fsrs.Scheduler.from_dict(raw["scheduler"]) if "scheduler" in raw else fsrs.Scheduler()
    except (KeyError, TypeError, ValueError) as e:
        raise _Corrupt(f"scheduler parameters are malformed ({e})") from None
    return ReviewState(cards, scheduler)


def _dump(cards: dict[str, CardState], scheduler: fsrs.Scheduler) -> str:
    payload = {
        "schema": SCHEMA_VERSION,
        "scheduler": scheduler.to_dict(),
        "cards": {
            cid: {"created": c.created, "fsrs": c.card.to_dict(), "log": c.log}
            for cid, c in sorted(cards.items())
        },
    }
    return json.dumps(payload, indent=1, ensure_ascii=False) + "\n"
