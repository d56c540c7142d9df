"""nf4_wgmma: bitsandbytes' NF4 bytes looked up in registers straight into wgmma's A operand.

Without a GPU: the look-up's PTX executed by a small model (`run_lookup_asm`) for every byte
and code table, the K permutation, `prepare_x`'s NF4 order on the interpreter, and the kernel
compiled for sm_90 (a non-trivial layout conversion is a compile error). On an sm_90 GPU: the
kernel against the reference and the fp64 budget, and nf4_matmul's choice of it."""

from __future__ import annotations

import copy
import random

import pytest
import torch

from inferlab.kernels.nf4_wgmma import (
    code_table_words,
    nf4_wgmma_matmul,
    permute_like_kernel,
    run_lookup_asm,
    supports,
)
from inferlab.kernels.quant_formats import dequantize_nf4_ref, nf4_code, quantize_nf4_ref, unpack_nf4
from inferlab.kernels.w4a16 import nf4_matmul, nf4_matmul_ref
from inferlab.kernels.w4a16_wgmma import WgmmaConfig
from sm90_compile import compiled_rows, hopper


def _gen(seed):
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------- the look-up, no GPU
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
@pytest.mark.parametrize("code", ["nf4", "random"])
def test_lookup_asm_decodes_every_byte(dtype, code):
    """Every byte value in every position of a word: out $2s, $2s+1 are the codes of byte s's
    high nibble (element 2s) and low nibble (element 2s + 1), as 16-bit patterns of `dtype`."""
    table = nf4_code() if code == "nf4" else torch.randn(16, generator=_gen(0))
    bits = [b & 0xFFFF for b in table.to(dtype).view(torch.int16).tolist()]
    tables = code_table_words(table, dtype)
    rng = random.Random(1)
    for byte in range(256):
        for s in range(4):
            word = rng.getrandbits(32) & ~(0xFF << (8 * s)) | byte << (8 * s)
            out = run_lookup_asm(word, tables)
            want = [bits[word >> (8 * j + shift) & 0xF] for j in range(4) for shift in (4, 0)]
            assert out == want, (hex(word), out, want)


def test_lookup_model_rejects_unknown_instructions(monkeypatch):
    from inferlab.kernels import nf4_wgmma

    monkeypatch.setattr(nf4_wgmma, "LOOKUP_ASM", "{\nadd.u32 a, $8, 1;\n}")
    with pytest.raises(ValueError, match="add.u32"):
        run_lookup_asm(0, [0] * 8)


# ---------------------------------------------------------------- the K permutation, no GPU
def _logical_columns(t: int, c: int, block_k: int) -> list[int]:
    """Logical k' of word c of thread t, bytes s = 0..3, elements e = 0, 1 (high nibble first)."""
    words = block_k // 32
    physical = [8 * (t * words + c) + 2 * s + e for s in range(4) for e in range(2)]
    order = permute_like_kernel(torch.arange(block_k).unsqueeze(0), block_k)[0].tolist()
    return [order.index(k) for k in physical]


