"""Prototype (0007 run 72): the warp-specialized int4 kernel with the words on a ring of their own.

Run 71 (probe_ws_parts.py) found the copies alone take 20.5 us of the kernel's 32.3 at M = 64, and
that dequantizing and multiplying each add ~5 us on top instead of overlapping. In the kernel a
slot holds a step's words, x tile and weight tile, so a step's words are only copied once the
wgmma of the step a ring earlier has completed: the DRAM reads wait on the tensor cores.

Here the words (with scales and zero points) have ring A, WORD_STAGES deep, refilled by the
consumers as soon as a step's weight tile is `filled` (the dequantizers have read its words),
while x's tile and the weight tile keep ring B (STAGES), refilled after the step's wgmma. A
dequantizer waits for its step's words (ready_a) and for its x tile (ready_b: x is only copied
into a slot whose wgmma has completed, so the weight tile's slot is free too).

    PYTHONPATH=src:benchmarks python3 experiments/0007-weight-only-matmuls/proto_ws_rings.py
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
from inferlab.kernels.w4a16_wgmma_ws import (
    DEQUANTIZER_REGISTERS,
    WS_BLOCK_N,
    _dequantize_words,
    _pairs,
    ws_layouts,
)  # noqa: E402,E501

GROUP = gl.constexpr(128)


@gluon.jit
def _load_words(word_desc, scale_desc, zero_desc, word_smem, scale_smem, zero_smem, ready_a, step, n0):
    SA: gl.constexpr = word_smem.shape[0]
    BLOCK_K: gl.constexpr = word_smem.shape[1] * 8
    nbytes: gl.constexpr = (
        word_desc.block_type.nbytes + scale_desc.block_type.nbytes + zero_desc.block_type.nbytes
    )
    slot = step % SA
    bar = ready_a.index(slot)
    k = step * BLOCK_K
    mbarrier.expect(bar, nbytes)
    tma.async_copy_global_to_shared(word_desc, [k // 8, n0], bar, word_smem.index(slot))
    tma.async_copy_global_to_shared(scale_desc, [k // GROUP, n0], bar, scale_smem.index(slot))
    tma.async_copy_global_to_shared(zero_desc, [k // GROUP, n0], bar, zero_smem.index(slot))


@gluon.jit
def _load_x(x_desc, x_smem, ready_b, step, m0):
    SB: gl.constexpr = x_smem.shape[0]
    BLOCK_K: gl.constexpr = x_desc.block_type.shape[1]
    slot = step % SB
    bar = ready_b.index(slot)
    mbarrier.expect(bar, x_desc.block_type.nbytes)
    tma.async_copy_global_to_shared(x_desc, [m0, step * BLOCK_K], bar, x_smem.index(slot))


@gluon.jit
def _dequantize(word_smem, scale_smem, zero_smem, w_smem, ready_a, ready_b, filled, steps, magic_value,
                FIRST: gl.constexpr, EVERY: gl.constexpr):  # fmt: skip
    SA: gl.constexpr = word_smem.shape[0]
    SB: gl.constexpr = w_smem.shape[0]
    BLOCK_K: gl.constexpr = w_smem.shape[2]
    dtype: gl.constexpr = w_smem.dtype
    word_layout: gl.constexpr = gl.BlockedLayout([BLOCK_K // 8, 1], [1, 32], [1, gl.num_warps()], [0, 1])
    for d in range(FIRST, steps, EVERY):
        a = d % SA
        b = d % SB
        mbarrier.wait(ready_a.index(a), (d // SA) & 1)
        words = word_smem.index(a).load(word_layout)
        scale = scale_smem.index(a).load(word_layout)
        zero = zero_smem.index(a).load(word_layout).to(gl.float32)
        zero_c = (zero + magic_value).to(dtype)
        w = _dequantize_words(words, _pairs(zero_c), _pairs(scale.to(dtype)), dtype)
        mbarrier.wait(ready_b.index(b), (d // SB) & 1)  # x copied: the slot's wgmma has completed
        w_smem.index(b).store(w)
        fence_async_shared()
        mbarrier.arrive(filled.index(b))


@gluon.jit
def _consume(x_desc, word_desc, scale_desc, zero_desc, x_smem, word_smem, scale_smem, zero_smem, w_smem,
             ready_a, ready_b, filled, out_ptr, m0, n0, M, N, steps, mma_layout: gl.constexpr):  # fmt: skip
    SA: gl.constexpr = word_smem.shape[0]
    SB: gl.constexpr = w_smem.shape[0]
    BLOCK_N: gl.constexpr = w_smem.shape[1]
    BLOCK_M: gl.constexpr = x_smem.shape[1]
    for i in gl.static_range(SA):
        if i < steps:
            _load_words(word_desc, scale_desc, zero_desc, word_smem, scale_smem, zero_smem, ready_a, i, n0)
    for i in gl.static_range(SB):
        if i < steps:
            _load_x(x_desc, x_smem, ready_b, i, m0)
    acc = gl.zeros([BLOCK_N, BLOCK_M], gl.float32, mma_layout)
    for i in range(steps):
        b = i % SB
        phase = (i // SB) & 1
        mbarrier.wait(ready_b.index(b), phase)
        mbarrier.wait(filled.index(b), phase)
        if i + SA < steps:  # step i's words are read: their slot takes step i + SA
            _load_words(
                word_desc, scale_desc, zero_desc, word_smem, scale_smem, zero_smem, ready_a, i + SA, n0
            )
        w_tile = w_smem.index(b)
        x_tile = x_smem.index(b).permute([1, 0])
        acc = warpgroup_mma(w_tile, x_tile, acc, is_async=True)
        acc, _, _ = warpgroup_mma_wait(1, deps=(acc, w_tile, x_tile))
        refill = i - 1 + SB
        if (i > 0) & (refill < steps):
            _load_x(x_desc, x_smem, ready_b, refill, m0)
    acc = warpgroup_mma_wait(0, deps=(acc,))
    offs_on = n0 + gl.arange(0, BLOCK_N, layout=gl.SliceLayout(1, mma_layout))
    offs_om = m0 + gl.arange(0, BLOCK_M, layout=gl.SliceLayout(0, mma_layout))
    _store_result(acc, out_ptr, out_ptr, offs_om, offs_on, M, N, False)


@gluon.jit
def proto(x_desc, word_desc, scale_desc, zero_desc, out_ptr, M, N, K, m_tiles, magic_value,
          SA: gl.constexpr, SB: gl.constexpr, REGISTERS: gl.constexpr,
          mma_layout: gl.constexpr, w_smem_layout: gl.constexpr):  # fmt: skip
    BLOCK_M: gl.constexpr = x_desc.block_type.shape[0]
    BLOCK_K: gl.constexpr = x_desc.block_type.shape[1]
    BLOCK_N: gl.constexpr = scale_desc.block_type.shape[1]
    pid = gl.program_id(0)
    m0 = (pid % m_tiles) * BLOCK_M
    n0 = (pid // m_tiles) * BLOCK_N
    steps = K // BLOCK_K
    word_smem = gl.allocate_shared_memory(gl.int32, [SA, BLOCK_K // 8, BLOCK_N], word_desc.layout)
    scale_smem = gl.allocate_shared_memory(scale_desc.dtype, [SA, 1, BLOCK_N], scale_desc.layout)
    zero_smem = gl.allocate_shared_memory(zero_desc.dtype, [SA, 1, BLOCK_N], zero_desc.layout)
    x_smem = gl.allocate_shared_memory(x_desc.dtype, [SB, BLOCK_M, BLOCK_K], x_desc.layout)
    w_smem = gl.allocate_shared_memory(x_desc.dtype, [SB, BLOCK_N, BLOCK_K], w_smem_layout)
    ready_a = gl.allocate_shared_memory(gl.int64, [SA, 1], mbarrier.MBarrierLayout())
    ready_b = gl.allocate_shared_memory(gl.int64, [SB, 1], mbarrier.MBarrierLayout())
    filled = gl.allocate_shared_memory(gl.int64, [SB, 1], mbarrier.MBarrierLayout())
    for s in gl.static_range(SA):
        mbarrier.init(ready_a.index(s), count=1)
    for s in gl.static_range(SB):
        mbarrier.init(ready_b.index(s), count=1)
        mbarrier.init(filled.index(s), count=1)
    gl.warp_specialize(
        [
            (_consume, (x_desc, word_desc, scale_desc, zero_desc, x_smem, word_smem, scale_smem, zero_smem,
                        w_smem, ready_a, ready_b, filled, out_ptr, m0, n0, M, N, steps, mma_layout)),
            (_dequantize, (word_smem, scale_smem, zero_smem, w_smem, ready_a, ready_b, filled, steps,
                           magic_value, 0, 2)),
            (_dequantize, (word_smem, scale_smem, zero_smem, w_smem, ready_a, ready_b, filled, steps,
                           magic_value, 1, 2)),
        ],
        [4, 4],
        [REGISTERS, REGISTERS],
    )  # fmt: skip


def launch(x, qw, out, bm, sa, sb):
    M, K = x.shape
    N = out.shape[1]
    layouts = ws_layouts(bm, 64, x.dtype)
    x_desc = TensorDescriptor.from_tensor(x, [bm, 64], layouts["x"])
    word_desc = TensorDescriptor.from_tensor(qw.qweight, [8, WS_BLOCK_N], layouts["words"])
    scale_desc = TensorDescriptor.from_tensor(qw.scales, [1, WS_BLOCK_N], layouts["scales"])
    zero_desc = TensorDescriptor.from_tensor(qw.zeros, [1, WS_BLOCK_N], layouts["zeros"])
    m_tiles = (M + bm - 1) // bm
    proto[(N // WS_BLOCK_N * m_tiles,)](
        x_desc, word_desc, scale_desc, zero_desc, out, M, N, K, m_tiles, MAGIC[x.dtype][1],
        SA=sa, SB=sb, REGISTERS=DEQUANTIZER_REGISTERS[2],
        mma_layout=layouts["mma"], w_smem_layout=layouts["w"], num_warps=8,
    )  # fmt: skip
    return out


CASES = {
    64: (64, [(8, 4), (12, 4), (8, 6), (12, 6), (16, 6)]),
    128: (128, [(8, 4), (12, 4), (16, 4), (8, 6)]),
}


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
        for sa, sb in rings:
            try:
                got = launch(x, weights[0], out, bm, sa, sb).float()
            except Exception as e:  # a ring that does not fit in shared memory
                print(f"  words {sa} x/W {sb}: {type(e).__name__}: {str(e).splitlines()[0][:90]}", flush=True)
                continue
            err = (got - want).abs().max().item()
            us = graph_us([functools.partial(launch, x, q, out, bm, sa, sb) for q in weights])
            print(
                f"  words {sa} x/W {sb}: {us:.1f} us ({cublas / us:.2f}x cuBLAS), "
                f"max diff from the default {err:.3g}",
                flush=True,
            )


if __name__ == "__main__":
    main()
