"""The learning loop: `lesson list|show`, `quiz`, `recall`, `review`, `next` and `explain`."""

from __future__ import annotations

from pathlib import Path

import typer

from inferlab.cli.console import console
from inferlab.cli.options import LabOption

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
    from inferlab.learn.review import record_quiz_outcomes
    from inferlab.learn.review_session import warn
    from inferlab.learn.review_store import load_state

    lesson = curriculum.get_lesson(number)
    the_quiz = load_quiz(lesson)
    the_lab = Lab.open(lab)  # before the questions: a bad --lab must not cost a finished quiz
    state = load_state(the_lab)  # likewise a review state from a newer inferlab
    warn(console, state.notices)
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
    outcomes = record_quiz_outcomes(the_lab, state, lesson, the_quiz, given)
    warn(console, state.notices)
    console.print(
        f"[dim]{len(outcomes)} review card(s) rated by this quiz; `inferlab next` says what is due.[/]"
    )


def recall(
    number: int = typer.Argument(..., help="The lesson's number."),
    answers: Path | None = typer.Option(
        None, "--answers", help="A YAML or JSON file: prompt id -> {text: ..., points: [...]}; no prompts."
    ),
    editor: bool = typer.Option(
        False, "--editor", help="Write each answer in $EDITOR instead of the terminal."
    ),
    prompt: list[str] = typer.Option(
        None, "--prompt", help="Only this prompt id (repeatable); default: all."
    ),
    experiment: list[str] = typer.Option(
        None, "--experiment", help="Link the record to this experiment (repeatable), e.g. 0003."
    ),
    lab: LabOption = None,
) -> None:
    """Cold recall: answer a lesson's recall prompts from memory (the lesson is not shown), then
    see the model answer, mark the key points you missed, and keep it all in a learning record.

    Examples: `inferlab recall 1` · `inferlab recall 1 --editor --prompt cuda-hierarchy` · scripted:
    `inferlab recall 1 --answers recall.yaml`, where recall.yaml maps prompt ids to
    `{text: "what I remembered", points: [0, 2]}` (the numbers of the key points you had).
    """
    from inferlab.errors import InferlabError
    from inferlab.lab import Lab
    from inferlab.learn import curriculum
    from inferlab.learn import recall as recall_flow
    from inferlab.learn.review_session import ask_recall, show_outcome, warn
    from inferlab.learn.review_store import load_state

    lesson = curriculum.get_lesson(number)
    prompts = recall_flow.select(lesson, prompt)
    the_lab = Lab.open(lab)
    state = load_state(the_lab)
    warn(console, state.notices)
    if answers is not None:
        cold = recall_flow.load_answers(answers, lesson)
    else:
        console.print(f"[bold]Recall, lesson {number}: {len(prompts)} prompt(s).[/] From memory: no notes.")
        try:
            cold = ask_recall(console, prompts, editor=editor)
        except (KeyboardInterrupt, EOFError):
            console.print()
            raise InferlabError(
                f"recall stopped before the end; nothing was recorded, run `inferlab recall {number}` "
                "to start again"
            ) from None
    record = recall_flow.record_recall(the_lab, lesson, cold, experiment or ())
    missing = sum(len(a.missing) for a in cold)
    console.print(
        f"Recall written to record {record.id} ({record.status}, {missing} key point(s) missing): "
        f"{record.path}"
    )
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    for outcome in recall_flow.rate_cards(the_lab, state, lesson, cold, record):
        console.print(f"[dim]{outcome.card_id}[/] ", end="")
        show_outcome(console, outcome, now)
    warn(console, state.notices)


def review(
    answers: Path | None = typer.Option(
        None, "--answers", help="A YAML or JSON file: card id -> answer (as in the examples); no prompts."
    ),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Review at most this many due cards."),
    editor: bool = typer.Option(False, "--editor", help="Write typed answers in $EDITOR."),
    lab: LabOption = None,
) -> None:
    """Spaced review (FSRS) of the cards that are due: answer from memory first, then see the
    model answer and tick the key points you had; the rating follows from the ticks (a core point
    missed: Again; only a minor one: Hard; all: Good; all in under 20 s: Easy).

    Examples: `inferlab review` · `inferlab review --limit 5` · scripted:
    `inferlab review --answers due.yaml`, where due.yaml maps card ids (as `inferlab next` lists
    them) to answers: `quiz:1:arange-meaning: b`, or `recall:1:program-instance: {text: "...",
    points: [0, 2], seconds: 30}`.
    """
    from inferlab.lab import Lab
    from inferlab.learn.review_session import load_review_answers, run_review

    the_lab = Lab.open(lab)
    given = load_review_answers(answers) if answers is not None else None
    run_review(console, the_lab, answers=given, limit=limit, editor=editor)


