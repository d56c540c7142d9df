"""Kaggle/Colab notebooks: valid nbformat v4 with the install, GPU, run and bundle cells, and a
T4 warning only for experiments that need bf16."""

from __future__ import annotations

import subprocess

import nbformat
import pytest
import typer
from typer.testing import CliRunner

from inferlab.errors import InferlabError
from inferlab.lab import Lab
from inferlab.lab.experiments import new_experiment, read_experiment
from inferlab.lab.frontmatter import read_document, render_document
from inferlab.notebook import build_notebook, default_source, pip_target, write_notebook

GIT = "https://github.com/someone/inferlab"


@pytest.fixture
def exp():
    return new_experiment(Lab.open(), "SwiGLU: one pass versus three", lesson=3)


def _needing_bf16(exp):
    doc = read_document(exp.readme)
    exp.readme.write_text(
        render_document({**doc.fields, "dtypes": ["bfloat16"], "packages": ["bitsandbytes"]}, doc.body)
    )
    return read_experiment(exp.folder)


def _sources(nb) -> list[str]:
    return ["".join(cell.source) for cell in nb.cells]


@pytest.mark.parametrize("target", ["kaggle", "colab"])
def test_the_notebook_installs_shows_the_gpu_runs_and_bundles(exp, target, tmp_path):
    nb = build_notebook(exp, target, GIT)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    code = "\n".join(s for s, c in zip(_sources(nb), nb.cells, strict=True) if c.cell_type == "code")
    assert f'!pip install -q --no-deps "git+{GIT}"' in code
    assert "typer" in code and "!nvidia-smi" in code and "torch.cuda.get_device_name(0)" in code
    assert f"%%writefile {exp.name}/README.md\n---\nid: 1\n" in code
    assert f"%%writefile {exp.name}/run.py\n" + exp.run_script.read_text() in code
    bundle = f"inferlab-bundle-0001-{target}.zip"
    assert f"!python -m inferlab experiment run {exp.name} --provider {target} --bundle {bundle}" in code
    assert ("files.download" in code) == (target == "colab") and ("FileLink" in code) == (target == "kaggle")
    assert "WARNING" not in code
    path = write_notebook(nb, tmp_path / "x.ipynb")
    nbformat.validate(nbformat.read(path, as_version=4))
    with pytest.raises(InferlabError, match="already exists"):
        write_notebook(nb, path)


def test_bf16_experiments_get_a_t4_warning_and_their_packages(exp):
    nb = build_notebook(_needing_bf16(exp), "kaggle", GIT)
    text = "\n".join(_sources(nb))
    assert "Warning: a T4 cannot run all of this experiment" in text
    assert "if (major, minor) < (8, 0):" in text and "WARNING: this GPU is sm_" in text
    assert "bitsandbytes" in text
    warning_code = next(s for s in _sources(nb) if "WARNING" in s)
    compile(warning_code, "cell", "exec")  # the printed warning is valid Python


def test_sources_git_urls_wheel_urls_and_local_wheels(exp):
    assert pip_target("https://github.com/x/y.git") == "git+https://github.com/x/y.git"
    assert pip_target("git+https://github.com/x/y@v1") == "git+https://github.com/x/y@v1"
    assert pip_target("https://example.org/inferlab-0.1.0-py3-none-any.whl").startswith("https://")
    with pytest.raises(InferlabError, match="neither a git URL"):
        pip_target("inferlab")
    nb = build_notebook(exp, "colab", "dist/inferlab-0.1.0-py3-none-any.whl")
    install = _sources(nb)[1]
    assert "WHEEL = 'inferlab-0.1.0-py3-none-any.whl'" in install and "files.upload()" in install
    compile(install.replace("!pip", "#pip"), "cell", "exec")
    kaggle = _sources(build_notebook(exp, "kaggle", "dist/inferlab-0.1.0-py3-none-any.whl"))[1]
    assert "/kaggle/input/" in kaggle and "google.colab" not in kaggle
    with pytest.raises(InferlabError, match="unknown target"):
        build_notebook(exp, "sagemaker", GIT)


def test_the_default_source_is_the_https_origin(monkeypatch):
    def fake_run(args, **kwargs):
        return subprocess.CompletedProcess(args, 0, stdout="git@github.com:me/inferlab.git\n", stderr="")

    monkeypatch.setattr(subprocess, "run", fake_run)
    assert default_source() == "git+https://github.com/me/inferlab.git"
    monkeypatch.setattr(subprocess, "run", lambda args, **kw: subprocess.CompletedProcess(args, 128, "", ""))
    with pytest.raises(InferlabError, match="give --source"):
        default_source()


def test_the_notebook_command_writes_the_file_and_warns_about_bf16(exp, tmp_path):
    from inferlab.cli import experiment_commands

    app = typer.Typer()
    experiment_commands.register(app)
    out = tmp_path / "nb.ipynb"
    args = ["notebook", "1", "--target", "kaggle", "--source", GIT, "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert out.is_file() and "inferlab-bundle-0001-kaggle.zip" in result.output
    assert "bfloat16" not in result.output
    _needing_bf16(exp)
    result = CliRunner().invoke(app, [*args[:-1], str(tmp_path / "nb2.ipynb")])
    assert result.exit_code == 0 and "warning: on a T4, it measures bfloat16" in result.output
