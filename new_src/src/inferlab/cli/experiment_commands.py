"""Evidence commands: `experiment new|list|show|run`, `notebook`, `import` (and `budget`).

An experiment is a prediction written before a measurement: `experiment new` scaffolds one,
`experiment run` measures it on this machine's GPU and writes the Result beside the prediction;
with no GPU, `notebook` makes a Kaggle/Colab notebook that runs it on a free T4 and `import`
brings its results bundle home. `budget` counts the GPU hours and what they cost. Libraries are
imported inside each command, so `inferlab --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from inferlab.cli import budget_commands
from inferlab.cli.console import console, err_console, fail
from inferlab.cli.options import LabOption

ExperimentArg = Annotated[
    str, typer.Argument(metavar="EXPERIMENT", help="A number in the lab, or an experiment folder's path.")
]
experiment_app = typer.Typer(
    help="Experiments: a question, a prediction with numbers, a measurement, a conclusion.\n\n"
    "Examples: `inferlab experiment new 'Fused SwiGLU: one pass instead of three' --lesson 3` · "
    "`inferlab experiment run 2` · `inferlab experiment run experiments/0002-swiglu-one-pass-versus-three`",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""
    app.add_typer(experiment_app, name="experiment")
    app.command("notebook")(notebook)
    app.command("import")(import_bundle_command)
    budget_commands.register(app)


@experiment_app.command("new")
def experiment_new(
    title: Annotated[str, typer.Argument(help="What the experiment asks, as a title.")],
    lesson: Annotated[int | None, typer.Option(help="The lesson it belongs to.")] = None,
    device_wanted: Annotated[str, typer.Option(help="h100, h200, t4 or any.")] = "any",
    lab: LabOption = None,
) -> None:
    """Scaffold `experiments/NNNN-slug/`: README.md (Question, Prediction, Method, Result,
    Conclusion, and a `predictions:` list) and run.py (what to time, with the benchmark harness).

    Example: `inferlab experiment new 'Vector add: BLOCK_SIZE sweep' --lesson 1 --device-wanted t4`
    """
    from inferlab.lab import Lab
    from inferlab.lab.experiments import new_experiment

    exp = new_experiment(Lab.open(lab), title, lesson=lesson, device_wanted=device_wanted)
    console.print(f"Made experiment {exp.id}: {_escape(str(exp.folder))}", soft_wrap=True)
    console.print(
        "Next: write the Question and the Prediction (with numbers), then edit run.py.", markup=False
    )


@experiment_app.command("list")
def experiment_list(lab: LabOption = None) -> None:
    """List the lab's experiments with their status and number of predictions.

    Example: `inferlab experiment list`
    """
    from rich.table import Table
    from rich.text import Text

    from inferlab.lab import Lab
    from inferlab.lab.experiments import list_experiments

    experiments, problems = list_experiments(Lab.open(lab))
    if experiments:
        table = Table("id", "title", "lesson", "status", "device", "predictions", header_style="bold")
        for e in experiments:
            lesson = "-" if e.lesson is None else str(e.lesson)
            table.add_row(
                str(e.id), Text(e.title), lesson, e.status, e.device_wanted, str(len(e.predictions))
            )
        console.print(table)
    elif not problems:
        console.print("No experiments yet. Start one with: inferlab experiment new 'TITLE'", markup=False)
    _warn(problems)


@experiment_app.command("show")
def experiment_show(experiment: ExperimentArg, lab: LabOption = None) -> None:
    """Show an experiment: its fields, its predictions, then its README rendered.

    Examples: `inferlab experiment show 2` · `inferlab experiment show experiments/0001-vector-add-...`
    """
    from rich.markdown import Markdown
    from rich.table import Table
    from rich.text import Text

    from inferlab.lab import Lab
    from inferlab.lab.experiments import find_experiment

    exp = find_experiment(Lab.open(lab), experiment)
    console.print(Text(f"#{exp.id} {exp.title}", style="bold"))
    console.print(Text(f"status {exp.status} · lesson {exp.lesson or '-'} · device {exp.device_wanted}"))
    console.print(Text(f"folder {exp.folder}", style="dim"), soft_wrap=True)
    if exp.predictions:
        table = Table("metric", "selection", "predicted", "tolerance", "why", header_style="bold")
        for p in exp.predictions:
            table.add_row(
                p.metric, Text(p.selection), f"{p.value:g} {p.unit}", f"±{p.tolerance:.0%}", Text(p.why)
            )
        console.print(table)
    console.print(Markdown(exp.body))


@experiment_app.command("run")
def experiment_run(
    experiment: ExperimentArg,
    provider: Annotated[
        str, typer.Option(help="Whose GPU this is, for the budget: local, kaggle, colab, or a priced name.")
    ] = "local",
    bundle: Annotated[
        Path | None, typer.Option(metavar="FILE", help="Also write a results bundle (.zip) to FILE.")
    ] = None,
    save_to: Annotated[
        Path | None,
        typer.Option(
            "--save-to", metavar="DIR", help="Also copy the result JSON into DIR; the README cites it."
        ),
    ] = None,
    lab: LabOption = None,
) -> None:
    """Run the experiment's run.py on this GPU, save the result with its fingerprint, and write
    the Result section (measured table, each prediction beside its measurement, MISS marked).
    The old README is backed up to `.backup/` first.

    Examples: `inferlab experiment run 2` ·
    `inferlab experiment run experiments/0001-vector-add-block-size-and-num-warps`
    """
    from inferlab.lab import Lab
    from inferlab.lab.budget import check_provider, log_time, read_ledger, read_prices
    from inferlab.lab.experiments import find_experiment

    the_lab = Lab.open(lab)
    exp = find_experiment(the_lab, experiment)
    check_provider(provider)
    read_ledger(the_lab), read_prices(the_lab)  # a bad ledger stops us now, not after the GPU run
    _require_gpu(experiment)
    if not exp.predictions:
        err_console.print("[yellow]warning:[/] no predictions in the front matter: nothing to compare with.")
    from inferlab.lab.experiment_results import measure_experiment

    with console.status(f"experiment {exp.id}: run.py checks, then times, on this GPU..."):
        payload = measure_experiment(exp, the_lab, provider)
    _record(the_lab, exp, payload, save_to)
    minutes = max(payload["duration_s"] / 60, 0.01)
    log_time(the_lab, provider, minutes, experiment=exp.name, source="run", note="experiment run")
    if bundle is not None:
        from inferlab.lab.bundle import write_bundle

        write_bundle(bundle, payload["experiment"], provider, [payload], payload["duration_s"])
        console.print(
            f"Bundle: {_escape(str(bundle))} (bring it home with `inferlab import`)", soft_wrap=True
        )


def notebook(
    experiment: ExperimentArg,
    target: Annotated[str, typer.Option(help="kaggle or colab (a free T4 on either).")],
    source: Annotated[
        str | None,
        typer.Option(metavar="GIT_URL_OR_WHEEL", help="Where the notebook installs inferlab from."),
    ] = None,
    out: Annotated[Path | None, typer.Option(metavar="FILE", help="The .ipynb to write.")] = None,
    lab: LabOption = None,
) -> None:
    """Write a Kaggle/Colab notebook that installs inferlab, prints the GPU, runs the experiment
    and writes one results bundle to download and `inferlab import` here.

    Examples: `inferlab notebook 2 --target kaggle --source https://github.com/ME/inferlab` ·
    `inferlab notebook 3 --target colab --source dist/inferlab-0.1.0-py3-none-any.whl`
    """
    from inferlab.lab import Lab
    from inferlab.lab.experiments import find_experiment
    from inferlab.notebook import build_notebook, bundle_name, default_source, device_warnings, write_notebook

    exp = find_experiment(Lab.open(lab), experiment)
    nb = build_notebook(exp, target, source or default_source())
    path = write_notebook(nb, out or Path(f"inferlab-{exp.id:04d}-{target}.ipynb"))
    for reason in device_warnings(exp):
        err_console.print(f"[yellow]warning:[/] on a T4, {reason}.", soft_wrap=True, highlight=False)
    console.print(
        f"Wrote {_escape(str(path))}: upload it to {target.capitalize()}, run all cells,", soft_wrap=True
    )
    console.print(f"then download {bundle_name(exp, target)} and: inferlab import FILE", markup=False)


def import_bundle_command(
    bundle: Annotated[
        Path, typer.Argument(metavar="BUNDLE", help="A results bundle (.zip) from a notebook.")
    ],
    lab: LabOption = None,
) -> None:
    """Check a results bundle, then merge its results (with fingerprint and provenance) into the
    lab, log its GPU time, and fill the matching experiment's Result. A malformed or already
    imported bundle is refused, and then nothing changes.

    Example: `inferlab import ~/Downloads/inferlab-bundle-0002-kaggle.zip`
    """
    from inferlab.lab import Lab
    from inferlab.lab.bundle import import_bundle
    from inferlab.lab.experiments import list_experiments

    the_lab = Lab.open(lab)
    report = import_bundle(the_lab, bundle)
    manifest = report.bundle.manifest
    for path in report.saved:
        console.print(f"Imported {_escape(str(path))} (from {manifest['provider']})", soft_wrap=True)
    if report.budget_entry is not None:
        console.print(f"Logged {report.budget_entry.minutes:.1f} GPU minutes on {manifest['provider']}.")
    folder = manifest["experiment"]["folder"]
    matches = [e for e in list_experiments(the_lab)[0] if e.name == folder]
    if not matches:
        console.print(f"No experiment {folder} in this lab: the results are stored, no README was filled.")
        return
    for path, payload in zip(report.saved, report.bundle.payloads, strict=True):
        _record(the_lab, matches[0], payload, result_path=path)


def run_script_main(script: str) -> None:
    """`python run.py [OPTIONS]` is `inferlab experiment run <its folder> [OPTIONS]`."""
    import sys

    from inferlab.errors import InferlabError

    folder = str(Path(script).resolve().parent)
    try:
        experiment_app(["run", folder, *sys.argv[1:]], prog_name=f"python {Path(script).name}")
    except InferlabError as e:
        fail(str(e).strip().splitlines()[0])


# ---------------------------------------------------------------- helpers
def _require_gpu(experiment: str) -> None:
    import torch

    from inferlab.errors import InferlabError
    from inferlab.kernels.device import select_backend

    if not torch.cuda.is_available() or select_backend().interpreted:
        raise InferlabError(
            f"this experiment needs a CUDA GPU and none is usable here: run it on a free T4 with "
            f"`inferlab notebook {experiment} --target kaggle`."
        )


def _record(
    the_lab, exp, payload: dict, save_to: Path | None = None, result_path: Path | None = None
) -> None:
    """Save (unless saved), plot, and write the Result section of `exp`; print the comparison."""
    from inferlab.bench.report import plot_kernels
    from inferlab.lab.atomic import atomic_write_text
    from inferlab.lab.experiment_results import RESULT_KIND, compare_predictions, fill_result
    from inferlab.lab.experiments import read_experiment, update_experiment
    from inferlab.lab.results import save_result

    if result_path is None:
        result_path = save_result(the_lab, RESULT_KIND, payload)
    cited = result_path  # what the README points at: the committable copy, if there is one
    if save_to is not None:
        save_to.mkdir(parents=True, exist_ok=True)
        cited = save_to / result_path.name
        atomic_write_text(cited, result_path.read_text(encoding="utf-8"))
    plots = plot_kernels(payload.get("rows", []), exp.folder / "plots")
    plots = [str(p.relative_to(exp.folder)) for p in plots] if isinstance(plots, list) else []
    exp = read_experiment(exp.folder)  # as it is now: the learner may have edited it during the run
    outcomes = compare_predictions(exp.predictions, payload)
    exp.body = fill_result(exp.body, payload, outcomes, str(cited), plots)
    exp.status = exp.status if exp.status == "concluded" else "measured"
    update_experiment(exp)
    console.print(f"Result saved to {_escape(str(result_path))}; README filled: {exp.readme}", soft_wrap=True)
    for o in outcomes:
        measured = "-" if o.measured is None else f"{o.measured:.4g}"
        style = "bold red" if o.verdict.startswith("MISS") else "green" if o.verdict == "hit" else "dim"
        console.print(f"  {o.prediction.metric} {_escape(o.prediction.selection)}: predicted "
                      f"{o.prediction.value:g}, measured {measured} {o.prediction.unit} "
                      f"[{style}]{o.verdict}[/] {o.detail}", soft_wrap=True, highlight=False)  # fmt: skip


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _warn(problems: list[str]) -> None:
    for message in problems:
        err_console.print(f"[yellow]warning:[/] {_escape(message)}", soft_wrap=True, highlight=False)
