"""The lab commands end to end: `init`, `record new|list|show`, `lab reindex|path`."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from inferlab.cli import lab_commands
from inferlab.cli.app import app, main
from inferlab.lab import STATUSES

runner = CliRunner()


def invoke(*args: str, input: str | None = None):
    result = runner.invoke(app, list(args), input=input)
    assert result.exit_code == 0, result.output
    return result


def run_main(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """Run through `main()`, the error boundary: (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["inferlab", *args])
    with pytest.raises(SystemExit) as info:
        main()
    out, err = capsys.readouterr()
    return info.value.code, out, err


def test_new_list_show_round_trip():
    out = invoke(
        "record",
        "new",
        "Why masks matter",
        "--lesson",
        "1",
        "--link",
        "lesson-2",
        "--body",
        "# Masks\n\nThey guard the **tail**.",
    ).output
    assert "Wrote record 1" in out
    invoke("record", "new", "Reductions", "--status", "reviewed")
    listing = invoke("record", "list").output
    assert "Why masks matter" in listing and "Reductions" in listing
    assert "waiting-for-correction" in listing and "reviewed" in listing
    shown = invoke("record", "show", "1").output
    assert "#1 Why masks matter" in shown
    assert "lesson-2" in shown and "guard the tail" in shown  # Markdown rendered, ** gone


def test_body_from_stdin_and_conflicting_body_options(monkeypatch, capsys):
    invoke("record", "new", "From stdin", "--body-file", "-", input="typed *here*\n")
    assert "typed here" in invoke("record", "show", "1").output
    code, _, err = run_main(monkeypatch, capsys, "record", "new", "x", "--body", "a", "--body-file", "-")
    assert code == 1 and "not both" in err


def test_reindex_after_deleting_the_index_lists_the_same(_isolated_lab):
    invoke("record", "new", "One")
    invoke("record", "new", "Two")
    before = invoke("record", "list").output
    (_isolated_lab / "index.sqlite").unlink()
    assert "Indexed 2 records" in invoke("lab", "reindex").output
    assert invoke("record", "list").output == before


def test_a_corrupt_record_is_a_warning_in_list_and_an_error_in_show(_isolated_lab, monkeypatch, capsys):
    invoke("record", "new", "Good one")
    bad = _isolated_lab / "records" / "0002-bad.md"
    bad.write_text("---\nid: 2\ntitle: x\nlesson: one\nstatus: reviewed\n---\n")
    code, out, err = run_main(monkeypatch, capsys, "record", "list")
    assert code == 0 and "Good one" in out
    assert f"warning: {bad}:4: field 'lesson'" in err
    code, _, err = run_main(monkeypatch, capsys, "record", "show", "2")
    assert code == 1
    assert f"error: {bad}:4:" in err
    assert bad.read_text().startswith("---\nid: 2\n")


def test_init_makes_a_lab_and_refuses_a_second_time(tmp_path, monkeypatch, capsys):
    target = tmp_path / "my-lab"
    code, out, _ = run_main(monkeypatch, capsys, "init", str(target))
    assert code == 0 and "Made a lab" in out
    assert (target / "lab.toml").is_file()
    code, _, err = run_main(monkeypatch, capsys, "init", str(target))
    assert code == 1 and "already a lab" in err
    code, out, _ = run_main(monkeypatch, capsys, "lab", "path", "--lab", str(target))
    assert code == 0 and out.strip() == str(target.resolve())


def test_an_explicit_lab_that_does_not_exist_is_one_clear_error(tmp_path, monkeypatch, capsys):
    missing = tmp_path / "typo"
    code, out, err = run_main(monkeypatch, capsys, "record", "list", "--lab", str(missing))
    assert code == 1
    assert f"no lab at {missing}; create one with `inferlab init {missing}`" in " ".join(err.split())
    assert not missing.exists()


def test_lab_path_defaults_to_inferlab_home(_isolated_lab):
    assert invoke("lab", "path").output.strip() == str(_isolated_lab.resolve())


def test_status_help_names_every_status():
    for status in STATUSES:
        assert status in lab_commands.STATUS_HELP


def test_importing_the_commands_does_not_import_the_lab():
    code = "import sys, inferlab.cli.lab_commands; assert 'inferlab.lab' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
