"""One w4a16_matmul call per M on the 4096 -> 14336 layer, for Nsight Compute (0007 run 25):

    ncu --kernel-name regex:_int4_wgmma_kernel --launch-skip 2 --launch-count 1 \\
        --section SpeedOfLight --section WarpStateStats --section SchedulerStats \\
        --section Occupancy --section MemoryWorkloadAnalysis \\
        python3 experiments/0007-weight-only-matmuls/profile_wgmma.py 16
"""

import sys

import torch

from inferlab.kernels.quant_formats import quantize_int4
from inferlab.kernels.w4a16 import w4a16_matmul

m = int(sys.argv[1]) if len(sys.argv) > 1 else 1
qw = quantize_int4(torch.randn(14336, 4096, device="cuda"), 128, scale_dtype=torch.bfloat16)
x = torch.randn(m, 4096, device="cuda", dtype=torch.bfloat16)
for _ in range(4):  # compile, then the launches ncu skips and the one it profiles
    w4a16_matmul(x, qw)
torch.cuda.synchronize()
