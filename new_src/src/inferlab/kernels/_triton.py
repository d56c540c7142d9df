"""`triton` and `tl` for kernel modules, or stand-ins where Triton is not installed.

Kernel modules import `triton, tl` from here so that, on macOS (no Triton wheels), the
module still imports and its `*_ref` reference and SPEC still work; launching a kernel then
raises `KernelUnavailable` with a message instead of an ImportError at import time.
"""

from __future__ import annotations

from inferlab.kernels.device import KernelUnavailable, select_backend

select_backend()  # must run before `import triton`: it may set TRITON_INTERPRET

try:
    import triton
    import triton.language as tl

    HAVE_TRITON = True
except ImportError:  # macOS or a torch-only install
    HAVE_TRITON = False

    class _MissingKernel:
        def __init__(self, fn):
            self.fn = fn
            self.__name__ = fn.__name__
            self.__doc__ = fn.__doc__

        def __getitem__(self, grid):
            raise KernelUnavailable(
                f"{self.__name__} needs Triton, which is not installed here; run kernels on "
                "Linux (a container works) or on a GPU notebook"
            )

    class _TritonStandIn:
        @staticmethod
        def jit(fn=None, **_kwargs):
            return _MissingKernel(fn) if fn is not None else _MissingKernel

        @staticmethod
        def cdiv(a: int, b: int) -> int:
            return -(-a // b)

        @staticmethod
        def next_power_of_2(n: int) -> int:
            return 1 if n <= 1 else 1 << (n - 1).bit_length()

    class _LanguageStandIn:
        constexpr = object()  # only used in annotations of kernels that never run

    triton = _TritonStandIn()
    tl = _LanguageStandIn()

__all__ = ["HAVE_TRITON", "tl", "triton"]
