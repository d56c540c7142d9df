"""Attention baselines: HF-style eager attention and eager paged decode (the `torch` and
`torch.compile` providers' functions), and torch SDPA with each backend forced, or on a dense
cache. Registered in `providers.EXTRA` and `providers.EAGER`."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from inferlab.bench.provider_types import Provider, ProviderUnavailable
from inferlab.kernels.spec import KernelSpec

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
