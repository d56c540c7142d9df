"""Lessons and quizzes in a terminal, with Rich: render segments, ask questions, show results."""

from __future__ import annotations

from rich.console import Console
from rich.markdown import Markdown
from rich.markup import escape
from rich.panel import Panel
from rich.prompt import Prompt
from rich.syntax import Syntax
from rich.table import Table

from inferlab.errors import InferlabError
from inferlab.learn import render
from inferlab.learn.curriculum import Lesson
from inferlab.learn.grading import UNANSWERED, Report
from inferlab.learn.quiz import Choice, Line, Numeric, Question, Quiz, Recall, RecallAnswer
from inferlab.learn.source import Snippet

CODE_THEME = "monokai"


def code(snippet: Snippet) -> Panel:
    """The snippet, highlighted, numbered as in its file, titled with where it lives."""
    syntax = Syntax(
        snippet.text.rstrip("\n"),
        "python",
        theme=CODE_THEME,
        line_numbers=True,
        start_line=snippet.first_line,
    )
    return Panel(syntax, title=render.where(snippet), title_align="left", expand=False)


def show_lesson(console: Console, lesson: Lesson) -> None:
    console.print(Markdown(f"# Lesson {lesson.number}: {lesson.title}"))
    for seg in render.segments(lesson):
        if isinstance(seg, render.Prose):
            console.print(Markdown(seg.markdown, code_theme=CODE_THEME))
        elif isinstance(seg, render.Code):
            console.print(code(seg.snippet))
        elif isinstance(seg, render.Annotations):
            table = Table(show_header=True, header_style="bold", box=None, padding=(0, 1))
            table.add_column("line", justify="right", style="cyan", no_wrap=True)
            table.add_column("what it does")
            for a in seg.lines:
                table.add_row(str(a.line_number), Markdown(f"`{a.line.strip()}`  \n{a.note}"))
            console.print(table)
            console.print()
        else:
            console.print(
                f"[bold]Diagram:[/] {escape(seg.diagram.caption)}\n"
                f"[dim](an SVG; open {escape(seg.path)})[/]\n"
            )


def _inline_code(text: str) -> str:
    """Rich markup for a line of text whose `backticked` parts are code."""
    parts = escape(text).split("`")
    return "".join(f"[cyan]{p}[/]" if i % 2 else p for i, p in enumerate(parts))


def _ask_until_valid(console: Console, question: Question, prompt: str) -> object:
    while True:
        raw = Prompt.ask(prompt, console=console)
        try:
            return question.parse(raw)
        except InferlabError as e:
            console.print(f"[yellow]{e}[/]")


def ask(console: Console, question: Question, index: int, total: int) -> object:
    """Ask one question; returns the parsed answer. Ctrl-C and end-of-input propagate."""
    console.rule(f"Question {index}/{total}  [dim]{question.id}[/]")
    console.print(Markdown(question.prompt))
    if isinstance(question, Choice):
        for i, option in enumerate(question.options):
            console.print(f"  [bold]{question.letter(i)})[/] {_inline_code(option)}")
        return _ask_until_valid(console, question, "Your answer (a letter)")
    if isinstance(question, Line):
        console.print(code(question.snippet()))
        return _ask_until_valid(console, question, "Line number")
    if isinstance(question, Numeric):
        return _ask_until_valid(console, question, f"Your answer, in {question.units}")
    return _ask_recall(console, question)


def _ask_recall(console: Console, question: Recall) -> RecallAnswer:
    text = Prompt.ask("Your answer (one paragraph, from memory)", console=console)
    console.print("\n[bold]Key points[/] — which did your answer contain?")
    for i, point in enumerate(question.key_points):
        console.print(f"  [bold]{i}[/] {escape(point)}")
    while True:
        raw = Prompt.ask(
            "Numbers of the points you had (e.g. 0,2; empty for none)",
            default="",
            console=console,
            show_default=False,
        )
        try:
            points = [p for p in raw.replace(",", " ").split()]
            return question.parse({"text": text, "points": [int(p) for p in points]})
        except (InferlabError, ValueError):
            console.print(f"[yellow]give numbers from 0 to {len(question.key_points) - 1}[/]")


def show_report(console: Console, quiz: Quiz, report: Report) -> None:
    """Each question's result, the correction of every miss, then the score."""
    for r in report.results:
        mark = "[green]✓[/]" if r.correct else ("[yellow]~[/]" if r.score > 0 else "[red]✗[/]")
        given = "unanswered, counts as wrong" if r.given == UNANSWERED else r.given
        console.print(f"{mark} [bold]{r.question_id}[/]: {escape(given)}", highlight=False)
        if not r.correct:
            console.print(f"    right: {escape(r.expected)}", highlight=False)
            console.print(
                Panel(Markdown(r.correction), title="correction", title_align="left", border_style="yellow")
            )
    console.print(f"\n[bold]Score: {report.summary()}[/]")


def lesson_table(lessons: list[Lesson], quiz_sizes: dict[int, int]) -> Table:
    table = Table(title="Lessons")
    table.add_column("#", justify="right")
    table.add_column("title")
    table.add_column("quiz", justify="right")
    for lesson in lessons:
        size = quiz_sizes.get(lesson.number)
        table.add_row(str(lesson.number), lesson.title, f"{size} questions" if size else "-")
    return table
