"""Decode attention over a paged KV cache, and the write that fills it (lesson 10: KV cache).

Math, for one sequence at decode (one new query token per head, head_dim D, scale s):
    out_h = sum_j softmax_j(s * q_h . k_j) v_j       over the seq_len cached tokens j
with the online softmax of lesson 4 (running max m, running sum l, unnormalized acc; fp32).

Layout (vLLM's):
    q, out:           [batch, q_heads, head_dim]        one new token per sequence
    k_cache, v_cache: [num_blocks, block_size, kv_heads, head_dim]   pages of block_size tokens
    block_table:      [batch, max_blocks] int32         # block_table: [seq, logical_block] -> physical_block
    seq_lens:         [batch] int32                     cached tokens of each sequence (may differ)
Token t of sequence b lives in physical block block_table[b, t // block_size], row t % block_size.
The table is trusted: entries past cdiv(seq_len, block_size) are never read, the others must name
real blocks (a bad entry is the caller's bug; checking it would cost a device sync per step).
GQA: one program owns one (sequence, kv head) and all the q heads of its group (q head h uses kv
head h // group), so each cached K and V row is read once for the whole group; the group's queries
are the rows of a tensor-core dot (padded to 16 rows).

Variants (`choose_variant` names the one the launcher runs; the test checks it):
    1. "one_pass": grid (batch * kv_heads,): each program walks its whole sequence in tiles of
       DECODE_BLOCK_N tokens (a tile spans several pages: each row's address comes from the table).
    2. "split" (flash-decoding): when batch * kv_heads programs would leave SMs idle (fewer than the
       SM count) and sequences are long (past SPLIT_MIN_SEQ_LEN), each sequence is cut into
       partitions of PARTITION_SIZE tokens, one program each, grid (batch * kv_heads, partitions).
       Each writes its partial output acc / l and log-sum-exp m + log2(l) to an fp32 workspace;
       a second kernel, one program per (sequence, q head), combines them:
           out = sum_p 2^(lse_p - M) o_p / sum_p 2^(lse_p - M),  M = max_p lse_p
       Partitions past a sequence's end do nothing and are never read.
The choice uses only host-side numbers (block_table's width, or `max_seq_len` if given), never the
device's seq_lens, so a step can be captured in a CUDA graph.

`write_kv` stores each new token's K and V rows (k_new, v_new: [tokens, kv_heads, head_dim]) at
`slot_mapping[t] = physical_block * block_size + row` (int32 or int64; -1 = padding, skipped), as an
engine does after every forward step.

Napkin math, per decode step with b bytes per element, T = sum of seq_lens:
    bytes: K and V rows read once, 2 * T * kv_heads * D * b (+ q and out, tiny)
    FLOPs: 4 * T * q_heads * D        -> 4 * group / (2 * b) FLOP/byte: memory bound
    Llama-3-8B (8 kv heads of 128), 32 sequences of 4096 tokens in bf16: 537 MB, ~0.13 ms at
    ~4.2 TB/s.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from inferlab.kernels._launch import prepare_out, validate
from inferlab.kernels._triton import tl, triton
from inferlab.kernels.attention import LOG2_E, MAX_HEAD_DIM, MIN_HEAD_DIM, dot_options, head_dim_block
from inferlab.kernels.spec import BenchShape, KernelSpec, Shape, random_tensor

DECODE_BLOCK_N = 64  # cached tokens per tile: 4 pages of 16
DECODE_NUM_WARPS = 4
DECODE_NUM_STAGES = 3  # tiles (and their block-table entries) in flight, at most
DECODE_SMEM_BYTES = 128 * 1024  # K and V tiles in flight stay under this (an H100 SM has 228 KiB)
MIN_GROUP_ROWS = 16  # a tensor-core dot needs 16 rows: the group's q heads, padded
PARTITION_SIZE = 512  # tokens per program of the split variant (a multiple of DECODE_BLOCK_N)
SPLIT_MIN_SEQ_LEN = 2048  # shorter than 4 partitions: splitting costs more than it spreads
DEFAULT_SM_COUNT = 132  # the interpreter has no SMs: choose as an H100 would


def sm_count(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).multi_processor_count
    return DEFAULT_SM_COUNT


def decode_num_stages(block_d: int, itemsize: int) -> int:
    """Pipeline depth: DECODE_NUM_STAGES, fewer where the K and V tiles in flight would pass
    DECODE_SMEM_BYTES (head_dim 256, or fp32)."""
    tile_pair = 2 * DECODE_BLOCK_N * block_d * itemsize
    return max(1, min(DECODE_NUM_STAGES, DECODE_SMEM_BYTES // tile_pair))


def choose_variant(batch: int, kv_heads: int, max_seq_len: int, num_sms: int) -> str:
    """The variant the launcher runs (see the docstring): split only when the plain grid leaves
    SMs idle and the sequences are long enough to cut."""
    if batch * kv_heads < num_sms and max_seq_len > SPLIT_MIN_SEQ_LEN:
        return "split"
    return "one_pass"


# ---------------------------------------------------------------- reference (plain PyTorch)
def gather_kv(cache: torch.Tensor, block_table: torch.Tensor, b: int, seq_len: int) -> torch.Tensor:
    """Sequence b's first seq_len cached rows: [seq_len, kv_heads, head_dim], in logical order."""
    n_blocks = -(-seq_len // cache.shape[1])
    pages = cache[block_table[b, :n_blocks].long()]  # [n_blocks, block_size, kv_heads, D]
    return pages.flatten(0, 1)[:seq_len]


def paged_decode_attention_ref(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    block_table: torch.Tensor,
    seq_lens: torch.Tensor,
    scale: float | None = None,
) -> torch.Tensor:
    """Each sequence's pages gathered into a dense [kv_heads, seq_len, D] cache, then torch SDPA in
    fp32 with enable_gqa. -> fp32 [batch, q_heads, D]; an empty sequence gives 0."""
    out = torch.zeros(q.shape, dtype=torch.float32, device=q.device)
    for b, seq_len in enumerate(seq_lens.tolist()):
        if seq_len == 0:
            continue
        k = gather_kv(k_cache, block_table, b, seq_len).float().transpose(0, 1)  # [kv_heads, S, D]
        v = gather_kv(v_cache, block_table, b, seq_len).float().transpose(0, 1)
        group = q.shape[1] // k.shape[0]
        k, v = k.repeat_interleave(group, dim=0), v.repeat_interleave(group, dim=0)
        q_b = q[b].float()[:, None, :]  # [q_heads, 1, D]
        out[b] = F.scaled_dot_product_attention(q_b, k, v, scale=scale)[:, 0]
    return out


# ---------------------------------------------------------------- kernels
@triton.jit
def _paged_decode_kernel(
    q_ptr,
    k_cache_ptr,
    v_cache_ptr,
    block_table_ptr,
    seq_lens_ptr,
    out_ptr,  # one_pass: out [batch, q_heads, D]; split: partial outputs [batch, q_heads, P, D] fp32
    lse_ptr,  # split only: [batch, q_heads, P] fp32, log2 units
    n_kv_heads,
    group,
    qk_scale,  # scale * log2(e)
    stride_qb,
    stride_qh,
    stride_kb,  # per physical block
    stride_ks,  # per row (token) in a block
    stride_kh,
    stride_vb,
    stride_vs,
    stride_vh,
    stride_tb,  # block_table row
    stride_ob,
    stride_oh,
    stride_op,  # per partition (split only)
    stride_lb,
    stride_lh,
    HEAD_DIM: tl.constexpr,
    KV_BLOCK_SIZE: tl.constexpr,  # tokens per page
    BLOCK_G: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
    PARTITION_SIZE: tl.constexpr,  # 0: the whole sequence (one_pass)
    UPCAST: tl.constexpr,  # interpreter + bf16 only: its bf16 dot is wrong, so dot in fp32
    INPUT_PRECISION: tl.constexpr,  # "ieee" for fp32 inputs
):
    pid = tl.program_id(0).to(tl.int64)  # int64: a block id * stride can pass 2**31
    b = pid // n_kv_heads
    kv_h = pid % n_kv_heads
    part = tl.program_id(1).to(tl.int64)
    seq_len = tl.load(seq_lens_ptr + b)
    if PARTITION_SIZE == 0:
        start = 0
        end = seq_len
    else:
        start = part * PARTITION_SIZE
        end = tl.minimum(start + PARTITION_SIZE, seq_len)  # start >= seq_len: no tile, no store

    offs_g = tl.arange(0, BLOCK_G)
    offs_d = tl.arange(0, BLOCK_D)
    offs_n = tl.arange(0, BLOCK_N)
    heads = kv_h * group + offs_g  # the q heads of this kv head's group
    g_mask = offs_g < group
    d_mask = offs_d < HEAD_DIM
    q_ptrs = q_ptr + b * stride_qb + heads[:, None] * stride_qh + offs_d[None, :]
    q = tl.load(q_ptrs, mask=g_mask[:, None] & d_mask[None, :], other=0.0)  # [BLOCK_G, BLOCK_D]
    if UPCAST:
        q = q.to(tl.float32)

    m_i = tl.full([BLOCK_G], -float("inf"), tl.float32)
    l_i = tl.zeros([BLOCK_G], tl.float32)
    acc = tl.zeros([BLOCK_G, BLOCK_D], tl.float32)
    table_row = block_table_ptr + b * stride_tb
    k_head = k_cache_ptr + kv_h * stride_kh
    v_head = v_cache_ptr + kv_h * stride_vh
    for tile_start in range(start, end, BLOCK_N):
        tokens = tile_start + offs_n
        n_mask = tokens < end
        # each token's page through the table, then its row in that page
        page = tl.load(table_row + tokens // KV_BLOCK_SIZE, mask=n_mask, other=0).to(tl.int64)
        row = tokens % KV_BLOCK_SIZE
        kv_mask = n_mask[:, None] & d_mask[None, :]
        k_off = page[:, None] * stride_kb + row[:, None] * stride_ks + offs_d[None, :]
        v_off = page[:, None] * stride_vb + row[:, None] * stride_vs + offs_d[None, :]
        k = tl.load(k_head + k_off, mask=kv_mask, other=0.0)  # [BLOCK_N, BLOCK_D]
        if UPCAST:
            k = k.to(tl.float32)
        qk = tl.dot(q, tl.trans(k), input_precision=INPUT_PRECISION)  # [BLOCK_G, BLOCK_N] fp32
        # every tile holds at least one real token (tile_start < end), so the max is finite
        qk = tl.where(n_mask[None, :], qk * qk_scale, -float("inf"))
        m_new = tl.maximum(m_i, tl.max(qk, axis=1))
        p = tl.exp2(qk - m_new[:, None])
        alpha = tl.exp2(m_i - m_new)
        l_i = l_i * alpha + tl.sum(p, axis=1)
        v = tl.load(v_head + v_off, mask=kv_mask, other=0.0)
        if UPCAST:
            v = v.to(tl.float32)
        acc = tl.dot(p.to(v.dtype), v, acc * alpha[:, None], input_precision=INPUT_PRECISION)
        m_i = m_new

    l_safe = tl.where(l_i == 0.0, 1.0, l_i)  # an empty sequence (or partition): 0, not 0/0
    o = acc / l_safe[:, None]
    o_mask = g_mask[:, None] & d_mask[None, :]
    o_ptrs = out_ptr + b * stride_ob + heads[:, None] * stride_oh + offs_d[None, :]
    if PARTITION_SIZE == 0:
        tl.store(o_ptrs, o.to(out_ptr.dtype.element_ty), mask=o_mask)
    else:
        live = start < seq_len  # the reduce reads only partitions that hold tokens
        tl.store(o_ptrs + part * stride_op, o, mask=o_mask & live)
        lse_ptrs = lse_ptr + b * stride_lb + heads * stride_lh + part
        tl.store(lse_ptrs, m_i + tl.log2(l_safe), mask=g_mask & live)


@triton.jit
def _paged_decode_reduce_kernel(
    part_out_ptr,  # [batch, q_heads, P, D] fp32
    part_lse_ptr,  # [batch, q_heads, P] fp32, log2 units
    seq_lens_ptr,
    out_ptr,
    n_q_heads,
    max_parts,  # partitions in the workspace: a sequence past max_seq_len is cut, never overread
    stride_pb,
    stride_ph,
    stride_pp,
    stride_lb,
    stride_lh,
    stride_ob,
    stride_oh,
    HEAD_DIM: tl.constexpr,
    PARTITION_SIZE: tl.constexpr,
    BLOCK_P: tl.constexpr,  # >= the number of partitions
    BLOCK_D: tl.constexpr,
):
    pid = tl.program_id(0).to(tl.int64)
    b = pid // n_q_heads
    h = pid % n_q_heads
    n_parts = tl.minimum(tl.cdiv(tl.load(seq_lens_ptr + b), PARTITION_SIZE), max_parts)
    offs_p = tl.arange(0, BLOCK_P)
    lse = tl.load(
        part_lse_ptr + b * stride_lb + h * stride_lh + offs_p, mask=offs_p < n_parts, other=-float("inf")
    )
    lse_max = tl.max(lse, axis=0)
    lse_max = tl.where(lse_max == -float("inf"), 0.0, lse_max)  # no partition: weights 0, out 0
    weights = tl.exp2(lse - lse_max)  # [BLOCK_P]: each partition's share of the softmax sum
    total = tl.sum(weights, axis=0)
    offs_d = tl.arange(0, BLOCK_D)
    d_mask = offs_d < HEAD_DIM
    acc = tl.zeros([BLOCK_D], tl.float32)
    row = part_out_ptr + b * stride_pb + h * stride_ph
    for p in range(0, n_parts):
        w = tl.exp2(tl.load(part_lse_ptr + b * stride_lb + h * stride_lh + p) - lse_max)
        acc += w * tl.load(row + p * stride_pp + offs_d, mask=d_mask, other=0.0)
    out = acc / tl.where(total == 0.0, 1.0, total)
    tl.store(out_ptr + b * stride_ob + h * stride_oh + offs_d, out.to(out_ptr.dtype.element_ty), mask=d_mask)


@triton.jit
def _write_kv_kernel(
    k_new_ptr,
    v_new_ptr,
    k_cache_ptr,
    v_cache_ptr,
    slot_mapping_ptr,
    n_kv_heads,
    kv_block_size,
    stride_knt,
    stride_knh,
    stride_vnt,
    stride_vnh,
    stride_kb,
    stride_ks,
    stride_kh,
    stride_vb,
    stride_vs,
    stride_vh,
    HEAD_DIM: tl.constexpr,
    BLOCK_H: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    t = tl.program_id(0).to(tl.int64)
    slot = tl.load(slot_mapping_ptr + t).to(tl.int64)  # slot_mapping: [token] -> block * block_size + row
    page = slot // kv_block_size
    row = slot % kv_block_size
    offs_h = tl.arange(0, BLOCK_H)
    offs_d = tl.arange(0, BLOCK_D)
    mask = (offs_h < n_kv_heads)[:, None] & (offs_d < HEAD_DIM)[None, :]
    k = tl.load(k_new_ptr + t * stride_knt + offs_h[:, None] * stride_knh + offs_d[None, :], mask=mask)
    v = tl.load(v_new_ptr + t * stride_vnt + offs_h[:, None] * stride_vnh + offs_d[None, :], mask=mask)
    store_mask = mask & (slot >= 0)  # -1: a padding token, nothing to store
    k_dst = k_cache_ptr + page * stride_kb + row * stride_ks + offs_h[:, None] * stride_kh + offs_d[None, :]
    v_dst = v_cache_ptr + page * stride_vb + row * stride_vs + offs_h[:, None] * stride_vh + offs_d[None, :]
    tl.store(k_dst, k, mask=store_mask)
    tl.store(v_dst, v, mask=store_mask)


# ---------------------------------------------------------------- launchers
def _check_cache(k_cache: torch.Tensor, v_cache: torch.Tensor) -> None:
    if k_cache.dim() != 4 or k_cache.shape != v_cache.shape:
        raise ValueError(
            "k_cache and v_cache must both be [num_blocks, block_size, kv_heads, head_dim]; got "
            f"{tuple(k_cache.shape)} and {tuple(v_cache.shape)}"
        )
    head_dim = k_cache.shape[3]
    if not MIN_HEAD_DIM <= head_dim <= MAX_HEAD_DIM:
        raise ValueError(f"head_dim must be {MIN_HEAD_DIM} to {MAX_HEAD_DIM}, not {head_dim}")
    for name, t in (("k_cache", k_cache), ("v_cache", v_cache)):
        if t.stride(-1) != 1:
            raise ValueError(
                f"{name}'s last dimension must be contiguous (stride 1), its strides are {t.stride()}"
            )


def paged_decode_attention(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    block_table: torch.Tensor,
    seq_lens: torch.Tensor,
    scale: float | None = None,
    out: torch.Tensor | None = None,
    max_seq_len: int | None = None,
) -> torch.Tensor:
    """q: [B, Hq, D], k/v_cache: [blocks, block_size, Hkv, D], block_table: [B, max_blocks] int32,
    seq_lens: [B] int32 -> [B, Hq, D]. max_seq_len: a host-side upper bound on seq_lens (default:
    the table's capacity, max_blocks * block_size); it picks the variant and the partition count,
    so the split variant ignores tokens past it (the caller's promise, not checked: no sync)."""
    validate({"q": q, "k_cache": k_cache, "v_cache": v_cache})
    validate({"block_table": block_table, "seq_lens": seq_lens}, dtypes=(torch.int32,))
    _check_cache(k_cache, v_cache)
    if q.dim() != 3 or q.shape[2] != k_cache.shape[3]:
        raise ValueError(f"q must be [batch, q_heads, {k_cache.shape[3]}], got {tuple(q.shape)}")
    batch, n_q_heads, head_dim = q.shape
    _, kv_block_size, n_kv_heads, _ = k_cache.shape
    if n_q_heads % n_kv_heads:
        raise ValueError(f"q_heads ({n_q_heads}) must be a multiple of the cache's kv_heads ({n_kv_heads})")
    if block_table.dim() != 2 or block_table.shape[0] != batch or seq_lens.shape != (batch,):
        raise ValueError(
            f"block_table must be [{batch}, max_blocks] and seq_lens [{batch}]; got "
            f"{tuple(block_table.shape)} and {tuple(seq_lens.shape)}"
        )
    if q.stride(-1) != 1 or block_table.stride(-1) != 1 or not seq_lens.is_contiguous():
        raise ValueError("q's last dimension, block_table's rows and seq_lens must be contiguous")
    out = prepare_out(out, q.shape, q)
    if q.numel() == 0:
        return out
    max_seq_len = block_table.shape[1] * kv_block_size if max_seq_len is None else max_seq_len
    group = n_q_heads // n_kv_heads
    block_d = head_dim_block(head_dim)
    upcast, precision = dot_options(q.dtype)
    common = dict(
        HEAD_DIM=head_dim,
        KV_BLOCK_SIZE=kv_block_size,
        BLOCK_G=max(MIN_GROUP_ROWS, triton.next_power_of_2(group)),
        BLOCK_N=DECODE_BLOCK_N,
        BLOCK_D=block_d,
        UPCAST=upcast,
        INPUT_PRECISION=precision,
        num_warps=DECODE_NUM_WARPS,
        num_stages=decode_num_stages(block_d, q.dtype.itemsize),
    )
    scale = head_dim**-0.5 if scale is None else scale
    args = (n_kv_heads, group, scale * LOG2_E, *q.stride()[:2], *k_cache.stride()[:3], *v_cache.stride()[:3])
    if choose_variant(batch, n_kv_heads, max_seq_len, sm_count(q.device)) == "one_pass":
        _paged_decode_kernel[(batch * n_kv_heads,)](  # one program per (sequence, kv head)
            q, k_cache, v_cache, block_table, seq_lens, out, out,
            *args, block_table.stride(0), *out.stride()[:2], 0, 0, 0,
            PARTITION_SIZE=0, **common,
        )  # fmt: skip
        return out
    n_parts = max(1, triton.cdiv(max_seq_len, PARTITION_SIZE))
    part_out = torch.empty((batch, n_q_heads, n_parts, head_dim), dtype=torch.float32, device=q.device)
    part_lse = torch.empty((batch, n_q_heads, n_parts), dtype=torch.float32, device=q.device)
    _paged_decode_kernel[(batch * n_kv_heads, n_parts)](  # one program per partition
        q, k_cache, v_cache, block_table, seq_lens, part_out, part_lse,
        *args, block_table.stride(0), *part_out.stride()[:3], *part_lse.stride()[:2],
        PARTITION_SIZE=PARTITION_SIZE, **common,
    )  # fmt: skip
    _paged_decode_reduce_kernel[(batch * n_q_heads,)](  # one program per (sequence, q head)
        part_out, part_lse, seq_lens, out, n_q_heads, n_parts,
        *part_out.stride()[:3], *part_lse.stride()[:2], *out.stride()[:2],
        HEAD_DIM=head_dim, PARTITION_SIZE=PARTITION_SIZE,
        BLOCK_P=triton.next_power_of_2(n_parts), BLOCK_D=block_d,
    )  # fmt: skip
    return out


def write_kv(
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    k_new: torch.Tensor,
    v_new: torch.Tensor,
    slot_mapping: torch.Tensor,
) -> None:
    """k_new, v_new: [T, Hkv, D] -> rows slot_mapping[t] (= block * block_size + row; -1 skips) of
    k_cache, v_cache: [blocks, block_size, Hkv, D], in place. Slots must be distinct and in range."""
    validate({"k_cache": k_cache, "v_cache": v_cache, "k_new": k_new, "v_new": v_new})
    validate({"slot_mapping": slot_mapping}, dtypes=(torch.int32, torch.int64))
    _check_cache(k_cache, v_cache)
    if k_new.dim() != 3 or k_new.shape != v_new.shape or k_new.shape[1:] != k_cache.shape[2:]:
        raise ValueError(
            f"k_new and v_new must both be [tokens, {k_cache.shape[2]}, {k_cache.shape[3]}]; got "
            f"{tuple(k_new.shape)} and {tuple(v_new.shape)}"
        )
    if slot_mapping.shape != (k_new.shape[0],) or not slot_mapping.is_contiguous():
        raise ValueError(
            f"slot_mapping must be contiguous [{k_new.shape[0]}], got {tuple(slot_mapping.shape)}"
        )
    if k_new.stride(-1) != 1 or v_new.stride(-1) != 1:
        raise ValueError("k_new's and v_new's last dimension must be contiguous")
    n_tokens, n_kv_heads, head_dim = k_new.shape
    if n_tokens == 0:
        return
    _write_kv_kernel[(n_tokens,)](  # one program per new token: all its kv heads
        k_new, v_new, k_cache, v_cache, slot_mapping, n_kv_heads, k_cache.shape[1],
        *k_new.stride()[:2], *v_new.stride()[:2], *k_cache.stride()[:3], *v_cache.stride()[:3],
        HEAD_DIM=head_dim, BLOCK_H=triton.next_power_of_2(n_kv_heads),
        BLOCK_D=triton.next_power_of_2(head_dim),
    )  # fmt: skip


# ---------------------------------------------------------------- spec
# dims = (batch, q_heads, kv_heads, seq_len, head_dim, block_size); every sequence seq_len long
def _make_inputs(dims, dtype, device, gen):
    batch, n_q_heads, n_kv_heads, seq_len, head_dim, block_size = dims
    blocks_per_seq = -(-seq_len // block_size)
    num_blocks = batch * blocks_per_seq + 3  # spare pages no sequence owns
    # a shuffled table: logical order is not physical order (a kernel that ignores it fails)
    block_table = torch.randperm(num_blocks, generator=gen)[: batch * blocks_per_seq]
    block_table = block_table.view(batch, blocks_per_seq).to(device=device, dtype=torch.int32)
    k_cache = random_tensor((num_blocks, block_size, n_kv_heads, head_dim), dtype, device, gen)
    v_cache = random_tensor((num_blocks, block_size, n_kv_heads, head_dim), dtype, device, gen)
    # the same cache unpaged, [batch, kv_heads, seq_len, D]: for the sdpa-dense baseline only
    dense_k = torch.stack([gather_kv(k_cache, block_table, b, seq_len) for b in range(batch)])
    dense_v = torch.stack([gather_kv(v_cache, block_table, b, seq_len) for b in range(batch)])
    return {
        "q": random_tensor((batch, n_q_heads, head_dim), dtype, device, gen),
        "k_cache": k_cache,
        "v_cache": v_cache,
        "block_table": block_table,
        "seq_lens": torch.full((batch,), seq_len, dtype=torch.int32, device=device),
        "k_dense": dense_k.transpose(1, 2).contiguous(),
        "v_dense": dense_v.transpose(1, 2).contiguous(),
    }


def _spec_launcher(q, k_cache, v_cache, block_table, seq_lens, k_dense=None, v_dense=None, out=None):
    # k_dense, v_dense are the sdpa-dense baseline's unpaged copy: the paged kernel never reads them
    return paged_decode_attention(q, k_cache, v_cache, block_table, seq_lens, out=out)


def _spec_reference(q, k_cache, v_cache, block_table, seq_lens, k_dense=None, v_dense=None):
    return paged_decode_attention_ref(q, k_cache, v_cache, block_table, seq_lens).to(q.dtype)


def _bytes_moved(dims: tuple[int, ...], dtype: torch.dtype) -> int:
    batch, n_q_heads, n_kv_heads, seq_len, head_dim, block_size = dims
    kv = 2 * batch * seq_len * n_kv_heads * head_dim  # every cached K and V row, once
    q_and_out = 2 * batch * n_q_heads * head_dim
    table = batch * (-(-seq_len // block_size)) * 4 + batch * 4  # int32 block table and seq_lens
    return (kv + q_and_out) * dtype.itemsize + table  # the dense copy is the baseline's, not counted


PAGED_DECODE_SPEC = KernelSpec(
    name="paged_decode_attention",
    module=__name__,
    launcher=_spec_launcher,
    reference=_spec_reference,
    make_inputs=_make_inputs,
    test_shapes=(
        Shape((1, 1, 1, 1, 16, 1), "size 1: one sequence of one token, pages of one token"),
        Shape((3, 4, 2, 37, 64, 16), "GQA 4/2, 37 tokens: the last of 3 pages is ragged, shuffled table"),
        Shape((2, 8, 1, 100, 128, 16), "MQA: 8 q heads of 128 share one kv head; 2 tiles of 64"),
        Shape((2, 6, 2, 50, 80, 5), "page of 5 tokens (not a power of two), head_dim 80, group of 3"),
    ),
    bench_shapes=(
        BenchShape((32, 32, 8, 4096, 128, 16), "llama-3-8b", "decode, 32 sequences x 4096 cached tokens"),
        BenchShape((8, 32, 8, 8192, 128, 16), "llama-3-8b", "decode, 8 x 8192 tokens (split-KV)"),
        BenchShape((1, 32, 8, 32768, 128, 16), "llama-3-8b", "decode, 1 x 32768 tokens (split-KV)"),
    ),
    flops=lambda dims: 4 * dims[0] * dims[1] * dims[3] * dims[4],
    bytes_moved=_bytes_moved,
    bound="memory",
    baselines=("sdpa-dense", "torch"),
    lesson=10,
    summary="paged decode attention (GQA group per program, split-KV for long contexts) and write_kv",
    error_scales_with_rms=(
        "P is rounded to the input dtype before P @ V on tensor cores, as FlashAttention and SDPA "
        "do: the error follows the size of the summed terms, not of an output near zero"
    ),
)
