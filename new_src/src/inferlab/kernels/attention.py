"""Causal flash attention for prefill, dense and variable-length batches (lesson 9: attention).

Math, for one head with queries q_i, keys k_j, values v_j (head_dim D, scale s = 1/sqrt(D)):
    S_ij = s * q_i . k_j                 (-inf where the causal mask hides key j from query i)
    P_ij = exp(S_ij - m_i) / l_i         m_i = max_j S_ij,  l_i = sum_j exp(S_ij - m_i)
    O_i  = sum_j P_ij v_j                lse_i = m_i + log(l_i)   (natural log, fp32)

Flash attention never writes S or P to memory: one program owns BLOCK_M queries of one head and
walks the keys in tiles of BLOCK_N, keeping the online-softmax state of lesson 4 per query row
(m_i running max, l_i running sum, acc the unnormalized output, all fp32). When a tile raises the
max to m_new, l_i and acc are rescaled by exp(m_i - m_new) before the tile's terms are added; O =
acc / l_i once, at the end. Scores are kept in log2 units (S * log2(e)) so each exponential is
one exp2. The two products run on tensor cores: Q K^T with Q, K in their own dtype and P V with
P rounded to V's dtype (fp32 accumulation in both), as FlashAttention and torch SDPA do.

Layout: q, out: [batch, q_heads, seq_q, head_dim]; k, v: [batch, kv_heads, seq_k, head_dim];
last dim contiguous, other strides free (a [batch, seq, heads, D] tensor transposed works with no
copy). GQA/MQA: q head h reads kv head h // (q_heads // kv_heads). head_dim 16-256; one that is
not a power of two (80, 96) is padded to the next with masked lanes.
Causal mask, aligned to the END when seq_q != seq_k (decode with a cached prefix, FlashAttention
2.1's convention): query i sees key j iff j <= i + (seq_k - seq_q). A query that sees no key
(seq_q > seq_k) gets 0 and lse -inf.

Variable length (`flash_attention_varlen`, FlashAttention's layout): sequences packed along one
token axis, q: [total_q, q_heads, D], k, v: [total_k, kv_heads, D], cu_seqlens_q/k: [batch + 1]
int32 prefix sums (sequence b is rows cu[b]:cu[b+1]). Same kernel: each program reads its
sequence's start and length from cu_seqlens; the mask is end-aligned per sequence.

Grid: (cdiv(seq_q, BLOCK_M), batch * q_heads), the query blocks of one head adjacent so its K, V
stay in L2 while they run, and the last (heaviest, under a causal mask) query blocks first. Per
program, the key tiles fall in three groups, under the causal mask:
    1. tiles every query row of the block sees entirely: no mask at all (the main loop);
    2. tiles on the diagonal (and the ragged end of seq_k): the mask is applied;
    3. tiles no row sees: skipped, never loaded (about half of all tiles at seq_q = seq_k).
Variants: one kernel (dense and varlen differ in where a sequence starts); configs by head_dim:
    FLASH_CONFIGS: head-dim block -> BLOCK_M, BLOCK_N, num_warps, num_stages
    16/32: 128, 128, 4, 3 · 64: 128, 128, 8, 3 · 128: 128, 64, 8, 3 · 256: 64, 64, 8, 2
    (fp32, for tests only: at most 64 x 32 tiles, 4 warps, 1 stage)
Picked from the Triton fused-attention tutorial's Hopper configs, not yet swept here:
`benchmarks/gpu_attention.sh sweep` times the alternatives. No autotuning at import or launch.

Napkin math, causal with seq_q = seq_k = S (pairs = S(S+1)/2 query-key pairs seen):
    FLOPs: 4 * batch * q_heads * pairs * D     (2 for Q K^T, 2 for P V, per pair and lane)
    bytes: q, k, v read once, out written once
    Llama-3-8B, 4 x 4096 tokens in bf16: 4.4e12 FLOP over 320 MiB, ~14000 FLOP/byte: compute
    bound, far past any GPU's ridge point (~300 FLOP/byte on an H200).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from inferlab.kernels._launch import prepare_out, validate
from inferlab.kernels._triton import tl, triton
from inferlab.kernels.device import select_backend
from inferlab.kernels.spec import BenchShape, KernelSpec, Shape, random_tensor

LOG2_E = 1.4426950408889634  # scores in log2 units: exp(x) = exp2(x * log2(e))
MIN_HEAD_DIM, MAX_HEAD_DIM = 16, 256  # 16: a tensor-core dot's smallest K


@dataclass(frozen=True, slots=True)
class FlashConfig:
    block_m: int  # queries per program
    block_n: int  # keys per tile of the loop
    num_warps: int
    num_stages: int  # tiles of K and V in flight (software pipelining of the loop)


# head-dim block -> config. Registers bound the tiles: acc is BLOCK_M x D fp32 and the scores
# BLOCK_M x BLOCK_N fp32, spread over num_warps * 32 threads.
FLASH_CONFIGS: dict[int, FlashConfig] = {
    16: FlashConfig(128, 128, 4, 3),
    32: FlashConfig(128, 128, 4, 3),
    64: FlashConfig(128, 128, 8, 3),
    128: FlashConfig(128, 64, 8, 3),
    256: FlashConfig(64, 64, 8, 2),
}


def head_dim_block(head_dim: int) -> int:
    """The power-of-two tile width that holds head_dim (16 at least: a tensor-core dot's K)."""
    return max(MIN_HEAD_DIM, triton.next_power_of_2(head_dim))


def config_for(head_dim: int, dtype: torch.dtype = torch.bfloat16) -> FlashConfig:
    """The table's config; fp32 (tests: FMA dots, no tensor cores) takes tiles of at most 64 x 32
    and one stage, since its tiles need twice the shared memory."""
    cfg = FLASH_CONFIGS[head_dim_block(head_dim)]
    if dtype == torch.float32:
        return FlashConfig(min(cfg.block_m, 64), min(cfg.block_n, 32), 4, 1)
    return cfg


# ---------------------------------------------------------------- reference (plain PyTorch)
def causal_mask(seq_q: int, seq_k: int, device=None) -> torch.Tensor:
    """[seq_q, seq_k] bool, True where query i sees key j: j <= i + (seq_k - seq_q) (end-aligned)."""
    return torch.ones(seq_q, seq_k, dtype=torch.bool, device=device).tril(seq_k - seq_q)


def flash_attention_ref(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    causal: bool = True,
    scale: float | None = None,
    return_lse: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """torch SDPA in fp32 on upcast inputs -> fp32 out [B, Hq, Sq, D] (and lse [B, Hq, Sq])."""
    group = q.shape[1] // k.shape[1]
    q32 = q.float()
    k32 = k.float().repeat_interleave(group, dim=1)  # GQA: kv head h // group serves q head h
    v32 = v.float().repeat_interleave(group, dim=1)
    seq_q, seq_k = q.shape[2], k.shape[2]
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    mask = causal_mask(seq_q, seq_k, q.device) if causal else None
    if causal and seq_q == seq_k:  # same mask; lets CUDA pick a fused fp32 kernel (bench shapes)
        out = F.scaled_dot_product_attention(q32, k32, v32, is_causal=True, scale=scale)
    else:
        out = F.scaled_dot_product_attention(q32, k32, v32, attn_mask=mask, scale=scale)
    if mask is not None:  # a query that sees no key: 0 (SDPA's answer differs across versions)
        out = out.masked_fill(~mask.any(-1)[:, None], 0.0)
    if not return_lse:
        return out
    scores = scale * (q32 @ k32.transpose(-1, -2))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return out, torch.logsumexp(scores, dim=-1)


# ---------------------------------------------------------------- kernel
@triton.jit
def _attn_tiles(
    acc,
    l_i,
    m_i,
    q,
    k_base,  # k_ptr at this (sequence, kv head), key 0, lane 0
    v_base,
    stride_kn,
    stride_vn,
    start_n,
    end_n,
    offs_m,  # query rows of this block, within the sequence
    seq_k,
    causal_offset,  # seq_k - seq_q: query i sees key j iff j <= i + causal_offset
    qk_scale,  # scale * log2(e)
    HEAD_DIM: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
    MASKED: tl.constexpr,  # False: every (row, key) of these tiles is visible and key < seq_k
    CAUSAL: tl.constexpr,
    UPCAST: tl.constexpr,  # interpreter + bf16 only: its bf16 dot is wrong, so dot in fp32
    INPUT_PRECISION: tl.constexpr,
):
    """Keys start_n:end_n (BLOCK_N at a time) into the online-softmax state (acc, l_i, m_i)."""
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    # [BLOCK_N, BLOCK_D] tiles of keys start_n + offs_n; advanced by one tile a step (one add)
    k_ptrs = k_base + (start_n + offs_n)[:, None] * stride_kn + offs_d[None, :]
    v_ptrs = v_base + (start_n + offs_n)[:, None] * stride_vn + offs_d[None, :]
    for tile_start in range(start_n, end_n, BLOCK_N):
        cols = tile_start + offs_n
        if MASKED:
            kv_mask = (cols < seq_k)[:, None] & (offs_d < HEAD_DIM)[None, :]
            k = tl.load(k_ptrs, mask=kv_mask, other=0.0)
        elif BLOCK_D != HEAD_DIM:  # padded head_dim (80, 96): mask the lanes only
            kv_mask = (offs_d < HEAD_DIM)[None, :]
            k = tl.load(k_ptrs, mask=kv_mask, other=0.0)
        else:
            k = tl.load(k_ptrs)  # the main loop: no mask, full-width vector loads
        if UPCAST:
            k = k.to(tl.float32)
        qk = tl.dot(q, tl.trans(k), input_precision=INPUT_PRECISION)  # [BLOCK_M, BLOCK_N] fp32
        if MASKED:
            visible = (cols < seq_k)[None, :]
            if CAUSAL:
                visible = visible & (cols[None, :] <= offs_m[:, None] + causal_offset)
            qk = tl.where(visible, qk * qk_scale, -float("inf"))
            m_new = tl.maximum(m_i, tl.max(qk, axis=1))
            # a row that has seen no key yet keeps m = -inf: subtract 0, so exp2 gives 0, not NaN
            m_safe = tl.where(m_new == -float("inf"), 0.0, m_new)
            p = tl.exp2(qk - m_safe[:, None])
            alpha = tl.exp2(m_i - m_safe)
        else:
            m_new = tl.maximum(m_i, tl.max(qk, axis=1) * qk_scale)
            p = tl.exp2(qk * qk_scale - m_new[:, None])  # one FMA and one exp2 per score
            alpha = tl.exp2(m_i - m_new)  # rescales the old state to the new max
        l_i = l_i * alpha + tl.sum(p, axis=1)
        if MASKED or BLOCK_D != HEAD_DIM:
            v = tl.load(v_ptrs, mask=kv_mask, other=0.0)
        else:
            v = tl.load(v_ptrs)
        if UPCAST:
            v = v.to(tl.float32)
        # P rounded to V's dtype: both operands on tensor cores, fp32 accumulation into acc
        acc = tl.dot(p.to(v.dtype), v, acc * alpha[:, None], input_precision=INPUT_PRECISION)
        m_i = m_new
        k_ptrs += BLOCK_N * stride_kn
        v_ptrs += BLOCK_N * stride_vn
    return acc, l_i, m_i


@triton.jit
def _flash_attention_kernel(
    q_ptr,
    k_ptr,
    v_ptr,
    out_ptr,
    lse_ptr,
    cu_seqlens_q_ptr,  # VARLEN only: [batch + 1] row offsets of each sequence
    cu_seqlens_k_ptr,
    seq_q,  # dense only: every sequence's length
    seq_k,
    n_q_heads,
    group,  # q heads per kv head
    qk_scale,
    stride_qb,  # 0 in the varlen layout, where sequences are rows of one token axis
    stride_qh,
    stride_qm,
    stride_kb,
    stride_kh,
    stride_kn,
    stride_vb,
    stride_vh,
    stride_vn,
    stride_ob,
    stride_oh,
    stride_om,
    stride_lb,
    stride_lh,
    stride_lm,
    HEAD_DIM: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
    CAUSAL: tl.constexpr,
    VARLEN: tl.constexpr,
    STORE_LSE: tl.constexpr,
    UPCAST: tl.constexpr,
    INPUT_PRECISION: tl.constexpr,
):
    # heaviest query blocks first: under a causal mask the last ones see the most keys
    # int64 from the program ids on: batch * stride (or a packed token offset) can pass 2**31
    block_m = (tl.num_programs(0) - 1 - tl.program_id(0)).to(tl.int64)
    bh = tl.program_id(1).to(tl.int64)
    b = bh // n_q_heads
    h = bh % n_q_heads
    kv_h = h // group
    if VARLEN:
        q_start32 = tl.load(cu_seqlens_q_ptr + b)
        k_start32 = tl.load(cu_seqlens_k_ptr + b)
        seq_q = tl.load(cu_seqlens_q_ptr + b + 1) - q_start32
        seq_k = tl.load(cu_seqlens_k_ptr + b + 1) - k_start32
        q_start = q_start32.to(tl.int64)
        k_start = k_start32.to(tl.int64)
    else:
        q_start = 0
        k_start = 0
    q_base = q_ptr + b * stride_qb + h * stride_qh + q_start * stride_qm
    k_base = k_ptr + b * stride_kb + kv_h * stride_kh + k_start * stride_kn
    v_base = v_ptr + b * stride_vb + kv_h * stride_vh + k_start * stride_vn
    start_m = block_m * BLOCK_M
    offs_m = start_m + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    row_mask = offs_m < seq_q
    io_mask = row_mask[:, None] & (offs_d < HEAD_DIM)[None, :]
    q = tl.load(q_base + offs_m[:, None] * stride_qm + offs_d[None, :], mask=io_mask, other=0.0)
    if UPCAST:
        q = q.to(tl.float32)

    m_i = tl.full([BLOCK_M], -float("inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    causal_offset = seq_k - seq_q
    if CAUSAL:
        # keys [0, full_end) are seen by every row of the block: its first row sees j <= start_m + offset
        full_end = tl.minimum(tl.maximum(start_m + causal_offset + 1, 0), seq_k)
        # the block's last row sees j < start_m + BLOCK_M + offset: tiles past that are skipped
        end_n = tl.minimum(tl.maximum(start_m + BLOCK_M + causal_offset, 0), seq_k)
    else:
        full_end = seq_k
        end_n = seq_k
    end_n = tl.where(start_m < seq_q, end_n, 0)  # varlen: a block past its sequence's end
    unmasked_end = tl.minimum((full_end // BLOCK_N) * BLOCK_N, end_n)
    acc, l_i, m_i = _attn_tiles(
        acc, l_i, m_i, q, k_base, v_base, stride_kn, stride_vn, 0, unmasked_end, offs_m, seq_k,
        causal_offset, qk_scale, HEAD_DIM, BLOCK_N, BLOCK_D, False, CAUSAL, UPCAST, INPUT_PRECISION,
    )  # fmt: skip
    acc, l_i, m_i = _attn_tiles(
        acc, l_i, m_i, q, k_base, v_base, stride_kn, stride_vn, unmasked_end, end_n, offs_m, seq_k,
        causal_offset, qk_scale, HEAD_DIM, BLOCK_N, BLOCK_D, True, CAUSAL, UPCAST, INPUT_PRECISION,
    )  # fmt: skip

    # a row that saw no key has l = 0: write 0 (and lse = -inf), not 0/0
    l_safe = tl.where(l_i == 0.0, 1.0, l_i)
    out = acc / l_safe[:, None]
    o_base = out_ptr + b * stride_ob + h * stride_oh + q_start * stride_om
    o_ptrs = o_base + offs_m[:, None] * stride_om + offs_d[None, :]
    tl.store(o_ptrs, out.to(out_ptr.dtype.element_ty), mask=io_mask)
    if STORE_LSE:
        # back to natural log (x ln 2); -inf (m_i) where no key was seen
        lse = (m_i + tl.log2(l_safe)) * 0.6931471805599453
        l_base = lse_ptr + b * stride_lb + h * stride_lh + q_start * stride_lm
        tl.store(l_base + offs_m * stride_lm, lse, mask=row_mask)


# ---------------------------------------------------------------- launchers
def _check_heads_and_dim(q_heads: int, kv_heads: int, head_dim: int, v_dim: int) -> None:
    if kv_heads == 0 or q_heads % kv_heads:
        raise ValueError(f"q_heads ({q_heads}) must be a multiple of kv_heads ({kv_heads})")
    if v_dim != head_dim:
        raise ValueError(f"v's head_dim ({v_dim}) must equal q and k's ({head_dim})")
    if not MIN_HEAD_DIM <= head_dim <= MAX_HEAD_DIM:
        raise ValueError(f"head_dim must be {MIN_HEAD_DIM} to {MAX_HEAD_DIM}, not {head_dim}")


def _check_last_dim(**tensors: torch.Tensor) -> None:
    for name, t in tensors.items():
        if t.shape[-1] > 1 and t.stride(-1) != 1:
            raise ValueError(
                f"{name}'s last dimension must be contiguous (stride 1), its strides are {t.stride()}"
            )


def dot_options(dtype: torch.dtype) -> tuple[bool, str]:
    """(UPCAST, INPUT_PRECISION): bf16 dots in fp32 under the interpreter only; fp32 in full fp32
    ("ieee": tf32's 10-bit mantissa would miss the fp32 tolerance)."""
    upcast = dtype == torch.bfloat16 and select_backend().interpreted
    return upcast, "ieee" if dtype == torch.float32 else "tf32"


def _launch(q, k, v, out, lse, cu_q, cu_k, seq_q, seq_k, max_seq_q, strides, causal, scale, varlen):
    n_q_heads, n_kv_heads, head_dim = strides["heads"]
    batch = strides["batch"]
    cfg = config_for(head_dim, q.dtype)
    block_d = head_dim_block(head_dim)
    upcast, precision = dot_options(q.dtype)
    scale = head_dim**-0.5 if scale is None else scale
    grid = (triton.cdiv(max_seq_q, cfg.block_m), batch * n_q_heads)
    _flash_attention_kernel[grid](
        q, k, v, out, lse if lse is not None else out, cu_q, cu_k, seq_q, seq_k,
        n_q_heads, n_q_heads // n_kv_heads, scale * LOG2_E,
        *strides["q"], *strides["k"], *strides["v"], *strides["out"], *strides["lse"],
        HEAD_DIM=head_dim, BLOCK_M=cfg.block_m, BLOCK_N=cfg.block_n, BLOCK_D=block_d,
        CAUSAL=causal, VARLEN=varlen, STORE_LSE=lse is not None, UPCAST=upcast,
        INPUT_PRECISION=precision, num_warps=cfg.num_warps, num_stages=cfg.num_stages,
    )  # fmt: skip


def flash_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    causal: bool = True,
    scale: float | None = None,
    out: torch.Tensor | None = None,
    return_lse: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """q: [B, Hq, Sq, D], k, v: [B, Hkv, Sk, D] -> out [B, Hq, Sq, D] (, lse [B, Hq, Sq] fp32)."""
    validate({"q": q, "k": k, "v": v})
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ValueError(
            "q, k, v must be [batch, heads, seq, head_dim]; got "
            f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
        )
    batch, n_q_heads, seq_q, head_dim = q.shape
    if k.shape[:3] != v.shape[:3] or k.shape[0] != batch or k.shape[3] != head_dim:
        raise ValueError(
            f"k {tuple(k.shape)} and v {tuple(v.shape)} must be [{batch}, kv_heads, seq_k, {head_dim}]"
        )
    _check_heads_and_dim(n_q_heads, k.shape[1], head_dim, v.shape[3])
    _check_last_dim(q=q, k=k, v=v)
    out = prepare_out(out, q.shape, q)
    lse = torch.empty((batch, n_q_heads, seq_q), dtype=torch.float32, device=q.device) if return_lse else None
    if q.numel() > 0:
        strides = {
            "batch": batch,
            "heads": (n_q_heads, k.shape[1], head_dim),
            "q": q.stride()[:3],
            "k": k.stride()[:3],
            "v": v.stride()[:3],
            "out": out.stride()[:3],
            "lse": lse.stride() if lse is not None else (0, 0, 0),
        }
        _launch(q, k, v, out, lse, q, q, seq_q, k.shape[2], seq_q, strides, causal, scale, False)
    return (out, lse) if return_lse else out


def flash_attention_varlen(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    cu_seqlens_q: torch.Tensor,
    cu_seqlens_k: torch.Tensor,
    max_seqlen_q: int,
    max_seqlen_k: int,
    causal: bool = True,
    scale: float | None = None,
    out: torch.Tensor | None = None,
    return_lse: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """q: [Tq, Hq, D], k, v: [Tk, Hkv, D], cu_seqlens_q/k: [B + 1] int32 -> out [Tq, Hq, D]
    (, lse [Hq, Tq] fp32). max_seqlen_q/k: the longest sequence, known on the host (no sync)."""
    validate({"q": q, "k": k, "v": v})
    validate({"cu_seqlens_q": cu_seqlens_q, "cu_seqlens_k": cu_seqlens_k}, dtypes=(torch.int32,))
    if q.dim() != 3 or k.dim() != 3 or v.dim() != 3:
        raise ValueError(
            "varlen q, k, v must be [total_tokens, heads, head_dim]; got "
            f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
        )
    if k.shape[:2] != v.shape[:2] or k.shape[2] != q.shape[2]:
        raise ValueError(
            f"k {tuple(k.shape)} and v {tuple(v.shape)} must be [total_k, kv_heads, {q.shape[2]}]"
        )
    if cu_seqlens_q.dim() != 1 or cu_seqlens_q.shape != cu_seqlens_k.shape or cu_seqlens_q.numel() < 1:
        raise ValueError(
            f"cu_seqlens_q {tuple(cu_seqlens_q.shape)} and cu_seqlens_k {tuple(cu_seqlens_k.shape)} "
            "must both be [batch + 1]"
        )
    n_q_heads, head_dim = q.shape[1], q.shape[2]
    _check_heads_and_dim(n_q_heads, k.shape[1], head_dim, v.shape[2])
    _check_last_dim(q=q, k=k, v=v)
    require = cu_seqlens_q.is_contiguous() and cu_seqlens_k.is_contiguous()
    if not require:
        raise ValueError("cu_seqlens_q and cu_seqlens_k must be contiguous")
    out = prepare_out(out, q.shape, q)
    total_q = q.shape[0]
    lse = torch.empty((n_q_heads, total_q), dtype=torch.float32, device=q.device) if return_lse else None
    batch = cu_seqlens_q.numel() - 1
    if batch > 0 and max_seqlen_q > 0 and q.numel() > 0:
        strides = {
            "batch": batch,
            "heads": (n_q_heads, k.shape[1], head_dim),
            # [tokens, heads, D]: batch stride 0, the sequence's first token comes from cu_seqlens
            "q": (0, q.stride(1), q.stride(0)),
            "k": (0, k.stride(1), k.stride(0)),
            "v": (0, v.stride(1), v.stride(0)),
            "out": (0, out.stride(1), out.stride(0)),
            "lse": (0, lse.stride(0), lse.stride(1)) if lse is not None else (0, 0, 0),
        }
        _launch(
            q, k, v, out, lse, cu_seqlens_q, cu_seqlens_k, 0, 0, max_seqlen_q, strides, causal, scale, True
        )
    return (out, lse) if return_lse else out


# ---------------------------------------------------------------- spec
# dims = (batch, q_heads, kv_heads, seq_q, seq_k, head_dim); causal, the launcher's default
def _make_inputs(dims, dtype, device, gen):
    batch, n_q_heads, n_kv_heads, seq_q, seq_k, head_dim = dims
    return {
        "q": random_tensor((batch, n_q_heads, seq_q, head_dim), dtype, device, gen),
        "k": random_tensor((batch, n_kv_heads, seq_k, head_dim), dtype, device, gen),
        "v": random_tensor((batch, n_kv_heads, seq_k, head_dim), dtype, device, gen),
    }


def _spec_reference(q, k, v):
    return flash_attention_ref(q, k, v).to(q.dtype)


def _sdpa_in_dtype(q, k, v):
    """torch SDPA in the inputs' own dtype: PyTorch's own low-precision error, the SPEC's budget."""
    group = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
    seq_q, seq_k = q.shape[2], k.shape[2]
    if seq_q == seq_k:
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    else:
        mask = causal_mask(seq_q, seq_k, q.device)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask).masked_fill(~mask.any(-1)[:, None], 0.0)
    return out


def causal_pairs(seq_q: int, seq_k: int) -> int:
    """Query-key pairs the end-aligned causal mask lets through (query i sees i + seq_k - seq_q + 1
    keys, at most seq_k and at least 0): half of seq_q * seq_k plus the diagonal when they are equal."""
    if seq_q <= seq_k:
        return seq_q * (seq_k - seq_q) + seq_q * (seq_q + 1) // 2
    return seq_k * (seq_k + 1) // 2  # the first seq_q - seq_k queries see nothing


def _flops(dims: tuple[int, ...]) -> int:
    batch, n_q_heads, _, seq_q, seq_k, head_dim = dims
    # per visible pair and lane: a multiply-add in Q K^T and one in P V (softmax's few FLOPs not counted)
    return 4 * batch * n_q_heads * causal_pairs(seq_q, seq_k) * head_dim


def _bytes_moved(dims: tuple[int, ...], dtype: torch.dtype) -> int:
    batch, n_q_heads, n_kv_heads, seq_q, seq_k, head_dim = dims
    q_and_out = 2 * batch * n_q_heads * seq_q * head_dim
    k_and_v = 2 * batch * n_kv_heads * seq_k * head_dim  # once each: every later read hits L2
    return (q_and_out + k_and_v) * dtype.itemsize


FLASH_ATTENTION_SPEC = KernelSpec(
    name="flash_attention",
    module=__name__,
    launcher=flash_attention,
    reference=_spec_reference,
    make_inputs=_make_inputs,
    test_shapes=(
        Shape((1, 2, 1, 1, 1, 64), "size 1: one query, one key; MQA (two q heads share the kv head)"),
        Shape((1, 2, 2, 37, 37, 64), "odd length 37: one ragged query block, the diagonal tile masked"),
        Shape((2, 4, 2, 16, 80, 64), "GQA 4/2 and a cached prefix: 16 queries see 64 earlier keys + causal"),
        Shape(
            (1, 2, 2, 130, 130, 128),
            "Llama head_dim 128, 130 tokens: 2 query blocks, unmasked + diagonal tiles",
        ),
        Shape((1, 3, 1, 20, 20, 80), "head_dim 80 padded to 128 lanes; MQA with 3 q heads"),
    ),
    bench_shapes=(
        BenchShape((4, 32, 8, 1024, 1024, 128), "llama-3-8b", "causal prefill, 4 x 1024 tokens"),
        BenchShape((4, 32, 8, 4096, 4096, 128), "llama-3-8b", "causal prefill, 4 x 4096 tokens"),
        BenchShape(
            (4, 32, 32, 4096, 4096, 128), "llama-2-7b", "causal prefill, 4 x 4096, MHA (GPU.md's SDPA figure)"
        ),
        BenchShape((1, 32, 8, 16384, 16384, 128), "llama-3-8b", "causal prefill, 1 x 16384 tokens"),
        BenchShape(
            (4, 32, 8, 4096, 4096, 64), "llama-3.2-1b", "causal prefill, 4 x 4096 tokens, head_dim 64"
        ),
    ),
    flops=_flops,
    bytes_moved=_bytes_moved,
    bound="compute",
    baselines=("sdpa-flash", "sdpa-cudnn", "sdpa-efficient", "sdpa-math", "torch"),
    lesson=9,
    summary="causal flash attention (GQA, end-aligned mask, varlen): online softmax over key tiles",
    low_precision_reference=_sdpa_in_dtype,
    error_scales_with_rms=(
        "P is rounded to the input dtype before P @ V on tensor cores, as FlashAttention and SDPA "
        "do: the error follows the size of the summed terms, not of an output near zero"
    ),
)
