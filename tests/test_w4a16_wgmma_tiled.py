"""w4a16_wgmma_tiled: int4 on wgmma with the weight dequantized whole into the A registers.

Without a GPU: the kernel compiled for sm_90 (a layout conversion that would move data is a
compile error; ptxas reports spills), the dequantization's PTX run through its own arithmetic in
PyTorch, and the config errors. On an sm_90 GPU: the kernel against the reference."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from inferlab.kernels.quant_formats import dequantize_int4_ref, quantize_int4, unpack_int4_along_k
from inferlab.kernels.w4a16 import w4a16_matmul_ref
from inferlab.kernels.w4a16_wgmma import WgmmaConfig, int4_wgmma_matmul
from sm90_compile import compiled_rows, hopper
from test_w4a16_wgmma import check_against_fp64


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def test_dequantizing_in_x_dtype_gives_the_references_weights():
    """The kernel's two steps per pair, ((C + q) - (C + z)) * s: the difference is exact in 16
    bits and the product rounds once, so W is the reference's bit for bit (scales in x's dtype)."""
    for dtype, c in ((torch.bfloat16, 128), (torch.float16, 1024)):
        w = torch.randn(64, 256, generator=_gen(0))
        qw = quantize_int4(w, 128, symmetric=False, scale_dtype=dtype)
        q = unpack_int4_along_k(qw.qweight)  # [K, N]
        z = qw.zeros.to(torch.int32).repeat_interleave(128, dim=0)
        s = qw.scales.repeat_interleave(128, dim=0)
        difference = (q + c).to(dtype) - (z + c).to(dtype)  # 16-bit arithmetic, as the kernel
        assert torch.equal(difference.float(), (q - z).float())  # exact
        kernel_w = (difference * s).t()  # one rounding, in dtype
        assert torch.equal(kernel_w, dequantize_int4_ref(qw, dtype))


# ---------------------------------------------------------------- compiled for sm_90, no GPU
COMPILE_TILED = r"""
from inferlab.kernels import w4a16_wgmma as WG
from inferlab.kernels import w4a16_wgmma_tiled as WT

def compile_one(bn, g, bm, warps, dt, zeros, even_n, stages=3, step=None, regs=False):
    cx = dict(HAS_ZEROS=zeros, WRITE_PARTIAL=False, EVEN_N=even_n, IS_BF16=dt == "bf16",
              STAGES=stages, GROUP=g, WORDS_IN_REGS=regs,
              BLOCK_N=bn, BLOCK_K=step or g, BLOCK_M=bm,
              **WG.kernel_layouts(bn, step or g, bm, warps))
    types = dict(x_ptr=f"*{dt}", out_ptr=f"*{dt}", partial_ptr="*fp32", qweight_ptr="*i32",
                 scales_ptr=f"*{dt}", zeros_ptr="*u8", magic_value="fp32")
    ptx, spills = compile_sm90(WT._int4_wgmma_tiled_kernel, cx, types, warps)
    subs = ptx.count("sub.rn.bf16x2") + ptx.count("sub.rn.f16x2")
    serialized = int("C7514" in LAST_REPORT or "C7515" in LAST_REPORT)
    print("ROW", bn, step or g, bm, warps, spills, ptx.count("wgmma.mma_async"), subs, serialized)

