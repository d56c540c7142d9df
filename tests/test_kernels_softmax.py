"""softmax.softmax against its reference: all three variants, the choice, -inf rows, bad input."""

from __future__ import annotations

import pytest
import torch

from inferlab.kernels import softmax as softmax_module
from inferlab.kernels.softmax import SPEC, choose_variant, softmax, softmax_ref
from inferlab.kernels.spec import check
from spec_cases import shape_cases

CASES = shape_cases(SPEC)

# -inf - -inf in the interpreter's numpy arithmetic warns; the NaN it makes is the point
inf_minus_inf = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")


@pytest.fixture(params=["online", "split"])
def long_row_variant(request, monkeypatch):
    """Send rows longer than 16 to the online or split variant, in chunks of 8: tiny rows, many chunks."""
    monkeypatch.setattr(softmax_module, "ONLINE_THRESHOLD", 16)
    monkeypatch.setattr(softmax_module, "ONLINE_BLOCK_SIZE", 8)
    monkeypatch.setattr(softmax_module, "SPLIT_BLOCK_SIZE", 8)
    monkeypatch.setattr(softmax_module, "SPLIT_MAX_ROWS", 0 if request.param == "online" else 1000)
    return request.param


@pytest.mark.parametrize(("shape", "dtype"), CASES)
def test_matches_reference(shape, dtype, device):
    result = check(SPEC, shape, dtype, device)
    assert result.passed, result.message


def test_variant_choice_follows_row_length_and_count():
    threshold, few = softmax_module.ONLINE_THRESHOLD, softmax_module.SPLIT_MAX_ROWS
    assert choose_variant(1, 1) == "one_pass"
    assert choose_variant(100_000, threshold) == "one_pass"
    assert choose_variant(few, threshold + 1) == "online"
    assert choose_variant(few - 1, threshold + 1) == "split"
    assert choose_variant(1, 128256) == "split"  # decode: sampling over the Llama-3 vocabulary
    assert choose_variant(2, 128256) == "split"  # the vocab shape in SPEC.test_shapes
    assert choose_variant(16384, 128256) == "online"  # prefill logits


def test_launcher_runs_the_variant_it_chose(monkeypatch, device):
    ran = []
    kernels = {
        "_softmax_kernel": "one_pass",
        "_softmax_online_kernel": "online",
        "_softmax_split_partials_kernel": "split",
        "_softmax_split_normalize_kernel": "split",
    }
    for name in kernels:
        monkeypatch.setattr(softmax_module, name, _Spy(getattr(softmax_module, name), name, ran))
    x = torch.randn(2, 100, device=device)
    expected = []
    for threshold, few in ((1000, 0), (64, 0), (64, 1000)):
        monkeypatch.setattr(softmax_module, "ONLINE_THRESHOLD", threshold)
        monkeypatch.setattr(softmax_module, "SPLIT_MAX_ROWS", few)
        variant = choose_variant(*x.shape)
        torch.testing.assert_close(softmax(x), softmax_ref(x))
        expected += [name for name, v in kernels.items() if v == variant]
    assert ran == expected
    assert ran[0] == "_softmax_kernel" and ran[1] == "_softmax_online_kernel"
    assert ran[2:] == ["_softmax_split_partials_kernel", "_softmax_split_normalize_kernel"]


class _Spy:
    """Records which kernel the launcher indexed with a grid, then launches it."""

    def __init__(self, kernel, name, ran):
        self.kernel, self.name, self.ran = kernel, name, ran

    def __getitem__(self, grid):
        self.ran.append(self.name)
        return self.kernel[grid]


@pytest.mark.parametrize("dtype", SPEC.dtypes, ids=lambda d: str(d)[6:])
@pytest.mark.parametrize(
    "dims",
    [(1, 17), (3, 50), (2, 64)],
    ids=["one-chunk-past-threshold", "ragged-tail", "exact-chunks"],
)
def test_long_row_variants_match_reference(long_row_variant, dims, dtype, device):
    assert choose_variant(*dims) == long_row_variant
    result = check(SPEC, dims, dtype, device)
    assert result.passed, result.message


def test_long_rows_rescale_when_the_max_grows(long_row_variant, device):
    # an increasing ramp raises the max in every chunk: a missing rescale of l_i is far off
    x = torch.linspace(-20.0, 20.0, 50, device=device).repeat(2, 1)
    torch.testing.assert_close(softmax(x), torch.softmax(x, -1))


@inf_minus_inf
@pytest.mark.parametrize("variant", ["one_pass", "online", "split"])
def test_minus_inf_entries(variant, monkeypatch, device):
    if variant != "one_pass":
        monkeypatch.setattr(softmax_module, "ONLINE_THRESHOLD", 16)
        monkeypatch.setattr(softmax_module, "ONLINE_BLOCK_SIZE", 8)
        monkeypatch.setattr(softmax_module, "SPLIT_BLOCK_SIZE", 8)
        monkeypatch.setattr(softmax_module, "SPLIT_MAX_ROWS", 0 if variant == "online" else 1000)
    n = 40
    assert choose_variant(4, n) == variant
    x = torch.randn(4, n, device=device)
    x[0] = -float("inf")  # all -inf: NaN everywhere, like torch
    x[1, :30] = -float("inf")  # the whole first chunks are -inf: the online max starts at -inf
    x[2, ::3] = -float("inf")  # scattered -inf entries: exactly 0
    x[3, 5] = -float("inf")
    got = softmax(x)
    want = torch.softmax(x, -1)
    assert torch.isnan(got[0]).all()
    torch.testing.assert_close(got[1:], want[1:])
    assert (got[2, ::3] == 0).all()


@pytest.mark.parametrize("dtype", SPEC.dtypes, ids=lambda d: str(d)[6:])
def test_rows_sum_to_one_in_low_precision(dtype, device):
    x = (4 * torch.randn(3, 1000)).to(device=device, dtype=dtype)
    sums = softmax(x).float().sum(-1)
    torch.testing.assert_close(sums, torch.ones(3, device=device), atol=0, rtol=1e-2)


def test_strided_rows_need_no_copy(device):
    base = torch.randn(6, 300, device=device)
    x = base[::2, :250]  # row stride 600, last dim contiguous
    torch.testing.assert_close(softmax(x), softmax_ref(x))


def test_empty_rows_and_out(device):
    assert softmax(torch.empty(0, 5, device=device)).shape == (0, 5)
    assert softmax(torch.empty(3, 0, device=device)).shape == (3, 0)
    x = torch.randn(2, 10, device=device)
    out = torch.empty_like(x)
    assert softmax(x, out=out) is out
    torch.testing.assert_close(out, softmax_ref(x))


@pytest.mark.parametrize(
    ("x", "error", "message"),
    [
        (torch.randn(4, 4).t(), ValueError, "last dimension must be contiguous"),
        (torch.randn(4, 6, 8).transpose(0, 1)[:, :, :5], ValueError, "cannot be flattened into rows"),
        (torch.randn(4, 4).to(torch.int32), TypeError, "has dtype int32; supported"),
        (torch.tensor(1.0), ValueError, "at least one dimension"),
        ("not a tensor", TypeError, "x must be a torch.Tensor, not str"),
    ],
)
def test_bad_input_gets_one_clear_error(x, error, message, device):
    if isinstance(x, torch.Tensor):
        x = x.to(device)
    with pytest.raises(error, match=message):
        softmax(x)


def test_bad_out_is_refused(device):
    x = torch.randn(2, 8, device=device)
    with pytest.raises(ValueError, match="out has shape"):
        softmax(x, out=torch.empty(2, 9, device=device))
