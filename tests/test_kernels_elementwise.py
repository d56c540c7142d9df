"""elementwise.add and elementwise.swiglu against their references, and their input checks."""

from __future__ import annotations

import pytest
import torch

from inferlab.kernels import REGISTRY, get_spec
from inferlab.kernels.elementwise import (
    ADD_SPEC,
    SWIGLU_FUSED_SPEC,
    SWIGLU_SPEC,
    add,
    swiglu,
    swiglu_fused,
)
from inferlab.kernels.spec import check
from spec_cases import spec_cases

CASES = spec_cases(ADD_SPEC, SWIGLU_SPEC, SWIGLU_FUSED_SPEC)


@pytest.mark.parametrize(("spec", "shape", "dtype"), CASES)
def test_matches_reference(spec, shape, dtype, device):
    result = check(spec, shape, dtype, device)
    assert result.passed, result.message


def test_registry_is_explicit_and_named():
    assert [s.name for s in REGISTRY] == [
        "add",
        "swiglu",
        "swiglu_fused",
        "softmax",
        "rmsnorm",
        "rmsnorm_residual",
        "rope",
        "nf4_dequantize",
        "w4a16_matmul",
        "nf4_matmul",
        "int8_matmul",
        "flash_attention",
        "paged_decode_attention",
    ]
    assert get_spec("swiglu") is SWIGLU_SPEC
    with pytest.raises(ValueError, match="known kernels: add, swiglu"):
        get_spec("nope")


def test_every_test_shape_has_a_reason():
    for spec in REGISTRY:
        # STYLE.md: always a size-1 case (one element, one row or one token), named with its reason
        assert any(1 in s.dims for s in spec.test_shapes), spec.name
        assert all(s.reason for s in spec.test_shapes)


def test_empty_tensors_are_handled(device):
    x = torch.empty(0, device=device)
    assert add(x, x).shape == (0,)
    empty_rows = torch.empty(0, 3, device=device)
    assert swiglu(empty_rows, empty_rows).shape == (0, 3)


def test_returns_the_out_tensor_it_was_given(device):
    x = torch.randn(100, device=device)
    out = torch.empty_like(x)
    assert add(x, x, out=out) is out
    torch.testing.assert_close(out, x + x)


@pytest.mark.parametrize(
    ("x", "y", "message"),
    [
        (torch.randn(4), torch.randn(5), "y has shape \\(5,\\) but x has \\(4,\\)"),
        (torch.randn(4), torch.randn(4, dtype=torch.float16), "pass one dtype"),
        (torch.randn(4).to(torch.int32), torch.randn(4).to(torch.int32), "has dtype int32; supported"),
        (torch.randn(4, 4), torch.randn(4, 4).t(), "y must be contiguous"),
        (torch.randn(4), torch.empty(4, device="meta"), "y is on meta but x is on cpu"),
        ([1.0, 2.0], torch.randn(2), "x must be a torch.Tensor, not list"),
    ],
)
def test_bad_input_gets_one_clear_error(x, y, message, device):
    if device == "cuda" and isinstance(x, torch.Tensor):
        x = x.cuda()
        y = y if y.device.type == "meta" else y.cuda()
        message = message.replace("x is on cpu", "x is on cuda:0")
    with pytest.raises((ValueError, TypeError), match=message):
        add(x, y)


def test_wrong_device_names_the_fix():
    if torch.cuda.is_available():
        pytest.skip("on a GPU machine CPU tensors are the wrong device; covered by the interpreter run")
    # The interpreter runs on CPU tensors; a meta tensor stands in for "the wrong device".
    with pytest.raises(ValueError, match="kernels run on cpu here"):
        add(torch.empty(4, device="meta"), torch.empty(4, device="meta"))


def test_bad_out_is_refused(device):
    x = torch.randn(8, device=device)
    with pytest.raises(ValueError, match="out has shape \\(9,\\), expected \\(8,\\)"):
        add(x, x, out=torch.empty(9, device=device))
    with pytest.raises(TypeError, match="out must be torch.float32"):
        add(x, x, out=torch.empty(8, device=device, dtype=torch.float16))


def test_swiglu_fused_takes_strided_rows(device):
    # a [rows, 2*I] view whose rows are 3*I apart, as a slice of a wider projection output
    wide = torch.randn(5, 3 * 100, device=device)
    gate_up = wide[:, :200]
    torch.testing.assert_close(
        swiglu_fused(gate_up), swiglu(gate_up[:, :100].contiguous(), gate_up[:, 100:].contiguous())
    )


def test_swiglu_fused_refuses_odd_width_and_strided_columns(device):
    with pytest.raises(ValueError, match="must be even"):
        swiglu_fused(torch.randn(2, 7, device=device))
    with pytest.raises(ValueError, match="must be contiguous"):
        swiglu_fused(torch.randn(8, 2, device=device).t())


def test_int64_offsets_only_where_32_bits_overflow(monkeypatch):
    from inferlab.kernels import _launch

    assert not _launch.needs_int64_offsets(14336 * 8192)  # Llama-3-8B prefill activation: 32 bits
    assert _launch.needs_int64_offsets(2**31)
    assert not _launch.needs_int64_offsets(2**31 - 1)
    # rmsnorm asks with the largest row offset its kernel computes (rows x row stride)
    from inferlab.kernels.rmsnorm import rmsnorm

    asked = []
    monkeypatch.setattr("inferlab.kernels.rmsnorm.needs_int64_offsets", lambda n: asked.append(n) or False)
    x = torch.randn(3, 1000) if not torch.cuda.is_available() else torch.randn(3, 1000, device="cuda")
    rmsnorm(x, torch.ones(1000, device=x.device))
    assert asked == [3 * 1000]


def test_the_sweep_skips_a_dtype_a_kernel_does_not_take():
    import dataclasses

    from inferlab.bench.checks import sweep

    fp16_only = dataclasses.replace(ADD_SPEC, dtypes=(torch.float16,))
    (row,) = sweep([fp16_only], [torch.float32])
    assert row.skipped == "add takes float16 only" and not row.results
