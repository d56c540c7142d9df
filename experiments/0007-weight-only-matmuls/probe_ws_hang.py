"""Which warp-specialized int4 configs finish on a large layer: each in its own process, under a
timeout (a protocol deadlock hangs the GPU, not Python). 0007 run 58. None hung here, and its
eager timings (5-7 ms a call) do not measure the kernel: a profile of the same config gave 47 us.
The sweep's hang was two dequantizing warp groups on an odd ring (3 stages), which the launcher
now refuses (those two lines print its error).

    python3 experiments/0007-weight-only-matmuls/probe_ws_hang.py [M] [K] [N]
"""

import subprocess
import sys

ONE = r"""
import sys, time, torch
from inferlab.kernels.quant_formats import quantize_int4
from inferlab.kernels.w4a16 import w4a16_matmul_ref
from inferlab.kernels.w4a16_wgmma import WgmmaConfig, int4_wgmma_matmul
m, k, n, bm, st, pps, dq = map(int, sys.argv[1:])
torch.manual_seed(0)
qw = quantize_int4(torch.randn(n, k, device="cuda"), 128, scale_dtype=torch.bfloat16)
x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
out = torch.empty(m, n, device="cuda", dtype=torch.bfloat16)
c = WgmmaConfig(block_n=128, block_m=bm, num_warps=8, programs_per_sm=pps, stages=st, dequantize_a=True,
                warp_specialized=True, dequantizers=dq)
int4_wgmma_matmul(x, qw, out, c); torch.cuda.synchronize()
t = time.perf_counter()
for _ in range(20): int4_wgmma_matmul(x, qw, out, c)
torch.cuda.synchronize()
err = (out.float() - w4a16_matmul_ref(x, qw).float()).abs().max().item()
print(f"ok {c.label}: {(time.perf_counter() - t) / 20 * 1e6:.1f} us (eager), max err {err:.3g}")
"""

m, k, n = (int(a) for a in (sys.argv[1:] + ["128", "4096", "14336"])[:3])
for bm, st, pps, dq in [
    (128, 3, 1, 1),
    (128, 4, 1, 1),
    (128, 3, 2, 1),
    (128, 3, 1, 2),
    (64, 6, 1, 1),
    (64, 3, 1, 2),
]:
    args = [sys.executable, "-c", ONE, *map(str, (m, k, n, bm, st, pps, dq))]
    try:
        run = subprocess.run(args, capture_output=True, text=True, timeout=40)
        print(run.stdout.strip() or run.stderr.strip()[-300:], flush=True)
    except subprocess.TimeoutExpired:
        print(f"HANG bm={bm} stages={st} programs/SM={pps} dequantizers={dq}", flush=True)
