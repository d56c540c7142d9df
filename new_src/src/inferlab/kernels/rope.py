"""Rotary position embedding (RoPE) on q and k, Llama's rotate-half convention (lesson 9).

Math, for one head vector x of head_dim D at a token whose cos, sin rows are c, s (each [D], as
Hugging Face's LlamaRotaryEmbedding returns them, the D/2 frequencies written twice):
    rotate_half(x) = cat(-x[D/2:], x[:D/2])
    rope(x)        = x * c + rotate_half(x) * s
i.e. with x1 = x[:D/2], x2 = x[D/2:] (and c1, c2, s1, s2 the halves of c and s):
    out[:D/2] = x1 * c1 - x2 * s1
    out[D/2:] = x2 * c2 + x1 * s2
Each (x1[i], x2[i]) pair is turned by the angle of frequency i at that token's position. The
kernel uses all four halves, so it computes the formula above for any cos, sin, duplicated or not.

Layout:
    q:        [batch, seq, q_heads, head_dim]     k: [batch, seq, kv_heads, head_dim]
    cos, sin: [batch, seq, head_dim]              (or [1, seq, head_dim]: shared by the batch)
Positions live in cos/sin, one row per token, so prefill, decode and ragged batches all work.
Last dims contiguous; the other strides are passed, so q and k may be views of a fused qkv
projection. GQA/MQA: kv_heads may be anything, 1 included.

One launch rotates both q and k: one program instance per token (batch * seq programs) loads
all of that token's q and kv heads as [heads, D/2] tiles, one per half (Llama-3-8B: 40 heads x
128 = 5120 values, 10 KiB in bf16, all in flight at once), and its cos and sin rows once, then
stores the rotated tiles. fp32 math, one rounding on the store. `inplace=True` writes over q and
k: every load of a program comes before its first store, and no other program touches that token.
Variants: one.

Napkin math, per token with b bytes per element, H = q_heads + kv_heads:
    bytes: read q, k (H * D * b), write them (H * D * b), read cos, sin (2 * D * b)
    FLOPs: 3 per element of q and k (two multiplies and an add)
    -> memory bound. Llama-3-8B, 16384 tokens in bf16: 40 heads x 128 x 2 bytes x 2 + cos/sin
       = 20.5 KiB a token, 336 MiB in all: ~0.1 ms at ~3.3 TB/s.
"""

from __future__ import annotations

import math

import torch

from inferlab.kernels._launch import prepare_out, validate
from inferlab.kernels._triton import tl, triton
from inferlab.kernels.spec import BenchShape, KernelSpec, Shape, random_tensor

MAX_HEAD_DIM = 256
MAX_TILE_VALUES = 32768  # q and k values one program holds: 128 fp32 per thread at 8 warps
VALUES_PER_THREAD = 32
MAX_NUM_WARPS = 8


def rope_num_warps(tile_values: int) -> int:
    """Warps for a program holding tile_values values: ~VALUES_PER_THREAD each, 1 to MAX_NUM_WARPS.

    Picked from one num_warps sweep on an H200 (Triton 3.6, bf16, 4096 and 16384 tokens): 8 for
    Llama-3-8B's 32 + 8 heads of 128, 8 for 64 + 8 heads, 2 for 16 + 8 heads of 64. Re-measure
    with `inferlab bench` before changing it."""
    return min(MAX_NUM_WARPS, triton.next_power_of_2(triton.cdiv(tile_values, 32 * VALUES_PER_THREAD)))


