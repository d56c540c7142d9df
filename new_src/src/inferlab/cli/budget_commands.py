"""`budget` and `budget log`: GPU time per provider and experiment, and its cost.

Registered by `experiment_commands.register`. `inferlab budget` shows the totals; `budget log`
appends one entry to the lab's ledger (`inferlab.lab.budget`).
"""

from __future__ import annotations

from typing import Annotated

import typer

from inferlab.cli.console import console, err_console
from inferlab.cli.options import LabOption

budget_app = typer.Typer(
    help="GPU time per provider and experiment, and its cost at the prices in lab.toml.\n\n"
    "Examples: `inferlab budget` · `inferlab budget log --provider kaggle --minutes 45 --experiment 2`",
    invoke_without_command=True,
    rich_markup_mode="markdown",
)


def register(app: typer.Typer) -> None:
    """Add `budget` to `app`."""
    app.add_typer(budget_app, name="budget")


@budget_app.callback()
def budget_show(ctx: typer.Context, lab: LabOption = None) -> None:
    """Show GPU hours and money spent, per provider and per experiment."""
    if ctx.invoked_subcommand is not None:
        return
    from rich.table import Table

    from inferlab.lab import Lab
    from inferlab.lab.budget import read_ledger, read_prices, totals

    the_lab = Lab.open(lab)
    entries, prices = read_ledger(the_lab), read_prices(the_lab)
    if not entries:
        console.print(
            "No GPU time logged yet: inferlab budget log --provider kaggle --minutes 30", markup=False
        )
        return
    for by in ("provider", "experiment"):
        table = Table(by, "entries", "hours", "USD", title=f"GPU time per {by}", header_style="bold")
        for t in totals(entries, prices, by):
            usd = f"{t.usd:.2f}" + (f" + ? ({t.unpriced_hours:.2f} h unpriced)" if t.unpriced_hours else "")
            table.add_row(t.key, str(t.entries), f"{t.hours:.2f}", usd)
        console.print(table)
    for name in sorted({e.provider for e in entries if e.hourly_usd is None and e.provider not in prices}):
        hint = f"no price for {name}: add [budget.providers.{name}] hourly_usd = ... to {the_lab.config_path}"
        err_console.print(f"note: {hint}", soft_wrap=True, markup=False, highlight=False)


@budget_app.command("log")
def budget_log(
    provider: Annotated[str, typer.Option(help="kaggle, colab, or a name priced in lab.toml.")],
    minutes: Annotated[float, typer.Option(help="GPU minutes used.")],
    experiment: Annotated[str | None, typer.Option(help="The experiment (number or folder).")] = None,
    note: Annotated[str, typer.Option(help="A few words on what the time went to.")] = "",
    lab: LabOption = None,
) -> None:
    """Append one entry to the lab's GPU-time ledger (priced from lab.toml when logged).

    Example: `inferlab budget log --provider lambda-h100 --minutes 20 --experiment 3 --note 'nf4 sweep'`
    """
    from inferlab.lab import Lab
    from inferlab.lab.budget import log_time
    from inferlab.lab.experiments import find_experiment

    the_lab = Lab.open(lab)
    folder = find_experiment(the_lab, experiment).name if experiment else None
    entry = log_time(the_lab, provider, minutes, experiment=folder, note=note)
    cost = "unpriced" if entry.hourly_usd is None else f"${entry.minutes / 60 * entry.hourly_usd:.2f}"
    console.print(f"Logged {entry.minutes:g} min on {entry.provider} ({cost}).", markup=False)
