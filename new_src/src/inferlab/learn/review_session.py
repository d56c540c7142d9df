"""Recall and review in a terminal, with Rich: ask first, show the answer after, tick, rate.

Typed answers are read line by line until an empty line (or end of input), or in `$EDITOR` with
`editor=True`. An empty answer is asked again. Ctrl-C or end of input while a card is open
propagates (KeyboardInterrupt / EOFError): the caller stops, and the card being asked is not rated.

A review answers file (`inferlab review --answers FILE`) maps card ids to answers:

    quiz:1:shared-memory-scope: b                       # a choice, line or number, as in a quiz
    quiz:1:programs-for-1000: {answer: 4, seconds: 6}   # ... with the time it took
    recall:1:program-instance: {text: "...", points: [0, 2], seconds: 35}
    record:7: {text: "...", points: [0]}
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.markdown import Markdown
from rich.markup import escape
from rich.panel import Panel
from rich.prompt import Prompt

from inferlab.errors import InferlabError
from inferlab.lab import Lab
from inferlab.learn import terminal
from inferlab.learn.answers_file import read_answers_mapping
from inferlab.learn.recall import ColdAnswer, checked_text
from inferlab.learn.review import (
    RATING_NAMES,
    Item,
    Outcome,
    Point,
    Resolver,
    add_missing,
    due_items,
    expected_card_ids,
    next_due,
    point,
    rate,
    rating_for,
)
from inferlab.learn.review_store import ReviewState, load_state, save_state

_EDITOR_HELP = "# Write your answer above this line, from memory. Lines starting with # are ignored.\n"


@dataclass(frozen=True, slots=True)
class Given:
    """One card's answer: a parsed quiz answer, or text and the points it had; plus the time taken."""

    answer: object | None = None
    text: str = ""
    had: frozenset[int] | None = None  # None: not ticked yet (asked after the model answer)
    seconds: float | None = None


# ---------------------------------------------------------------- reading answers
def read_text(console: Console, ask: str, *, editor: bool = False) -> str:
    """A non-empty answer in the learner's words; an empty one is refused and asked again."""
    while True:
        text = _from_editor(ask) if editor else _from_lines(console, ask)
        if text.strip():
            return text.strip()
        console.print(
            "[yellow]An empty answer is not recorded: write what you remember, even one sentence "
            "(Ctrl-C stops without recording anything).[/]"
        )


def _from_lines(console: Console, ask: str) -> str:
    console.print(f"[bold]{escape(ask)}[/] [dim](end with an empty line)[/]")
    lines: list[str] = []
    while True:
        try:
            line = console.input("> " if not lines else "  ")
        except EOFError:
            if not lines:
                raise
            break
        if not line.strip():
            break
        lines.append(line)
    return "\n".join(lines)


def _from_editor(ask: str) -> str:
    """The answer written in `$VISUAL` / `$EDITOR` (vi, or notepad on Windows), comment lines dropped."""
    import os
    import shlex
    import subprocess
    import tempfile

    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or ("notepad" if os.name == "nt" else "vi")
    template = "\n\n" + "".join(f"# {line}\n" for line in ask.splitlines()) + _EDITOR_HELP
    fd, name = tempfile.mkstemp(prefix="inferlab-answer-", suffix=".md")
    path = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(template)
        try:
            status = subprocess.run([*shlex.split(editor), str(path)]).returncode
        except OSError as e:
            raise InferlabError(
                f"could not run your editor {editor!r} ($EDITOR): {e.strerror or e}"
            ) from None
        if status != 0:
            raise InferlabError(
                f"your editor {editor!r} exited with status {status}; nothing was taken from it"
            )
        edited = path.read_text(encoding="utf-8")
    finally:
        path.unlink(missing_ok=True)
    if edited == template:
        return ""  # closed without writing anything
    return "\n".join(line for line in edited.splitlines() if not line.lstrip().startswith("#")).strip()


def ask_numbers(console: Console, ask: str, n: int) -> frozenset[int]:
    """Numbers from 0 to n - 1, comma or space separated, asked until valid; empty means none."""
    while True:
        raw = Prompt.ask(ask, default="", console=console, show_default=False)
        try:
            numbers = frozenset(int(p) for p in raw.replace(",", " ").split())
        except ValueError:
            numbers = None
        if numbers is not None and all(0 <= i < n for i in numbers):
            return numbers
        console.print(f"[yellow]give numbers from 0 to {n - 1}, like 0,2 (or nothing)[/]")


