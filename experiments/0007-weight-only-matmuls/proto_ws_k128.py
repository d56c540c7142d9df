"""Prototype (0007 run 74): the warp-specialized int4 kernel with K steps of 128 instead of 64.

Runs 71 and 73 (probe_ws_parts.py) found the ring's copies alone take 20.5 us of the kernel's
32.3 at M = 64, and that a step costs ~226 ns whatever it copies (plus ~7.6 ns a KB): the floor
is per step. Here a step is one g128 group: x's tile and the weight tile as two 64-wide sub-tiles
each (a TMA box and a 128-byte swizzle span 64 bf16 at most), the words [16, 128], and the
dequantizers unpack each half of their 16 words into one sub-tile. Half the steps, the same
bytes; everything else as w4a16_wgmma_ws.py (int4, g128, no split-K).

    PYTHONPATH=src:benchmarks python3 experiments/0007-weight-only-matmuls/proto_ws_k128.py
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

SUB = gl.constexpr(2)  # 64-wide sub-tiles per K step
GROUP = gl.constexpr(128)


@gluon.jit
def _load(x_desc, word_desc, scale_desc, zero_desc, x_smem, word_smem, scale_smem, zero_smem, ready, step,
          m0, n0):  # fmt: skip
    STAGES: gl.constexpr = word_smem.shape[0]
    nbytes: gl.constexpr = (
        SUB * x_desc.block_type.nbytes + word_desc.block_type.nbytes
        + scale_desc.block_type.nbytes + zero_desc.block_type.nbytes
    )  # fmt: skip
    slot = step % STAGES
    bar = ready.index(slot)
    k = step * GROUP
    mbarrier.expect(bar, nbytes)
    for j in gl.static_range(SUB):
        tma.async_copy_global_to_shared(x_desc, [m0, k + 64 * j], bar, x_smem.index(slot * SUB + j))
    tma.async_copy_global_to_shared(word_desc, [k // 8, n0], bar, word_smem.index(slot))
    tma.async_copy_global_to_shared(scale_desc, [k // GROUP, n0], bar, scale_smem.index(slot))
    tma.async_copy_global_to_shared(zero_desc, [k // GROUP, n0], bar, zero_smem.index(slot))


@gluon.jit
def _dequantize(word_smem, scale_smem, zero_smem, w_smem, ready, filled, steps, magic_value,
                FIRST: gl.constexpr, EVERY: gl.constexpr):  # fmt: skip
    STAGES: gl.constexpr = word_smem.shape[0]
    dtype: gl.constexpr = w_smem.dtype
    word_layout: gl.constexpr = gl.BlockedLayout([8, 1], [1, 32], [1, gl.num_warps()], [0, 1])
    for d in range(FIRST, steps, EVERY):
        slot = d % STAGES
        mbarrier.wait(ready.index(slot), (d // STAGES) & 1)
        scale = scale_smem.index(slot).load(word_layout)
        zero = zero_smem.index(slot).load(word_layout).to(gl.float32)
        zero_pairs = _pairs((zero + magic_value).to(dtype))
        scale_pairs = _pairs(scale.to(dtype))
        for j in gl.static_range(SUB):  # words 8j .. 8j + 7 of each row: K 64j .. 64j + 63
            words = word_smem.index(slot).slice(8 * j, 8, dim=0).load(word_layout)
            w = _dequantize_words(words, zero_pairs, scale_pairs, dtype)
            w_smem.index(slot * SUB + j).store(w)
        fence_async_shared()
        mbarrier.arrive(filled.index(slot))


@gluon.jit
def _consume(x_desc, word_desc, scale_desc, zero_desc, x_smem, word_smem, scale_smem, zero_smem, w_smem,
             ready, filled, out_ptr, m0, n0, M, N, steps, mma_layout: gl.constexpr):  # fmt: skip
    STAGES: gl.constexpr = word_smem.shape[0]
    BLOCK_N: gl.constexpr = w_smem.shape[1]
    BLOCK_M: gl.constexpr = x_smem.shape[1]
    for i in gl.static_range(STAGES):
        if i < steps:
            _load(x_desc, word_desc, scale_desc, zero_desc, x_smem, word_smem, scale_smem, zero_smem, ready,
                  i, m0, n0)  # fmt: skip
    acc = gl.zeros([BLOCK_N, BLOCK_M], gl.float32, mma_layout)
    for i in range(steps):
        slot = i % STAGES
        phase = (i // STAGES) & 1
        mbarrier.wait(ready.index(slot), phase)
        mbarrier.wait(filled.index(slot), phase)
        w0 = w_smem.index(slot * SUB)
        x0 = x_smem.index(slot * SUB).permute([1, 0])
        w1 = w_smem.index(slot * SUB + 1)
        x1 = x_smem.index(slot * SUB + 1).permute([1, 0])
        acc = warpgroup_mma(w0, x0, acc, is_async=True)
        acc = warpgroup_mma(w1, x1, acc, is_async=True)
        acc, _, _, _, _ = warpgroup_mma_wait(2, deps=(acc, w0, x0, w1, x1))  # step i - 1's have completed
        refill = i - 1 + STAGES
        if (i > 0) & (refill < steps):
            _load(x_desc, word_desc, scale_desc, zero_desc, x_smem, word_smem, scale_smem, zero_smem, ready,
                  refill, m0, n0)  # fmt: skip
    acc = warpgroup_mma_wait(0, deps=(acc,))
    offs_on = n0 + gl.arange(0, BLOCK_N, layout=gl.SliceLayout(1, mma_layout))
    offs_om = m0 + gl.arange(0, BLOCK_M, layout=gl.SliceLayout(0, mma_layout))
    _store_result(acc, out_ptr, out_ptr, offs_om, offs_on, M, N, False)


@gluon.jit
def proto(x_desc, word_desc, scale_desc, zero_desc, out_ptr, M, N, K, m_tiles, magic_value,
          STAGES: gl.constexpr, REGISTERS: gl.constexpr, mma_layout: gl.constexpr,
          w_smem_layout: gl.constexpr):  # fmt: skip
    BLOCK_M: gl.constexpr = x_desc.block_type.shape[0]
    BLOCK_N: gl.constexpr = scale_desc.block_type.shape[1]
    pid = gl.program_id(0)
    m0 = (pid % m_tiles) * BLOCK_M
    n0 = (pid // m_tiles) * BLOCK_N
    steps = K // GROUP
    x_smem = gl.allocate_shared_memory(x_desc.dtype, [STAGES * SUB, BLOCK_M, 64], x_desc.layout)
    word_smem = gl.allocate_shared_memory(gl.int32, [STAGES, GROUP // 8, BLOCK_N], word_desc.layout)
    scale_smem = gl.allocate_shared_memory(scale_desc.dtype, [STAGES, 1, BLOCK_N], scale_desc.layout)
    zero_smem = gl.allocate_shared_memory(zero_desc.dtype, [STAGES, 1, BLOCK_N], zero_desc.layout)
    w_smem = gl.allocate_shared_memory(x_desc.dtype, [STAGES * SUB, BLOCK_N, 64], w_smem_layout)
    ready = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    filled = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    for s in gl.static_range(STAGES):
        mbarrier.init(ready.index(s), count=1)
        mbarrier.init(filled.index(s), count=1)
    gl.warp_specialize(
        [
            (_consume, (x_desc, word_desc, scale_desc, zero_desc, x_smem, word_smem, scale_smem, zero_smem,
                        w_smem, ready, filled, out_ptr, m0, n0, M, N, steps, mma_layout)),
            (_dequantize, (word_smem, scale_smem, zero_smem, w_smem, ready, filled, steps, magic_value,
                           0, 2)),
            (_dequantize, (word_smem, scale_smem, zero_smem, w_smem, ready, filled, steps, magic_value,
                           1, 2)),
        ],
        [4, 4],
        [REGISTERS, REGISTERS],
    )  # fmt: skip


def launch(x, qw, out, bm, stages):
    M, K = x.shape
    N = out.shape[1]
    layouts = ws_layouts(bm, 64, x.dtype)
    x_desc = TensorDescriptor.from_tensor(x, [bm, 64], layouts["x"])
    word_desc = TensorDescriptor.from_tensor(qw.qweight, [16, WS_BLOCK_N], layouts["words"])
    scale_desc = TensorDescriptor.from_tensor(qw.scales, [1, WS_BLOCK_N], layouts["scales"])
    zero_desc = TensorDescriptor.from_tensor(qw.zeros, [1, WS_BLOCK_N], layouts["zeros"])
    m_tiles = (M + bm - 1) // bm
    proto[(N // WS_BLOCK_N * m_tiles,)](
        x_desc, word_desc, scale_desc, zero_desc, out, M, N, K, m_tiles, MAGIC[x.dtype][1],
        STAGES=stages, REGISTERS=DEQUANTIZER_REGISTERS[2],
        mma_layout=layouts["mma"], w_smem_layout=layouts["w"], num_warps=8,
    )  # fmt: skip
    return out


CASES = {64: (64, (2, 4)), 128: (128, (2,))}  # two dequantizing groups: an even ring


def main() -> None:
    print(torch.cuda.get_device_name(), flush=True)
    k, n = 4096, 14336
    call, dense, nbytes, clone = make_weights("int4", n, k)
    weights = [clone() for _ in range(copies_for(nbytes))]
    for m, (bm, rings) in CASES.items():
        x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
        out = torch.empty(m, n, device="cuda", dtype=torch.bfloat16)
        want = call(x, weights[0], None).float()
        cublas = graph_us([functools.partial(torch.mm, x, dense.t())] * 2)
        default = graph_us([functools.partial(call, x, q, None) for q in weights])
        print(f"{k}->{n} M={m}: cuBLAS {cublas:.1f} us, the default {default:.1f} us", flush=True)
        for stages in rings:
            try:
                got = launch(x, weights[0], out, bm, stages).float()
            except Exception as e:  # a ring that does not fit in shared memory
                print(f"  stages {stages}: {type(e).__name__}: {str(e).splitlines()[0][:90]}", flush=True)
                continue
            err = (got - want).abs().max().item()
            us = graph_us([functools.partial(launch, x, q, out, bm, stages) for q in weights])
            print(f"  K steps of 128, {stages} stages: {us:.1f} us ({cublas / us:.2f}x cuBLAS), "
                  f"max diff from the default {err:.3g}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
