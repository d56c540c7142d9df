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
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from inferlab.kernels.spec import KernelSpec

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


# ---------------------------------------------------------------- attention baselines
MATH_MAX_SCORES = 2**30  # math attention materializes batch * heads * seq_q * seq_k scores: past
# this (4 GiB in fp32, with copies) it is refused rather than allowed to fill the GPU


def _refuse_huge_scores(name: str, q: torch.Tensor, k: torch.Tensor) -> None:
    scores = q.shape[0] * q.shape[1] * q.shape[2] * k.shape[2]
    if scores > MATH_MAX_SCORES:
        raise ProviderUnavailable(
            f"{name} would materialize {scores:.2g} attention scores ({4 * scores / 2**30:.0f} GiB in "
            f"fp32); it runs at shapes with at most {MATH_MAX_SCORES:.2g}"
        )


def _sdpa_has_gqa() -> bool:
    return "enable_gqa" in (F.scaled_dot_product_attention.__doc__ or "")  # torch 2.5+


def _sdpa_gqa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor):
    """(k, v, kwargs) for SDPA: enable_gqa where this torch has it, else the kv heads repeated."""
    group = q.shape[1] // k.shape[1]
    if group == 1:
        return k, v, {}
    if _sdpa_has_gqa():
        return k, v, {"enable_gqa": True}
    return k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1), {}


def _hf_eager_attention(q, k, v):
    # as Hugging Face's eager_attention_forward: kv heads repeated, scores in the input dtype,
    # causal mask (end-aligned), softmax in fp32, P rounded to the input dtype, P @ V
    _refuse_huge_scores("eager attention", q, k)
    group = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
    scores = (q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5
    seq_q, seq_k = q.shape[2], k.shape[2]
    visible = torch.ones(seq_q, seq_k, dtype=torch.bool, device=q.device).tril(seq_k - seq_q)
    scores = scores.masked_fill(~visible, float("-inf"))
    return torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype) @ v


def _eager_paged_decode(q, k_cache, v_cache, block_table, seq_lens, k_dense=None, v_dense=None):
    # an engine without a paged kernel: gather each sequence's pages into a dense cache (timed),
    # then SDPA with a length mask. k_dense, v_dense belong to the sdpa-dense baseline.
    pages = block_table.long()  # [batch, max_blocks] -> physical block
    k = k_cache[pages].flatten(1, 2).transpose(1, 2)  # [batch, kv_heads, max_blocks * block_size, D]
    v = v_cache[pages].flatten(1, 2).transpose(1, 2)
    visible = torch.arange(k.shape[2], device=q.device) < seq_lens[:, None].long()  # [batch, tokens]
    k, v, gqa = _sdpa_gqa(q, k, v)
    out = F.scaled_dot_product_attention(q[:, :, None], k, v, attn_mask=visible[:, None, None], **gqa)
    return out[:, :, 0]


def _sdpa_backend(backend_name: str) -> Callable[[KernelSpec], Provider]:
    """torch SDPA forced onto one backend; a backend that refuses the inputs raises with its reasons."""

    def factory(spec: KernelSpec) -> Provider:
        import warnings

        from torch.nn.attention import SDPBackend, sdpa_kernel

        backend = getattr(SDPBackend, backend_name)

        def run(inputs, out):
            q, k, v = inputs["q"], inputs["k"], inputs["v"]
            if q.shape[2] != k.shape[2]:
                raise ProviderUnavailable("SDPA's is_causal aligns the mask top-left; ours is end-aligned")
            if backend_name == "MATH":
                _refuse_huge_scores("SDPBackend.MATH", q, k)
            k, v, gqa = _sdpa_gqa(q, k, v)
            with sdpa_kernel(backend), warnings.catch_warnings(record=True) as reasons:
                warnings.simplefilter("always")
                try:
                    return F.scaled_dot_product_attention(q, k, v, is_causal=True, **gqa)
                except RuntimeError as e:
                    why = "; ".join(str(w.message).splitlines()[0] for w in reasons)[:400]
                    raise ProviderUnavailable(
                        f"SDPBackend.{backend_name} refused these inputs: {why or e}"
                    ) from e

        note = "enable_gqa" if _sdpa_has_gqa() else "GQA by repeat_interleave (this torch has no enable_gqa)"
        name = f"sdpa-{backend_name.split('_')[0].lower()}"  # sdpa-flash, -efficient, -cudnn, -math
        return Provider(name, run, note=f"SDPBackend.{backend_name}, {note}")

    return factory


def _sdpa_dense_decode(spec: KernelSpec) -> Provider:
    def run(inputs, out):
        # the cache already dense ([batch, kv_heads, seq, D], made with the inputs, never timed)
        k, v, gqa = _sdpa_gqa(inputs["q"], inputs["k_dense"], inputs["v_dense"])
        return F.scaled_dot_product_attention(inputs["q"][:, :, None], k, v, **gqa)[:, :, 0]

    return Provider("sdpa-dense", run, note="torch SDPA on an unpaged cache, its default backend")


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


# ---------------------------------------------------------------- weight-only quantized matmuls
def _cublas_dense(spec: KernelSpec) -> Provider:
    # The SPEC's `w_dense` is W dequantized to x's dtype when the inputs were made, outside
    # timing and outside the byte count: this is a plain x @ W.T on the same numbers.
    def mm(inputs, out):
        return torch.mm(inputs["x"], inputs["w_dense"].t(), out=out)

    return Provider("cublas-bf16", mm, writes_out=True, note="x @ W.T, W dense in x's dtype")


