"""quant_formats: the NF4 spec against bitsandbytes, and int4 / int8 round trips and loaders.

The int4 loader tests pack synthetic AWQ and GPTQ checkpoints by the layout rules written in
quant_formats' docstring (each rule restated next to the packing code here), then check that
loading them and dequantizing gives (q - z) * s computed directly from the unpacked integers.
"""

from __future__ import annotations

import pytest
import torch

from inferlab.kernels.quant_formats import (
    AWQ_ORDER,
    NF4_CODE,
    Int4Weight,
    dequantize_int4_ref,
    dequantize_int8_ref,
    dequantize_nf4_ref,
    int4_from_awq,
    int4_from_gptq,
    nf4_absmax_ref,
    nf4_code,
    pack_int4_along_k,
    quantize_int4,
    quantize_int8,
    quantize_nf4_ref,
    signed_dynamic_map,
    unpack_int4_along_k,
    unpack_nf4,
)
from nf4_cases import nf4_cases

DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def bnb():
    return pytest.importorskip("bitsandbytes.functional", reason="bitsandbytes is not installed")


# ---------------------------------------------------------------- NF4 vs bitsandbytes
def test_nf4_table_and_dynamic_map_are_bitsandbytes(bnb):
    assert torch.equal(nf4_code(), bnb.get_4bit_type("nf4", device="cpu"))
    assert torch.equal(signed_dynamic_map(), bnb.create_dynamic_map(signed=True))
    assert len(NF4_CODE) == 16 and list(NF4_CODE) == sorted(NF4_CODE)


# (dims, blocksize): odd element counts, one value, one block per row, and the other block sizes
NF4_SIZES = [((100, 70), 64), ((3, 1001), 64), ((1, 1), 64), ((64, 64), 64), ((129, 33), 32),
             ((100, 70), 128), ((70, 100), 4096)]  # fmt: skip


NF4_CASES = nf4_cases(NF4_SIZES)


@pytest.mark.parametrize(("dims", "dtype", "nested", "blocksize"), NF4_CASES)
def test_nf4_reference_is_bit_exact_with_bitsandbytes(bnb, dims, dtype, nested, blocksize):
    w = (torch.randn(dims, generator=_gen()) * 2).to(dtype)
    packed, state = bnb.quantize_4bit(w, quant_type="nf4", compress_statistics=nested, blocksize=blocksize)
    want = bnb.dequantize_4bit(packed, state)
    got = dequantize_nf4_ref(packed, state)
    assert got.dtype == want.dtype == dtype
    assert torch.equal(got, want)


