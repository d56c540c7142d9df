"""Launcher helpers shared by every kernel module: validate inputs, prepare the output.

Every check raises `ValueError` or `TypeError` with one sentence that names the argument, so
a learner who passes the wrong thing reads what to fix, not a Triton traceback.
"""

from __future__ import annotations

import torch

from inferlab.kernels.device import select_backend

FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def validate(
    tensors: dict[str, torch.Tensor], dtypes: tuple[torch.dtype, ...] = FLOAT_DTYPES
) -> torch.Tensor:
    """Same dtype (one of `dtypes`), same device, the device kernels run on; returns the first."""
    first_name, first = next(iter(tensors.items()))
    for name, t in tensors.items():
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, not {type(t).__name__}")
        if t.dtype not in dtypes:
            allowed = ", ".join(str(d).removeprefix("torch.") for d in dtypes)
            raise TypeError(f"{name} has dtype {str(t.dtype).removeprefix('torch.')}; supported: {allowed}")
        if t.dtype != first.dtype:
            raise TypeError(f"{name} is {t.dtype} but {first_name} is {first.dtype}; pass one dtype")
        if t.device != first.device:
            raise ValueError(f"{name} is on {t.device} but {first_name} is on {first.device}")
    backend = select_backend()
    if first.device.type != backend.device:
        raise ValueError(
            f"kernels run on {backend.device} here ({backend.reason}), but {first_name} is on "
            f"{first.device}; move the tensors with .to('{backend.device}')"
        )
    return first


def require_contiguous(**tensors: torch.Tensor) -> None:
    for name, t in tensors.items():
        if not t.is_contiguous():
            raise ValueError(
                f"{name} must be contiguous (call .contiguous() first); its strides are {t.stride()}"
            )


def require_same_shape(**tensors: torch.Tensor) -> None:
    (first_name, first), *rest = tensors.items()
    for name, t in rest:
        if t.shape != first.shape:
            raise ValueError(f"{name} has shape {tuple(t.shape)} but {first_name} has {tuple(first.shape)}")


def prepare_out(
    out: torch.Tensor | None, shape: torch.Size | tuple[int, ...], like: torch.Tensor, name: str = "out"
) -> torch.Tensor:
    """Allocate the output, or check that the caller's `out` has the right shape, dtype, device."""
    if out is None:
        return torch.empty(shape, dtype=like.dtype, device=like.device)
    if tuple(out.shape) != tuple(shape):
        raise ValueError(f"{name} has shape {tuple(out.shape)}, expected {tuple(shape)}")
    if out.dtype != like.dtype or out.device != like.device:
        raise TypeError(f"{name} must be {like.dtype} on {like.device}, got {out.dtype} on {out.device}")
    if not out.is_contiguous():
        raise ValueError(f"{name} must be contiguous")
    return out


def needs_int64_offsets(largest_offset: int) -> bool:
    """True when an element offset a kernel computes can pass 2**31 - 1, so its index math must be
    int64; below that, 32-bit offsets are cheaper (fewer instructions per address)."""
    return largest_offset >= 2**31
