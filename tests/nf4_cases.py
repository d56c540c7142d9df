"""Parametrized NF4 cases shared by the format and kernel tests: (dims, dtype, nested, blocksize)."""

from __future__ import annotations

import pytest
import torch

DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def nf4_cases(sizes: list[tuple[tuple[int, ...], int]], dtypes=DTYPES) -> list:
    """One pytest.param per (dims, blocksize) in `sizes`, dtype, and nested or plain absmax."""
    return [
        pytest.param(
            dims, dtype, nested, bs, id=f"{'x'.join(map(str, dims))}-{str(dtype)[6:]}-n{int(nested)}-bs{bs}"
        )
        for dims, bs in sizes
        for dtype in dtypes
        for nested in (False, True)
    ]
