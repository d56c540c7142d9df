"""softmax.softmax against its reference: both variants, the variant choice, -inf rows, bad input."""

from __future__ import annotations

import pytest
import torch

from inferlab.kernels import softmax as softmax_module
from inferlab.kernels.softmax import SPEC, choose_variant, softmax, softmax_ref
from inferlab.kernels.spec import check

CASES = [
    pytest.param(shape, dtype, id=f"{'x'.join(map(str, shape.dims))}-{str(dtype)[6:]}")
    for shape in SPEC.test_shapes
    for dtype in SPEC.dtypes
]

# -inf - -inf in the interpreter's numpy arithmetic warns; the NaN it makes is the point
inf_minus_inf = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")


@pytest.fixture
def small_online(monkeypatch):
    """Send rows longer than 16 to the online variant, in chunks of 8: many chunks, tiny rows."""
    monkeypatch.setattr(softmax_module, "ONLINE_THRESHOLD", 16)
    monkeypatch.setattr(softmax_module, "ONLINE_BLOCK_SIZE", 8)


@pytest.mark.parametrize(("shape", "dtype"), CASES)
def test_matches_reference(shape, dtype, device):
    result = check(SPEC, shape, dtype, device)
    assert result.passed, result.message


def test_variant_choice_follows_row_length():
    threshold = softmax_module.ONLINE_THRESHOLD
    assert choose_variant(1) == "one_pass"
    assert choose_variant(threshold) == "one_pass"
    assert choose_variant(threshold + 1) == "online"
    assert choose_variant(128256) == "online"  # the Llama-3 vocab row in SPEC.test_shapes


def test_launcher_runs_the_variant_it_chose(monkeypatch, device):
    ran = []
    for name in ("_softmax_kernel", "_softmax_online_kernel"):
        kernel = getattr(softmax_module, name)
        spy = _Spy(kernel, name, ran)
        monkeypatch.setattr(softmax_module, name, spy)
    x = torch.randn(2, 100, device=device)
    softmax(x)
    monkeypatch.setattr(softmax_module, "ONLINE_THRESHOLD", 64)
    softmax(x)
    assert ran == ["_softmax_kernel", "_softmax_online_kernel"]


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
def test_online_variant_matches_reference(small_online, dims, dtype, device):
    assert choose_variant(dims[-1]) == "online"
    result = check(SPEC, dims, dtype, device)
    assert result.passed, result.message


def test_online_rescales_when_the_max_grows(small_online, device):
    # an increasing ramp raises the max in every chunk: a missing rescale of l_i is far off
    x = torch.linspace(-20.0, 20.0, 50, device=device).repeat(2, 1)
    torch.testing.assert_close(softmax(x), torch.softmax(x, -1))


@inf_minus_inf
@pytest.mark.parametrize("online", [False, True], ids=["one_pass", "online"])
def test_minus_inf_entries(online, request, device):
    if online:
        request.getfixturevalue("small_online")
    n = 40
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
