"""`inferlab lesson list|show` and `inferlab quiz`: read the curriculum, be tested, be corrected."""

from __future__ import annotations

from pathlib import Path

import typer

from inferlab.cli.console import console

lesson_app = typer.Typer(
    help="Read the lessons: `inferlab lesson list`, then `inferlab lesson show 1`.",
    no_args_is_help=True,
)


@lesson_app.command("list")
def lesson_list() -> None:
    """List the lessons with their numbers.

    Example: `inferlab lesson list`
    """
    from inferlab.learn import curriculum, terminal
    from inferlab.learn.quiz import load_quiz

    lessons = curriculum.list_lessons()
    sizes = {}
    for lesson in lessons:
        if lesson.file("quiz.yaml").is_file():
            sizes[lesson.number] = len(load_quiz(lesson).questions)
    console.print(terminal.lesson_table(lessons, sizes))


@lesson_app.command("show")
def lesson_show(
    number: int = typer.Argument(..., help="The lesson's number, as `inferlab lesson list` shows."),
    markdown: bool = typer.Option(
        False, "--markdown", help="Print the rendered Markdown instead of formatting it."
    ),
) -> None:
    """Show a lesson, with the package's current source pulled into it.

    Example: `inferlab lesson show 1` (or `inferlab lesson show 1 --markdown > lesson1.md`)
    """
    from inferlab.learn import curriculum, render, terminal

    lesson = curriculum.get_lesson(number)
    if markdown:
        print(render.to_markdown(lesson))
        return
    terminal.show_lesson(console, lesson)
    console.print(f"[dim]Next: `inferlab quiz {number}`[/]")


def quiz(
    number: int = typer.Argument(..., help="The lesson's number."),
    answers: Path | None = typer.Option(
        None, "--answers", help="A YAML or JSON file of answers (question id -> answer): no prompts."
    ),
    lab: Path | None = typer.Option(
        None, "--lab", help="The lab that records your corrections (default: the default lab)."
    ),
) -> None:
    """Take a lesson's quiz; every miss is corrected, and the result goes into a learning record.

    Example: `inferlab quiz 1`, or scripted: `inferlab quiz 1 --answers answers.yaml`, where
    answers.yaml maps question ids to answers: a choice's letter (`shared-memory-scope: b`), a
    line number, a number (`1/12` is fine), or for recall `{text: "...", points: [0, 2]}`.
    """
    from inferlab.errors import InferlabError
    from inferlab.lab import Lab
    from inferlab.learn import curriculum, grading, terminal
    from inferlab.learn.quiz import load_quiz

    lesson = curriculum.get_lesson(number)
    the_quiz = load_quiz(lesson)
    the_lab = Lab.open(lab)  # before the questions: a bad --lab must not cost a finished quiz
    if answers is not None:
        given = grading.load_answers(answers, the_quiz)
    else:
        given = {}
        total = len(the_quiz.questions)
        for i, question in enumerate(the_quiz.questions, 1):
            try:
                given[question.id] = terminal.ask(console, question, i, total)
            except (KeyboardInterrupt, EOFError):
                console.print()
                raise InferlabError(
                    f"quiz stopped at question {i} of {total}; nothing was graded or recorded, "
                    f"run `inferlab quiz {number}` to start again"
                ) from None
    report = grading.grade(the_quiz, given)
    terminal.show_report(console, the_quiz, report)
    record = grading.record_quiz(the_lab, lesson, the_quiz, report)
    what = "corrections" if report.misses else "result"
    console.print(f"Quiz {what} written to record {record.id}: {record.path}")


def register(app: typer.Typer) -> None:
    """Add `lesson` and `quiz` to `app`."""
    app.add_typer(lesson_app, name="lesson")
    app.command("quiz")(quiz)
