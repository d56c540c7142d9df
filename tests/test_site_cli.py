"""`inferlab site build|serve`: the commands, their errors, and the loopback-only preview server."""

from __future__ import annotations

import subprocess
import sys
import threading
import urllib.request

import pytest
import typer
from typer.testing import CliRunner

from inferlab.cli import site_commands
from inferlab.errors import InferlabError
from inferlab.lab import init_lab
from inferlab.site import make_server
from test_site_support import make_lab

runner = CliRunner()


def _app() -> typer.Typer:
    """The `site` commands on a bare root, as `inferlab.cli.app` registers them."""
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        pass

    site_commands.register(app)
    return app


def test_build_writes_the_site_and_reports_problems(tmp_path):
    lab = make_lab(tmp_path / "lab")
    out = tmp_path / "public"
    result = runner.invoke(_app(), ["site", "build", "--lab", str(lab.root), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Built" in result.output and "pages" in result.output
    assert "problem: records/0003-broken.md:" in result.output
    assert "broken link" not in result.output
    assert (out / "index.html").is_file() and (out / "portfolio.html").is_file()


def test_build_uses_the_default_lab_and_its_site_folder(_isolated_lab):
    result = runner.invoke(_app(), ["site", "build"])
    assert result.exit_code == 0, result.output
    assert (_isolated_lab / "site" / "index.html").is_file()


def test_build_with_a_missing_lab_is_a_user_error(tmp_path):
    result = runner.invoke(_app(), ["site", "build", "--lab", str(tmp_path / "nope")])
    assert isinstance(result.exception, InferlabError)
    assert "no lab at" in str(result.exception)


def test_serve_builds_then_serves_until_interrupted(tmp_path, monkeypatch):
    lab = init_lab(tmp_path / "lab")
    seen = {}

    def fake_serve_forever(self, poll_interval=0.5):
        seen["address"] = self.server_address
        raise KeyboardInterrupt

    monkeypatch.setattr("http.server.ThreadingHTTPServer.serve_forever", fake_serve_forever)
    result = runner.invoke(_app(), ["site", "serve", "--lab", str(lab.root), "--port", "0"])
    assert result.exit_code == 0, result.output
    assert seen["address"][0] == "127.0.0.1"
    assert "http://127.0.0.1:" in result.output and "Stopped." in result.output
    assert (lab.root / "site" / "index.html").is_file()


def test_the_server_answers_on_loopback_only(tmp_path):
    (tmp_path / "index.html").write_text("<!doctype html><title>hi</title>")
    server = make_server(tmp_path, 0, quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert server.server_address[0] == "127.0.0.1"
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/index.html", timeout=5) as r:
            assert b"<title>hi</title>" in r.read()
        with pytest.raises(InferlabError, match="already in use"):
            make_server(tmp_path, server.server_port)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_help_shows_examples():
    result = runner.invoke(_app(), ["site", "--help"])
    assert result.exit_code == 0
    assert "build" in result.output and "serve" in result.output and "Examples" in result.output
    result = runner.invoke(_app(), ["site", "serve", "--help"])
    assert "127.0.0.1" in result.output and "--port" in result.output


def test_the_command_module_imports_nothing_heavy():
    code = (
        "import sys, inferlab.cli.site_commands; "
        "bad = [m for m in ('inferlab.site', 'jinja2', 'matplotlib', 'torch') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
