"""w4a16_wgmma_ws: int4 on wgmma, a producer warp group dequantizing W into shared memory.

Without a GPU: the dequantization's PTX modelled in PyTorch (natural K order, the reference's
bits), the kernel compiled for sm_90 (spills, wgmma and 16-byte stores per step, ptxas's
serialization warnings) and the config errors. On an sm_90 GPU: the kernel against the reference."""

from __future__ import annotations

import dataclasses
import random

import pytest
import torch

from inferlab.kernels.quant_formats import dequantize_int4_ref, quantize_int4, unpack_int4_along_k
from inferlab.kernels.w4a16_wgmma import WgmmaConfig, int4_wgmma_matmul
from sm90_compile import compiled_rows, hopper
from test_nf4_wgmma import check_nf4_against_fp64
from test_w4a16_wgmma import check_against_fp64
from test_w4a16_wgmma_tiled import check_strided_x


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _ws(block_m, **kw):
    kw = dict(block_n=128, num_warps=8, dequantize_a=True, warp_specialized=True) | kw
    return WgmmaConfig(block_m=block_m, **kw)


def dequantize_like_kernel(words, zeros, scales, dtype):
    """Plain-PyTorch model of `_dequantize_words`, step by step as the PTX does it: [K / 8, N]
    words -> [N, K]. a_s = (word >> 4s) & 0x000F000F | C: nibbles s, s + 4 as C + q; then
    (a_s - (C + z)) * scale in 16 bits; then the pairs rearranged by prmt."""
    c = 128 if dtype == torch.bfloat16 else 1024
    k8, n = words.shape
    zc = (zeros.float() + c).to(dtype)  # [N]
    pairs = []
    for s in range(4):
        t = (words >> (4 * s)) & 0x000F000F
        lo = (t & 0xFFFF).float() + c  # C | q reads C + q: the low 4 mantissa bits are worth 1
        hi = ((t >> 16) & 0xFFFF).float() + c
        pairs.append([((v.to(dtype) - zc) * scales).to(dtype) for v in (lo, hi)])  # [K/8, N] each
    # prmt: (0, 1) = lo(a0), lo(a1); (2, 3) = lo(a2), lo(a3); (4, 5) = hi(a0), hi(a1); (6, 7) = ...
    order = [pairs[s][0] for s in range(4)] + [pairs[s][1] for s in range(4)]
    return torch.stack(order, dim=1).reshape(k8 * 8, n).t()  # [K/8, 8, N] -> [K, N] -> [N, K]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
