"""Lab commands: `init [--adopt]`, `record new|list|show`, `lab reindex|path|mission|glossary|resources`.

Each command parses its options, calls `inferlab.lab` (imported inside the function, so
`inferlab --help` stays fast) and renders with Rich. User mistakes raise `InferlabError`, which
the root command prints as one `error:` line.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from inferlab.cli.console import console, err_console
from inferlab.cli.options import LabOption

# Mirrors inferlab.lab.STATUSES (a test keeps them equal); spelled out here so that building
# the help text does not import the lab package.
STATUS_HELP = "waiting-for-recall, waiting-for-correction, corrected or reviewed"


record_app = typer.Typer(
    help="Learning records: cold recall, mistakes and corrections, as Markdown notes.",
    no_args_is_help=True,
)
lab_app = typer.Typer(
    help="The lab folder itself: where it is, its derived index, MISSION.md, glossary and sources.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""
    app.command("init")(init)
    app.add_typer(record_app, name="record")
    app.add_typer(lab_app, name="lab")
    from inferlab.cli import note_commands  # typer only: cheap

    lab_app.command("glossary")(note_commands.lab_glossary)
    lab_app.command("resources")(note_commands.lab_resources)
    app.add_typer(note_commands.note_app, name="note")


def init(
    directory: Annotated[
        Path | None,
        typer.Argument(metavar="[DIR]", help="Where to make the lab (default: the per-user lab)."),
    ] = None,
    adopt: Annotated[
        bool, typer.Option("--adopt", help="Take an existing /teach-style lab in DIR, in place.")
    ] = False,
    yes: Annotated[
        bool,
        typer.Option("--yes", "-y", help="With --adopt: add every front matter proposed, no questions."),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="With --adopt: show what would change, change nothing.")
    ] = False,
) -> None:
    """Make a lab: `lab.toml`, `records/`, `experiments/`, `results/`, `reviews/`.

    Refuses a folder that already is a lab; in any other folder, existing files are left alone.

    With --adopt, DIR is a lab kept in the /teach layout (MISSION.md, RESOURCES.md, lessons/,
    reference/, records/ and experiments/*/README.md without front matter): it reports what it
    found, adds front matter above each file's unchanged text where you agree (the old file is
    backed up to .backup/), maps Status lines and Result/Conclusion sections to a status, writes
    lab.toml where there is none, and reports dangling links. Running it again changes nothing.

    Examples: `inferlab init ~/my-lab` · `inferlab init --adopt ~/teach-lab --dry-run` ·
    `inferlab init --adopt ~/teach-lab --yes`
    """
    from inferlab.errors import InferlabError
    from inferlab.lab import init_lab

    if adopt:
        _adopt(directory, yes=yes, dry_run=dry_run)
        return
    if yes or dry_run:
        raise InferlabError("--yes and --dry-run only go with --adopt")
    lab = init_lab(directory)
    console.print(f"Made a lab at [bold]{_escape(str(lab.root))}[/]", soft_wrap=True)
    hint = "" if directory is None else f" --lab {lab.root}"
    console.print(f"Next: inferlab record new 'What I recalled'{hint}", soft_wrap=True, markup=False)


def _adopt(directory: Path | None, *, yes: bool, dry_run: bool) -> None:
    from inferlab.lab import default_lab_path
    from inferlab.lab.adopt import (
        ExperimentProposal,
        add_front_matter,
        make_lab_marker,
        plan_adoption,
        write_bookkeeping,
    )

    plan = plan_adoption(directory if directory is not None else default_lab_path())
    found = ", ".join(f"{n} {noun}{'' if n == 1 else 's'}" for noun, n in plan.counts.items())
    _say(f"Found in {plan.root}: {found}.")
    write = "Would write" if dry_run else "Wrote"
    if not plan.has_lab_toml:
        if not dry_run:
            make_lab_marker(plan)
        _say(f"{write} lab.toml (and records/, experiments/, results/, reviews/ where missing).")
    for proposal in [*plan.proposals, *plan.experiment_proposals]:
        name = proposal.path.relative_to(plan.root).as_posix()
        add = "Would add" if dry_run else "Adding"
        _say(f"\n{add} this front matter above the first line of {name} (its text stays as it is):")
        console.print(proposal.front_matter.rstrip("\n"), style="cyan", markup=False, highlight=False)
        if isinstance(proposal, ExperimentProposal):
            _say(f"(status {proposal.fields['status']}: {proposal.why})")
        elif not proposal.status.known:
            written = proposal.status.written
            shown = "no Status line" if written is None else f"Status {written!r} is not one inferlab knows"
            _warn([f"{name}: {shown}; set to {proposal.status.status}"])
        if dry_run:
            continue
        if yes or typer.confirm(f"Add it to {name}?", default=False):
            backup = add_front_matter(plan.lab, proposal)
            _say(f"Added; the file as it was is kept at {backup.relative_to(plan.root).as_posix()}")
        else:
            _say(f"Left {name} as it is.")
    state = [f".inferlab/{n}" for n in plan.bookkeeping] if dry_run else write_bookkeeping(plan.lab, plan)
    for path in state:
        _say(f"{write} {path}.")
    _warn([f"dangling link: {line}" for line in plan.dangling])
    _warn(plan.problems)
    if not plan.has_changes:
        _say(f"Nothing to change: {plan.root} is already adopted.")
    elif dry_run:
        _say("Dry run: nothing was changed.")


@record_app.command("new")
def record_new(
    title: Annotated[str, typer.Argument(help="The record's title.")],
    lesson: Annotated[int | None, typer.Option(help="The lesson it belongs to.")] = None,
    status: Annotated[str, typer.Option(help=f"One of {STATUS_HELP}.")] = "waiting-for-correction",
    body: Annotated[str | None, typer.Option(help="The Markdown body.")] = None,
    body_file: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="Read the Markdown body from FILE ('-' for stdin)."),
    ] = None,
    link: Annotated[
        list[str] | None, typer.Option(metavar="LINK", help="A related link or path (repeatable).")
    ] = None,
    lab: LabOption = None,
) -> None:
    """Write a new learning record with the next free id.

    Example: `inferlab record new 'Why masks matter' --lesson 1 --body-file notes.md`
    """
    from inferlab.lab import Lab, new_record

    text = _body_text(body, body_file)
    opened = Lab.open(lab)
    record = new_record(opened, title, lesson=lesson, status=status, body=text, links=link or ())
    console.print(f"Wrote record {record.id}: {_escape(str(record.path))}", soft_wrap=True)


@record_app.command("list")
def record_list(lab: LabOption = None) -> None:
    """List the records (from the index, rebuilt if any file changed); warn about bad files.

    Example: `inferlab record list`
    """
    from rich.table import Table
    from rich.text import Text

    from inferlab.lab import Lab, list_records

    records, problems = list_records(Lab.open(lab))
    if records:
        table = Table("id", "title", "lesson", "status", "created", header_style="bold")
        for r in records:
            lesson = "-" if r.lesson is None else str(r.lesson)
            table.add_row(str(r.id), Text(r.title), lesson, r.status, _short_time(r.created))
        console.print(table)
    elif not problems:
        console.print("No records yet. Write one with: inferlab record new 'TITLE'", markup=False)
    _warn(problems)


@record_app.command("show")
def record_show(
    record_id: Annotated[int, typer.Argument(metavar="ID", help="The record's id.")],
    lab: LabOption = None,
) -> None:
    """Show one record: its fields, then its body rendered as Markdown.

    Example: `inferlab record show 3`
    """
    from rich.markdown import Markdown
    from rich.table import Table
    from rich.text import Text

    from inferlab.lab import Lab, load_record

    record = load_record(Lab.open(lab), record_id)
    console.print(Text(f"#{record.id} {record.title}", style="bold"))
    fields = Table.grid(padding=(0, 2))
    fields.add_column(style="dim")
    fields.add_column()
    rows = {
        "lesson": "-" if record.lesson is None else str(record.lesson),
        "status": record.status,
        "created": record.created,
        "links": ", ".join(record.links) or "-",
        "file": str(record.path),
        **{key: str(value) for key, value in record.extra.items()},
    }
    for key, value in rows.items():
        fields.add_row(key, Text(value))
    console.print(fields)
    console.print()
    console.print(Markdown(record.body) if record.body.strip() else Text("(no body)", style="dim"))


@lab_app.command("reindex")
def lab_reindex(lab: LabOption = None) -> None:
    """Rebuild `index.sqlite` from the record files (it is derived; the files are the truth).

    Example: `inferlab lab reindex`
    """
    from inferlab.lab import Lab, list_records, reindex

    opened = Lab.open(lab)
    count = reindex(opened)
    noun = "record" if count == 1 else "records"
    console.print(f"Indexed {count} {noun} into {_escape(str(opened.index_path))}", soft_wrap=True)
    _warn(list_records(opened)[1])


@lab_app.command("path")
def lab_path(lab: LabOption = None) -> None:
    """Print the lab's folder (plain text, for scripts).

    Example: `cd "$(inferlab lab path)"`
    """
    from inferlab.lab import Lab

    print(Lab.open(lab).root)  # plain print: no Rich wrapping or styling in a path for scripts


@lab_app.command("mission")
def lab_mission(lab: LabOption = None) -> None:
    """Say whether MISSION.md changed since inferlab last saw it, and what to write if it did.

    A change is answered by a learning record linking `mission:<hash>`; then the prompt stops.

    Example: `inferlab lab mission`
    """
    from inferlab.lab import Lab, list_records
    from inferlab.lab.mission import check_mission

    opened = Lab.open(lab)
    check = check_mission(opened, list_records(opened)[0])
    if check.hash is None:
        _say(f"No MISSION.md in {opened.root}.")
    elif check.changed:
        _say(check.prompt() or "")
    elif check.acknowledged_by is not None:
        _say(f"MISSION.md changed; record {check.acknowledged_by} says why (mission:{check.short_hash}).")
    else:
        _say(f"MISSION.md unchanged since {(check.seen_at or '')[:10]} (mission:{check.short_hash}).")


def _body_text(body: str | None, body_file: Path | None) -> str:
    from inferlab.errors import InferlabError

    if body is not None and body_file is not None:
        raise InferlabError("give the body with --body or --body-file, not both")
    if body_file is None:
        return body or ""
    if str(body_file) == "-":
        return sys.stdin.read()
    try:
        return body_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = getattr(e, "strerror", None) or str(e)
        raise InferlabError(f"cannot read the body file {body_file}: {reason}") from None


def _say(text: str) -> None:
    console.print(text, soft_wrap=True, markup=False, highlight=False)


def _warn(problems: list[str]) -> None:
    for message in problems:
        err_console.print(f"[yellow]warning:[/] {_escape(message)}", soft_wrap=True, highlight=False)


def _short_time(created: str) -> str:
    """`2025-01-01T12:00:00+00:00` -> `2025-01-01 12:00`, to keep the table narrow."""
    from datetime import datetime

    try:
        return datetime.fromisoformat(created).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return created


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
