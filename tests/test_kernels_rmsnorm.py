"""rmsnorm.rmsnorm (alone and with the fused residual add) against its references, and its checks."""

from __future__ import annotations

import pytest
import torch
import triton
import triton.language as tl

from inferlab.kernels.rmsnorm import (
    MAX_N_COLS,
    RMSNORM_RESIDUAL_SPEC,
    RMSNORM_SPEC,
    _round,
    rmsnorm,
    rmsnorm_ref,
    rmsnorm_residual,
    rmsnorm_residual_ref,
)
from inferlab.kernels.spec import check
from spec_cases import spec_cases

CASES = spec_cases(RMSNORM_SPEC, RMSNORM_RESIDUAL_SPEC)


@pytest.mark.parametrize(("spec", "shape", "dtype"), CASES)
def test_matches_reference(spec, shape, dtype, device):
    result = check(spec, shape, dtype, device)
    assert result.passed, result.message


def _inputs(rows, n, device, dtype=torch.float32, scale=1.0):
    x = (scale * torch.randn(rows, n)).to(device=device, dtype=dtype)
    weight = (1 + 0.1 * torch.randn(n)).to(device=device, dtype=dtype)
    return x, weight


def test_eps_is_honored(device):
    # rows with RMS ~1e-3: eps = 1e-6 barely matters, eps = 1e-2 dominates the denominator
    x, weight = _inputs(3, 300, device, scale=1e-3)
    small, large = rmsnorm(x, weight, eps=1e-6), rmsnorm(x, weight, eps=1e-2)
    torch.testing.assert_close(small, rmsnorm_ref(x, weight, eps=1e-6))
    torch.testing.assert_close(large, rmsnorm_ref(x, weight, eps=1e-2))
    assert (large.abs() < 0.1 * small.abs()).all()
    out, h = rmsnorm_residual(x, x, weight, eps=1e-2)
    torch.testing.assert_close(out, rmsnorm_ref(2 * x, weight, eps=1e-2))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["float32", "bfloat16"])
def test_residual_returns_the_sum_it_normalized(dtype, device):
    x, weight = _inputs(4, 1000, device, dtype)
    residual = torch.randn(4, 1000).to(device=device, dtype=dtype)
    out, h = rmsnorm(x, weight, residual=residual)
    want_out, want_h = rmsnorm_residual_ref(x, residual, weight)
    assert torch.equal(h, want_h)  # one rounding of an exact fp32 sum: bit for bit
    torch.testing.assert_close(out, want_out)
    torch.testing.assert_close(out, rmsnorm_ref(h, weight))


def test_residual_stream_updated_in_place(device):
    x, weight = _inputs(3, 1000, device)
    residual = torch.randn(3, 1000, device=device)
    want_out, want_h = rmsnorm_residual_ref(x, residual, weight)
    out = torch.empty_like(x)
    got_out, got_h = rmsnorm(x, weight, residual=residual, out=(out, residual))
    assert got_out is out and got_h is residual
    torch.testing.assert_close(residual, want_h)
    torch.testing.assert_close(out, want_out)


def test_strided_rows_need_no_copy(device):
    base, weight = _inputs(8, 700, device)
    x = base[1::2, :500]  # row stride 1400, last dim contiguous
    torch.testing.assert_close(rmsnorm(x, weight[:500]), rmsnorm_ref(x, weight[:500]))


def test_empty_rows(device):
    x, weight = _inputs(0, 16, device)
    assert rmsnorm(x, weight).shape == (0, 16)
    out, h = rmsnorm(x, weight, residual=x)
    assert out.shape == h.shape == (0, 16)


@triton.jit
def _round_kernel(x_ptr, out_ptr, n, BY_HAND: tl.constexpr, BLOCK_SIZE: tl.constexpr):
    offs = tl.arange(0, BLOCK_SIZE)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask)
    tl.store(out_ptr + offs, _round(x, tl.bfloat16, BY_HAND), mask=mask)


def test_round_by_hand_is_round_to_nearest_even(device):
    # bf16 keeps the top 16 bits of an fp32: pick the low 16 bits to land below, on and above
    # the halfway point, with the kept lowest bit even and odd (ties go to the even one)
    high = torch.tensor([0x3F80, 0x3F81, 0xBF80, 0xBF81, 0x4049, 0x7F7F], dtype=torch.int64)
    low = torch.tensor([0x0000, 0x7FFF, 0x8000, 0x8001, 0xFFFF], dtype=torch.int64)
    bits = (high[:, None] << 16 | low[None, :]).flatten()
    x = bits.to(torch.int32).view(torch.float32)  # bit patterns as fp32 values
    x = torch.cat([x, torch.randn(200)]).to(device)
    want = x.to(torch.bfloat16)  # PyTorch rounds to nearest even
    got = torch.empty_like(want)
    _round_kernel[(1,)](x, got, x.numel(), BY_HAND=True, BLOCK_SIZE=256)
    assert torch.equal(got.view(torch.int16), want.view(torch.int16))


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda d: (torch.randn(2, 8, device=d), torch.ones(7, device=d)), ValueError, "weight has shape"),
        (lambda d: (torch.randn(2, 8, device=d), torch.ones(1, 8, device=d)), ValueError, "weight has shape"),
        (
            lambda d: (torch.randn(2, 8, device=d), torch.ones(8, device=d, dtype=torch.float16)),
            TypeError,
            "pass one dtype",
        ),
        (lambda d: (torch.randn(8, 2, device=d).t(), torch.ones(8, device=d)), ValueError, "contiguous"),
        (lambda d: (torch.randn(2, 16, device=d), torch.ones(32, device=d)[::2]), ValueError, "contiguous"),
        (lambda d: (torch.randn(2, 8, device=d).long(), torch.ones(8, device=d).long()), TypeError, "int64"),
        (
            lambda d: (torch.randn(1, MAX_N_COLS + 1, device=d), torch.ones(MAX_N_COLS + 1, device=d)),
            ValueError,
            "longer than",
        ),
    ],
    ids=["short-weight", "2d-weight", "dtype-mismatch", "strided-last-dim", "strided-weight", "int", "long"],
)
def test_bad_input_gets_one_clear_error(make, error, message, device):
    x, weight = make(device)
    with pytest.raises(error, match=message):
        rmsnorm(x, weight)


def test_bad_eps_residual_and_out_are_refused(device):
    x, weight = _inputs(2, 8, device)
    with pytest.raises(ValueError, match="eps must be a number >= 0"):
        rmsnorm(x, weight, eps=-1.0)
    with pytest.raises(ValueError, match="residual has shape"):
        rmsnorm(x, weight, residual=torch.randn(2, 9, device=device))
    with pytest.raises(TypeError, match="out must be a tuple"):
        rmsnorm(x, weight, residual=x, out=torch.empty_like(x))
    with pytest.raises(ValueError, match="residual_out has shape"):
        rmsnorm(x, weight, residual=x, out=(torch.empty_like(x), torch.empty(3, device=device)))
