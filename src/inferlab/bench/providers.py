"""Who gets timed: our launcher and the baselines of each op, every one optional.

A provider is one implementation of an op behind one calling convention,
`fn(inputs, out) -> output`: `inputs` is the dict the SPEC's `make_inputs` returns, `out` a
preallocated output that providers with `writes_out=True` fill (our launchers); the others
(PyTorch eager, torch.compile, Liger) return a tensor of their own.

Baselines run on the very same input tensors, so at the same precision as ours. A baseline
whose package is missing is listed as `Unavailable` with the reason, never a crash.

Adding an op: write its eager function in `EAGER` (keyed by the SPEC's name); `torch` and
`torch.compile` providers follow from it. Extra libraries go in `EXTRA` as a factory that
imports inside itself and raises `ProviderUnavailable` (or ImportError) when it cannot run.
The provider types are in provider_types.py; the attention and quantized-matmul baselines, the
longest, in baselines_attention.py and baselines_quant.py; Liger and bitsandbytes' dequantize
stay here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import torch
import torch.nn.functional as F

from inferlab.bench.baselines_attention import (
    _eager_paged_decode,
    _hf_eager_attention,
    _sdpa_backend,
    _sdpa_dense_decode,
)
from inferlab.bench.baselines_quant import (
    _bitsandbytes_nf4_matmul,
    _cublas_dense,
    _inferlab_materialize,
    _inferlab_warp_specialized,
    _torch_int4pack,
)
from inferlab.bench.provider_types import OURS, Provider, ProviderUnavailable, Unavailable  # noqa: F401
from inferlab.kernels.spec import KernelSpec


# ---------------------------------------------------------------- eager PyTorch, per op
# Each takes the SPEC's inputs by name. Future ops (rmsnorm, rope) add a line here.
def _hf_rmsnorm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    # as Hugging Face's LlamaRMSNorm runs it eagerly: fp32 statistics, weight applied in x's dtype
    h = x.float()
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
    return weight * h.to(x.dtype)


def _hf_rope(q, k, cos, sin):
    # as Hugging Face's apply_rotary_pos_emb; q, k: [batch, seq, heads, D], cos/sin: [batch, seq, D]
    cos, sin = cos.unsqueeze(2), sin.unsqueeze(2)

    def rotate_half(x):
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat((-x2, x1), dim=-1)

    return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin


def _residual_rmsnorm(x, residual, weight, eps: float = 1e-6):
    h = x + residual
    return _hf_rmsnorm(h, weight, eps), h


EAGER: dict[str, Callable[..., torch.Tensor | tuple[torch.Tensor, ...]]] = {
    "add": lambda x, y: x + y,
    "swiglu": lambda gate, up: F.silu(gate) * up,
    "swiglu_fused": lambda gate_up: F.silu(gate_up.chunk(2, dim=-1)[0]) * gate_up.chunk(2, dim=-1)[1],
    "softmax": lambda x: torch.softmax(x, dim=-1),
    "rmsnorm": _hf_rmsnorm,
    "rmsnorm_residual": _residual_rmsnorm,
    "rope": _hf_rope,
    "flash_attention": _hf_eager_attention,
    "paged_decode_attention": _eager_paged_decode,
}


def _ours(spec: KernelSpec) -> Provider:
    return Provider(OURS, lambda inputs, out: spec.launcher(**inputs, out=out), writes_out=True)


def _torch_eager(spec: KernelSpec) -> Provider:
    if spec.name not in EAGER:
        raise ProviderUnavailable(f"no eager PyTorch version of {spec.name!r} in providers.EAGER")
    eager = EAGER[spec.name]
    return Provider("torch", lambda inputs, out: eager(**inputs), note="eager")


def _torch_compile(spec: KernelSpec) -> Provider:
    if spec.name not in EAGER:
        raise ProviderUnavailable(f"no eager PyTorch version of {spec.name!r} to compile")
    # dynamic=False: one specialised graph per shape, as a user with fixed shapes would get.
    compiled = torch.compile(EAGER[spec.name], dynamic=False)
    return Provider(
        "torch.compile", lambda inputs, out: compiled(**inputs), compiled=True, note="dynamic=False"
    )


def _liger_swiglu(spec: KernelSpec) -> Provider:
    module = importlib.import_module("liger_kernel.ops.swiglu")
    fn = getattr(module, "LigerSiLUMulFunction", None)
    if fn is None:
        raise ProviderUnavailable("liger_kernel.ops.swiglu has no LigerSiLUMulFunction in this version")
    return Provider("liger", lambda inputs, out: fn.apply(inputs["gate"], inputs["up"]))


def _bitsandbytes_nf4(spec: KernelSpec) -> Provider:
    functional = importlib.import_module("bitsandbytes.functional")
    from inferlab.kernels.nf4 import state_from_inputs

    def dequantize(inputs, out):
        # a real bitsandbytes QuantState-like object over the same tensors; out= as bnb allows
        state = state_from_inputs(inputs, out.shape, out.dtype)
        return functional.dequantize_4bit(inputs["weight"], state, out=out)

    return Provider("bitsandbytes", dequantize, writes_out=True, note="dequantize_4bit")


def _liger_function(module: str, name: str):
    fn = getattr(importlib.import_module(module), name, None)
    if fn is None:
        raise ProviderUnavailable(f"{module} has no {name} in this version of liger-kernel")
    return fn


def _liger_rmsnorm(spec: KernelSpec) -> Provider:
    fn = _liger_function("liger_kernel.ops.rms_norm", "LigerRMSNormFunction")
    # casting_mode="llama" is Hugging Face's LlamaRMSNorm rounding, the convention we match
    return Provider("liger", lambda inputs, out: fn.apply(inputs["x"], inputs["weight"], 1e-6, 0.0, "llama"))


def _liger_rmsnorm_residual(spec: KernelSpec) -> Provider:
    fn = _liger_function("liger_kernel.ops.fused_add_rms_norm", "LigerFusedAddRMSNormFunction")

    def fused(inputs, out):
        y, h = fn.apply(inputs["x"], inputs["residual"], inputs["weight"], 1e-6, 0.0, "llama")
        return y, h

    return Provider("liger", fused)


def _liger_softmax(spec: KernelSpec) -> Provider:
    fn = _liger_function("liger_kernel.ops.softmax", "LigerSoftmaxFunction")
    return Provider("liger", lambda inputs, out: fn.apply(inputs["x"]))


def _liger_rope(spec: KernelSpec) -> Provider:
    # Liger's rope rotates q and k in place, so the timed loop would rotate the same inputs
    # again and again and the after-timing check (the last call's output against the reference
    # of its inputs) cannot hold: it is listed as unavailable rather than judged unfairly.
    raise ProviderUnavailable("Liger's rope works in place on q and k, which the gate cannot judge")


# op -> provider name -> factory. "torch" and "torch.compile" cover every op in EAGER.
EXTRA: dict[str, dict[str, Callable[[KernelSpec], Provider]]] = {
    "swiglu": {"liger": _liger_swiglu},
    "softmax": {"liger": _liger_softmax},
    "rmsnorm": {"liger": _liger_rmsnorm},
    "rmsnorm_residual": {"liger": _liger_rmsnorm_residual},
    "rope": {"liger": _liger_rope},
    "nf4_dequantize": {"bitsandbytes": _bitsandbytes_nf4},
    "w4a16_matmul": {
        "cublas-bf16": _cublas_dense,
        "torch-int4pack": _torch_int4pack,
        "inferlab-materialize": _inferlab_materialize,
    },
    "nf4_matmul": {
        "cublas-bf16": _cublas_dense,
        "bitsandbytes": _bitsandbytes_nf4_matmul,
        "inferlab-materialize": _inferlab_materialize,
        "inferlab-ws": _inferlab_warp_specialized,
    },
    "int8_matmul": {"cublas-bf16": _cublas_dense},
    "flash_attention": {
        "sdpa-flash": _sdpa_backend("FLASH_ATTENTION"),
        "sdpa-efficient": _sdpa_backend("EFFICIENT_ATTENTION"),
        "sdpa-cudnn": _sdpa_backend("CUDNN_ATTENTION"),
        "sdpa-math": _sdpa_backend("MATH"),
    },
    "paged_decode_attention": {"sdpa-dense": _sdpa_dense_decode},
}
GENERIC: dict[str, Callable[[KernelSpec], Provider]] = {
    "torch": _torch_eager,
    "torch.compile": _torch_compile,
}


def factories_for(spec: KernelSpec) -> dict[str, Callable[[KernelSpec], Provider]]:
    """Ours first, then the SPEC's baselines in the order it lists them."""
    table = {OURS: _ours, **GENERIC, **EXTRA.get(spec.name, {})}
    names = [OURS, *spec.baselines, *(n for n in table if n not in spec.baselines and n != OURS)]
    return {n: table.get(n, _not_registered(n)) for n in dict.fromkeys(names)}


def _not_registered(name: str) -> Callable[[KernelSpec], Provider]:
    def factory(spec: KernelSpec) -> Provider:
        raise ProviderUnavailable(f"no provider {name!r} is registered for {spec.name!r}")

    return factory


def make_provider(
    name: str, factory: Callable[[KernelSpec], Provider], spec: KernelSpec
) -> Provider | Unavailable:
    """Build one provider; a missing package or an unsupported op becomes `Unavailable`."""
    try:
        return factory(spec)
    except ImportError as e:  # the package (or a piece of it) is not installed here
        return Unavailable(name, f"unavailable: {e}")
    except ProviderUnavailable as e:
        return Unavailable(name, f"unavailable: {e}")


def providers_for(spec: KernelSpec, only: list[str] | None = None) -> list[Provider | Unavailable]:
    """Every provider of `spec` (or those named in `only`), each built or marked unavailable."""
    table = factories_for(spec)
    names = list(table)
    if only:
        names = [n for n in only]
        table = {n: table.get(n, _not_registered(n)) for n in names}
    return [make_provider(n, table[n], spec) for n in names]