@pytest.mark.parametrize("dims", [(100, 70), (3, 1001), (256, 64)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_our_nf4_quantizer_writes_bitsandbytes_bytes(bnb, dims, dtype):
    """Same packed bytes and fp32 absmax; nested absmax codes may differ by one step (below)."""
    w = torch.randn(dims, generator=_gen(1)).to(dtype)
    want_packed, want_state = bnb.quantize_4bit(w, quant_type="nf4", compress_statistics=False)
    packed, state = quantize_nf4_ref(w, nested=False)
    assert packed.shape == want_packed.shape and packed.dtype == torch.uint8
    assert torch.equal(packed, want_packed)
    assert torch.equal(state.absmax, want_state.absmax)


def test_nested_absmax_codes_are_the_nearest(bnb):
    """bitsandbytes' CPU 8-bit quantizer looks codes up in a 65536-bin table, so a value near the
    midpoint of two codes can land one code away; ours takes the exact nearest. Both decode to
    within one code step, and our state decodes through bitsandbytes like its own."""
    w = torch.randn(256, 256, generator=_gen(2))
    _, want_state = bnb.quantize_4bit(w, quant_type="nf4", compress_statistics=True)
    packed, state = quantize_nf4_ref(w, nested=True)
    assert (state.absmax.int() - want_state.absmax.int()).abs().max() <= 1
    assert torch.equal(state.offset, want_state.offset)
    assert torch.equal(state.state2.absmax, want_state.state2.absmax)
    assert torch.equal(bnb.dequantize_4bit(packed, state), dequantize_nf4_ref(packed, state))


@pytest.mark.parametrize("nested", [False, True])
@pytest.mark.parametrize("dims", [(100, 70), (3, 1001), (1, 1)])
def test_nf4_round_trip_error_is_half_a_code_gap(dims, nested):
    w = torch.randn(dims, generator=_gen(3)) * 3
    packed, state = quantize_nf4_ref(w, nested=nested)
    got = dequantize_nf4_ref(packed, state).float()
    n = w.numel()
    absmax = nf4_absmax_ref(state).repeat_interleave(64)[:n].view(dims)
    true_absmax = state.absmax if not nested else None
    half_gap = max(b - a for a, b in zip(NF4_CODE, NF4_CODE[1:], strict=False)) / 2  # 0.139
    # nested: the decoded absmax is off by <= one dynamic-map step (< 1% of the largest absmax)
    slack = 0.0 if true_absmax is not None else 0.01 * float(absmax.abs().max())
    assert ((got - w).abs() <= half_gap * absmax.abs() + slack + 1e-6).all()
    assert state.shape == w.shape and state.dtype == w.dtype and state.nested == nested


def test_nf4_packing_order_and_zero_block():
    w = torch.tensor([[-1.0, 1.0, 0.0]])  # codes 0, 15, 7: byte 0 = 0x0F, byte 1 = 0x7 | pad 0.0 (7)
    packed, state = quantize_nf4_ref(w, nested=False)
    assert packed.flatten().tolist() == [0x0F, 0x77]
    assert unpack_nf4(packed, 3).tolist() == [0, 15, 7]
    zeros = torch.zeros(2, 64)
    packed, state = quantize_nf4_ref(zeros, nested=True)
    assert torch.equal(dequantize_nf4_ref(packed, state), zeros)


def test_nf4_quantizer_refuses_unknown_blocksize():
    with pytest.raises(ValueError, match="blocksize must be one of"):
        quantize_nf4_ref(torch.randn(64), blocksize=48)


# ---------------------------------------------------------------- int4 internal layout
def test_int4_layout_is_packed_along_k():
    k, n = 16, 3
    q = torch.randint(0, 16, (k, n), generator=_gen(4), dtype=torch.int32)
    words = pack_int4_along_k(q)
    assert words.shape == (k // 8, n) and words.dtype == torch.int32
    for i in range(k // 8):
        for j in range(8):
            assert torch.equal((words[i] >> (4 * j)) & 0xF, q[8 * i + j])  # input 8i + j in bits 4j
    assert torch.equal(unpack_int4_along_k(words), q)


@pytest.mark.parametrize("group_size", [32, 64, 128])
@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_int4_round_trip_error_is_within_one_step(group_size, symmetric, dtype):
    n, k = 48, 256
    w = (torch.randn(n, k, generator=_gen(5)) * 0.05).to(dtype)
    qw = quantize_int4(w, group_size=group_size, symmetric=symmetric)
    assert qw.shape == (n, k) and qw.symmetric == symmetric and qw.scales.dtype == dtype
    assert qw.qweight.shape == (k // 8, n) and qw.scales.shape == (k // group_size, n)
    got = dequantize_int4_ref(qw)
    assert got.shape == (n, k) and got.dtype == dtype
    step = qw.scales.float().repeat_interleave(group_size, dim=0).t()  # [N, K]
    err = (got.float() - w.float()).abs()
    # half a step from rounding; a clamped extreme can reach one step; then the output rounding
    assert (err <= step + w.float().abs() * 2**-7).all()
    assert err.mean() < 0.3 * step.mean()


def test_int4_symmetric_centres_on_eight():
    w = torch.tensor([[-1.0, 0.0, 1.0] + [0.0] * 29])
    qw = quantize_int4(w, group_size=32, symmetric=True)
    q = unpack_int4_along_k(qw.qweight)[:3, 0]
    assert q.tolist() == [0, 8, 15]  # -max -> -8 (round half to even), 0 -> 8, +max -> 7 (clamped)


def test_int4_refuses_bad_shapes():
    with pytest.raises(ValueError, match="group_size must be one of"):
        quantize_int4(torch.randn(8, 256), group_size=100)
    with pytest.raises(ValueError, match="not a multiple of group_size"):
        quantize_int4(torch.randn(8, 96), group_size=64)
    qw = quantize_int4(torch.randn(8, 128), group_size=32)
    with pytest.raises(ValueError, match="scales has shape"):
        Int4Weight(qw.qweight, qw.scales[:2], qw.zeros, 32)


# ---------------------------------------------------------------- AWQ / GPTQ loaders
def _random_int4_checkpoint(k=256, n=64, group_size=128, seed=6):
    gen = _gen(seed)
    q = torch.randint(0, 16, (k, n), generator=gen, dtype=torch.int32)  # [K, N], input-major like both
    zeros = torch.randint(0, 16, (k // group_size, n), generator=gen, dtype=torch.int32)
    zeros[0, :8] = 0  # a zero point of 0: GPTQ v1 stores it as -1
    scales = (torch.rand(k // group_size, n, generator=gen) * 0.01 + 1e-3).half()
    direct = ((q - zeros.repeat_interleave(group_size, 0)) * scales.repeat_interleave(group_size, 0)).t()
    return q, zeros, scales, direct  # direct: W [N, K] = (q - z) * s in fp16, as AWQ's dequantize does


def _pack_along_n(values: torch.Tensor, order) -> torch.Tensor:
    """[R, N] -> int32 [R, N/8]: nibble i (bits 4i) of word c holds column 8c + order[i]."""
    r, n = values.shape
    words = torch.zeros(r, n // 8, dtype=torch.int64)
    for c in range(n // 8):
        for i in range(8):
            words[:, c] |= (values[:, 8 * c + order[i]].to(torch.int64) & 0xF) << (4 * i)
    return torch.where(words >= 2**31, words - 2**32, words).to(torch.int32)


def _pack_along_k(values: torch.Tensor) -> torch.Tensor:
    """[K, N] -> int32 [K/8, N]: bits 4j of row i hold input row 8i + j (GPTQ's qweight)."""
    k, n = values.shape
    words = torch.zeros(k // 8, n, dtype=torch.int64)
    for i in range(k // 8):
        for j in range(8):
            words[i] |= values[8 * i + j].to(torch.int64) << (4 * j)
    return torch.where(words >= 2**31, words - 2**32, words).to(torch.int32)


def test_awq_checkpoint_loads():
    q, zeros, scales, direct = _random_int4_checkpoint()
    qweight = _pack_along_n(q, AWQ_ORDER)  # AWQ: qweight [K, N/8], interleaved columns
    qzeros = _pack_along_n(zeros, AWQ_ORDER)  # qzeros [K/G, N/8], same interleave, zero as is
    qw = int4_from_awq(qweight, qzeros, scales, group_size=128)
    assert qw.shape == (64, 256)
    assert torch.equal(unpack_int4_along_k(qw.qweight), q)
    assert torch.equal(dequantize_int4_ref(qw), direct)


@pytest.mark.parametrize("checkpoint_format", ["gptq", "gptq_v2"])
def test_gptq_checkpoint_loads(checkpoint_format):
    q, zeros, scales, direct = _random_int4_checkpoint(group_size=64)
    stored = zeros - 1 if checkpoint_format == "gptq" else zeros  # v1 stores zero - 1 (0 -> -1 -> 15)
    qweight = _pack_along_k(q)
    qzeros = _pack_along_n(stored, tuple(range(8)))  # natural column order
    g_idx = torch.arange(256, dtype=torch.int32) // 64
    qw = int4_from_gptq(qweight, qzeros, scales, 64, g_idx=g_idx, checkpoint_format=checkpoint_format)
    assert torch.equal(qw.zeros.int(), zeros)
    assert torch.equal(dequantize_int4_ref(qw), direct)


def test_gptq_act_order_is_refused():
    q, zeros, scales, _ = _random_int4_checkpoint(group_size=64)
    g_idx = (torch.arange(256) // 64).flip(0)
    with pytest.raises(ValueError, match="act-order"):
        int4_from_gptq(_pack_along_k(q), _pack_along_n(zeros, range(8)), scales, 64, g_idx=g_idx)
    with pytest.raises(ValueError, match="checkpoint_format"):
        int4_from_gptq(_pack_along_k(q), _pack_along_n(zeros, range(8)), scales, 64, checkpoint_format="v3")


# ---------------------------------------------------------------- int8
@pytest.mark.parametrize("dtype", DTYPES)
def test_int8_round_trip(dtype):
    w = (torch.randn(32, 100, generator=_gen(7)) * torch.rand(32, 1, generator=_gen(8))).to(dtype)
    q, scale = quantize_int8(w)
    assert q.dtype == torch.int8 and q.shape == w.shape and scale.shape == (32,)
    assert q.abs().max() <= 127
    got = dequantize_int8_ref(q, scale, dtype)
    assert got.dtype == dtype
    err = (got.float() - w.float()).abs()
    assert (err <= scale.unsqueeze(1) / 2 + w.float().abs() * 2**-7 + 1e-6).all()
    zeros = torch.zeros(2, 4)
    assert torch.equal(dequantize_int8_ref(*quantize_int8(zeros)), zeros.half())
