"""Where kernels run: compiled on a CUDA GPU, or through Triton's CPU interpreter.

Triton reads `TRITON_INTERPRET` once, when it is first imported, so the choice has to be
made before that import. `select_backend()` is called by `inferlab.kernels` on import (and
by the CLI and the tests' conftest before anything else), which makes the choice once:

- a CUDA GPU visible to torch -> compiled kernels on "cuda";
- no GPU -> `TRITON_INTERPRET=1`, kernels run on CPU tensors at small shapes;
- Triton not installed (macOS) -> references and lessons work, kernels refuse with a message.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass


class KernelUnavailable(RuntimeError):
    """A Triton kernel cannot run here (no Triton, or Triton imported too early)."""


@dataclass(frozen=True, slots=True)
class Backend:
    device: str  # "cuda" or "cpu": where kernel inputs must live
    interpreted: bool  # True when Triton runs kernels through its CPU interpreter
    triton_available: bool
    reason: str  # one sentence a learner can read: why this backend

    @property
    def label(self) -> str:
        if not self.triton_available:
            return "references only (no Triton)"
        return "cuda (compiled)" if not self.interpreted else "cpu (Triton interpreter)"


_backend: Backend | None = None


def _cuda_available() -> bool:
    # Imports torch (not triton): torch.cuda.is_available() does not import triton.
    import torch

    return torch.cuda.is_available()


def select_backend() -> Backend:
    """Decide once per process where kernels run; sets TRITON_INTERPRET before triton loads."""
    global _backend
    if _backend is not None:
        return _backend
    has_triton = importlib.util.find_spec("triton") is not None
    forced = os.environ.get("TRITON_INTERPRET") == "1"
    if not has_triton:
        _backend = Backend("cpu", True, False, "Triton is not installed (it has no macOS wheels)")
    elif forced:
        _backend = Backend("cpu", True, True, "TRITON_INTERPRET=1 is set")
    elif _cuda_available():
        _backend = Backend("cuda", False, True, "a CUDA GPU is visible to torch")
    else:
        if "triton" in sys.modules:
            raise KernelUnavailable(
                "triton was imported before inferlab could enable its CPU interpreter; "
                "set TRITON_INTERPRET=1 in the environment or import inferlab.kernels first"
            )
        os.environ["TRITON_INTERPRET"] = "1"
        _backend = Backend("cpu", True, True, "no CUDA GPU found, so kernels use the interpreter")
    return _backend
