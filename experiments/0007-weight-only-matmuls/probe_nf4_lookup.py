"""Probe (0007 run 30): what the NF4 wgmma kernel's time is made of. The same kernel
(src/inferlab/kernels/nf4_wgmma.py) with its look-up replaced, one variant per process (the
look-up's PTX is a constexpr global, read when the kernel compiles):

    full    the real look-up (21 instructions per word of 8 weights)
    free    the word split into 16-bit halves as they are (no instruction; wrong values)
    half    codes 0-7 only: one prmt per byte table, no choice between tables (11 per word)

each on weights of blocksize 64 (bitsandbytes' default) and, to see what a longer K step gives,
128, beside int4's wgmma kernel (g128) on the same layer. Times only (the free and half variants
compute wrong products); CUDA-graph replays over rotating weight copies as in the sweeps.

    PYTHONPATH=src:benchmarks python3 experiments/0007-weight-only-matmuls/probe_nf4_lookup.py
"""

import functools
import os
import subprocess
import sys

FREE = "{\nmov.b32 {$0, $1}, $8;\nmov.b32 {$2, $3}, $8;\nmov.b32 {$4, $5}, $8;\nmov.b32 {$6, $7}, $8;\n}"
HALF = """{
.reg .b32 s, sh, l, h, r;
and.b32 s, $8, 0x77777777;
shr.u32 sh, s, 16;
prmt.b32 l, $9, $10, s;
prmt.b32 h, $13, $14, s;
prmt.b32 r, l, h, 0x4051;
mov.b32 {$0, $1}, r;
prmt.b32 r, l, h, 0x6273;
mov.b32 {$2, $3}, r;
prmt.b32 l, $9, $10, sh;
prmt.b32 h, $13, $14, sh;
prmt.b32 r, l, h, 0x4051;
mov.b32 {$4, $5}, r;
prmt.b32 r, l, h, 0x6273;
mov.b32 {$6, $7}, r;
}"""


def time_variant(variant: str) -> None:
    import torch
    from sweep_w4a16 import DTYPE, _clone_nf4, copies_for, graph_us, make_weights

    from inferlab.kernels import nf4_wgmma
    from inferlab.kernels.quant_formats import quantize_nf4_ref
    from inferlab.kernels.w4a16_wgmma import WgmmaConfig

    if variant != "full":
        nf4_wgmma._LOOKUP_ASM = nf4_wgmma.gl.constexpr(FREE if variant == "free" else HALF)
    for fmt in ("nf4", "nf4-128", "int4") if variant == "full" else ("nf4", "nf4-128"):
        for k, n in ((4096, 14336), (14336, 4096)):
            if fmt == "nf4-128":
                packed, state = quantize_nf4_ref(torch.randn(n, k, device="cuda"), 128)
                state.dtype = DTYPE
                nbytes, clone = packed.nbytes, functools.partial(_clone_nf4, packed, state)
            else:
                _, _, nbytes, clone = make_weights(fmt, n, k)
            weights = [clone() for _ in range(copies_for(nbytes))]
            for m in (1, 16):
                x = torch.randn(m, k, device="cuda", dtype=DTYPE)
                config = WgmmaConfig(block_n=128, block_m=8 if m == 1 else 16, programs_per_sm=4, stages=2)
                if fmt != "int4":
                    call = functools.partial(_nf4, x, config=config)
                else:
                    from inferlab.kernels.w4a16 import w4a16_matmul

                    call = lambda q, x=x: w4a16_matmul(x, q)  # noqa: E731  the int4 default
                us = graph_us([functools.partial(call, q) for q in weights])
                print(f"{fmt:7} {variant:4} {k:>5}->{n:<6} M={m:<3} {us:6.1f} us", flush=True)


def _nf4(x, q, config):
    import torch

    from inferlab.kernels.nf4_wgmma import nf4_wgmma_matmul

    out = torch.empty(x.shape[0], q[1].shape[0], device=x.device, dtype=x.dtype)
    return nf4_wgmma_matmul(x, q[0], q[1], out, config)


if __name__ == "__main__":
    if len(sys.argv) > 1:
        time_variant(sys.argv[1])
    else:
        for v in ("full", "free", "half"):
            subprocess.run([sys.executable, __file__, v], check=True, env=os.environ)