def show_points(console: Console, model_answer: str, points: tuple[Point, ...]) -> None:
    console.print(
        Panel(Markdown(model_answer), title="model answer", title_align="left", border_style="cyan")
    )
    console.print("[bold]Key points[/]")
    for i, p in enumerate(points):
        flag = "" if p.core else " [dim](minor)[/]"
        console.print(f"  [bold]{i}[/] {escape(p.text)}{flag}", highlight=False)


def when(due: datetime, now: datetime) -> str:
    """`in 10 minutes`, `in 3 days`: how far away `due` is."""
    delta = max(due - now, timedelta(0))
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if delta.total_seconds() >= size:
            count = round(delta.total_seconds() / size)
            return f"in {count} {unit}{'s' if count != 1 else ''}"
    return "now"


def show_outcome(console: Console, outcome: Outcome, now: datetime) -> None:
    name = RATING_NAMES[outcome.rating].capitalize()
    timed = f" in {outcome.seconds:.0f} s" if outcome.seconds is not None else ""
    colour = {"Again": "red", "Hard": "yellow"}.get(name, "green")
    console.print(
        f"[{colour}]{name}[/]: {len(outcome.had)}/{outcome.of} point(s){timed}; "
        f"back {when(outcome.due, now)}.",
        highlight=False,
    )


# ---------------------------------------------------------------- recall, interactively
def ask_recall(console: Console, prompts, *, editor: bool = False) -> list[ColdAnswer]:
    """Each prompt, answered cold, then the model answer; the learner marks the missing points."""
    answers = []
    for i, prompt in enumerate(prompts, 1):
        console.rule(f"Recall {i}/{len(prompts)}  [dim]{prompt.id}[/]")
        console.print(Markdown(prompt.prompt))
        start = time.monotonic()
        text = read_text(console, "Your answer, from memory:", editor=editor)
        seconds = time.monotonic() - start
        points = tuple(point(p) for p in prompt.key_points)
        show_points(console, prompt.answer, points)
        missed = ask_numbers(
            console, "Numbers of the key points your answer MISSED (e.g. 1,3; empty if none)", len(points)
        )
        answers.append(ColdAnswer(prompt, text, frozenset(range(len(points))) - missed, seconds))
    return answers


# ---------------------------------------------------------------- review
def load_review_answers(path: Path) -> dict[str, object]:
    """Card id -> raw answer from a YAML/JSON file (checked per card when it is reviewed)."""
    raw = read_answers_mapping(path, "card ids (like quiz:1:arange-meaning)")
    if not isinstance(raw, dict) or not raw:
        raise InferlabError(f"answers file {path} must map card ids (like quiz:1:arange-meaning) to answers")
    return {str(k): v for k, v in raw.items()}


def parse_given(item: Item, raw: object) -> Given:
    """A file's answer for `item`; InferlabError naming the card if it does not fit."""
    seconds = None
    if isinstance(raw, dict) and "seconds" in raw:
        seconds = raw["seconds"]
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise InferlabError(f"seconds of {item.card_id!r} must be a number")
        seconds = float(seconds)
    if item.question is not None:
        value = raw.get("answer") if isinstance(raw, dict) else raw
        return Given(answer=item.question.parse(value), seconds=seconds)
    if not isinstance(raw, dict) or "points" not in raw:
        raise InferlabError(f"answer to {item.card_id!r} must be a mapping {{text: ..., points: [...]}}")
    text = checked_text(raw.get("text"), item.card_id)
    n, points = len(item.points), raw["points"]
    if not isinstance(points, list) or any(_not_index(p, n) for p in points):
        raise InferlabError(
            f"points of {item.card_id!r} must be a list of key-point numbers from 0 to {n - 1}"
        )
    return Given(text=text, had=frozenset(points), seconds=seconds)


def _not_index(p: object, n: int) -> bool:
    return isinstance(p, bool) or not isinstance(p, int) or not 0 <= p < n


def ask_card(console: Console, item: Item, index: int, total: int, *, editor: bool = False) -> Given:
    """Ask one card with the prompt only; time the answer."""
    console.print(f"[dim]{escape(item.source)} · {escape(item.card_id)}[/]")
    start = time.monotonic()
    if item.question is not None:
        answer = terminal.ask(console, item.question, index, total)
        return Given(answer=answer, seconds=time.monotonic() - start)
    console.rule(f"Card {index}/{total}")
    console.print(Markdown(item.prompt))
    text = read_text(console, "Your answer, from memory:", editor=editor)
    return Given(text=text, seconds=time.monotonic() - start)


