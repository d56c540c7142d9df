"""The GPU budget: the ledger, totals priced from lab.toml, and a corrupt ledger never reset."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from inferlab.lab import Lab
from inferlab.lab.budget import BudgetError, ledger_path, log_time, read_ledger, read_prices, totals

PRICES = "\n[budget.providers.lambda-h100]\nhourly_usd = 2.5\n\n[budget.providers.colab]\nhourly_usd = 0\n"


@pytest.fixture
def lab() -> Lab:
    lab = Lab.open()
    with lab.config_path.open("a") as f:
        f.write(PRICES)
    return lab


def test_entries_are_appended_priced_and_totalled_per_provider_and_experiment(lab):
    log_time(lab, "kaggle", 30, experiment="0001-add")
    log_time(lab, "lambda-h100", 90, experiment="0001-add", note="sweep")
    log_time(lab, "lambda-h100", 30, experiment="0002-swiglu", source="run")
    log_time(lab, "vast", 60)  # no price anywhere: its cost is unknown, not zero
    entries = read_ledger(lab)
    assert [e.provider for e in entries] == ["kaggle", "lambda-h100", "lambda-h100", "vast"]
    assert entries[1].hourly_usd == 2.5 and entries[0].hourly_usd == 0.0 and entries[3].hourly_usd is None
    assert len(ledger_path(lab).read_text().splitlines()) == 4
    prices = read_prices(lab)
    by_provider = {t.key: t for t in totals(entries, prices)}
    assert by_provider["lambda-h100"].hours == 2.0 and by_provider["lambda-h100"].usd == 5.0
    assert by_provider["kaggle"].usd == 0.0 and by_provider["kaggle"].entries == 1
    assert by_provider["vast"].unpriced_hours == 1.0 and by_provider["vast"].usd == 0.0
    by_experiment = {t.key: t for t in totals(entries, prices, by="experiment")}
    assert by_experiment["0001-add"].hours == 2.0 and by_experiment["0001-add"].usd == 3.75
    assert by_experiment["(none)"].unpriced_hours == 1.0


def test_a_price_added_later_costs_entries_logged_without_one(lab):
    log_time(lab, "vast", 60)
    with lab.config_path.open("a") as f:
        f.write("\n[budget.providers.vast]\nhourly_usd = 1.2\n")
    (total,) = totals(read_ledger(lab), read_prices(lab))
    assert total.usd == pytest.approx(1.2) and total.unpriced_hours == 0


@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", "budget.jsonl:2: not valid JSON"),
        ("[1, 2]", "budget.jsonl:2: an entry must be a JSON object"),
        ('{"at": "x", "provider": "kaggle"}', "budget.jsonl:2: the entry has no 'minutes'"),
        ('{"at": "x", "provider": "kaggle", "minutes": -5}', "budget.jsonl:2: minutes must be more than 0"),
        ('{"at": "x", "provider": "kaggle", "minutes": 5, "usd": 1}', "budget.jsonl:2: unknown field 'usd'"),
    ],
)
def test_a_corrupt_ledger_is_reported_and_never_reset(lab, line, message):
    log_time(lab, "kaggle", 30)
    path = ledger_path(lab)
    path.write_text(path.read_text() + line + "\n")
    before = path.read_bytes()
    with pytest.raises(BudgetError, match=message):
        read_ledger(lab)
    with pytest.raises(BudgetError, match=message):
        log_time(lab, "kaggle", 10)
    assert path.read_bytes() == before


def test_bad_entries_and_prices_are_refused(lab):
    with pytest.raises(BudgetError, match="minutes must be more than 0"):
        log_time(lab, "kaggle", 0)
    with pytest.raises(BudgetError, match="at most"):
        log_time(lab, "kaggle", 60 * 24 * 8)
    with pytest.raises(BudgetError, match="short lowercase name"):
        log_time(lab, "My Cloud", 5)
    assert not ledger_path(lab).exists()
    with lab.config_path.open("a") as f:
        f.write('\n[budget.providers.runpod]\nhourly_usd = "two"\n')
    with pytest.raises(BudgetError, match=r"\[budget.providers.runpod\] needs hourly_usd"):
        read_prices(lab)


def test_the_budget_commands(lab):
    import typer

    from inferlab.cli import budget_commands

    app = typer.Typer()
    budget_commands.register(app)
    runner = CliRunner()
    assert "No GPU time logged yet" in runner.invoke(app, ["budget"]).output
    logged = runner.invoke(app, ["budget", "log", "--provider", "lambda-h100", "--minutes", "24"])
    assert logged.exit_code == 0 and "Logged 24 min on lambda-h100 ($1.00)" in logged.output
    shown = runner.invoke(app, ["budget"], terminal_width=200)
    assert shown.exit_code == 0 and "lambda-h100" in shown.output and "1.00" in shown.output
    args = ["budget", "log", "--provider", "kaggle", "--minutes", "5", "--experiment", "9"]
    refused = runner.invoke(app, args)
    assert refused.exit_code != 0 and "no experiment 9" in str(refused.exception)
    assert json.loads(ledger_path(lab).read_text())["minutes"] == 24
