"""`inferlab site build|serve`: the lab and the curriculum as a static site, and a local preview.

Both commands import `inferlab.site` inside the function, so `inferlab --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from inferlab.cli.console import console, err_console
from inferlab.cli.options import LabOption

OutOption = Annotated[
    Path | None,
    typer.Option(
        "--out",
        metavar="DIR",
        help="Where the site goes (default: <lab>/site). A previous build there is replaced.",
    ),
]

site_app = typer.Typer(
    help=(
        "The portfolio site: lessons, learning records, experiments, benchmarks and the claims "
        "they back, as static HTML.\n\n"
        "Examples: `inferlab site build` · `inferlab site build --out public` · "
        "`inferlab site serve --port 8080`"
    ),
    no_args_is_help=True,
    rich_markup_mode="markdown",
)


def register(app: typer.Typer) -> None:
    """Add `site` to `app`."""
    app.add_typer(site_app, name="site")


@site_app.command("build")
def build(lab: LabOption = None, out: OutOption = None) -> None:
    """Build the static site from the lab, the curriculum and the committed benchmark results.

    Unreadable records, experiments or result files are listed on the site as problems; the build
    goes on. Every internal link is checked afterwards.

    Examples: `inferlab site build` · `inferlab site build --lab ~/my-lab --out ~/my-lab/public`
    """
    _build(lab, out)


@site_app.command("serve")
def serve(
    lab: LabOption = None,
    out: OutOption = None,
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="The port on 127.0.0.1 (0: any free one).")
    ] = 8000,
) -> None:
    """Build the site, then preview it at http://127.0.0.1:PORT/ until Ctrl-C.

    The server listens on 127.0.0.1 only: nothing on the network can reach it.

    Examples: `inferlab site serve` · `inferlab site serve --port 8080`
    """
    from inferlab.site import make_server

    folder = _build(lab, out)
    server = make_server(folder, port)
    console.print(f"Serving {folder} at [bold]http://127.0.0.1:{server.server_port}/[/] (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        console.print("Stopped.")
    finally:
        server.server_close()


def _build(lab: Path | None, out: Path | None) -> Path:
    from rich.markup import escape

    from inferlab.lab import Lab
    from inferlab.site import build_site, check_site

    the_lab = Lab.open(lab)
    report = build_site(the_lab, out)
    index = escape(str(report.out / "index.html"))
    console.print(f"Built {report.pages} pages in {report.seconds:.1f} s: [bold]{index}[/]", soft_wrap=True)
    for problem in report.problems:
        err_console.print(f"[yellow]problem:[/] {escape(problem)}", soft_wrap=True, highlight=False)
    broken = check_site(report.out)
    for line in broken:
        err_console.print(f"[red]broken link:[/] {escape(line)}", soft_wrap=True, highlight=False)
    if broken:
        raise typer.Exit(1)
    return report.out
