"""`inferlab explain` in a terminal: each kernel as a numbered listing with its tags, the concepts
it uses (with the learner's own glossary wording where a term matches), what Triton automates
there and what stays yours, then the likely bugs."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from inferlab.learn.explain.analyze import KernelReport
from inferlab.learn.explain.compiled import CompiledFacts
from inferlab.learn.explain.concepts import CONCEPTS, Concept

CODE_THEME = "monokai"


def _where(report: KernelReport) -> str:
    try:
        shown = report.path.resolve().relative_to(Path.cwd())
    except ValueError:
        shown = report.path
    return f"{shown}:{report.first_line}-{report.first_line + len(report.lines) - 1}"


def listing(report: KernelReport) -> Table:
    syntax = Syntax("", "python", theme=CODE_THEME)
    findings = {f.line for f in report.findings}
    table = Table(box=None, padding=(0, 1), show_header=True, header_style="bold", expand=True)
    table.add_column("line", justify="right", style="cyan", no_wrap=True, width=5)
    table.add_column("code", no_wrap=True, overflow="ellipsis", ratio=3)
    table.add_column("execution model", ratio=2)
    for number, line in report.numbered():
        tags = report.tags.get(number, ())
        code = syntax.highlight(line) if line.strip() else Text("")
        code.rstrip()  # in place: highlight() ends the line with a newline
        label = Text("; ".join(t.label for t in tags), style="green")
        if number in findings:
            label.append(("; " if tags else "") + "likely bug, see below", style="bold red")
        table.add_row(str(number), code, label)
    return table


def show(console: Console, report: KernelReport, lab_root: Path | None = None) -> None:
    """Print `report`; concept notes quote the glossary of the lab at `lab_root` (default lab if None)."""
    kind = "autotuned kernel" if report.autotuned else "@triton.jit"
    console.rule(f"[bold]{escape(report.name)}[/]  [dim]{escape(_where(report))} ({kind})[/]")
    console.print(listing(report))
    console.print()
    concepts = report.concepts()
    if concepts:
        terms, glossary_problem = learner_glossary(lab_root)
        console.print("[bold]The concepts here[/]")
        for key in concepts:
            c = CONCEPTS[key]
            console.print(f"  [green]{escape(c.label)}[/]: {escape(c.meaning)}", highlight=False)
            own = glossary_wording(c, terms)
            if own:
                console.print(f"    [cyan]your glossary:[/] {escape(own)}", highlight=False)
        if glossary_problem:
            console.print(f"[yellow]warning:[/] {escape(glossary_problem)}", highlight=False)
        console.print()
    if report.automated():
        console.print(
            "[bold]What Triton automates here.[/] " + escape(" ".join(report.automated())), highlight=False
        )
    console.print("[bold]What stays yours.[/] " + escape(" ".join(report.yours())), highlight=False)
    console.print()
    if report.findings:
        console.print(f"[bold red]Likely bugs ({len(report.findings)})[/]")
        for f in report.findings:
            console.print(f"  [red]line {f.line}[/] ({f.kind}): {escape(f.message)}", highlight=False)
    else:
        console.print(
            "[dim]No likely bugs found (unmasked accesses of program-id offsets, int32 offset overflow).[/]"
        )
    console.print()


def show_compiled(console: Console, facts: list[CompiledFacts], notes: list[str]) -> None:
    console.rule("[bold]Compiled[/] [dim](what the compiler made of it on this GPU)[/]")
    for f in facts:
        table = Table(title=f"{f.kernel}  {f.variant}", title_justify="left", show_header=False, box=None)
        table.add_column(style="bold")
        table.add_column()
        table.add_row("num_warps", f"{f.num_warps} ({f.num_warps * 32} threads per program)")
        table.add_row("num_stages", str(f.num_stages))
        table.add_row("registers per thread", str(f.n_regs))
        table.add_row(
            "spills", f"{f.n_spills}" + (" (registers spilled to local memory: slow)" if f.n_spills else "")
        )
        table.add_row("shared memory", f"{f.shared} bytes")
        table.add_row("tl.program_id became", "\n".join(f.ptx_program_id) or "-")
        table.add_row("the loads became", "\n".join(f.ptx_loads) or "-")
        table.add_row("the stores became", "\n".join(f.ptx_stores) or "-")
        console.print(table)
        console.print()
    for note in notes:
        console.print(f"[dim]{escape(note)}[/]", highlight=False)


def glossary_wording(concept: Concept, terms) -> str | None:
    """The learner's definition of `concept` (`"term: definition"`), when their glossary has it."""
    from inferlab.lab.glossary import find_term

    label, _, aside = concept.label.partition("(")
    found = find_term(terms, (concept.key, concept.label, label, aside.rstrip(")")))
    return f"{found.term}: {found.definition}" if found else None


def learner_glossary(lab_root: Path | None = None) -> tuple[list, str | None]:
    """(the lab's glossary terms, a warning if its glossary cannot be read); the default lab when
    `lab_root` is None; never makes a lab."""
    from inferlab.lab.glossary import GLOSSARY_PATH
    from inferlab.lab.layout import default_lab_path, is_lab

    root = lab_root or default_lab_path()
    page = root / GLOSSARY_PATH
    if not is_lab(root) or not page.is_file():
        return [], None
    stat = page.stat()
    return _glossary_terms(page, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=4)  # one read per explain run, however many kernels the file has
def _glossary_terms(page: Path, mtime_ns: int, size: int) -> tuple[list, str | None]:
    from inferlab.lab.glossary import GlossaryError, parse_glossary_file

    del mtime_ns, size  # only part of the cache key: an edited page is read again
    try:
        return parse_glossary_file(page).terms, None
    except GlossaryError as e:
        return [], f"your glossary was not used: {e}"
