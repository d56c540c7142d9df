"""The provider types every baseline module shares: what a provider is, and how one that cannot
run here says so (`providers.py` explains the calling convention)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

OURS = "inferlab"


class ProviderUnavailable(RuntimeError):
    """This provider cannot run here; the message says why, in a few words."""


@dataclass(slots=True)
class Provider:
    name: str
    fn: Callable[..., torch.Tensor | tuple[torch.Tensor, ...]]  # fn(inputs, out)
    writes_out: bool = False  # True: fills the `out` it is given (so a poisoned `out` shows gaps)
    compiled: bool = False  # True: the first call compiles (timed apart, never in steady state)
    note: str = ""


@dataclass(frozen=True, slots=True)
class Unavailable:
    name: str
    reason: str
