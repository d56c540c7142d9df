"""The environment fingerprint stored with every result, so numbers are never compared blind.

GPU name, SM count, L2 and memory size, driver and CUDA versions, torch and triton versions,
the git revision of the code that ran, and flags that change numerics (TF32).
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

import torch

from inferlab import __version__
from inferlab.kernels.device import select_backend


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def git_revision(start: Path | None = None) -> str | None:
    """The commit of the source tree inferlab was imported from (None outside a git checkout).

    $INFERLAB_GIT_REVISION wins: a copy of the tree sent to a GPU machine has no .git folder."""
    if os.environ.get("INFERLAB_GIT_REVISION"):
        return os.environ["INFERLAB_GIT_REVISION"]
    here = start or Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def _driver_version() -> str | None:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None


def gpu_facts() -> dict | None:
    """Name, SM count, memory and L2 of GPU 0, or None with no CUDA device."""
    if not torch.cuda.is_available():
        return None
    p = torch.cuda.get_device_properties(0)
    return {
        "name": p.name,
        "capability": f"{p.major}.{p.minor}",
        "sm_count": p.multi_processor_count,
        "memory_bytes": p.total_memory,
        "l2_bytes": getattr(p, "L2_cache_size", None),
        "driver": _driver_version(),
    }


def fingerprint() -> dict:
    """Everything a reader needs to know which machine and code produced a number."""
    backend = select_backend()
    return {
        "inferlab": __version__,
        "git_revision": git_revision(),
        "backend": backend.label,
        "gpu": gpu_facts(),
        "cuda": torch.version.cuda,
        "torch": torch.__version__,
        "triton": _version("triton") or _version("pytorch-triton"),
        "numpy": _version("numpy"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        "tf32_cudnn": torch.backends.cudnn.allow_tf32,
    }
