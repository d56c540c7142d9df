"""Probe (0007 run 71): what sets the warp-specialized kernel's step time at M = 64 and 128.

Nsight Compute (runs 63, 66) found nothing saturated: at M = 64 a step takes ~825 cycles, of which
the tensor pipe is busy 256, and two dequantizing warp groups beat one by only 10%. Here the same
kernel (w4a16_wgmma_ws.py at commit afedcff, int4, two dequantizing groups) runs with parts
removed, keeping every copy and every barrier hand-off:

- WORK=False: the dequantizers wait for their slot's copies and signal `filled` at once (the
  weight tile is left as it is: the results are wrong, only the time matters);
- MMA=False: the consumers skip the wgmma (its slot is refilled at once);
- LOAD_X=False / LOAD_WORDS=False (run 73, with neither dequantization nor wgmma): x's tile, or
  the words with their scales and zero points, are not copied.

    PYTHONPATH=src:benchmarks python3 experiments/0007-weight-only-matmuls/probe_ws_parts.py [71|73]
"""

import functools
import sys

import torch
from triton.experimental import gluon
from triton.experimental.gluon import language as gl
from triton.experimental.gluon.language.nvidia.hopper import mbarrier, tma, warpgroup_mma_wait
from triton.experimental.gluon.nvidia.hopper import TensorDescriptor

sys.path.insert(0, "benchmarks")
from sweep_w4a16 import copies_for, graph_us, make_weights  # noqa: E402

from inferlab.kernels.w4a16_wgmma import MAGIC, _store_result, fence_async_shared, warpgroup_mma  # noqa: E402
from inferlab.kernels.w4a16_wgmma_ws import (  # noqa: E402
    DEQUANTIZER_REGISTERS,
    WS_BLOCK_N,
    _dequantize_words,
    _pairs,
    ws_layouts,
)


