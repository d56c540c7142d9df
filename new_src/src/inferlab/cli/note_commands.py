"""Reading: `note new|list|show` (reading notes tied to the lab's work), and the glossary and
sources of a /teach-style lab (`lab glossary`, `lab resources`, registered by `lab_commands`).

Each command imports `inferlab.lab` inside the function, so `inferlab --help` stays fast. A note
must link a lesson, record, experiment, benchmark, kernel or puzzle: no standalone book reports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from inferlab.cli.console import console, err_console
from inferlab.cli.options import LabOption

note_app = typer.Typer(
    help=(
        "Reading notes: what a book or course said, tied to a lesson, record, experiment, "
        "benchmark, kernel or puzzle.\n\n"
        "Examples: `inferlab note new --source 'PMPP ch. 5' --link lesson:2 --body 'Tiling ...'` · "
        "`inferlab note list` · `inferlab note show 1`"
    ),
    no_args_is_help=True,
)


@note_app.command("new")
def note_new(
    source: Annotated[str, typer.Option(help="The book, course or paper the note is about.")],
    link: Annotated[
        list[str] | None,
        typer.Option(
            metavar="KIND:ID",
            help="What it is about (repeatable, at least one): lesson:3, record:12, experiment:2, "
            "benchmark:<results file>, kernel:softmax or puzzle:nf4.",
        ),
    ] = None,
    title: Annotated[str | None, typer.Option(help="The note's title (default: the source).")] = None,
    body: Annotated[str | None, typer.Option(help="The Markdown body.")] = None,
    body_file: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="Read the Markdown body from FILE ('-' for stdin)."),
    ] = None,
    lab: LabOption = None,
) -> None:
    """Write a reading note (notes/NNNN-slug.md) linked to the lab's work.

    Refused without a link to something that exists: no standalone book reports.

    Examples: `inferlab note new --source 'PMPP ch. 5' --link lesson:2 --body-file tiling.md` ·
    `inferlab note new --source 'Triton docs' --link kernel:softmax --link record:4 --title 'Online softmax'`
    """
    from inferlab.cli.lab_commands import _body_text
    from inferlab.lab import Lab
    from inferlab.lab.notes import new_note

    text = _body_text(body, body_file)
    opened = Lab.open(lab)
    note, warnings = new_note(opened, source, link or [], link_targets(opened), title=title, body=text)
    console.print(f"Wrote note {note.id}: {note.path}", soft_wrap=True, markup=False, highlight=False)
    _warn([f"link names nothing: {why}" for why in warnings])


@note_app.command("list")
def note_list(lab: LabOption = None) -> None:
    """List the reading notes, with what each links to; warn about unreadable files.

    Example: `inferlab note list`
    """
    from rich.table import Table
    from rich.text import Text

    from inferlab.lab import Lab
    from inferlab.lab.notes import list_notes, standalone_reasons

    opened = Lab.open(lab)
    notes, problems = list_notes(opened)
    if notes:
        targets = link_targets(opened)
        table = Table("id", "title", "source", "links", "created", header_style="bold")
        for n in notes:
            links = Text(", ".join(n.links) or "-")
            if standalone_reasons(n, targets) is not None:
                links.append(" (standalone: links nothing)", style="yellow")
            table.add_row(str(n.id), Text(n.title), Text(n.source), links, n.created[:10])
        console.print(table)
    elif not problems:
        console.print(
            "No notes yet. Write one with: inferlab note new --source 'BOOK' --link lesson:1", markup=False
        )
    _warn(problems)


@note_app.command("show")
def note_show(
    note_id: Annotated[int, typer.Argument(metavar="ID", help="The note's id.")],
    lab: LabOption = None,
) -> None:
    """Show one note: its source and links, then its body rendered as Markdown.

    Example: `inferlab note show 1`
    """
    from rich.markdown import Markdown
    from rich.text import Text

    from inferlab.lab import Lab
    from inferlab.lab.notes import load_note, standalone_reasons

    opened = Lab.open(lab)
    note = load_note(opened, note_id)
    console.print(Text(f"#{note.id} {note.title}", style="bold"))
    for key, value in (
        ("source", note.source),
        ("links", ", ".join(note.links) or "-"),
        ("file", str(note.path)),
    ):
        console.print(Text.assemble((f"{key:8}", "dim"), value))
    reasons = standalone_reasons(note, link_targets(opened))
    if reasons is not None:
        _warn([f"note {note.id} is standalone: {'; '.join(reasons)}"])
    console.print()
    console.print(Markdown(note.body) if note.body.strip() else Text("(no body)", style="dim"))


def link_targets(lab):
    """What a note may link to in `lab` now: its records, experiments and results, the
    curriculum's lessons, the package's kernels and puzzles, the checkout's committed results."""
    import re

    from inferlab.lab.note_links import checkout_results_dir, find_link_targets
    from inferlab.learn.curriculum import lessons_root

    lessons = [
        int(f.name[:4]) for f in lessons_root().iterdir() if f.is_dir() and re.match(r"^\d{4}-", f.name)
    ]
    committed = checkout_results_dir()
    return find_link_targets(lab, lessons, [committed] if committed else [])


def lab_glossary(
    term: Annotated[str | None, typer.Argument(help="Show only this term.")] = None,
    lab: LabOption = None,
) -> None:
    """Your glossary (reference/glossary.html) as terms and definitions; `inferlab explain` quotes it.

    Examples: `inferlab lab glossary` · `inferlab lab glossary mask`
    """
    from rich.table import Table

    from inferlab.errors import InferlabError
    from inferlab.lab import Lab
    from inferlab.lab.glossary import find_term, load_glossary

    glossary = load_glossary(Lab.open(lab))
    if glossary is None:
        raise InferlabError("this lab has no reference/glossary.html")
    terms = glossary.terms
    if term is not None:
        found = find_term(terms, [term])
        if found is None:
            raise InferlabError(f"no term {term!r} in {glossary.path}")
        terms = [found]
    table = Table("term", "definition", header_style="bold")
    for t in terms:
        table.add_row(t.term, t.definition)
    console.print(table)
    _warn(glossary.problems)


def lab_resources(lab: LabOption = None) -> None:
    """Your sources (RESOURCES.md): title, trust rating, and the quote that grounds a lesson.

    Example: `inferlab lab resources`
    """
    from rich.table import Table

    from inferlab.errors import InferlabError
    from inferlab.lab import Lab
    from inferlab.lab.resources import load_resources

    resources = load_resources(Lab.open(lab))
    if resources is None:
        raise InferlabError("this lab has no RESOURCES.md")
    table = Table("source", "trust", "quote", header_style="bold")
    for r in resources:
        table.add_row(f"{r.title}\n{r.url}".strip(), r.trust or "-", r.quote or "-")
    console.print(table)


def _warn(problems: list[str]) -> None:
    from rich.markup import escape

    for message in problems:
        err_console.print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True, highlight=False)
