"""Probe (0007 run 17): which part of the wgmma kernel's K step costs the time. Variants of the
step with parts removed: x's per-step work (x stored once), the per-step fold (one running
accumulator), everything but the loads. Written against src/inferlab/kernels/w4a16_wgmma.py as
of commit f41e9a7 (words loaded straight into the A-operand layout); the module has changed
since, so check that commit out to run it again:

    PYTHONPATH=src:benchmarks python3 experiments/0007-weight-only-matmuls/probe_wgmma_parts.py
"""

import functools
import sys

import torch
from triton.experimental import gluon
from triton.experimental.gluon import language as gl
from triton.experimental.gluon.language.nvidia.hopper import fence_async_shared, warpgroup_mma

sys.path.insert(0, "benchmarks")
from sweep_w4a16 import copies_for, graph_us, make_weights  # noqa: E402

from inferlab.kernels import w4a16_wgmma as WG  # noqa: E402
from inferlab.kernels.w4a16_wgmma import (  # noqa: E402
    MAGIC,
    PAIR_MASK,
    _cta_barrier,
    _permute_x,
    _unpack_words,
    kernel_layouts,
)


@gluon.jit
def probe(
    x_ptr,
    out_ptr,
    qweight_ptr,
    scales_ptr,
    zeros_ptr,
    M,
    N,
    K,
    k_per_split,
    mask,
    magic,
    magic_value,
    VARIANT: gl.constexpr,
    BLOCK_N: gl.constexpr,
    BLOCK_K: gl.constexpr,
    BLOCK_M: gl.constexpr,
    word_layout: gl.constexpr,
    x_layout: gl.constexpr,
    mma_layout: gl.constexpr,
    a_layout: gl.constexpr,
    x_smem_layout: gl.constexpr,
):
    pid_n = gl.program_id(0)
    pid_k = gl.program_id(1)
    offs_n = pid_n * BLOCK_N + gl.arange(0, BLOCK_N, layout=gl.SliceLayout(1, word_layout))
    offs_w = gl.arange(0, BLOCK_K // 8, layout=gl.SliceLayout(0, word_layout))
    offs_xm = gl.arange(0, BLOCK_M, layout=gl.SliceLayout(1, x_layout))
    offs_xk = gl.arange(0, BLOCK_K, layout=gl.SliceLayout(0, x_layout))
    offs_on = pid_n * BLOCK_N + gl.arange(0, BLOCK_N, layout=gl.SliceLayout(1, mma_layout))
    offs_om = gl.arange(0, BLOCK_M, layout=gl.SliceLayout(0, mma_layout))
    x_smem = gl.allocate_shared_memory(gl.bfloat16, [2, BLOCK_M, BLOCK_K], x_smem_layout)
    acc = gl.zeros([BLOCK_N, BLOCK_M], gl.float32, mma_layout)
    zero = gl.zeros([BLOCK_N, BLOCK_M], gl.float32, mma_layout)
    k_start = pid_k * k_per_split
    k_end = gl.minimum(k_start + k_per_split, K)
    k_last = k_end - BLOCK_K
    x_rows = x_ptr + offs_xm[:, None] * K + offs_xk[None, :]
    x_in = offs_xm[:, None] < M
    word_cols = qweight_ptr + offs_n[:, None] + offs_w[None, :] * N
    words = gl.load(word_cols + (k_start // 8) * N)
    s = gl.load(scales_ptr + (k_start // BLOCK_K) * N + offs_on).to(gl.float32)
    z = gl.load(zeros_ptr + (k_start // BLOCK_K) * N + offs_on).to(gl.float32)
    x = gl.load(x_rows + k_start, mask=x_in, other=0.0)
    if VARIANT == 1:  # x stored once
        x_smem.index(0).store(_permute_x(x, BLOCK_M, BLOCK_K))
        x_smem.index(1).store(_permute_x(x, BLOCK_M, BLOCK_K))
        fence_async_shared()
        _cta_barrier()
    keep = gl.zeros([BLOCK_N, BLOCK_K // 8], gl.int32, word_layout)
    buf = 0
    for k0 in range(k_start, k_end, BLOCK_K):
        k_next = gl.minimum(k0 + BLOCK_K, k_last)
        next_words = gl.load(word_cols + (k_next // 8) * N)
        g = k_next // BLOCK_K
        next_s = gl.load(scales_ptr + g * N + offs_on).to(gl.float32)
        next_z = gl.load(zeros_ptr + g * N + offs_on).to(gl.float32)
        if VARIANT == 4:  # loads only
            keep ^= words
            acc += s[:, None] + z[:, None]
        else:
            a = gl.convert_layout(
                _unpack_words(words, mask, magic, BLOCK_N, BLOCK_K, True), a_layout, assert_trivial=True
            )
            if VARIANT == 1:
                x_sum = gl.zeros([BLOCK_M], gl.float32, gl.SliceLayout(0, mma_layout))
                x_tile = x_smem.index(buf)
            else:
                next_x = gl.load(x_rows + k_next, mask=x_in, other=0.0)
                x_sum = gl.convert_layout(gl.sum(x.to(gl.float32), axis=1), gl.SliceLayout(0, mma_layout))
                x_tile = x_smem.index(buf)
                x_tile.store(_permute_x(x, BLOCK_M, BLOCK_K))
                fence_async_shared()
                _cta_barrier()
                x = next_x
            if VARIANT == 3:  # no fold: one running accumulator
                acc = warpgroup_mma(a, x_tile.permute([1, 0]), acc)
            else:
                part = warpgroup_mma(a, x_tile.permute([1, 0]), zero, use_acc=False)
                acc += (part - (z + magic_value)[:, None] * x_sum[None, :]) * s[:, None]
        buf ^= 1
        words = next_words
        s = next_s
        z = next_z
    if VARIANT == 4:
        acc += gl.convert_layout(gl.sum(keep, axis=1).to(gl.float32), gl.SliceLayout(1, mma_layout))[:, None]
    offs = offs_om[None, :] * N + offs_on[:, None]
    gl.store(out_ptr + pid_k * M * N + offs, acc, mask=offs_om[None, :] < M)


NAMES = {
    0: "full",
    1: "x stored once (no x work per step)",
    3: "no per-step fold (one accumulator)",
    4: "loads only",
}
for k, n in ((4096, 14336), (14336, 4096)):
    for m in (16, 32):
        call, dense, nbytes, clone = make_weights("int4", n, k)
        ws = [clone() for _ in range(copies_for(nbytes))]
        x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
        bm = WG.block_m_for(m)
        for bn, per in ((64, 2), (64, 1)):
            tiles = n // bn
            split = 1
            while tiles * split < per * 132 and split * 2 <= 16:
                split *= 2
            kps = k // split
            out = torch.empty(split, m, n, device="cuda", dtype=torch.float32)
            lay = kernel_layouts(bn, 128, bm, 4)

            def run(
                q, v, tiles=tiles, split=split, x=x, out=out, m=m, n=n, k=k, kps=kps, bn=bn, bm=bm, lay=lay
            ):
                probe[(tiles, split)](
                    x,
                    out,
                    q.qweight,
                    q.scales,
                    q.zeros,
                    m,
                    n,
                    k,
                    kps,
                    PAIR_MASK,
                    MAGIC[torch.bfloat16][0],
                    128.0,
                    VARIANT=v,
                    BLOCK_N=bn,
                    BLOCK_K=128,
                    BLOCK_M=bm,
                    **lay,
                    num_warps=4,
                )

            res = []
            for v in (0, 1, 3, 4):
                res.append(f"{NAMES[v]} {graph_us([functools.partial(run, q, v) for q in ws]):.1f}")
            print(f"{k}->{n} M={m} n{bn} split{split}: " + "; ".join(res), flush=True)
