"""rope.apply_rope against its reference: GQA/MQA, per-token positions, in place, views, bad input."""

from __future__ import annotations

import pytest
import torch

from inferlab.kernels.rope import SPEC, apply_rope, rope_ref
from inferlab.kernels.spec import TOLERANCES, check
from spec_cases import shape_cases

CASES = shape_cases(SPEC)


@pytest.mark.parametrize(("shape", "dtype"), CASES)
def test_matches_reference(shape, dtype, device):
    result = check(SPEC, shape, dtype, device)
    assert result.passed, result.message


def _llama_cos_sin(position_ids: torch.Tensor, head_dim: int, theta: float = 500000.0):
    """cos, sin: [batch, seq, head_dim] as Hugging Face's LlamaRotaryEmbedding builds them."""
    inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    freqs = position_ids.float()[..., None] * inv_freq  # [batch, seq, D/2]
    emb = torch.cat((freqs, freqs), dim=-1)  # the D/2 frequencies written twice
    return emb.cos(), emb.sin()


def _qk(batch, seq_len, n_q_heads, n_kv_heads, head_dim, device, dtype=torch.float32):
    q = torch.randn(batch, seq_len, n_q_heads, head_dim).to(device=device, dtype=dtype)
    k = torch.randn(batch, seq_len, n_kv_heads, head_dim).to(device=device, dtype=dtype)
    return q, k


def test_decode_batch_each_sequence_at_its_own_position(device):
    # three sequences decoding one token each, at positions 5, 17 and 3000
    position_ids = torch.tensor([[5], [17], [3000]])
    cos, sin = (t.to(device) for t in _llama_cos_sin(position_ids, 128))
    q, k = _qk(3, 1, 32, 8, 128, device)
    q_out, k_out = apply_rope(q, k, cos, sin)
    want_q, want_k = rope_ref(q, k, cos, sin)
    torch.testing.assert_close(q_out, want_q)
    torch.testing.assert_close(k_out, want_k)


def test_scores_depend_only_on_relative_position(device):
    # the point of RoPE: <rope(q, m), rope(k, n)> is a function of m - n
    q, k = _qk(1, 1, 1, 1, 64, device)
    q, k = q.expand(1, 4, 1, 64).contiguous(), k.expand(1, 4, 1, 64).contiguous()
    cos, sin = (t.to(device) for t in _llama_cos_sin(torch.tensor([[10, 3, 110, 103]]), 64, 10000.0))
    q_out, k_out = apply_rope(q, k, cos, sin)
    score = lambda i, j: float((q_out[0, i, 0] * k_out[0, j, 0]).sum())  # noqa: E731
    assert score(0, 1) == pytest.approx(score(2, 3), rel=1e-4, abs=1e-4)  # both at distance 7
    assert score(0, 1) != pytest.approx(score(0, 3), rel=1e-2)  # 10 - 103: another distance


@pytest.mark.parametrize("dtype", SPEC.dtypes, ids=lambda d: str(d)[6:])
def test_inplace_writes_into_q_and_k(dtype, device):
    q, k = _qk(2, 3, 8, 2, 64, device, dtype)
    angles = 2 * torch.pi * torch.rand(2, 3, 64)
    cos, sin = angles.cos().to(device, dtype), angles.sin().to(device, dtype)
    want_q, want_k = rope_ref(q, k, cos, sin)
    q_out, k_out = apply_rope(q, k, cos, sin, inplace=True)
    assert q_out is q and k_out is k
    tol = TOLERANCES[dtype]
    torch.testing.assert_close(q, want_q, atol=tol.atol, rtol=tol.rtol)
    torch.testing.assert_close(k, want_k, atol=tol.atol, rtol=tol.rtol)


def test_views_of_a_fused_qkv_projection(device):
    # qkv: [batch, seq, (q_heads + 2 * kv_heads) * head_dim], as one matmul writes it
    batch, seq_len, n_q_heads, n_kv_heads, head_dim = 2, 3, 4, 2, 32
    width = (n_q_heads + 2 * n_kv_heads) * head_dim
    qkv = torch.randn(batch, seq_len, width, device=device)
    q = qkv[..., : n_q_heads * head_dim].view(batch, seq_len, n_q_heads, head_dim)
    k = qkv[..., n_q_heads * head_dim : (n_q_heads + n_kv_heads) * head_dim].view(
        batch, seq_len, n_kv_heads, head_dim
    )
    v_before = qkv[..., (n_q_heads + n_kv_heads) * head_dim :].clone()
    assert not q.is_contiguous()
    cos, sin = (t.to(device) for t in _llama_cos_sin(torch.arange(seq_len).expand(batch, -1), head_dim))
    want_q, want_k = rope_ref(q, k, cos, sin)
    apply_rope(q, k, cos, sin, inplace=True)
    torch.testing.assert_close(q, want_q)
    torch.testing.assert_close(k, want_k)
    assert torch.equal(qkv[..., (n_q_heads + n_kv_heads) * head_dim :], v_before)  # v untouched


