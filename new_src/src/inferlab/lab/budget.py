"""The GPU budget: minutes of GPU time per provider and experiment, and what they cost.

The ledger is `<lab>/budget.jsonl`, one JSON object per line, only ever appended to: read and
checked whole, then rewritten atomically with the new line at the end, under a lock file so two
writers never lose each other's entry. A line that cannot be read is reported with its number,
and nothing is written until it is fixed: the ledger is never reset.

Prices come from `lab.toml`, one table per paid provider:

    [budget.providers.lambda-h100]
    hourly_usd = 2.49

Kaggle and Colab are free unless priced there. An entry keeps the price in force when it was
logged (so a later price change does not rewrite history); an entry logged before its provider
had a price is costed at today's price, and a provider with no price at all shows no cost.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from inferlab.lab.atomic import atomic_write_text
from inferlab.lab.errors import LabError
from inferlab.lab.layout import Lab

LEDGER = "budget.jsonl"
FREE_PROVIDERS = ("kaggle", "colab")
SOURCES = ("manual", "run", "import")
MAX_MINUTES = 7 * 24 * 60  # one entry is at most a week: more is a typo (hours for minutes?)
_PROVIDER = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,39}$")


class BudgetError(LabError):
    """A ledger or price table that cannot be read, or an entry that makes no sense."""


@dataclass(frozen=True, slots=True)
class Entry:
    at: str  # ISO-8601 UTC timestamp of logging
    provider: str
    minutes: float
    experiment: str | None = None  # the experiment's folder name, e.g. "0002-swiglu-fusion"
    note: str = ""
    source: str = "manual"  # manual, run (`experiment run`) or import (a bundle)
    hourly_usd: float | None = None  # the price in force when logged, if any
    bundle_sha256: str | None = None


@dataclass(frozen=True, slots=True)
class Total:
    key: str  # a provider or an experiment
    entries: int
    hours: float
    usd: float
    unpriced_hours: float  # hours of providers with no price: their cost is unknown


def ledger_path(lab: Lab) -> Path:
    return lab.root / LEDGER


def read_prices(lab: Lab) -> dict[str, float]:
    """`[budget.providers.NAME] hourly_usd = X` from lab.toml, checked; free providers at 0."""
    try:
        config = tomllib.loads(lab.config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise BudgetError(f"cannot read {lab.config_path}: {e}") from None
    providers = config.get("budget", {}).get("providers", {})
    prices = dict.fromkeys(FREE_PROVIDERS, 0.0)
    if not isinstance(providers, dict):
        raise BudgetError(f"{lab.config_path}: [budget.providers] must be a table of provider tables")
    for name, table in providers.items():
        price = table.get("hourly_usd") if isinstance(table, dict) else None
        if isinstance(price, bool) or not isinstance(price, int | float) or not 0 <= price < math.inf:
            raise BudgetError(
                f"{lab.config_path}: [budget.providers.{name}] needs hourly_usd = a price in USD, e.g. 2.5"
            )
        prices[name] = float(price)
    return prices


def read_ledger(lab: Lab) -> list[Entry]:
    """Every entry, oldest first; BudgetError naming the first line that cannot be read."""
    path = ledger_path(lab)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as e:
        raise BudgetError(f"cannot read the budget ledger {path}: {e}") from None
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            entries.append(_parse_line(line, f"{path}:{number}"))
    return entries


def log_time(
    lab: Lab,
    provider: str,
    minutes: float,
    *,
    experiment: str | None = None,
    note: str = "",
    source: str = "manual",
    bundle_sha256: str | None = None,
) -> Entry:
    """Append one entry (atomically, under the ledger's lock) and return it."""
    entry = Entry(
        at=datetime.now(UTC).isoformat(timespec="seconds"),
        provider=provider,
        minutes=minutes,
        experiment=experiment,
        note=note,
        source=source,
        hourly_usd=read_prices(lab).get(provider),
        bundle_sha256=bundle_sha256,
    )
    _check(entry, "the new entry")
    path = ledger_path(lab)
    with _locked(path):
        read_ledger(lab)  # refuse to append to a ledger with a bad line
        old = path.read_text(encoding="utf-8") if path.exists() else ""
        if old and not old.endswith("\n"):
            old += "\n"
        atomic_write_text(path, old + json.dumps(asdict(entry), ensure_ascii=False) + "\n")
    return entry


def totals(entries: list[Entry], prices: dict[str, float], by: str = "provider") -> list[Total]:
    """Hours and USD per provider (or per experiment, `by="experiment"`), largest first."""
    groups: dict[str, list[Entry]] = {}
    for e in entries:
        key = e.provider if by == "provider" else (e.experiment or "(none)")
        groups.setdefault(key, []).append(e)
    result = []
    for key, group in groups.items():
        hours = sum(e.minutes for e in group) / 60
        priced = [(e, e.hourly_usd if e.hourly_usd is not None else prices.get(e.provider)) for e in group]
        usd = sum(e.minutes / 60 * price for e, price in priced if price is not None)
        unpriced = sum(e.minutes for e, price in priced if price is None) / 60
        result.append(Total(key, len(group), hours, usd, unpriced))
    return sorted(result, key=lambda t: (-t.hours, t.key))


def check_provider(name: str, where: str = "") -> str:
    if not isinstance(name, str) or not _PROVIDER.match(name):
        prefix = f"{where}: " if where else ""
        raise BudgetError(f"{prefix}provider {name!r} must be a short lowercase name (kaggle, lambda-h100)")
    return name


# ---------------------------------------------------------------- helpers
def _parse_line(line: str, where: str) -> Entry:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as e:
        raise BudgetError(f"{where}: not valid JSON ({e.msg}); fix or delete that line") from None
    if not isinstance(data, dict):
        raise BudgetError(f"{where}: an entry must be a JSON object; fix or delete that line")
    known = Entry.__dataclass_fields__
    if unknown := sorted(k for k in data if k not in known):
        raise BudgetError(f"{where}: unknown field {unknown[0]!r}; fix or delete that line")
    if missing := [k for k in ("at", "provider", "minutes") if k not in data]:
        raise BudgetError(f"{where}: the entry has no {missing[0]!r}; fix or delete that line")
    try:
        entry = Entry(**data)
    except TypeError as e:
        raise BudgetError(f"{where}: {e}") from None
    _check(entry, where)
    return entry


def _check(e: Entry, where: str) -> None:
    check_provider(e.provider, where)
    if isinstance(e.minutes, bool) or not isinstance(e.minutes, int | float):
        raise BudgetError(f"{where}: minutes must be a number, not {e.minutes!r}")
    if not 0 < e.minutes <= MAX_MINUTES:
        raise BudgetError(f"{where}: minutes must be more than 0 and at most {MAX_MINUTES} (a week)")
    if e.source not in SOURCES:
        raise BudgetError(f"{where}: source {e.source!r} is not one of {', '.join(SOURCES)}")
    for name in ("at", "note", "experiment", "bundle_sha256"):
        value = getattr(e, name)
        if not isinstance(value, str) and not (value is None and name in ("experiment", "bundle_sha256")):
            raise BudgetError(f"{where}: {name} must be text")
    price = e.hourly_usd
    if price is not None and (isinstance(price, bool) or not isinstance(price, int | float) or price < 0):
        raise BudgetError(f"{where}: hourly_usd must be a price in USD or null")


@contextmanager
def _locked(path: Path):
    """An exclusive lock on `<ledger>.lock` (POSIX); elsewhere the atomic rename alone."""
    try:
        import fcntl
    except ImportError:  # Windows: no flock; two simultaneous writers could lose an entry
        yield
        return
    with open(path.with_name(f".{path.name}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