def settle(console: Console, state: ReviewState, item: Item, given: Given, now: datetime) -> Outcome:
    """Show the answer, get the ticks (asked when interactive), rate the card by FSRS."""
    if item.question is not None:
        result = item.question.grade(given.answer)
        mark = "[green]✓ right[/]" if result.correct else "[red]✗ wrong[/]"
        console.print(f"{mark}: {escape(result.given)}", highlight=False)
        if not result.correct:
            panel = Panel(
                Markdown(item.model_answer), title="right answer", title_align="left", border_style="yellow"
            )
            console.print(panel)
        had, shown = (frozenset({0}) if result.correct else frozenset()), result.given
    else:
        show_points(console, item.model_answer, item.points)
        had = given.had
        if had is None:
            had = ask_numbers(
                console, "Numbers of the key points you HAD (e.g. 0,2; empty for none)", len(item.points)
            )
        shown = given.text
    rating = rating_for(item.points, set(had), given.seconds)
    outcome = rate(
        state, item.card_id, rating, had=set(had), of=len(item.points), seconds=given.seconds,
        answer=shown, via="review", now=now,
    )  # fmt: skip
    show_outcome(console, outcome, now)
    return outcome


# ---------------------------------------------------------------- a whole review
def warn(console: Console, notices: list[str]) -> None:
    for notice in notices:
        console.print(f"[bold yellow]warning:[/] {escape(notice)}", highlight=False)
    notices.clear()


def run_review(
    console: Console,
    lab: Lab,
    *,
    answers: dict[str, object] | None = None,
    limit: int | None = None,
    editor: bool = False,
    now: datetime | None = None,
) -> list[Outcome]:
    """Review the due cards (all, or the first `limit`), each saved as soon as it is rated.

    With `answers` (from `load_review_answers`) nothing is asked: every answer is checked before
    any card is rated, and due cards with no answer are left due. Ctrl-C stops between cards.
    """
    now = now or datetime.now(UTC)
    state = load_state(lab)
    reset = bool(state.notices)
    warn(console, state.notices)
    added = add_missing(state, expected_card_ids(lab), now)
    save_state(lab, state, added)
    if reset and added:
        console.print(f"Made {len(added)} card(s) again from the lab's records; they are due now.")
    items, orphans = due_items(state, Resolver(lab), now)
    if orphans:
        console.print(
            f"[yellow]{len(orphans)} due card(s) ask about a question or record that no longer exists "
            f"({', '.join(orphans[:5])}); they are left as they are.[/]"
        )
    given: dict[str, Given] = {}
    if answers is not None:
        unknown = sorted(set(answers) - set(state.cards))
        if unknown:
            raise InferlabError(
                f"answers file names unknown card(s) {', '.join(unknown[:5])}; "
                "`inferlab next` lists due cards"
            )
        due_ids = {item.card_id for item in items}
        not_due = sorted(set(answers) - due_ids)
        if not_due:
            console.print(f"[dim]Not due, left alone: {', '.join(not_due)}[/]")
        items = [item for item in items if item.card_id in answers]
        given = {item.card_id: parse_given(item, answers[item.card_id]) for item in items}
    if limit is not None:
        items = items[:limit]
    if not items:
        upcoming = next_due(state)
        later = f"; the next card is due {when(upcoming.card.due, now)}" if upcoming else ""
        console.print(f"Nothing to review now{later}.")
        return []
    outcomes = []
    for i, item in enumerate(items, 1):
        try:
            if item.card_id in given:
                console.rule(f"Card {i}/{len(items)}  [dim]{escape(item.card_id)}[/]")
                console.print(Markdown(item.prompt))
                answer = given[item.card_id]
            else:
                answer = ask_card(console, item, i, len(items), editor=editor)
            outcome = settle(console, state, item, answer, now if answers is not None else datetime.now(UTC))
        except (KeyboardInterrupt, EOFError):
            console.print()
            raise InferlabError(
                f"review stopped at card {i} of {len(items)}; the {i - 1} card(s) rated before it are "
                "saved, this one was not rated"
            ) from None
        save_state(lab, state, {item.card_id})
        warn(console, state.notices)
        outcomes.append(outcome)
    counts = {name: sum(RATING_NAMES[o.rating] == name for o in outcomes) for name in RATING_NAMES.values()}
    summary = ", ".join(f"{name} {n}" for name, n in counts.items() if n)
    console.print(f"\n[bold]Reviewed {len(outcomes)} card(s)[/]: {summary}. Saved in {lab.reviews_dir}.")
    return outcomes