# ---------------------------------------------------------------- reference (plain PyTorch)
def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rope_ref(
    q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    # cos, sin: [batch, seq, D] -> [batch, seq, 1, D], broadcast over the heads
    c, s = cos.float().unsqueeze(2), sin.float().unsqueeze(2)
    q32, k32 = q.float(), k.float()
    q_out = q32 * c + _rotate_half(q32) * s
    k_out = k32 * c + _rotate_half(k32) * s
    return q_out.to(q.dtype), k_out.to(k.dtype)


# ---------------------------------------------------------------- kernel
@triton.jit
def _load_halves(
    x_ptr, stride_h, n_heads, HALF_DIM: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_HALF: tl.constexpr
):
    """x_ptr: one token's heads, [n_heads, 2 * HALF_DIM] with row stride stride_h -> x1, x2 in fp32."""
    offs_h = tl.arange(0, BLOCK_H)
    offs_d = tl.arange(0, BLOCK_HALF)
    mask = (offs_h < n_heads)[:, None] & (offs_d < HALF_DIM)[None, :]
    x1_ptrs = x_ptr + offs_h[:, None] * stride_h + offs_d[None, :]  # [BLOCK_H, BLOCK_HALF]
    x1 = tl.load(x1_ptrs, mask=mask, other=0.0).to(tl.float32)
    x2 = tl.load(x1_ptrs + HALF_DIM, mask=mask, other=0.0).to(tl.float32)
    return x1, x2


@triton.jit
def _store_rotated(
    out_ptr,
    stride_h,
    n_heads,
    x1,
    x2,
    c1,
    c2,
    s1,
    s2,
    HALF_DIM: tl.constexpr,
    BLOCK_H: tl.constexpr,
    BLOCK_HALF: tl.constexpr,
):
    offs_h = tl.arange(0, BLOCK_H)
    offs_d = tl.arange(0, BLOCK_HALF)
    mask = (offs_h < n_heads)[:, None] & (offs_d < HALF_DIM)[None, :]
    out1_ptrs = out_ptr + offs_h[:, None] * stride_h + offs_d[None, :]
    tl.store(out1_ptrs, (x1 * c1 - x2 * s1).to(out_ptr.dtype.element_ty), mask=mask)
    tl.store(out1_ptrs + HALF_DIM, (x2 * c2 + x1 * s2).to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _rope_kernel(
    q_ptr,
    k_ptr,
    cos_ptr,
    sin_ptr,
    q_out_ptr,
    k_out_ptr,
    seq_len,
    n_q_heads,
    n_kv_heads,
    stride_qb,
    stride_qs,
    stride_qh,
    stride_kb,
    stride_ks,
    stride_kh,
    stride_cos_b,  # 0 when one cos row per position serves the whole batch
    stride_cos_s,
    stride_sin_b,
    stride_sin_s,
    stride_q_out_b,
    stride_q_out_s,
    stride_q_out_h,
    stride_k_out_b,
    stride_k_out_s,
    stride_k_out_h,
    HALF_DIM: tl.constexpr,
    BLOCK_HQ: tl.constexpr,
    BLOCK_HK: tl.constexpr,
    BLOCK_HALF: tl.constexpr,
):
    token = tl.program_id(axis=0).to(tl.int64)  # int64: batch * stride can pass 2**31
    b = token // seq_len
    s = token % seq_len
    # every load is issued before any store: all of the token's bytes are in flight at once,
    # and inplace=True is safe (a store can never overwrite a value still to be read)
    q1, q2 = _load_halves(
        q_ptr + b * stride_qb + s * stride_qs, stride_qh, n_q_heads, HALF_DIM, BLOCK_HQ, BLOCK_HALF
    )
    k1, k2 = _load_halves(
        k_ptr + b * stride_kb + s * stride_ks, stride_kh, n_kv_heads, HALF_DIM, BLOCK_HK, BLOCK_HALF
    )
    # this token's cos and sin, loaded once for all of its q and kv heads: [1, BLOCK_HALF] each
    offs_d = tl.arange(0, BLOCK_HALF)
    mask_d = offs_d < HALF_DIM
    cos_row = cos_ptr + b * stride_cos_b + s * stride_cos_s
    sin_row = sin_ptr + b * stride_sin_b + s * stride_sin_s
    c1 = tl.load(cos_row + offs_d, mask=mask_d, other=0.0).to(tl.float32)[None, :]
    c2 = tl.load(cos_row + HALF_DIM + offs_d, mask=mask_d, other=0.0).to(tl.float32)[None, :]
    s1 = tl.load(sin_row + offs_d, mask=mask_d, other=0.0).to(tl.float32)[None, :]
    s2 = tl.load(sin_row + HALF_DIM + offs_d, mask=mask_d, other=0.0).to(tl.float32)[None, :]
    q_out = q_out_ptr + b * stride_q_out_b + s * stride_q_out_s
    _store_rotated(q_out, stride_q_out_h, n_q_heads, q1, q2, c1, c2, s1, s2, HALF_DIM, BLOCK_HQ, BLOCK_HALF)
    k_out = k_out_ptr + b * stride_k_out_b + s * stride_k_out_s
    _store_rotated(k_out, stride_k_out_h, n_kv_heads, k1, k2, c1, c2, s1, s2, HALF_DIM, BLOCK_HK, BLOCK_HALF)


# ---------------------------------------------------------------- launcher
def _check_layout(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> None:
    if q.dim() != 4 or k.dim() != 4:
        raise ValueError(
            f"q and k must be [batch, seq, heads, head_dim]; got q {tuple(q.shape)}, k {tuple(k.shape)}"
        )
    batch, seq_len, _, head_dim = q.shape
    if (k.shape[0], k.shape[1], k.shape[3]) != (batch, seq_len, head_dim):
        raise ValueError(f"k {tuple(k.shape)} must match q {tuple(q.shape)} in batch, seq and head_dim")
    if head_dim % 2 or not 0 < head_dim <= MAX_HEAD_DIM:
        raise ValueError(f"head_dim must be even and at most {MAX_HEAD_DIM}, not {head_dim}")
    for name, t in (("cos", cos), ("sin", sin)):
        if t.dim() != 3 or t.shape[0] not in (1, batch) or tuple(t.shape[1:]) != (seq_len, head_dim):
            raise ValueError(
                f"{name} has shape {tuple(t.shape)}; expected [{batch} (or 1), {seq_len}, {head_dim}]"
            )
    for name, t in (("q", q), ("k", k), ("cos", cos), ("sin", sin)):
        if t.stride(-1) != 1:
            raise ValueError(
                f"{name}'s last dimension must be contiguous (stride 1), its strides are {t.stride()}"
            )


def _prepare_outs(q, k, out, inplace):
    if inplace:
        if out is not None:
            raise ValueError("pass either inplace=True or out=, not both")
        return q, k
    if out is None:
        out = (None, None)
    elif not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise TypeError("out must be a tuple (q_out, k_out)")
    return prepare_out(out[0], q.shape, q, name="q_out"), prepare_out(out[1], k.shape, k, name="k_out")


def apply_rope(
    q: torch.Tensor,
    k: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    inplace: bool = False,
    out: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """q: [B, S, Hq, D], k: [B, S, Hkv, D], cos, sin: [B or 1, S, D] -> (rope(q), rope(k))."""
    validate({"q": q, "k": k, "cos": cos, "sin": sin})
    _check_layout(q, k, cos, sin)
    q_out, k_out = _prepare_outs(q, k, out, inplace)
    batch, seq_len, n_q_heads, head_dim = q.shape
    n_kv_heads = k.shape[2]
    if q.numel() == 0 and k.numel() == 0:
        return q_out, k_out
    block_half = triton.next_power_of_2(head_dim // 2)
    block_hq = triton.next_power_of_2(max(n_q_heads, 1))
    block_hk = triton.next_power_of_2(max(n_kv_heads, 1))
    tile_values = 2 * (block_hq + block_hk) * block_half  # q and k, both halves, in registers
    if tile_values > MAX_TILE_VALUES:
        raise ValueError(
            f"{n_q_heads} q heads and {n_kv_heads} kv heads of {head_dim} are more than one program "
            f"holds ({MAX_TILE_VALUES} values)"
        )
    cos = cos.expand(batch, seq_len, head_dim)  # a shared row gets batch stride 0, no copy
    sin = sin.expand(batch, seq_len, head_dim)
    _rope_kernel[(batch * seq_len,)](  # one program per token
        q,
        k,
        cos,
        sin,
        q_out,
        k_out,
        seq_len,
        n_q_heads,
        n_kv_heads,
        *q.stride()[:3],
        *k.stride()[:3],
        *cos.stride()[:2],
        *sin.stride()[:2],
        *q_out.stride()[:3],
        *k_out.stride()[:3],
        HALF_DIM=head_dim // 2,
        BLOCK_HQ=block_hq,
        BLOCK_HK=block_hk,
        BLOCK_HALF=block_half,
        num_warps=rope_num_warps(tile_values),
    )
    return q_out, k_out


# ---------------------------------------------------------------- spec
# dims = (batch, seq, q_heads, kv_heads, head_dim)
def _make_inputs(dims, dtype, device, gen):
    batch, seq_len, n_q_heads, n_kv_heads, head_dim = dims
    # cos and sin of random angles, NOT duplicated across the halves as a model's are: a kernel
    # that reads one half of cos or sin for both halves of the head fails
    angles = 2 * math.pi * torch.rand(batch, seq_len, head_dim, generator=gen)
    return {
        "q": random_tensor((batch, seq_len, n_q_heads, head_dim), dtype, device, gen),
        "k": random_tensor((batch, seq_len, n_kv_heads, head_dim), dtype, device, gen),
        "cos": angles.cos().to(device=device, dtype=dtype),
        "sin": angles.sin().to(device=device, dtype=dtype),
    }


def _head_elements(dims: tuple[int, ...]) -> int:
    batch, seq_len, n_q_heads, n_kv_heads, head_dim = dims
    return batch * seq_len * (n_q_heads + n_kv_heads) * head_dim


def _bytes_moved(dims: tuple[int, ...], dtype: torch.dtype) -> int:
    batch, seq_len, *_, head_dim = dims
    # read q and k, write them back rotated; read one cos and one sin row per token
    return (2 * _head_elements(dims) + 2 * batch * seq_len * head_dim) * dtype.itemsize


SPEC = KernelSpec(
    name="rope",
    module=__name__,
    launcher=apply_rope,
    reference=rope_ref,
    make_inputs=_make_inputs,
    test_shapes=(
        Shape((1, 1, 1, 1, 2), "size 1: one token, one head of the smallest even head_dim"),
        Shape((1, 3, 32, 8, 128), "Llama-3-8B heads (32 q, 8 kv, 128), 3 tokens"),
        Shape((2, 5, 4, 2, 64), "two sequences of odd length 5: program id -> (batch, position)"),
        Shape((2, 3, 8, 1, 128), "MQA: one kv head shared by 8 q heads"),
        Shape((1, 2, 9, 3, 64), "SmolLM2 heads: 9 and 3, not powers of two, masked head rows"),
        Shape((1, 3, 6, 2, 80), "head_dim 80: half of 40 lanes masked in a block of 64"),
        Shape((1, 2, 20, 4, 256), "head_dim 256, the largest: 20 q heads in a block of 32"),
    ),
    bench_shapes=(
        BenchShape((1, 1, 32, 8, 128), "llama-3-8b", "q/k rope, decode 1 token"),
        BenchShape((16, 1, 32, 8, 128), "llama-3-8b", "q/k rope, decode 16 sequences"),
        BenchShape((64, 1, 32, 8, 128), "llama-3-8b", "q/k rope, decode 64 sequences"),
        BenchShape((1, 4096, 32, 8, 128), "llama-3-8b", "q/k rope, prefill 4096 tokens"),
        BenchShape((1, 16384, 32, 8, 128), "llama-3-8b", "q/k rope, prefill 16384 tokens"),
    ),
    flops=lambda dims: 3 * _head_elements(dims),
    bytes_moved=_bytes_moved,
    bound="memory",
    baselines=("torch", "torch.compile", "liger"),
    lesson=9,
    summary="RoPE on q and k in one launch, one program per token, rotate-half convention",
)
