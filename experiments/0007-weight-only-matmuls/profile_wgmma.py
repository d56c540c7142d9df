"""One wgmma-kernel call per M on the 4096 -> 14336 layer, for Nsight Compute (0007 runs 25, 33):

    ncu --kernel-name regex:_int4_wgmma_kernel --launch-skip 2 --launch-count 1 \\
        --section SpeedOfLight --section WarpStateStats --section SchedulerStats \\
        --section Occupancy --section MemoryWorkloadAnalysis \\
        python3 experiments/0007-weight-only-matmuls/profile_wgmma.py 16 [int4|nf4]

int4: w4a16_matmul's default (g128); nf4: nf4_matmul's default (blocksize 64, nested absmax).
A third argument forces int4's W-dequantized-into-A kernel (w4a16_wgmma_tiled.py, run 47) with
block_n,num_warps,block_m,step_k,stages, e.g. `128 int4 128,8,128,128,3`. Run 33 added
--metrics regex:smsp__average_warps_issue_stalled_.*_per_issue_active.ratio, the
stall reasons per issued instruction.
"""

import sys

import torch

from inferlab.kernels.quant_formats import quantize_int4, quantize_nf4_ref
from inferlab.kernels.w4a16 import nf4_matmul, w4a16_matmul
from inferlab.kernels.w4a16_wgmma import WgmmaConfig

m = int(sys.argv[1]) if len(sys.argv) > 1 else 1
fmt = sys.argv[2] if len(sys.argv) > 2 else "int4"
w = torch.randn(14336, 4096, device="cuda")
x = torch.randn(m, 4096, device="cuda", dtype=torch.bfloat16)
if fmt == "nf4":
    packed, state = quantize_nf4_ref(w, 64)
    state.dtype = torch.bfloat16
    call = lambda: nf4_matmul(x, packed, state)  # noqa: E731
else:
    qw = quantize_int4(w, 128, scale_dtype=torch.bfloat16)
    config = None
    if len(sys.argv) > 3:
        bn, warps, bm, step_k, stages = map(int, sys.argv[3].split(","))
        config = WgmmaConfig(block_n=bn, num_warps=warps, block_m=bm, step_k=step_k, stages=stages,
                             programs_per_sm=1, dequantize_a=True)  # fmt: skip
    call = lambda: w4a16_matmul(x, qw, config=config)  # noqa: E731
for _ in range(4):  # compile, then the launches ncu skips and the one it profiles
    call()
torch.cuda.synchronize()