def test_one_cos_row_per_position_shared_by_the_batch(device):
    q, k = _qk(3, 4, 4, 2, 64, device)
    cos, sin = (t.to(device) for t in _llama_cos_sin(torch.arange(4)[None, :], 64))  # [1, 4, 64]
    want_q, want_k = rope_ref(q, k, cos, sin)  # broadcasts over the batch
    q_out, k_out = apply_rope(q, k, cos, sin)
    torch.testing.assert_close(q_out, want_q)
    torch.testing.assert_close(k_out, want_k)


def test_head_major_memory_is_just_other_strides(device):
    q, k, cos, sin = _good(device)
    q = q.transpose(1, 2).contiguous().transpose(1, 2)  # [batch, heads, seq, D] in memory
    torch.testing.assert_close(apply_rope(q, k, cos, sin), rope_ref(q, k, cos, sin))


def test_empty_batch_and_sequence(device):
    cos = sin = torch.empty(0, 5, 64, device=device)
    q, k = _qk(0, 5, 4, 2, 64, device)
    assert [t.shape for t in apply_rope(q, k, cos, sin)] == [q.shape, k.shape]
    q, k = _qk(2, 0, 4, 2, 64, device)
    cos = sin = torch.empty(2, 0, 64, device=device)
    assert [t.shape for t in apply_rope(q, k, cos, sin)] == [q.shape, k.shape]


def _good(device):
    q, k = _qk(2, 3, 4, 2, 8, device)
    cos, sin = torch.randn(2, 3, 8, device=device), torch.randn(2, 3, 8, device=device)
    return q, k, cos, sin


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (lambda q, k, c, s: (q[0], k, c, s), ValueError, "must be \\[batch, seq, heads, head_dim\\]"),
        (lambda q, k, c, s: (q, k[:1], c, s), ValueError, "must match q"),
        (lambda q, k, c, s: (q[..., :7], k[..., :7], c[..., :7], s[..., :7]), ValueError, "even"),
        (lambda q, k, c, s: (q, k, c[:, :2], s), ValueError, "cos has shape"),
        (lambda q, k, c, s: (q, k, c, s[..., :4]), ValueError, "sin has shape"),
        (lambda q, k, c, s: (q, k, c, s.half()), TypeError, "pass one dtype"),
        (lambda q, k, c, s: (q.int(), k.int(), c.int(), s.int()), TypeError, "int32"),
        (lambda q, k, c, s: (q.repeat(1, 1, 1, 2)[..., ::2], k, c, s), ValueError, "q's last dimension"),
        (lambda q, k, c, s: (q.tolist(), k, c, s), TypeError, "q must be a torch.Tensor"),
    ],
    ids=["3d-q", "batch", "odd-dim", "cos-seq", "sin-dim", "dtype", "int", "last-dim", "list"],
)
def test_bad_input_gets_one_clear_error(change, error, message, device):
    q, k, cos, sin = change(*_good(device))
    with pytest.raises(error, match=message):
        apply_rope(q, k, cos, sin)


def test_head_dim_limit_and_out_arguments(device):
    q, k = _qk(1, 1, 1, 1, 258, device)
    cos = sin = torch.randn(1, 1, 258, device=device)
    with pytest.raises(ValueError, match="at most 256"):
        apply_rope(q, k, cos, sin)
    q, k = _qk(1, 1, 256, 8, 128, device)  # 2 * (256 + 8) * 64 values: more than one program holds
    cos = sin = torch.randn(1, 1, 128, device=device)
    with pytest.raises(ValueError, match="more than one program holds"):
        apply_rope(q, k, cos, sin)
    q, k, cos, sin = _good(device)
    with pytest.raises(ValueError, match="either inplace=True or out="):
        apply_rope(q, k, cos, sin, inplace=True, out=(torch.empty_like(q), torch.empty_like(k)))
    with pytest.raises(TypeError, match="out must be a tuple"):
        apply_rope(q, k, cos, sin, out=torch.empty_like(q))
    with pytest.raises(ValueError, match="k_out has shape"):
        apply_rope(q, k, cos, sin, out=(torch.empty_like(q), torch.empty_like(q)))
