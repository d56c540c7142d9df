"""Compiling a Gluon kernel for sm_90 without a GPU, for the wgmma kernels' CPU tests.

Triton's interpreter cannot run Gluon, but its compiler builds it for any target. A layout
conversion that would move data is a compile error there (assert_trivial=True), and ptxas reports
spills. Each script runs in a fresh Python, because the test session has TRITON_INTERPRET set."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from inferlab.kernels.w4a16_wgmma import available

# the wgmma kernels' GPU tests: they run on an sm_90 GPU only
hopper = pytest.mark.skipif(
    not (torch.cuda.is_available() and available(torch.device("cuda"))), reason="needs an sm_90 GPU"
)

PRELUDE = r'''
import os, re, subprocess, tempfile
os.environ.pop("TRITON_INTERPRET", None)
import torch
torch.cuda.is_available = lambda: True  # nothing is launched
import triton
from triton.backends.compiler import GPUTarget
from triton.experimental.gluon._runtime import GluonASTSource
PTXAS = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "ptxas")

LAST_REPORT = ""  # ptxas -v's report of the last compile_sm90 (its warnings, e.g. C7514)

def compile_sm90(fn, constexprs, types, num_warps):
    """(PTX, bytes of spill stores) of Gluon kernel `fn`; `types` gives the non-int32 arguments'.
    As a launch specializes them: pointers 16-byte aligned, sizes and strides multiples of 16."""
    global LAST_REPORT
    sig = {p.name: "constexpr" if p.name in constexprs else types.get(p.name, "i32") for p in fn.params}
    aligned = [i for i, p in enumerate(fn.params)
               if sig[p.name][0] == "*" or p.name in ("N", "K", "k_per_split", "stride_xm")]
    attrs = {(i,): [["tt.divisibility", 16]] for i in aligned}
    src = GluonASTSource(fn, sig, constexprs=constexprs, attrs=attrs)
    ptx = triton.compile(src, target=GPUTarget("cuda", 90, 32), options={"num_warps": num_warps}).asm["ptx"]
    with tempfile.NamedTemporaryFile("w", suffix=".ptx", delete=False) as f:
        f.write(ptx)
    report = subprocess.run([PTXAS, "-v", "--gpu-name=sm_90a", f.name, "-o", os.devnull],
                            capture_output=True, text=True).stderr
    LAST_REPORT = report
    return ptx, sum(int(n) for n in re.findall(r"(\d+) bytes spill stores", report))
'''


def compiled_rows(script: str) -> list[list[str]]:
    """Run PRELUDE + `script` in a fresh Python; the fields of each line it prints starting "ROW"."""
    pytest.importorskip("triton.experimental.gluon", reason="this Triton has no Gluon")
    command = [sys.executable, "-c", PRELUDE + script]
    run = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]  # assert_trivial=True: a real conversion fails here
    return [row[1:] for row in map(str.split, run.stdout.splitlines()) if row[:1] == ["ROW"]]
