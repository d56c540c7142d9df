"""Triton kernels, each with a plain-PyTorch reference and a SPEC.

Importing this package chooses where kernels run (see `device.select_backend`): compiled on
a CUDA GPU, or through Triton's CPU interpreter, which must be switched on before triton is
first imported.

`REGISTRY` is the explicit list of SPECs that `inferlab run`, `check` and `bench` go through.
"""

from __future__ import annotations

from inferlab.kernels.device import select_backend

select_backend()

from inferlab.kernels.attention import FLASH_ATTENTION_SPEC  # noqa: E402
from inferlab.kernels.elementwise import ADD_SPEC, SWIGLU_FUSED_SPEC, SWIGLU_SPEC  # noqa: E402
from inferlab.kernels.nf4 import NF4_DEQUANT_SPEC  # noqa: E402
from inferlab.kernels.paged_attention import PAGED_DECODE_SPEC  # noqa: E402
from inferlab.kernels.rmsnorm import RMSNORM_RESIDUAL_SPEC, RMSNORM_SPEC  # noqa: E402
from inferlab.kernels.rope import SPEC as ROPE_SPEC  # noqa: E402
from inferlab.kernels.softmax import SPEC as SOFTMAX_SPEC  # noqa: E402
from inferlab.kernels.spec import KernelSpec  # noqa: E402
from inferlab.kernels.w4a16 import INT8_MATMUL_SPEC, NF4_MATMUL_SPEC, W4A16_SPEC  # noqa: E402

REGISTRY: tuple[KernelSpec, ...] = (
    ADD_SPEC,
    SWIGLU_SPEC,
    SWIGLU_FUSED_SPEC,
    SOFTMAX_SPEC,
    RMSNORM_SPEC,
    RMSNORM_RESIDUAL_SPEC,
    ROPE_SPEC,
    NF4_DEQUANT_SPEC,
    W4A16_SPEC,
    NF4_MATMUL_SPEC,
    INT8_MATMUL_SPEC,
    FLASH_ATTENTION_SPEC,
    PAGED_DECODE_SPEC,
)


def get_spec(name: str) -> KernelSpec:
    """The SPEC called `name`, or a ValueError that lists the known names."""
    for spec in REGISTRY:
        if spec.name == name:
            return spec
    known = ", ".join(s.name for s in REGISTRY)
    raise ValueError(f"no kernel called {name!r}; known kernels: {known}")