def test_the_dequantization_gives_the_references_weights_in_natural_order(dtype):
    w = torch.randn(64, 256, generator=_gen(0))
    qw = quantize_int4(w, 128, symmetric=False, scale_dtype=dtype)
    z = qw.zeros.to(torch.int32).repeat_interleave(2, dim=0)  # one row per 64-column step
    s = qw.scales.repeat_interleave(2, dim=0)
    steps = [
        dequantize_like_kernel(qw.qweight[8 * i : 8 * i + 8], z[i], s[i], dtype) for i in range(256 // 64)
    ]
    assert torch.equal(torch.cat(steps, dim=1), dequantize_int4_ref(qw, dtype))
    # with zero point 0 and scale 1 it is the nibbles themselves, in W's own K order
    q = unpack_int4_along_k(qw.qweight)  # [K, N]
    ones = torch.ones(64, dtype=dtype)
    assert torch.equal(dequantize_like_kernel(qw.qweight, torch.zeros(64), ones, dtype), q.t().to(dtype))


def _run_protocol(stages: int, dequantizers: int, steps: int, seed: int) -> str | None:
    """The kernel's barrier protocol in plain Python, one random interleaving of its actors: the
    consumers (copies for the first STAGES steps, then per step: wait for ready and filled, wgmma,
    start the copies STAGES steps later), the dequantizing groups (group g takes steps g, g +
    dequantizers, ...: wait for ready, arrive on filled) and the copies landing in any order.
    mbarrier semantics: a wait for parity p passes when the completed phases c have c % 2 != p.
    Returns how a wait passed before its phase had completed, or None."""
    rng = random.Random(seed)
    ready, filled = [0] * stages, [0] * stages  # completed phases per slot
    in_flight = list(range(min(stages, steps)))  # copies started, not landed
    consumer, groups = 0, list(range(dequantizers))

    def passes(done: int, step: int) -> bool:
        return done % 2 != (step // stages) & 1

    while consumer < steps:
        moves = [("land", j) for j in in_flight]
        moves += [
            ("dequantize", g) for g, d in enumerate(groups) if d < steps and passes(ready[d % stages], d)
        ]
        i = consumer
        if passes(ready[i % stages], i) and passes(filled[i % stages], i):
            moves.append(("consume", i))
        kind, who = rng.choice(moves)
        if kind == "land":
            in_flight.remove(who)
            ready[who % stages] += 1
        elif kind == "dequantize":
            d = groups[who]
            if ready[d % stages] < d // stages + 1:
                return f"group {who} passed step {d}'s wait before its copies landed"
            filled[d % stages] += 1
            groups[who] += dequantizers
        else:
            if filled[i % stages] < i // stages + 1 or ready[i % stages] < i // stages + 1:
                return f"the consumers passed step {i}'s wait early"
            consumer += 1  # wgmma i issued; i - 1's completed, so its slot takes step i - 1 + STAGES
            if i > 0 and i - 1 + stages < steps:
                in_flight.append(i - 1 + stages)
    return None


def test_two_dequantizing_groups_need_an_even_ring():
    """The rule the launcher enforces, in a model of the protocol: with one group or an even ring
    no interleaving passes a wait early; with two groups on an odd ring some do (0007 run 58: the
    sweep hung). The model can fail: it finds the odd ring's early pass."""
    for stages, dequantizers in [(3, 1), (4, 1), (5, 1), (4, 2), (6, 2)]:
        for seed in range(300):
            assert _run_protocol(stages, dequantizers, 24, seed) is None, (stages, dequantizers, seed)
    for stages in (3, 5):
        found = [_run_protocol(stages, 2, 24, seed) for seed in range(300)]
        assert any(f and "group" in f for f in found), stages


# ---------------------------------------------------------------- compiled for sm_90, no GPU
COMPILE_WS = r"""
import torch
from inferlab.kernels import w4a16_wgmma_ws as WS

def compile_one(bm, dt, zeros, stages, g=128, split=False, dq=1, nf4=False, sub=1):
    tdt = torch.bfloat16 if dt == "bf16" else torch.float16
    bk = min(64, g)
    L = WS.ws_layouts(bm, bk, tdt)
    cx = dict(HAS_ZEROS=zeros, WRITE_PARTIAL=split, GROUP=g, NF4=nf4, STAGES=stages, SUB=sub,
              DEQUANTIZERS=dq, DEQUANTIZER_REGISTERS=WS.DEQUANTIZER_REGISTERS[dq],
              mma_layout=L["mma"], w_smem_layout=L["w"])
    words = f"i32[128, {bk // 8}]" if nf4 else f"i32[{sub * bk // 8}, 128]"
    scales = f"fp32[1, 128],{L['words']!r}" if nf4 else f"{dt}[1, 128],{L['scales']!r}"
    types = dict(x_desc=f"tensordesc<{dt}[{bm}, {bk}],{L['x']!r}>",
                 word_desc=f"tensordesc<{words},{L['words']!r}>", scale_desc=f"tensordesc<{scales}>",
                 zero_desc=f"tensordesc<u8[1, 128],{L['zeros']!r}>",
                 out_ptr=f"*{dt}", partial_ptr="*fp32", code_ptr=f"*fp32" if nf4 else f"*{dt}",
                 magic_value="fp32")
    ptx, spills = compile_sm90(WS._int4_wgmma_ws_kernel, cx, types, 8)
    serialized = int("C7514" in LAST_REPORT or "C7515" in LAST_REPORT)
    counts = ptx.count("wgmma.mma_async"), ptx.count("st.shared.v4")
    print("ROW", bm, sub * bk, dq, int(nf4), spills, *counts, serialized)

compile_one(128, "bf16", True, 4)
compile_one(256, "bf16", True, 4, split=True)
compile_one(128, "fp16", True, 6, dq=2)
compile_one(64, "fp16", False, 3, g=32)
compile_one(128, "bf16", False, 6, g=64, dq=2, nf4=True)  # NF4: codes looked up, times absmax
compile_one(256, "fp16", False, 4, g=32, split=True, nf4=True)
compile_one(64, "bf16", True, 4, dq=2, sub=2)  # K steps of 128: two 64-wide sub-tiles
"""


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU the kernel runs for real below")
def test_kernel_compiles_for_hopper_without_spills():
    rows = compiled_rows(COMPILE_WS)
    assert len(rows) == 7, rows
    for row in rows:
        bm, bk, dequantizers, nf4, spills, wgmmas, stores, serialized = map(int, row)
        assert spills == 0, row
        assert wgmmas == bk // 16, row  # one wgmma per 16 of K a step (both warp groups issue it)
        # a dequantizing thread stores its row in 16-byte chunks (each warp group has its copy)
        assert stores == bk // 8 * dequantizers, row
        assert serialized == 0, row  # ptxas did not wait for each wgmma (C7514/C7515)


def test_config_errors():
    qw = quantize_int4(torch.randn(64, 256, generator=_gen(3)), 128, scale_dtype=torch.float16)
    x = torch.randn(80, 256, generator=_gen(4)).half()
    out = torch.empty(80, 64, dtype=torch.float16)
    for config, message in [
        (_ws(32), "block_m must be one of"),
        (_ws(128, stages=1), "stages"),
        (_ws(128, block_n=64), "block_n=128"),
        (_ws(128, dequantizers=2, stages=3), "even number of stages"),
        (_ws(256, dequantizers=2, stages=4), "dequantizers must be"),
        (_ws(64, step_k=64), "step_k"),  # 64 is the default step: None
    ]:
        with pytest.raises(ValueError, match=message):
            int4_wgmma_matmul(x, qw, out, config)
    g64 = quantize_int4(torch.randn(64, 256, generator=_gen(3)), 64, scale_dtype=torch.float16)
    with pytest.raises(ValueError, match="group_size 128"):  # a step of 128 would span two groups
        int4_wgmma_matmul(x, g64, out, _ws(64, step_k=128))
    with pytest.raises(ValueError, match="dequantize_a"):
        WgmmaConfig(block_m=128, warp_specialized=True)
    assert "warp-specialized" in _ws(128).label


def test_the_default_falls_back_to_the_tiled_kernel_where_tma_cannot_copy_the_weight():
    from inferlab.kernels._matmul_plan import wgmma_config_for
    from inferlab.kernels.w4a16_wgmma_ws import tma_ready

    for m in (33, 64, 65, 128, 129, 4096):
        assert wgmma_config_for(m).warp_specialized
        fallback = wgmma_config_for(m, tma=False)
        assert fallback.dequantize_a and not fallback.warp_specialized
        assert fallback.block_m == wgmma_config_for(m).block_m
    assert not wgmma_config_for(32).dequantize_a  # to 32 rows the fold kernel
    # to 64 rows K steps of 128 where the group is 128; other groups step by 64 (or the group)
    assert wgmma_config_for(64).step_k == 128 and wgmma_config_for(65).step_k is None
    assert wgmma_config_for(64, group_size=64).step_k is None
    assert wgmma_config_for(64, group_size=32).warp_specialized
    qw = quantize_int4(torch.randn(64, 256, generator=_gen(5)), 128, scale_dtype=torch.bfloat16)
    assert tma_ready(qw)
    assert not tma_ready(quantize_int4(torch.randn(40, 256, generator=_gen(6)), 128))  # N = 40
    shifted = torch.empty(qw.qweight.numel() + 1, dtype=torch.int32)[1:].view_as(qw.qweight)
    assert not tma_ready(dataclasses.replace(qw, qweight=shifted))  # 4-byte aligned only


def test_nf4_configs_and_weights_it_refuses():
    from inferlab.kernels.quant_formats import quantize_nf4_ref
    from inferlab.kernels.w4a16_wgmma_ws import nf4_wgmma_ws_matmul, nf4_ws_ready

    packed, state = quantize_nf4_ref(torch.randn(64, 256, generator=_gen(9)), 64)
    assert nf4_ws_ready(packed, 64, 64, 256)
    assert not nf4_ws_ready(packed, 256, 64, 256)  # a blocksize of 256: steps of 64 would split it
    assert not nf4_ws_ready(packed, 64, 64, 48)  # K = 48: rows of 24 bytes, not a 16-byte multiple
    x = torch.randn(80, 256, generator=_gen(10)).half()
    out = torch.empty(80, 64, dtype=torch.float16)
    for config, message in [
        (_ws(32), "block_m must be one of"),
        (_ws(128, stages=3, dequantizers=2), "even"),
        (_ws(64, step_k=128), "int4's"),
    ]:
        with pytest.raises(ValueError, match=message):
            nf4_wgmma_ws_matmul(x, packed, state, out, config)


# ---------------------------------------------------------------- on an sm_90 GPU
GPU_CASES = [  # (M, K, N, config), for int4 and NF4
    (33, 512, 208, _ws(64)),  # masked rows, a partial weight tile
    (130, 1024, 256, _ws(128)),  # two M tiles
    (130, 1024, 272, _ws(128, stages=4, dequantizers=2)),  # two dequantizing warp groups
    (300, 768, 384, _ws(256, stages=3)),
    (70, 1024, 192, _ws(64, split_k=3, stages=2)),  # split-K, the last split shorter
    (200, 4096, 128, _ws(128, stages=5)),  # long K: many trips round the ring
]
NF4_ONLY = [(200, 4096, 132, _ws(128, stages=6, dequantizers=2))]  # N a multiple of 4, not of 16


@hopper
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
@pytest.mark.parametrize("group_size", [32, 64, 128])
@pytest.mark.parametrize("symmetric", [False, True], ids=["zeros", "symmetric"])
@pytest.mark.parametrize(("m", "k", "n", "config"), GPU_CASES)
def test_matches_reference_on_hopper(dtype, group_size, symmetric, m, k, n, config):
    check_against_fp64(dtype, group_size, symmetric, m, k, n, config)  # W rounded as the reference


K128_CASES = [  # (M, K, N, config): K steps of 128 (int4, g128)
    (33, 512, 208, _ws(64, step_k=128, stages=4, dequantizers=2)),  # masked rows, a partial tile
    (130, 1024, 272, _ws(128, step_k=128, stages=2, dequantizers=2)),  # two M tiles
    (70, 1280, 192, _ws(64, step_k=128, split_k=3, stages=3)),  # split-K, the last split shorter
    (64, 4096, 128, _ws(64, step_k=128, stages=4, dequantizers=2)),  # many trips round the ring
]


@hopper
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
@pytest.mark.parametrize("symmetric", [False, True], ids=["zeros", "symmetric"])
@pytest.mark.parametrize(("m", "k", "n", "config"), K128_CASES)
def test_k_steps_of_128_match_reference_on_hopper(dtype, symmetric, m, k, n, config):
    check_against_fp64(dtype, 128, symmetric, m, k, n, config)


@hopper
def test_strided_x_on_hopper():
    check_strided_x(_ws(64))  # x copied for TMA (a column stride of 2), two M tiles


@hopper
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
@pytest.mark.parametrize("blocksize", [32, 64, 128])
@pytest.mark.parametrize("nested", [False, True], ids=["plain", "nested"])
@pytest.mark.parametrize(("m", "k", "n", "config"), GPU_CASES + NF4_ONLY)
def test_nf4_matches_reference_on_hopper(dtype, blocksize, nested, m, k, n, config):
    """NF4 through the warp-specialized kernel (nf4_matmul with config.warp_specialized): code
    times absmax rounded once, as nf4_wgmma.py's DEQUANT_A, within twice the reference's error."""
    check_nf4_against_fp64(dtype, blocksize, nested, m, k, n, config)


@hopper
@pytest.mark.parametrize("n", [256, 130], ids=["tma", "fallback"])
def test_nf4_default_from_64_rows_on_hopper(monkeypatch, n):
    """nf4_matmul's default from 64 rows: this kernel, or nf4_wgmma.py's tiled one where TMA
    cannot copy the absmax (N = 130, not a multiple of 4)."""
    from inferlab.kernels import w4a16_wgmma_ws

    calls = []
    real = w4a16_wgmma_ws.nf4_wgmma_ws_matmul
    monkeypatch.setattr(w4a16_wgmma_ws, "nf4_wgmma_ws_matmul", lambda *a: calls.append(n) or real(*a))
    check_nf4_against_fp64(torch.bfloat16, 64, True, 200, 1024, n, None)
    assert calls == ([256] if n == 256 else [])