def _inferlab_materialize(spec: KernelSpec) -> Provider:
    # The package's own opt-in path, timed beside its default: from DEQUANT_MIN_M rows the
    # weight is dequantized once into a scratch buffer (inside the timed call), then cuBLAS.
    def mm(inputs, out):
        return spec.launcher(**inputs, out=out, materialize=True)

    note = "materialize=True: W dequantized, then cuBLAS"
    return Provider("inferlab-materialize", mm, writes_out=True, note=note)


INT4PACK_SCHEMAS = {  # the signatures the conversion below was written for (torch >= 2.5)
    "_convert_weight_to_int4pack": "(Tensor self, int innerKTiles)",
    "_weight_int4pack_mm": "(Tensor self, Tensor mat2, int qGroupSize, Tensor qScaleAndZeros)",
}
INT4PACK_INNER_K_TILES = 8  # gpt-fast's and torchao's choice; K must be a multiple of 8 x 16


def _to_int4pack(qweight, scales, zeros, group_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Int4Weight pieces -> (tinygemm's packed weight, scales_and_zeros [K/G, N, 2]).

    tinygemm computes W = (q - 8) * scale + zero, so zero = (8 - zero_point) * scale."""
    from inferlab.kernels.quant_formats import unpack_int4_along_k

    q = unpack_int4_along_k(qweight).t()  # [N, K], 0..15
    as_bytes = ((q[:, ::2] << 4) | q[:, 1::2]).to(torch.uint8).contiguous()  # input 2j: high nibble
    packed = torch.ops.aten._convert_weight_to_int4pack(as_bytes, INT4PACK_INNER_K_TILES)
    s = scales.float()
    zero_point = 8.0 if zeros is None else zeros.float()
    scales_and_zeros = torch.stack([s, (8.0 - zero_point) * s], dim=-1).to(scales.dtype).contiguous()
    return packed, scales_and_zeros


def _torch_int4pack(spec: KernelSpec) -> Provider:
    if not torch.cuda.is_available():
        raise ProviderUnavailable("registered for CUDA only (the CPU op is _weight_int4pack_mm_for_cpu)")
    for name, signature in INT4PACK_SCHEMAS.items():
        op = getattr(torch.ops.aten, name, None)
        if op is None:
            raise ProviderUnavailable(f"this torch has no aten.{name}")
        if signature not in str(op.default._schema):
            raise ProviderUnavailable(f"aten.{name} is {op.default._schema}, not {name}{signature}")
    import weakref

    from inferlab.kernels.quant_formats import dequantize_int4_ref, quantize_int4
    from inferlab.kernels.w4a16 import SPEC_GROUP_SIZE

    # one small product first: a torch whose packing convention differs is unavailable, not wrong
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(64, 256, generator=gen).cuda()
    x = torch.randn(2, 256, generator=gen).cuda().to(torch.bfloat16)
    qw = quantize_int4(w, SPEC_GROUP_SIZE, scale_dtype=torch.bfloat16)
    try:
        packed, sz = _to_int4pack(qw.qweight, qw.scales, qw.zeros, SPEC_GROUP_SIZE)
        got = torch.ops.aten._weight_int4pack_mm(x, packed, SPEC_GROUP_SIZE, sz).float()
    except RuntimeError as e:
        raise ProviderUnavailable(f"aten._weight_int4pack_mm failed a smoke test: {e}") from None
    want = x.float() @ dequantize_int4_ref(qw, torch.bfloat16).float().t()
    if (got - want).abs().max() > 0.05 * want.pow(2).mean().sqrt():
        raise ProviderUnavailable("aten._weight_int4pack_mm disagrees with x @ W.T on a smoke test")

    converted: dict[int, tuple] = {}  # id(qweight) -> (packed, scales_and_zeros), while it lives

    def mm(inputs, out):
        # converted on the first call with each input set (the untimed warm-up), never in a graph
        qweight = inputs["qweight"]
        if id(qweight) not in converted:
            key = id(qweight)
            weakref.finalize(qweight, converted.pop, key, None)
            converted[key] = _to_int4pack(qweight, inputs["scales"], inputs.get("zeros"), SPEC_GROUP_SIZE)
        packed, scales_and_zeros = converted[id(qweight)]
        return torch.ops.aten._weight_int4pack_mm(inputs["x"], packed, SPEC_GROUP_SIZE, scales_and_zeros)

    return Provider("torch-int4pack", mm, note="tinygemm, weight converted before timing")


def _bitsandbytes_nf4_matmul(spec: KernelSpec) -> Provider:
    matmul_4bit = getattr(importlib.import_module("bitsandbytes"), "matmul_4bit", None)
    if matmul_4bit is None:
        raise ProviderUnavailable("bitsandbytes has no matmul_4bit in this version")
    from inferlab.kernels.w4a16 import nf4_state_of

    def mm(inputs, out):
        # W.t() as bitsandbytes' Linear4bit passes it; its own dispatch picks gemv or gemm
        return matmul_4bit(inputs["x"], inputs["weight"].t(), nf4_state_of(inputs, out.shape[1]))

    return Provider("bitsandbytes", mm, note="matmul_4bit")


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
