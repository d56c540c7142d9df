"""Kaggle/Colab notebooks that run one experiment on a free T4 and hand back one results bundle.

The notebook (nbformat v4, validated before it is written) has, in order:

1. what it is and how to start it (a GPU accelerator, internet on for pip);
2. install inferlab from a git URL or a wheel with `--no-deps`, so the image's torch and
   triton stay as they are (an upgrade would download gigabytes and may not match the driver),
   then the small pure-Python dependencies and the experiment's `packages:`;
3. the GPU: `nvidia-smi`, and torch's name and compute capability for it;
4. only if the experiment needs bf16 or sm_80+: a warning that a T4 (sm_75) has neither;
5. the experiment's README.md and run.py, written out verbatim (`%%writefile`);
6. `inferlab experiment run ... --bundle FILE`: check, time, fill the README, write the bundle;
7. the filled Result section, and how to download the bundle and `inferlab import` it at home.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from inferlab.errors import InferlabError

TARGETS = ("kaggle", "colab")
# What inferlab imports on the way to `experiment run`, minus torch, triton, numpy and
# matplotlib, which both images already have.
SMALL_DEPENDENCIES = (
    "typer",
    "rich",
    "pyyaml",
    "platformdirs",
    "jinja2",
    "markdown-it-py",
    "fsrs",
    "nbformat",
)
START = {
    "kaggle": "Settings > Accelerator: GPU T4 x2 (not P100: Triton needs sm_75+); Internet: on.",
    "colab": "Runtime > Change runtime type > T4 GPU.",
}


def bundle_name(exp, target: str) -> str:
    return f"inferlab-bundle-{exp.id:04d}-{target}.zip"


def device_warnings(exp) -> list[str]:
    """Why this experiment cannot run in full on a T4 (sm_75: no bf16, no sm_80+); empty if it can."""
    if exp.needs_bf16:
        return ["it measures bfloat16, which needs sm_80+: a T4 (sm_75) has no bf16"]
    return []


def pip_target(source: str) -> str:
    """What `pip install` is given: a wheel or git URL as is, an https repository as git+URL."""
    source = source.strip()
    if not source:
        raise InferlabError("--source is empty: give a git URL or a wheel")
    if source.startswith("git+") or source.endswith(".whl") and "://" in source:
        return source
    if re.match(r"^https?://", source):
        return f"git+{source}"
    if source.endswith(".whl"):
        return source  # a local wheel: the notebook looks for it by name (see install_cell)
    raise InferlabError(f"--source {source!r} is neither a git URL (https://... or git+...) nor a .whl wheel")


def default_source() -> str:
    """The https URL of this checkout's `origin` remote; InferlabError if there is none."""
    try:
        out = subprocess.run(
            ["git", "remote", "get-url", "origin"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        out = None
    url = out.stdout.strip() if out is not None and out.returncode == 0 else ""
    ssh = re.match(r"^git@([^:]+):(.+)$", url)
    url = f"https://{ssh[1]}/{ssh[2]}" if ssh else url
    if not url.startswith("https://"):
        raise InferlabError("give --source (a git URL or a wheel): this inferlab has no https git remote")
    return f"git+{url}"


def install_cell(source: str, target: str, packages: list[str]) -> str:
    target_spec = pip_target(source)
    extra = " ".join([*SMALL_DEPENDENCIES, *packages])
    lines = ["# --no-deps keeps the image's torch and triton: an upgrade would download gigabytes"]
    if target_spec.endswith(".whl") and "://" not in target_spec:
        wheel = Path(target_spec).name
        lines += [
            "import glob, subprocess, sys",
            f"WHEEL = {wheel!r}  # upload it first: Kaggle: Add Input > Upload; Colab: the Files panel",
            'found = glob.glob(f"/kaggle/input/**/{WHEEL}", recursive=True) + glob.glob(f"/content/{WHEEL}")',
            "found += glob.glob(WHEEL)",
        ]
        if target == "colab":
            lines += [
                "if not found:",
                "    from google.colab import files",
                "    files.upload()",
                "    found = glob.glob(WHEEL)",
            ]
        lines += [
            'assert found, f"{WHEEL} is not here: upload it, then run this cell again"',
            'pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps"]',
            "subprocess.run([*pip, found[0]], check=True)",
        ]
    else:
        lines.append(f'!pip install -q --no-deps "{target_spec}"')
    lines.append(f"!pip install -q {extra}")
    return "\n".join(lines)


def build_notebook(exp, target: str, source: str):
    """The notebook for experiment `exp` on `target` ("kaggle" or "colab"), validated."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    if target not in TARGETS:
        raise InferlabError(f"unknown target {target!r}; use one of {', '.join(TARGETS)}")
    folder, bundle = exp.name, bundle_name(exp, target)
    cells = [
        new_markdown_cell(
            f"# inferlab experiment {exp.id}: {exp.title}\n\n"
            f"Runs the experiment's `run.py` on this notebook's GPU and writes **one results bundle**, "
            f"`{bundle}`, to download and import at home with `inferlab import {bundle}`.\n\n"
            f"Before running: {START[target]} Then Run all."
        ),
        new_code_cell(install_cell(source, target, exp.packages)),
        new_code_cell(
            "!nvidia-smi\n"
            "import torch\n"
            f'assert torch.cuda.is_available(), "no GPU: {START[target]}"\n'
            'print(torch.cuda.get_device_name(0), "capability", torch.cuda.get_device_capability(0))'
        ),
    ]
    warnings = device_warnings(exp)
    if warnings:
        reasons = "; ".join(warnings)
        cells += [
            new_markdown_cell(
                f"**Warning: a T4 cannot run all of this experiment.** {reasons[0].upper()}{reasons[1:]}."
            ),
            new_code_cell(
                "major, minor = torch.cuda.get_device_capability(0)\n"
                "if (major, minor) < (8, 0):\n"
                f'    print(f"WARNING: this GPU is sm_{{major}}{{minor}}: no bf16 and no sm_80+ features. "\n'
                f'          "This experiment: {reasons}. Expect missing rows and predictions not measured.")'
            ),
        ]
    cells += [
        new_code_cell(f"!mkdir -p {folder}"),
        new_code_cell(f"%%writefile {folder}/README.md\n" + exp.readme.read_text(encoding="utf-8")),
        new_code_cell(f"%%writefile {folder}/run.py\n" + exp.run_script.read_text(encoding="utf-8")),
        new_code_cell(f"!python -m inferlab experiment run {folder} --provider {target} --bundle {bundle}"),
        new_code_cell(
            "from IPython.display import Markdown, display\n"
            f'display(Markdown(open("{folder}/README.md").read().split("\\n---", 1)[1]))'
        ),
        new_code_cell(_download_code(target, bundle)),
    ]
    nb = new_notebook(cells=cells, metadata=_metadata(target))
    nbformat.validate(nb)
    return nb


def write_notebook(nb, path: Path) -> Path:
    """Write `nb` to a new file `path` (atomically); InferlabError if `path` exists."""
    import nbformat

    from inferlab.lab.atomic import atomic_create_text

    try:
        atomic_create_text(Path(path), nbformat.writes(nb))
    except FileExistsError:
        raise InferlabError(f"{path} already exists: give another --out or move it away") from None
    return Path(path)


def _download_code(target: str, bundle: str) -> str:
    home = f"then at home: inferlab import {bundle}"
    if target == "colab":
        return f'from google.colab import files\nfiles.download("{bundle}")\nprint("{home}")'
    return (
        "from IPython.display import FileLink, display\n"
        f'display(FileLink("{bundle}"))  # also in the Output panel, under /kaggle/working\n'
        f'print("{home}")'
    )


def _metadata(target: str) -> dict:
    metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    }
    if target == "colab":
        metadata |= {"accelerator": "GPU", "colab": {"provenance": [], "gpuType": "T4"}}
    else:
        metadata["kaggle"] = {"accelerator": "nvidiaTeslaT4", "isInternetEnabled": True, "isGpuEnabled": True}
    return metadata
