"""Run the `inferlab` command in-process, as a user would type it, for the CLI tests."""

from __future__ import annotations

import io
import sys

import pytest


def run(monkeypatch, capsys, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    """`inferlab ARGS...` (stdin fed `stdin` if given) -> (exit code, stdout, stderr)."""
    from inferlab.cli.app import main

    monkeypatch.setattr(sys, "argv", ["inferlab", *args])
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    with pytest.raises(SystemExit) as info:
        main()
    return info.value.code, *capsys.readouterr()