@pytest.mark.parametrize("block_k", [32, 64, 128])
def test_each_thread_reads_its_a_fragment_from_its_own_words(block_k):
    """wgmma's A fragment: thread t of a quad holds columns 2t, 2t + 1, 2t + 8, 2t + 9 of every
    k16 slice, as pairs (2t, 2t + 1) and (2t + 8, 2t + 9). Word c of thread t must hold exactly
    its columns of chunk c, and byte s = 2b + h one register's pair in order."""
    for t in range(4):
        for c in range(block_k // 32):
            logical = _logical_columns(t, c, block_k)
            for s in range(4):
                b, h = divmod(s, 2)
                assert logical[2 * s : 2 * s + 2] == [32 * c + 16 * b + 8 * h + 2 * t + e for e in (0, 1)]


def test_permuted_k_order_gives_the_same_dot_products():
    k, n, bs = 256, 24, 64
    w = torch.randn(n, k, generator=_gen(2))
    packed, state = quantize_nf4_ref(w, bs, nested=False)
    codes = unpack_nf4(packed, n * k).reshape(n, k)  # physical order, as the rows are stored
    x = torch.randn(5, k, generator=_gen(3), dtype=torch.float64)
    logical_w = permute_like_kernel(codes, bs)
    torch.testing.assert_close(permute_like_kernel(x, bs) @ logical_w.double().t(), x @ codes.double().t())
    assert not torch.equal(logical_w, codes)  # a real permutation, not the identity


@pytest.mark.parametrize("block_k", [32, 128])
def test_prepare_x_in_nf4_order(block_k, device):
    from inferlab.kernels.w4a16_wgmma import prepare_x

    x = torch.randn(3, 256, generator=_gen(5)).to(device=device, dtype=torch.float16)
    permuted, sums = prepare_x(x, block_k, nf4=True)
    assert torch.equal(permuted, permute_like_kernel(x, block_k))
    assert sums.numel() == 0  # NF4 has no zero point: no sums of x


def test_supports():
    packed, state = quantize_nf4_ref(torch.randn(64, 256, generator=_gen(6)), 64)
    assert supports(packed, 64)
    assert not supports(packed, 256)  # one K step per absmax block: up to 128
    assert not supports(packed.view(-1)[1:], 64)  # bytes not read as aligned words
    from inferlab.kernels.nf4_wgmma import kernel_layouts

    with pytest.raises(ValueError, match="num_warps=4"):
        kernel_layouts(256, 64, 16, 8)
    with pytest.raises(ValueError, match="blocks_per_step"):
        kernel_layouts(128, 32, 16, 4, 2)  # x's block slices must start on a swizzle atom
    with pytest.raises(ValueError, match="at most 256"):
        kernel_layouts(128, 128, 16, 4, 4)


def test_int4_only_options_are_refused(device):
    packed, state = quantize_nf4_ref(torch.randn(64, 256, generator=_gen(6)).to(device), 64)
    x = torch.randn(70, 256, generator=_gen(7)).to(device, torch.bfloat16)
    out = torch.empty(70, 64, device=device, dtype=torch.bfloat16)
    for config in (WgmmaConfig(dequantize_a=True, step_k=64), WgmmaConfig(words_in_registers=True)):
        with pytest.raises(ValueError, match="int4's"):
            nf4_wgmma_matmul(x, packed, state, out, config)


def test_default_configs_fit_any_k():
    from inferlab.kernels._matmul_plan import wgmma_config_for
    from inferlab.kernels.nf4_wgmma import fit_blocks

    two = wgmma_config_for(1, "nf4")
    assert two.blocks_per_step == 2
    assert not wgmma_config_for(63, "nf4").dequantize_a
    # from 64 rows the warp-specialized kernel; where TMA cannot copy W the fold to 64 rows, then
    # the tiled kernel
    assert all(wgmma_config_for(m, "nf4").warp_specialized for m in (64, 65, 128, 129, 4096))
    assert wgmma_config_for(64, "nf4", tma=False) == wgmma_config_for(63, "nf4")
    tiled = wgmma_config_for(65, "nf4", tma=False)
    assert tiled == wgmma_config_for(4096, "nf4", tma=False)
    assert tiled.dequantize_a and not tiled.warp_specialized
    assert fit_blocks(two, 4096, 64).blocks_per_step == 2
    assert fit_blocks(two, 64 * 7, 64).blocks_per_step == 1  # 7 blocks: no whole steps of two
    assert fit_blocks(two, 4096, 32).blocks_per_step == 1  # blocksize 32 takes one block a step
    assert fit_blocks(WgmmaConfig(blocks_per_step=4), 64 * 6, 64).blocks_per_step == 2
    assert fit_blocks(WgmmaConfig(blocks_per_step=4), 4096, 128).blocks_per_step == 2  # 256 at most


# ---------------------------------------------------------------- compiled for sm_90, no GPU
COMPILE_NF4 = r"""
from inferlab.kernels import nf4_wgmma as NW

def compile_one(bn, bs, bm, dt, nested, even_n, prepared=False, stages=3, blocks=1, dequant_a=False):
    cx = dict(NESTED=nested, WRITE_PARTIAL=True, DEQUANT_A=dequant_a, EVEN_N=even_n, IS_BF16=dt == "bf16",
              X_PREPARED=prepared, STAGES=stages, BLOCKSIZE2=256, BLOCK_N=bn, BLOCK_K=bs, BLOCKS=blocks,
              BLOCK_M=bm, **NW.kernel_layouts(bn, bs, bm, 4, blocks))
    types = dict(x_ptr=f"*{dt}", out_ptr=f"*{dt}", partial_ptr="*fp32", weight_ptr="*i32",
                 absmax_ptr="*u8" if nested else "*fp32", code_ptr="*fp32", absmax2_ptr="*fp32",
                 code2_ptr="*fp32", offset_ptr="*fp32")
    ptx, spills = compile_sm90(NW._nf4_wgmma_kernel, cx, types, 4)
    muls = ptx.count("mul.f32") + ptx.count("mul.rn.f32")
    print("ROW", bn, bs * blocks, bm, dt, int(dequant_a), spills, ptx.count("wgmma.mma_async"),
          ptx.count("prmt.b32"), muls)

compile_one(128, 64, 8, "bf16", True, True, stages=2)
compile_one(64, 64, 16, "bf16", True, False, stages=2, blocks=4)
compile_one(128, 64, 32, "fp16", False, False, prepared=True, stages=2, blocks=2)
compile_one(64, 128, 64, "bf16", True, True, prepared=True, stages=4, blocks=2)
compile_one(64, 32, 16, "fp16", True, False)
compile_one(64, 64, 128, "bf16", True, True, prepared=True, blocks=2, dequant_a=True)  # from 65 rows
compile_one(64, 128, 128, "fp16", False, False, prepared=True, dequant_a=True)
"""


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU the kernel runs for real below")
def test_kernel_compiles_for_hopper_with_trivial_layout_conversion_and_no_spills():
    rows = compiled_rows(COMPILE_NF4)
    assert len(rows) == 7, rows
    for bn, step_k, bm, dt, dequant_a, spills, wgmmas, prmts, muls in rows:
        config = (bn, step_k, bm, dt, dequant_a)
        assert spills == "0", config
        assert int(wgmmas) > 0, config  # the tensor cores do the multiply-adds
        words = int(bn) * int(step_k) // 8 // 128  # per thread and step
        assert int(prmts) == 14 * words, config  # the look-up is in the loop, once per word
        # from 65 rows every looked-up code is scaled by its absmax in the A registers (fp32)
        if dequant_a == "1":
            assert int(muls) >= 8 * words, config


# ---------------------------------------------------------------- on an sm_90 GPU


def _nf4_inputs(m, k, n, dtype, blocksize, nested, seed):
    w = torch.randn(n, k, generator=_gen(seed)).cuda()
    packed, state = quantize_nf4_ref(w, blocksize, nested=nested)
    state.dtype = dtype
    x = torch.randn(m, k, generator=_gen(seed + 1)).to("cuda", dtype)
    return x, packed, state


@hopper
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
@pytest.mark.parametrize("blocksize", [32, 64, 128])
@pytest.mark.parametrize("nested", [False, True], ids=["plain", "nested"])
@pytest.mark.parametrize(
    ("m", "k", "n", "config"),
    [
        (1, 512, 200, WgmmaConfig(block_m=8, stages=2)),  # N not a multiple of block_n
        (3, 1024, 200, WgmmaConfig(split_k=3, prepare_x=True)),  # the last split shorter
        (16, 768, 256, WgmmaConfig(block_n=64, stages=4)),
        (33, 512, 128, WgmmaConfig(block_n=64, split_k=1, stages=2)),
        (64, 384, 192, WgmmaConfig(block_n=64, split_k=3, prepare_x=True)),
        (1, 1024, 200, WgmmaConfig(block_m=8, stages=2, blocks_per_step=2)),  # two blocks a step
        (5, 2048, 384, WgmmaConfig(split_k=3, blocks_per_step=4)),
        (20, 1024, 128, WgmmaConfig(block_n=64, prepare_x=True, blocks_per_step=2)),
        # from 65 rows: codes scaled in the A registers, M tiled (the last tile part-full)
        (100, 1024, 200, WgmmaConfig(block_n=64, block_m=64, prepare_x=True, dequantize_a=True)),
        (
            300,
            2048,
            136,
            WgmmaConfig(
                block_n=64, block_m=128, prepare_x=True, split_k=2, dequantize_a=True, blocks_per_step=2
            ),
        ),
        (130, 4096, 128, WgmmaConfig(block_n=64, block_m=128, prepare_x=True, dequantize_a=True)),  # long K
    ],
)
def test_matches_reference_on_hopper(dtype, blocksize, nested, m, k, n, config):
    blocks = config.blocks_per_step
    if blocks > 1 and (blocksize == 32 or blocksize * blocks > 256):
        pytest.skip("blocks_per_step > 1 needs blocksize 64 or 128, and a K step of at most 256")
    check_nf4_against_fp64(dtype, blocksize, nested, m, k, n, config)


def check_nf4_against_fp64(dtype, blocksize, nested, m, k, n, config):
    """nf4_wgmma_matmul (config None: nf4_matmul's default) on fresh inputs into a poisoned
    output, held to twice the reference's error (W rounded to 16 bits first) against fp64 on the
    exact weights. Shared with test_w4a16_wgmma_ws.py."""
    x, packed, state = _nf4_inputs(m, k, n, dtype, blocksize, nested, m + k + n)
    out = torch.full((m, n), float("nan"), device="cuda", dtype=dtype)  # poisoned
    if config is None:
        got = nf4_matmul(x, packed, state, out=out)
    else:
        got = nf4_wgmma_matmul(x, packed, state, out, config)
    assert got is out
    fp32_state = copy.copy(state)
    fp32_state.dtype = torch.float32
    exact = x.double() @ dequantize_nf4_ref(packed, fp32_state).double().reshape(n, k).t()
    want = nf4_matmul_ref(x, packed, state)  # W rounded to 16 bits first
    err = (got.double() - exact).abs().max().item()
    ref_err = (want.double() - exact).abs().max().item()
    assert not got.isnan().any()
    assert err <= 2 * ref_err + 1e-5 * exact.abs().max().item(), (err, ref_err)


@hopper
def test_nf4_matmul_takes_wgmma_at_every_m(monkeypatch):
    from inferlab.kernels import w4a16

    calls = []
    real = w4a16.launch_nf4_wgmma
    monkeypatch.setattr(w4a16, "launch_nf4_wgmma", lambda *a: calls.append(a[0].shape[0]) or real(*a))
    for m, k, blocksize in ((1, 512, 64), (2, 448, 64), (64, 512, 128), (65, 512, 64), (4, 512, 256)):
        x, packed, state = _nf4_inputs(m, k, 128, torch.bfloat16, blocksize, True, m)
        want = nf4_matmul_ref(x, packed, state)  # the wgmma kernel rounds W differently: a budget
        atol = 0.01 * want.abs().max().item()
        torch.testing.assert_close(w4a16.nf4_matmul(x, packed, state), want, rtol=0, atol=atol)
    assert calls == [1, 2, 64, 65]  # blocksize 256 takes the tl kernels; K = 448 one block a step


@hopper
def test_x_with_any_strides_on_hopper():
    _, packed, state = _nf4_inputs(1, 512, 256, torch.bfloat16, 64, True, 7)
    wide = torch.randn(6, 1024, device="cuda", dtype=torch.bfloat16)
    for x in (wide[:, 512:], torch.randn(512, 6, device="cuda", dtype=torch.bfloat16).t()):
        torch.testing.assert_close(nf4_matmul(x, packed, state), nf4_matmul(x.contiguous(), packed, state),
                                   rtol=0, atol=0)  # fmt: skip
