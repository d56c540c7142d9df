"""Options shared by many commands, declared once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

LabOption = Annotated[
    Path | None,
    typer.Option(
        "--lab",
        metavar="PATH",
        help="The lab folder (default: $INFERLAB_HOME, else the per-user lab, made on first use).",
    ),
]