@gluon.jit
def _load(x_desc, word_desc, scale_desc, zero_desc, x_smem, word_smem, scale_smem, zero_smem, ready, step,
          m0, n0, LOAD_X: gl.constexpr, LOAD_WORDS: gl.constexpr):  # fmt: skip
    """w4a16_wgmma_ws._load (int4, g128) with either copy left out."""
    STAGES: gl.constexpr = x_smem.shape[0]
    BLOCK_K: gl.constexpr = x_desc.block_type.shape[1]
    x_bytes: gl.constexpr = x_desc.block_type.nbytes if LOAD_X else 0
    word_bytes: gl.constexpr = (
        word_desc.block_type.nbytes + scale_desc.block_type.nbytes + zero_desc.block_type.nbytes
        if LOAD_WORDS
        else 0
    )
    slot = step % STAGES
    bar = ready.index(slot)
    k = step * BLOCK_K
    mbarrier.expect(bar, x_bytes + word_bytes)
    if LOAD_X:
        tma.async_copy_global_to_shared(x_desc, [m0, k], bar, x_smem.index(slot))
    if LOAD_WORDS:
        tma.async_copy_global_to_shared(word_desc, [k // 8, n0], bar, word_smem.index(slot))
        tma.async_copy_global_to_shared(scale_desc, [k // 128, n0], bar, scale_smem.index(slot))
        tma.async_copy_global_to_shared(zero_desc, [k // 128, n0], bar, zero_smem.index(slot))


@gluon.jit
def _dequantize(word_smem, scale_smem, zero_smem, w_smem, ready, filled, steps, magic_value,
                FIRST: gl.constexpr, EVERY: gl.constexpr, WORK: gl.constexpr):  # fmt: skip
    STAGES: gl.constexpr = w_smem.shape[0]
    BLOCK_K: gl.constexpr = w_smem.shape[2]
    dtype: gl.constexpr = w_smem.dtype
    word_layout: gl.constexpr = gl.BlockedLayout([BLOCK_K // 8, 1], [1, 32], [1, gl.num_warps()], [0, 1])
    for d in range(FIRST, steps, EVERY):
        slot = d % STAGES
        mbarrier.wait(ready.index(slot), (d // STAGES) & 1)
        if WORK:
            words = word_smem.index(slot).load(word_layout)
            scale = scale_smem.index(slot).load(word_layout)
            zero = zero_smem.index(slot).load(word_layout).to(gl.float32)
            zero_c = (zero + magic_value).to(dtype)
            w = _dequantize_words(words, _pairs(zero_c), _pairs(scale.to(dtype)), dtype)
            w_smem.index(slot).store(w)
            fence_async_shared()
        mbarrier.arrive(filled.index(slot))


@gluon.jit
def _consume(x_desc, word_desc, scale_desc, zero_desc, x_smem, word_smem, scale_smem, zero_smem,
             w_smem, ready, filled, out_ptr, m0, n0, M, N, steps, MMA: gl.constexpr, LOAD_X: gl.constexpr,
             LOAD_WORDS: gl.constexpr, mma_layout: gl.constexpr):  # fmt: skip
    STAGES: gl.constexpr = w_smem.shape[0]
    BLOCK_N: gl.constexpr = w_smem.shape[1]
    BLOCK_M: gl.constexpr = x_smem.shape[1]
    for i in gl.static_range(STAGES):
        if i < steps:
            _load(x_desc, word_desc, scale_desc, zero_desc, x_smem, word_smem, scale_smem, zero_smem,
                  ready, i, m0, n0, LOAD_X, LOAD_WORDS)  # fmt: skip
    acc = gl.zeros([BLOCK_N, BLOCK_M], gl.float32, mma_layout)
    for i in range(steps):
        slot = i % STAGES
        phase = (i // STAGES) & 1
        mbarrier.wait(ready.index(slot), phase)
        mbarrier.wait(filled.index(slot), phase)
        if MMA:
            w_tile = w_smem.index(slot)
            x_tile = x_smem.index(slot).permute([1, 0])
            acc = warpgroup_mma(w_tile, x_tile, acc, is_async=True)
            acc, _, _ = warpgroup_mma_wait(1, deps=(acc, w_tile, x_tile))
            refill = i - 1 + STAGES
            if (i > 0) & (refill < steps):
                _load(x_desc, word_desc, scale_desc, zero_desc, x_smem, word_smem, scale_smem, zero_smem,
                      ready, refill, m0, n0, LOAD_X, LOAD_WORDS)  # fmt: skip
        else:
            refill = i + STAGES
            if refill < steps:
                _load(x_desc, word_desc, scale_desc, zero_desc, x_smem, word_smem, scale_smem, zero_smem,
                      ready, refill, m0, n0, LOAD_X, LOAD_WORDS)  # fmt: skip
    acc = warpgroup_mma_wait(0, deps=(acc,))
    offs_on = n0 + gl.arange(0, BLOCK_N, layout=gl.SliceLayout(1, mma_layout))
    offs_om = m0 + gl.arange(0, BLOCK_M, layout=gl.SliceLayout(0, mma_layout))
    _store_result(acc, out_ptr, out_ptr, offs_om, offs_on, M, N, False)


@gluon.jit
def probe(x_desc, word_desc, scale_desc, zero_desc, out_ptr, M, N, K, magic_value,
          STAGES: gl.constexpr, WORK: gl.constexpr, MMA: gl.constexpr, LOAD_X: gl.constexpr,
          LOAD_WORDS: gl.constexpr, REGISTERS: gl.constexpr,
          mma_layout: gl.constexpr, w_smem_layout: gl.constexpr):  # fmt: skip
    BLOCK_M: gl.constexpr = x_desc.block_type.shape[0]
    BLOCK_K: gl.constexpr = x_desc.block_type.shape[1]
    BLOCK_N: gl.constexpr = scale_desc.block_type.shape[1]
    m0 = 0
    n0 = gl.program_id(0) * BLOCK_N
    steps = K // BLOCK_K
    x_smem = gl.allocate_shared_memory(x_desc.dtype, [STAGES, BLOCK_M, BLOCK_K], x_desc.layout)
    WORD_ROWS: gl.constexpr = word_desc.block_type.shape[0]
    word_smem = gl.allocate_shared_memory(gl.int32, [STAGES, WORD_ROWS, BLOCK_N], word_desc.layout)
    scale_smem = gl.allocate_shared_memory(scale_desc.dtype, [STAGES, 1, BLOCK_N], scale_desc.layout)
    zero_smem = gl.allocate_shared_memory(zero_desc.dtype, [STAGES, 1, BLOCK_N], zero_desc.layout)
    w_smem = gl.allocate_shared_memory(x_desc.dtype, [STAGES, BLOCK_N, BLOCK_K], w_smem_layout)
    ready = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    filled = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    for s in gl.static_range(STAGES):
        mbarrier.init(ready.index(s), count=1)
        mbarrier.init(filled.index(s), count=1)
    gl.warp_specialize(
        [
            (_consume, (x_desc, word_desc, scale_desc, zero_desc, x_smem, word_smem, scale_smem, zero_smem,
                        w_smem, ready, filled, out_ptr, m0, n0, M, N, steps, MMA, LOAD_X, LOAD_WORDS,
                        mma_layout)),
            (_dequantize, (word_smem, scale_smem, zero_smem, w_smem, ready, filled, steps, magic_value,
                           0, 2, WORK)),
            (_dequantize, (word_smem, scale_smem, zero_smem, w_smem, ready, filled, steps, magic_value,
                           1, 2, WORK)),
        ],
        [4, 4],
        [REGISTERS, REGISTERS],
    )  # fmt: skip


def launch(x, qw, out, stages, work, mma, load_x=True, load_words=True):
    M, K = x.shape
    N = out.shape[1]
    layouts = ws_layouts(64 if M <= 64 else 128, 64, x.dtype)
    bm = 64 if M <= 64 else 128
    x_desc = TensorDescriptor.from_tensor(x, [bm, 64], layouts["x"])
    word_desc = TensorDescriptor.from_tensor(qw.qweight, [8, WS_BLOCK_N], layouts["words"])
    scale_desc = TensorDescriptor.from_tensor(qw.scales, [1, WS_BLOCK_N], layouts["scales"])
    zero_desc = TensorDescriptor.from_tensor(qw.zeros, [1, WS_BLOCK_N], layouts["zeros"])
    probe[(N // WS_BLOCK_N,)](
        x_desc, word_desc, scale_desc, zero_desc, out, M, N, K, MAGIC[x.dtype][1],
        STAGES=stages, WORK=work, MMA=mma, LOAD_X=load_x, LOAD_WORDS=load_words,
        REGISTERS=DEQUANTIZER_REGISTERS[2],
        mma_layout=layouts["mma"], w_smem_layout=layouts["w"], num_warps=8,
    )  # fmt: skip
    return out


VARIANTS = {  # run 71: what each part adds; run 73: the copies alone, by part and ring depth
    "71": [(st, w, m, True, True) for st in (4, 6) for w, m in ((1, 1), (0, 1), (1, 0), (0, 0))],
    "73": [
        (6, 1, 1, True, True),
        (6, 0, 0, True, True),
        (6, 0, 0, False, True),
        (6, 0, 0, True, False),
        (2, 0, 0, True, True),  # not 3: two dequantizing groups on an odd ring hang (run 58; 73 did)
    ],
}


def main() -> None:
    run = sys.argv[1] if len(sys.argv) > 1 else "73"
    print(torch.cuda.get_device_name(), flush=True)
    for k, n in ((4096, 14336),):
        call, dense, nbytes, clone = make_weights("int4", n, k)
        weights = [clone() for _ in range(copies_for(nbytes))]
        for m in (64, 128):
            x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
            out = torch.empty(m, n, device="cuda", dtype=torch.bfloat16)
            want = x.float() @ dense.float().t()
            got = launch(x, weights[0], out, 6, True, True).float()
            print(f"M={m} full probe max error {(got - want).abs().max().item():.3g}", flush=True)
            default = graph_us([functools.partial(call, x, q, None) for q in weights])
            print(f"{k}->{n} M={m}: the default {default:.1f} us", flush=True)
            for stages, work, mma, load_x, load_words in VARIANTS[run]:
                variant = functools.partial(launch, out=out, stages=stages, work=work, mma=mma, load_x=load_x,
                                            load_words=load_words)  # fmt: skip
                us = graph_us([functools.partial(variant, x, q) for q in weights])
                print(f"  stages {stages} dequantize {work:d} wgmma {mma:d} copies x {load_x:d} "
                      f"words {load_words:d}: {us:.1f} us", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