compile_one(64, 128, 64, 4, "bf16", True, True)  # the defaults (_matmul_plan.WGMMA_CONFIGS)
compile_one(64, 128, 128, 4, "fp16", False, False)
compile_one(64, 128, 256, 4, "bf16", True, True, step=64)
compile_one(128, 64, 64, 8, "bf16", True, False, step=32, regs=True)  # two warp groups
compile_one(64, 128, 256, 4, "fp16", False, True, step=64, regs=True)
"""


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU the kernel runs for real below")
def test_kernel_compiles_for_hopper_with_wgmma_and_no_spills_to_speak_of():
    rows = compiled_rows(COMPILE_TILED)
    assert len(rows) == 5, rows
    for row in rows:
        bn, step, bm, warps, spills, wgmmas, subs, serialized = map(int, row)
        # the 256-column tile holds a 128-register accumulator: ptxas spills a few registers
        # (28-36 bytes with Triton 3.7) and it was still the fastest from M = 256 (0007 runs 45-49)
        assert spills <= (64 if bm == 256 else 0), row
        # per warp group and step: one wgmma per 16 of K and 64-row block; one sub per A pair
        assert wgmmas == step // 16 * (bn // (16 * warps)), row
        assert subs == bn * step // (32 * warps * 2), row
        # ptxas did not fall back to waiting for each wgmma (warnings C7514/C7515)
        assert serialized == 0, row


def test_config_errors():
    qw = quantize_int4(torch.randn(64, 256, generator=_gen(3)), 128, scale_dtype=torch.float16)
    x = torch.randn(80, 256, generator=_gen(4)).half()
    out = torch.empty(80, 64, dtype=torch.float16)
    tiled = WgmmaConfig(block_n=64, block_m=128, dequantize_a=True)
    for config, message in [
        (WgmmaConfig(block_m=16, dequantize_a=True), "block_m must be one of"),
        (WgmmaConfig(block_m=128, step_k=48, dequantize_a=True), "step_k must be None"),
        (WgmmaConfig(block_m=128, stages=1, dequantize_a=True), "stages"),
    ]:
        with pytest.raises(ValueError, match=message):
            int4_wgmma_matmul(x, qw, out, config)
    assert "dequantized-A m128" in tiled.label


# ---------------------------------------------------------------- on an sm_90 GPU


@hopper
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
@pytest.mark.parametrize("group_size", [32, 64, 128])
@pytest.mark.parametrize("symmetric", [False, True], ids=["zeros", "symmetric"])
@pytest.mark.parametrize(
    ("m", "k", "n", "config"),
    [
        (33, 512, 200, WgmmaConfig(block_n=64, block_m=64, dequantize_a=True)),  # masked rows, columns
        (130, 1024, 256, WgmmaConfig(block_n=128, block_m=128, num_warps=8, dequantize_a=True)),
        (300, 768, 384, WgmmaConfig(block_n=128, block_m=256, num_warps=8, step_k=32, dequantize_a=True)),
        (70, 1024, 192, WgmmaConfig(block_n=64, block_m=64, split_k=3, stages=2, dequantize_a=True)),
        (129, 512, 512, WgmmaConfig(block_n=256, block_m=128, num_warps=8, stages=4, dequantize_a=True)),
        (
            100,
            768,
            320,
            WgmmaConfig(block_n=128, block_m=64, num_warps=8, dequantize_a=True, words_in_registers=True),
        ),
        (
            130,
            1024,
            256,
            WgmmaConfig(
                block_n=128,
                block_m=128,
                num_warps=8,
                stages=4,
                dequantize_a=True,
                words_in_registers=True,
            ),
        ),
        (96, 512, 264, WgmmaConfig(block_n=128, block_m=64, step_k=64, dequantize_a=True)),  # R = 2
        (70, 4096, 128, WgmmaConfig(block_n=64, block_m=64, stages=4, dequantize_a=True)),  # long K
    ],
)
def test_matches_reference_on_hopper(dtype, group_size, symmetric, m, k, n, config):
    check_against_fp64(dtype, group_size, symmetric, m, k, n, config)  # W rounded as the reference


@hopper
def test_strided_x_on_hopper():
    check_strided_x(WgmmaConfig(block_n=64, block_m=64, dequantize_a=True))


def check_strided_x(config):
    """int4_wgmma_matmul on an x with a column stride of 2 (shared with test_w4a16_wgmma_ws.py)."""
    qw = quantize_int4(torch.randn(128, 256, generator=_gen(7)).cuda(), 128, scale_dtype=torch.bfloat16)
    wide = torch.randn(96, 512, generator=_gen(8)).to("cuda", torch.bfloat16)
    x = wide[:, ::2]  # a column stride of 2
    out = torch.empty(96, 128, device="cuda", dtype=torch.bfloat16)
    got = int4_wgmma_matmul(x, qw, out, config)
    torch.testing.assert_close(got, w4a16_matmul_ref(x.contiguous(), qw), rtol=2e-2, atol=2e-2)


def test_split_k_stops_at_eight_for_the_tiled_kernel(monkeypatch):
    """16 programs on 132 SMs: the rule would split K 16 ways; from 65 rows the tiled kernel stops
    at 8 (on 4096 -> 1024, 14-20% faster: 0007 runs 55-56), at 64 rows and in the fold kernel 16."""
    from inferlab.kernels import _matmul_plan
    from inferlab.kernels.w4a16_wgmma import plan_splits

    monkeypatch.setattr(_matmul_plan, "_num_sms", lambda device: 132)
    out = torch.empty(128, 1024)
    tiled = WgmmaConfig(block_n=64, block_m=128, programs_per_sm=1, dequantize_a=True)
    fold = WgmmaConfig(block_n=64, block_m=64, programs_per_sm=1)
    assert plan_splits(tiled, 128, 1024, 32, out)[1] == 8
    assert plan_splits(fold, 64, 1024, 32, out[:64])[1] == 16
    assert plan_splits(dataclasses.replace(tiled, block_m=64), 64, 1024, 32, out[:64])[1] == 16
