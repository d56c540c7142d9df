"""nf4._dequantize_nf4_kernel compiled for real GPUs without one: the inline-asm pair packing
(PACK_ASM) builds for sm_90 and not for sm_75, the portable packing builds for sm_75, no variant
spills, and packed full programs no longer interleave through shared memory (bar.sync)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

# The interpreter cannot run inline asm, so this compiles in a subprocess with TRITON_INTERPRET
# removed and prints one row per variant: name, spill bytes, bar.sync in the PTX and inline-asm
# cvt.rn.*x2.f32 (Triton's own conversion emits cvt.rn.f16x2.f32 too, outside inline asm).
# A failed compile makes Triton print the PTX to stdout, hence the ROW marker.
COMPILE_NF4_DEQUANTIZE = r"""
import os, re, subprocess, tempfile
os.environ.pop("TRITON_INTERPRET", None)
import torch
torch.cuda.is_available = lambda: True  # select_backend: compiled kernels; nothing is launched
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from inferlab.kernels import nf4
BIN = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin")
TYPES = {"packed_ptr": "*u8", "absmax_ptr": "*u8", "code_ptr": "*fp32", "absmax2_ptr": "*fp32",
         "code2_ptr": "*fp32", "offset_ptr": "*fp32"}

def compile_one(name, arch, out_type, pack_pairs, pack_asm, blocksize=64):
    fn = nf4._dequantize_nf4_kernel
    cx = dict(BLOCKSIZE=blocksize, BLOCKS_PER_PROGRAM=nf4.blocks_per_program(blocksize), NESTED=True,
              BF16_BY_INT=arch < 80, PACK_PAIRS=pack_pairs, PACK_ASM=pack_asm)
    sig = {p.name: "constexpr" if p.name in cx else TYPES.get(p.name, "i32") for p in fn.params}
    sig["out_ptr"] = out_type
    aligned = [i for i, p in enumerate(fn.params) if sig[p.name][0] == "*" or p.name == "n_elements"]
    src = ASTSource(fn, sig, constexprs=cx, attrs={(i,): [["tt.divisibility", 16]] for i in aligned})
    options = {"num_warps": nf4.NUM_WARPS, "enable_fp_fusion": False}
    try:
        kernel = triton.compile(src, target=GPUTarget("cuda", arch, 32), options=options)
    except Exception as e:  # triton.compile runs ptxas: PTX the target lacks fails here
        reason = "feature-requires-sm_80" if "requires .target sm_80" in str(e) else repr(str(e)[:200])
        print("ROW", name, "ptxas-failed", reason)
        return
    ptx = kernel.asm["ptx"]
    gpu = "sm_90a" if arch == 90 else f"sm_{arch}"
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "k.ptx"), "w") as f:
            f.write(ptx)
        run = subprocess.run([BIN + "/ptxas", "-v", f"--gpu-name={gpu}", f.name, "-o", os.devnull],
                             capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    spills = sum(int(n) for n in re.findall(r"(\d+) bytes spill (?:stores|loads)", run.stderr))
    asm_cvt_x2 = len(re.findall(r"begin inline asm\s+cvt\.rn\.b?f16x2\.f32", ptx))  # ours, not Triton's
    print("ROW", name, spills, ptx.count("bar.sync"), asm_cvt_x2)

compile_one("sm90-fp16-asm", 90, "*fp16", True, True)
compile_one("sm90-bf16-asm", 90, "*bf16", True, True)
compile_one("sm90-fp16-join", 90, "*fp16", False, False)
compile_one("sm90-bf16-asm-bs4096", 90, "*bf16", True, True, blocksize=4096)
compile_one("sm75-fp16-portable", 75, "*fp16", True, False)
compile_one("sm75-bf16-portable", 75, "*bf16", True, False)
compile_one("sm75-bf16-asm", 75, "*bf16", True, True)
"""


# On a GPU machine the kernel tests compile and run the asm for real; there, too, Triton's PTX
# version follows the machine's CUDA and may be newer than the wheel's bundled ptxas (seen on an
# H100 with Triton 3.6: PTX 9.0 against ptxas 8.7), so this check is for machines without a GPU.
@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU the kernel tests compile and run it")
def test_pair_packing_compiles_for_hopper_and_turing_without_spills():
    pytest.importorskip("triton.backends.nvidia", reason="Triton's NVIDIA backend is not installed")
    run = subprocess.run(
        [sys.executable, "-c", COMPILE_NF4_DEQUANTIZE], capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stderr[-3000:]
    rows = {row[1]: row[2:] for row in map(str.split, run.stdout.splitlines()) if row[:1] == ["ROW"]}
    # (spill bytes, bar.sync, inline-asm cvt x2). The one bar.sync left is the masked tail's join
    # (it may end mid-pair); the join in full programs costs 7 more (the barriers around 4
    # st.shared + 4 ldmatrix). 16 asm conversions: 32 outputs per thread, two per instruction.
    assert rows["sm90-fp16-asm"] == ["0", "1", "16"], rows
    assert rows["sm90-bf16-asm"] == ["0", "1", "16"], rows
    assert rows["sm90-fp16-join"] == ["0", "8", "0"], rows  # the check can fail: the join version
    # one 4096-block per program: the tail's tile has the full programs' shape, and its byte load
    # must be narrowed too, or the full programs' layout follows it (then 15 bar.sync there, 30 in all)
    assert rows["sm90-bf16-asm-bs4096"] == ["0", "0", "32"], rows
    assert rows["sm75-fp16-portable"] == ["0", "1", "0"], rows
    assert rows["sm75-bf16-portable"] == ["0", "1", "0"], rows
    # why the launcher checks the device: sm_75 has no cvt.rn.{f16x2,bf16x2}.f32
    assert rows["sm75-bf16-asm"] == ["ptxas-failed", "feature-requires-sm_80"], rows
