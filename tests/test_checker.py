"""Prove the checker can fail: known-wrong kernels that `check` must reject.

Each wrong kernel is a real Triton kernel with one classic bug. A bug that `check` let through
would be a hole in every kernel test of the project, so each gets its own test.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

triton = pytest.importorskip("triton", reason="Triton is not installed here (macOS?)")
import triton.language as tl  # noqa: E402

from inferlab.kernels.elementwise import ADD_SPEC, BLOCK_SIZE, _add_kernel, add  # noqa: E402
from inferlab.kernels.spec import check, in_guarded_buffer  # noqa: E402

N = 1000  # not a multiple of BLOCK_SIZE: the last program has a ragged tail


@triton.jit
def _add_no_mask(x_ptr, y_ptr, out_ptr, n_elements, BLOCK_SIZE: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    x = tl.load(x_ptr + offsets).to(tl.float32)  # bug: reads past n
    y = tl.load(y_ptr + offsets).to(tl.float32)
    tl.store(out_ptr + offsets, (x + y).to(out_ptr.dtype.element_ty))  # bug: writes past n


@triton.jit
def _add_off_by_one(x_ptr, y_ptr, out_ptr, n_elements, BLOCK_SIZE: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE) + 1  # bug: + 1
    mask = offsets <= n_elements  # bug: <= lets the last lane read one past the end
    x = tl.load(x_ptr + offsets, mask=mask).to(tl.float32)
    y = tl.load(y_ptr + offsets, mask=mask).to(tl.float32)
    tl.store(out_ptr + offsets - 1, (x + y).to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _add_load_mask_only(x_ptr, y_ptr, out_ptr, n_elements, BLOCK_SIZE: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offsets < n_elements
    x = tl.load(x_ptr + offsets, mask=mask, other=0.0).to(tl.float32)
    y = tl.load(y_ptr + offsets, mask=mask, other=0.0).to(tl.float32)
    tl.store(out_ptr + offsets, (x + y).to(out_ptr.dtype.element_ty))  # bug: store unmasked


@triton.jit
def _add_bf16_without_upcast(x_ptr, y_ptr, out_ptr, n_elements, BLOCK_SIZE: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offsets < n_elements
    # no .to(tl.float32): right on a GPU, wrong under the CPU interpreter's bf16 arithmetic
    tl.store(
        out_ptr + offsets,
        tl.load(x_ptr + offsets, mask=mask) + tl.load(y_ptr + offsets, mask=mask),
        mask=mask,
    )


def _launch(kernel, grid_fn=lambda n: triton.cdiv(n, BLOCK_SIZE)):
    def launcher(x, y, out):
        kernel[(grid_fn(x.numel()),)](x, y, out, x.numel(), BLOCK_SIZE=BLOCK_SIZE)
        return out

    return launcher


def _rejects(launcher, dtype=torch.float32, dims=(N,), device="cpu") -> str:
    result = check(ADD_SPEC, dims, dtype, device, launcher=launcher)
    assert not result.passed, f"check let a wrong kernel through: {result.message}"
    assert f"seed={result.seed}" in result.message  # every failure says how to reproduce it
    return result.message


def test_missing_mask_is_rejected(device):
    message = _rejects(_launch(_add_no_mask), device=device)
    assert "out-of-bounds" in message or "outside the output was written" in message


def test_off_by_one_offset_is_rejected(device):
    message = _rejects(_launch(_add_off_by_one), device=device)
    assert "first bad indices" in message or "NaN where the reference" in message


def test_unmasked_store_is_caught_by_the_output_margin(device):
    message = _rejects(_launch(_add_load_mask_only), device=device)
    assert "memory just outside the output was written" in message


def test_grid_rounded_down_leaves_unwritten_elements(device):
    # the right kernel, launched with n // BLOCK_SIZE programs instead of cdiv(n, BLOCK_SIZE)
    rounded_down = _launch(_add_kernel, grid_fn=lambda n: n // BLOCK_SIZE)
    message = _rejects(rounded_down, dims=(3 * BLOCK_SIZE + 7,), device=device)
    assert "never written" in message


def test_interpreter_bf16_arithmetic_is_caught():
    if torch.cuda.is_available():
        pytest.skip("only the CPU interpreter has the bf16-arithmetic bug")
    message = _rejects(_launch(_add_bf16_without_upcast), dtype=torch.bfloat16)
    assert "reproduce with seed=" in message


def test_a_launcher_that_ignores_out_is_rejected(device):
    def fresh_output(x, y, out):
        return add(x, y)  # right values, but in a new tensor: the caller's `out` stays NaN

    message = _rejects(fresh_output, device=device)
    assert "not written into the `out` tensor" in message


def test_a_kernel_that_modifies_its_input_is_rejected(device):
    def clobbers_x(x, y, out):
        add(x, y, out=out)
        x.zero_()
        return out

    assert "input 'x' was modified" in _rejects(clobbers_x, device=device)


def test_a_reference_mismatch_reports_indices_and_errors(device):
    wrong = dataclasses.replace(ADD_SPEC, reference=lambda x, y: (x.float() - y.float()).to(x.dtype))
    result = check(wrong, (N,), torch.float32, device)
    assert not result.passed
    assert "first bad indices [(0,)" in result.message
    assert "max abs error" in result.message


def test_same_seed_same_inputs_fresh_seed_fresh_inputs(device):
    a = check(ADD_SPEC, (N,), torch.float32, device, seed=7)
    b = check(ADD_SPEC, (N,), torch.float32, device, seed=7)
    c = check(ADD_SPEC, (N,), torch.float32, device)
    assert a.passed and b.passed and c.passed
    assert a.seed == b.seed == 7 and a.max_abs_err == b.max_abs_err
    assert c.seed != 7 or check(ADD_SPEC, (N,), torch.float32, device).seed != 7


def test_guarded_buffer_margins_are_nan_and_sentinel():
    view, buf = in_guarded_buffer(torch.ones(10))
    assert torch.isnan(buf[:10]).all() and torch.isnan(buf[-10:]).all()
    assert torch.equal(view, torch.ones(10))
    ints, int_buf = in_guarded_buffer(torch.arange(5, dtype=torch.int32))
    assert (int_buf[:3].view(torch.uint8) == 0xA5).all()
    _, out_buf = in_guarded_buffer(torch.ones(4), role="output")
    assert not torch.equal(out_buf[:4].view(torch.int32), buf[:4].view(torch.int32))  # distinct NaNs


def test_the_rms_budget_forgives_cancellation_not_wrong_elements():
    from inferlab.kernels.spec import TOLERANCES, outside_tolerance

    tol = TOLERANCES[torch.bfloat16]
    want = torch.tensor([1.0, -1.0, 1.0, 0.001])  # rms ~0.87; the last output cancelled to near 0
    rounding = want + torch.tensor([0.0, 0.0, 0.0, 0.01])  # off by 1% of the terms' size
    assert outside_tolerance(rounding, want, tol, with_rms=False)[3]  # per element: fails
    assert not outside_tolerance(rounding, want, tol, with_rms=True).any()
    wrong = want + torch.tensor([0.0, 0.0, 0.0, 0.5])  # a stale or misindexed value: off by ~rms
    assert outside_tolerance(wrong, want, tol, with_rms=True)[3]
    assert not outside_tolerance(torch.tensor([float("inf")]), torch.tensor([float("inf")]), tol, True).any()


def test_twice_torchs_own_error_is_the_budget_where_a_spec_names_it(device):
    # a stand-in "PyTorch in the low dtype" that is off by 0.25 everywhere: the budget becomes 0.5
    lowp = dataclasses.replace(ADD_SPEC, low_precision_reference=lambda x, y: x.float() + y.float() + 0.25)

    def off_by(delta):
        def launcher(x, y, out):
            return out.copy_(x + y + delta)

        return launcher

    assert check(lowp, (N,), torch.float32, device, launcher=off_by(0.4)).passed
    assert not check(lowp, (N,), torch.float32, device, launcher=off_by(0.6)).passed
    assert not check(ADD_SPEC, (N,), torch.float32, device, launcher=off_by(0.4)).passed
