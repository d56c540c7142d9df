"""NF4 dequantize: the store variants side by side with bitsandbytes and a device copy (GPU only).

Variants of `inferlab.kernels.nf4.dequantize_nf4`, chosen by patching the launcher's two choices:
  join    every value interleaved by tl.join + tl.reshape (the version measured before 2026-11-27)
  words   each byte's two outputs stored as one 32-bit word, packed with shift/or
  asm     the same words, converted and packed by one inline-asm cvt.rn.{f16x2,bf16x2}.f32
Every variant is checked bit for bit against bitsandbytes first, then timed as CUDA-graph replays
over enough input copies to exceed 3x the L2 (sweep_w4a16.graph_us), beside
bitsandbytes.functional.dequantize_4bit and a torch copy of the same number of bytes.
The reported numbers come from `inferlab bench nf4_dequantize`; this picks between variants.

    python3 benchmarks/sweep_nf4_dequant.py
"""

from __future__ import annotations

import functools
import sys

import torch
from sweep_w4a16 import copies_for, graph_us

from inferlab.kernels import nf4
from inferlab.kernels.quant_formats import quantize_nf4_ref

SHAPES = ((14336, 4096), (4096, 4096), (1024, 4096))
VARIANTS = {  # name: (_pack_pairs, _pack_asm) replacements; None keeps the launcher's own
    "join": (lambda out: False, None),
    "words": (None, lambda device: False),
    "asm": (None, None),
}


def run_variant(name: str, call):
    pack_pairs, pack_asm = VARIANTS[name]
    saved = nf4._pack_pairs, nf4._pack_asm
    nf4._pack_pairs = pack_pairs or saved[0]
    nf4._pack_asm = pack_asm or saved[1]
    try:
        return call()
    finally:
        nf4._pack_pairs, nf4._pack_asm = saved


def main() -> int:
    import bitsandbytes.functional as bnbf

    torch.manual_seed(0)
    print(f"{'shape':>12} {'dtype':>9} {'variant':>8} {'us':>7} {'GB/s':>6} {'% copy':>6} {'x bnb':>6}")
    for rows, cols in SHAPES:
        for dtype in (torch.float16, torch.bfloat16):
            w = torch.randn(rows, cols, device="cuda")
            packed, state = quantize_nf4_ref(w, 64, nested=True)
            state.dtype = dtype
            nbytes = packed.nbytes + state.absmax.nbytes + rows * cols * dtype.itemsize
            copies = [(packed.clone(), state) for _ in range(copies_for(nbytes))]
            want = bnbf.dequantize_4bit(packed, state)
            bnb = graph_us([functools.partial(bnbf.dequantize_4bit, p, s) for p, s in copies])
            src = [torch.empty(rows * cols * dtype.itemsize // 2, dtype=torch.int16, device="cuda")]
            src += [s.clone() for s in src * (copies_for(2 * src[0].nbytes) - 1)]
            dst = torch.empty_like(src[0])
            copy = graph_us([functools.partial(dst.copy_, s) for s in src])
            copy_rate = 2 * src[0].nbytes / copy / 1e3  # GB/s: read and write
            label = f"{rows}x{cols}"
            print(f"{label:>12} {str(dtype)[6:]:>9} {'bnb':>8} {bnb:>7.1f} {nbytes / bnb / 1e3:>6.0f}")
            print(f"{'':>12} {'':>9} {'copy':>8} {copy:>7.1f} {copy_rate:>6.0f}")
            for name in VARIANTS:
                got = run_variant(name, lambda p=packed, s=state: nf4.dequantize_nf4(p, s))
                if not torch.equal(got, want):
                    print(f"{'':>12} {'':>9} {name:>8} WRONG: not bit-exact with bitsandbytes", flush=True)
                    continue
                calls = [functools.partial(nf4.dequantize_nf4, p, s) for p, s in copies]
                us = run_variant(name, lambda c=calls: graph_us(c))
                rate = nbytes / us / 1e3
                print(
                    f"{'':>12} {'':>9} {name:>8} {us:>7.1f} {rate:>6.0f} {100 * rate / copy_rate:>6.1f} "
                    f"{bnb / us:>6.2f}",
                    flush=True,
                )
            del copies, src, dst
            torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