def next_command(lab: LabOption = None) -> None:
    """What is due: review cards, the next lesson, records waiting for a correction, and
    experiments waiting for a GPU.

    Example: `inferlab next`
    """
    from inferlab.lab import Lab
    from inferlab.learn.next_step import gpu_here, one_line, what_is_due

    due = what_is_due(Lab.open(lab))
    _show_due(due)
    console.print(f"[bold]Next:[/] {one_line(due, gpu=gpu_here())}")


def _show_due(due, shown: int = 5) -> None:
    """`inferlab next`: a `next_step.Due`, section by section."""
    from datetime import UTC, datetime

    from rich.markup import escape

    from inferlab.learn.review_session import when

    now = datetime.now(UTC)
    if due.review_problem:
        console.print(f"[bold yellow]warning:[/] {escape(due.review_problem)}", highlight=False)
    elif due.reviews:
        console.print(f"[bold]Reviews due:[/] {len(due.reviews)} (`inferlab review`)")
        for item in due.reviews[:shown]:
            first_line = " ".join(item.prompt.split())[:70]
            console.print(f"  [cyan]{escape(item.card_id)}[/]  {escape(first_line)}", highlight=False)
        if len(due.reviews) > shown:
            console.print(f"  [dim]... and {len(due.reviews) - shown} more[/]")
    else:
        later = f", the next {when(due.next_review, now)}" if due.next_review else ""
        console.print(f"[bold]Reviews due:[/] none{later}")
    if due.lesson:
        n = due.lesson.number
        console.print(f"[bold]Next lesson:[/] {n}, {escape(due.lesson.title)} (`inferlab lesson show {n}`)")
    for lesson in due.blocked[:shown]:
        console.print(f"[dim]Lesson {lesson.number} waits for lessons {list(lesson.prerequisites)}.[/]")
    if due.waiting_records:
        console.print(f"[bold]Records waiting:[/] {len(due.waiting_records)}")
        for r in due.waiting_records[:shown]:
            console.print(f"  record {r.id} ({r.status}) {escape(r.title)} (`inferlab record show {r.id}`)")
    if due.experiments:
        console.print(f"[bold]Experiments waiting for a GPU:[/] {len(due.experiments)}")
        for e in due.experiments[:shown]:
            console.print(
                f"  {escape(e.folder)} ({e.status}) {escape(e.title)}, wants {escape(e.device_wanted)}"
            )
    for problem in due.problems:
        console.print(f"[yellow]unreadable:[/] {escape(problem)}", highlight=False)


def explain(
    target: str = typer.Argument(
        ...,
        metavar="FILE[:KERNEL]",
        help="A Python file with @triton.jit kernels, optionally :KERNEL for one; or a kernel's name.",
    ),
    compiled: bool = typer.Option(
        False,
        "--compiled",
        help="On a GPU, also the compiled facts (warps, registers, spills, shared memory, PTX).",
    ),
    lab: LabOption = None,
) -> None:
    """Explain any @triton.jit kernel line by line: each line tagged with the part of the execution
    model it expresses (program instance, tile offsets, mask, load/store, reduction, tl.dot,
    accumulator, loop, constexpr, atomics, block pointers), what Triton automates there and what
    stays yours, and likely bugs (unmasked loads and stores, int32 offsets that can overflow).
    The file is read, never imported: no GPU or torch needed.

    Examples: `inferlab explain src/inferlab/kernels/elementwise.py:_add_kernel` ·
    `inferlab explain my_matmul.py` · `inferlab explain w4a16_matmul` (a registered kernel's
    module) · on a GPU: `inferlab explain src/inferlab/kernels/softmax.py --compiled`
    """
    from inferlab.learn.explain import explain_file, parse_target
    from inferlab.learn.explain.analyze import registered_kernel_file
    from inferlab.learn.explain.render import show

    path, kernel = parse_target(target)
    if not path.exists() and kernel is None:  # a registered kernel's name: its SPEC module's file
        path = registered_kernel_file(target) or path
    reports = explain_file(path, kernel)
    lab_root = None
    if lab is not None:  # an explicit --lab must be a lab; the default lab is only read if it exists
        from inferlab.lab import Lab

        lab_root = Lab.open(lab).root
    for report in reports:
        show(console, report, lab_root)
    if compiled:
        from inferlab.learn.explain.compiled import CompiledUnavailable, compiled_facts
        from inferlab.learn.explain.render import show_compiled

        try:
            facts, notes = compiled_facts(path, [r.name for r in reports])
        except CompiledUnavailable as e:
            console.print(f"[yellow]{e}.[/]", highlight=False)
            return
        show_compiled(console, facts, notes)


def register(app: typer.Typer) -> None:
    """Add `lesson`, `quiz`, `recall`, `review`, `next` and `explain` to `app`."""
    app.add_typer(lesson_app, name="lesson")
    app.command("quiz")(quiz)
    app.command("recall")(recall)
    app.command("review")(review)
    app.command("next")(next_command)
    app.command("explain")(explain)
