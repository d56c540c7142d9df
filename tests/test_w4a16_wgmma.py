"""w4a16_wgmma: the int4 kernel whose unpacked nibbles land straight in wgmma's A registers.

Without a GPU: the K permutation it relies on, in plain PyTorch (`unpack_like_kernel`,
`permute_like_kernel`), and the kernel compiled for sm_90 (where a non-trivial layout
conversion is a compile error). On an sm_90 GPU: the kernel against the reference."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from inferlab.kernels.quant_formats import dequantize_int4_ref, pack_int4_along_k, quantize_int4
from inferlab.kernels.w4a16 import w4a16_matmul_ref
from inferlab.kernels.w4a16_wgmma import (
    MAGIC,
    PAIR_MASK,
    WgmmaConfig,
    block_m_for,
    int4_wgmma_matmul,
    permute_like_kernel,
    unpack_like_kernel,
)
from sm90_compile import compiled_rows, hopper


def _gen(seed):
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------- the permutation, no GPU
def test_permuted_k_order_gives_the_same_dot_products():
    q = torch.randint(0, 16, (256, 24), generator=_gen(0))  # [K, N]
    words = pack_int4_along_k(q)  # [K / 8, N], the one internal layout
    x = torch.randn(5, 256, generator=_gen(1), dtype=torch.float64)
    logical_w = unpack_like_kernel(words.t().contiguous(), 128)  # [N, K] in the kernel's order
    logical_x = permute_like_kernel(x)
    torch.testing.assert_close(logical_x @ logical_w.double().t(), x @ q.double(), rtol=0, atol=1e-9)
    # and it is a real permutation, not the identity: the kernel's order differs from memory's
    assert not torch.equal(logical_w, q.t())
    assert torch.equal(logical_w.sort(dim=1).values, q.t().sort(dim=1).values)


def test_each_thread_reads_its_a_fragment_from_one_word():
    """wgmma's A fragment (PTX ISA, m64nNk16 with A in registers): thread (g, t) of a warp holds
    rows g, g + 8 and columns 2t, 2t + 1, 2t + 8, 2t + 9 of every 16-wide K slice. In the
    kernel's K order, word t of a 32-wide chunk must hold exactly that thread's columns of both
    slices, and nibbles s, s + 4 (one LOP3) a register's pair (2t + ..., 2t + 1 + ...)."""
    for t in range(4):
        word = torch.zeros(1, 4, dtype=torch.int32)
        word[0, t] = 0x76543210  # nibble j holds j
        logical = unpack_like_kernel(word, 32)[0]  # [32]: nibble index at each logical column
        columns = [k for k in range(32) if k % 8 // 2 == t]
        assert columns == [c + 2 * t for c in (0, 1, 8, 9, 16, 17, 24, 25)]
        nibbles = logical[columns].tolist()
        assert sorted(nibbles) == list(range(8)), (t, nibbles)
        for even in columns[::2]:  # a register's pair: nibble s at the even column, s + 4 next
            assert logical[even + 1] == logical[even] + 4


@pytest.mark.parametrize("group_size", [32, 128])
def test_prepare_x_permutes_and_sums_each_group(group_size, device):
    from inferlab.kernels.w4a16_wgmma import prepare_x

    x = torch.randn(3, 256, generator=_gen(5)).to(device=device, dtype=torch.float16)
    permuted, sums = prepare_x(x, group_size)
    assert torch.equal(permuted, permute_like_kernel(x))
    want = x.float().view(3, 256 // group_size, group_size).sum(-1).t()
    torch.testing.assert_close(sums, want, rtol=1e-6, atol=1e-5)
    unsummed, no_sums = prepare_x(x, group_size, sums=False)  # the tiled kernel's: no fold
    assert torch.equal(unsummed, permuted) and no_sums.numel() == 0


def test_magic_numbers_read_as_c_plus_q():
    for dtype, (bits, c) in MAGIC.items():
        for q in range(16):
            pair = (q | q << 16) & PAIR_MASK | bits
            halves = torch.tensor([pair & 0xFFFF, pair >> 16], dtype=torch.int32).to(torch.int16)
            assert halves.view(dtype).float().tolist() == [c + q, c + q]


def test_block_m_for_rows():
    assert [block_m_for(m) for m in (1, 8, 9, 16, 17, 33, 64)] == [8, 8, 16, 16, 32, 64, 64]


# ---------------------------------------------------------------- compiled for sm_90, no GPU
COMPILE_WGMMA = r"""
from inferlab.kernels import w4a16_wgmma as WG

def compile_one(bn, g, bm, warps, dt, zeros, even_n, prepared=False, stages=3):
    cx = dict(HAS_ZEROS=zeros, WRITE_PARTIAL=True, EVEN_N=even_n,
              IS_BF16=dt == "bf16", X_PREPARED=prepared, STAGES=stages, BLOCK_N=bn, BLOCK_K=g, BLOCK_M=bm,
              **WG.kernel_layouts(bn, g, bm, warps))
    types = dict(x_ptr=f"*{dt}", xsum_ptr="*fp32", out_ptr=f"*{dt}",
                 partial_ptr="*fp32", qweight_ptr="*i32", scales_ptr=f"*{dt}", zeros_ptr="*u8",
                 magic_value="fp32")
    ptx, spills = compile_sm90(WG._int4_wgmma_kernel, cx, types, warps)
    print("ROW", bn, g, bm, warps, dt, zeros, even_n, spills, ptx.count("wgmma.mma_async"))

compile_one(128, 128, 16, 4, "bf16", True, True)
compile_one(64, 128, 32, 4, "bf16", True, True, prepared=True)
compile_one(128, 128, 8, 4, "fp16", False, False, stages=2)
compile_one(256, 64, 16, 8, "bf16", True, True)
compile_one(64, 32, 32, 4, "bf16", True, False)
compile_one(64, 128, 64, 4, "fp16", True, True, prepared=True, stages=4)
"""


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU the kernel runs for real below")
def test_kernel_compiles_for_hopper_with_trivial_layout_conversion_and_no_spills():
    rows = compiled_rows(COMPILE_WGMMA)
    assert len(rows) == 6, rows
    for *config, spills, wgmmas in rows:
        assert spills == "0", config
        assert int(wgmmas) > 0, config  # the tensor cores do the multiply-adds


def test_config_errors():
    from inferlab.kernels.w4a16_wgmma import kernel_layouts

    with pytest.raises(ValueError, match="num_warps"):
        kernel_layouts(128, 128, 16, 2)
    with pytest.raises(ValueError, match="block_n"):
        kernel_layouts(96, 128, 16, 4)
    with pytest.raises(ValueError, match="block_m"):
        kernel_layouts(128, 128, 12, 4)


# ---------------------------------------------------------------- on an sm_90 GPU


@hopper
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
@pytest.mark.parametrize("group_size", [32, 64, 128])
@pytest.mark.parametrize("symmetric", [False, True], ids=["zeros", "symmetric"])
@pytest.mark.parametrize(
    ("m", "k", "n", "config"),
    [
        (1, 512, 200, WgmmaConfig()),  # N not a multiple of block_n: masked columns
        (3, 1024, 200, WgmmaConfig(split_k=3, prepare_x=True)),  # the last split shorter
        (5, 1024, 384, WgmmaConfig(block_n=64, split_k=4, prepare_x=True)),
        (16, 768, 256, WgmmaConfig(block_n=256, num_warps=8, stages=4)),
        (33, 512, 128, WgmmaConfig(block_n=64, split_k=1, stages=2)),
        (64, 384, 192, WgmmaConfig(block_n=64, split_k=3, prepare_x=True)),
    ],
)
def test_matches_reference_on_hopper(dtype, group_size, symmetric, m, k, n, config):
    check_against_fp64(dtype, group_size, symmetric, m, k, n, config)


def check_against_fp64(dtype, group_size, symmetric, m, k, n, config):
    """int4_wgmma_matmul on fresh inputs into a poisoned output, held to twice the reference's
    error against fp64. The fold kernel never rounds W (fp64 takes W exact); with dequantize_a
    W is rounded to x's dtype as the reference does (fp64 takes that W), and only the order of
    the fp32 sum differs. Shared with test_w4a16_wgmma_tiled.py."""
    w = torch.randn(n, k, generator=_gen(m + k), device="cpu").cuda()
    qw = quantize_int4(w, group_size, symmetric=symmetric, scale_dtype=dtype)
    x = torch.randn(m, k, generator=_gen(n), device="cpu").to("cuda", dtype)
    out = torch.full((m, n), float("nan"), device="cuda", dtype=dtype)  # poisoned
    got = int4_wgmma_matmul(x, qw, out, config)
    assert got is out
    want = w4a16_matmul_ref(x, qw).float()
    exact_w = dequantize_int4_ref(qw, dtype if config.dequantize_a else torch.float64).double()
    exact = x.double() @ exact_w.t()
    err = (got.double() - exact).abs().max().item()
    ref_err = (want.double() - exact).abs().max().item()
    assert not got.isnan().any()
    assert err <= 2 * ref_err + 1e-5 * exact.abs().max().item(), (err, ref_err)


# ---------------------------------------------------------------- the launcher's choice
@pytest.mark.parametrize(
    ("m", "fmt", "hopper", "path"),
    [
        (1, "int4", True, "wgmma"),  # faster than the CUDA-core GEMV on an H100 (0007 run 19)
        (1, "int8", True, "fma"),
        (2, "int4", True, "wgmma"),
        (64, "int4", True, "wgmma"),
        (65, "int4", True, "wgmma"),  # W dequantized into A, M tiled (w4a16_wgmma_tiled.py)
        (4096, "int4", True, "wgmma"),
        (65, "nf4", True, "wgmma"),  # the codes scaled in the A registers, M tiled (nf4_wgmma.py)
        (16, "int4", False, "gemv"),  # no sm_90: the tl kernels
        (16, "nf4", True, "wgmma"),  # nf4_wgmma.py
        (16, "int8", True, "gemv"),
    ],
)
def test_choose_path_takes_wgmma_for_4_bit_formats_on_hopper(monkeypatch, m, fmt, hopper, path):
    from inferlab.kernels import _matmul_plan

    monkeypatch.setattr(_matmul_plan, "wgmma_available", lambda device: hopper)
    assert _matmul_plan.choose_path(m, fmt, device=torch.device("cuda")) == path
    assert _matmul_plan.choose_path(m, fmt) == ("fma" if m == 1 and fmt != "nf4" else _no_device(m))


def _no_device(m):
    return "gemv" if m <= 16 else "tiled"


def test_prepared_x_needs_one_warp_group():
    qw = quantize_int4(torch.randn(64, 256, generator=_gen(3)), 128, scale_dtype=torch.float16)
    x = torch.randn(20, 256, generator=_gen(4)).half()
    out = torch.empty(20, 64, dtype=torch.float16)
    with pytest.raises(ValueError, match="num_warps=4"):
        int4_wgmma_matmul(x, qw, out, WgmmaConfig(block_n=128, num_warps=8, prepare_x=True))


@pytest.mark.skipif(torch.cuda.is_available(), reason="kernels there take CUDA tensors")
def test_wgmma_config_needs_hopper():
    from inferlab.kernels.w4a16 import w4a16_matmul

    qw = quantize_int4(torch.randn(64, 256, generator=_gen(3)), 128, scale_dtype=torch.float16)
    x = torch.randn(4, 256, generator=_gen(4)).half()
    with pytest.raises(ValueError, match="sm_90"):
        w4a16_matmul(x, qw, config=WgmmaConfig())


@hopper
def test_w4a16_matmul_runs_wgmma_at_every_m(monkeypatch):
    from inferlab.kernels import w4a16

    calls = []
    real = w4a16.int4_wgmma_matmul
    kernel = lambda c: "ws" if c.warp_specialized else "tiled" if c.dequantize_a else "fold"  # noqa: E731
    record = lambda *a: calls.append((a[0].shape[0], kernel(a[3]))) or real(*a)  # noqa: E731
    monkeypatch.setattr(w4a16, "int4_wgmma_matmul", record)
    qw = quantize_int4(torch.randn(128, 256, device="cuda"), 128, scale_dtype=torch.bfloat16)
    for m in (1, 2, 32, 33, 65, 300):
        w4a16.w4a16_matmul(torch.randn(m, 256, device="cuda", dtype=torch.bfloat16), qw)
    odd_n = quantize_int4(torch.randn(200, 256, device="cuda"), 128, scale_dtype=torch.bfloat16)
    got = w4a16.w4a16_matmul(torch.randn(65, 256, device="cuda", dtype=torch.bfloat16), odd_n)
    assert got.shape == (65, 200)
    expected = [(1, "fold"), (2, "fold"), (32, "fold"), (33, "ws"), (65, "ws"), (300, "ws")]
    assert calls == expected + [(65, "tiled")]  # N = 200: TMA cannot copy its zero points
    with pytest.raises(ValueError, match="at most 64"):
        x = torch.randn(65, 256, device="cuda", dtype=torch.bfloat16)
        w4a16.w4a16_matmul(x, qw, config=WgmmaConfig())


@hopper
def test_x_with_any_strides_on_hopper():
    from inferlab.kernels.w4a16 import w4a16_matmul

    qw = quantize_int4(torch.randn(256, 512, device="cuda"), 128, scale_dtype=torch.bfloat16)
    wide = torch.randn(6, 1024, device="cuda", dtype=torch.bfloat16)
    for x in (wide[:, 512:], torch.randn(512, 6, device="cuda", dtype=torch.bfloat16).t()):
        torch.testing.assert_close(w4a16_matmul(x, qw), w4a16_matmul(x.contiguous(), qw), rtol=0, atol=0)


NO_GLUON = r"""
import builtins
real_import = builtins.__import__

def no_gluon_for_w4a16_wgmma(name, globals=None, *args, **kwargs):
    # as under a Triton older than 3.4, for this module only (Triton's own imports go through)
    if (globals or {}).get("__name__") == "inferlab.kernels.w4a16_wgmma" and "gluon" in name:
        raise ImportError(f"no module named {name!r}")
    return real_import(name, globals, *args, **kwargs)

builtins.__import__ = no_gluon_for_w4a16_wgmma
import torch
from inferlab.kernels import w4a16, w4a16_wgmma
from inferlab.kernels.quant_formats import quantize_int4
assert not w4a16_wgmma.HAVE_GLUON
assert not w4a16_wgmma.available(torch.device("cpu"))
qw = quantize_int4(torch.randn(16, 128), 128, scale_dtype=torch.float16)
x = torch.randn(2, 128).half()
assert torch.isfinite(w4a16.w4a16_matmul(x, qw)).all()  # the tl paths still run
print("ok")
"""


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU interpreter runs the tl path here")
def test_the_package_works_without_gluon():
    run = subprocess.run([sys.executable, "-c", NO_GLUON], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-2000:]
