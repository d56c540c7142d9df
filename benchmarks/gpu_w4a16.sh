#!/usr/bin/env bash
# On the GPU machine: the weight-only quantized matmuls (w4a16_matmul, nf4_matmul, int8_matmul)
# compiled and checked, then timed against their baselines (cuBLAS on the dequantized weight,
# torch's int4pack, bitsandbytes), every run's JSON and plots saved under $OUT/results.
#
# Usage there (from the repository root, wheels in .whl/ as for gpu_bench.sh):
#   INFERLAB_GIT_REVISION=<sha> bash benchmarks/gpu_w4a16.sh [BENCH OPTIONS]   checks, then bench
#   W4A16_KERNELS=nf4_matmul bash benchmarks/gpu_w4a16.sh --quick             one kernel's bench
#   W4A16_SKIP_CHECKS=1 ...                                                  bench only (checked already)
#   bash benchmarks/gpu_w4a16.sh sweep       int4 tile / split-K configs per Llama-3-8B layer
#   bash benchmarks/gpu_w4a16.sh puzzle      benchmarks/puzzle_nf4.py: the NF4 puzzle's score
# Time: the checks take 1-2 min (Triton compiles each variant the tests use); the bench is ~5 s a
# shape with --quick and up to ~17 s without, 24 shapes a kernel: all three kernels fit one 10-min
# call only with --quick; for the full rule run one kernel per call (W4A16_KERNELS).
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:src PYTHONUNBUFFERED=1
export INFERLAB_HOME=/tmp/inferlab-lab  # not under $OUT: only 8 files come back
KERNELS=${W4A16_KERNELS:-"w4a16_matmul nf4_matmul int8_matmul"}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,power.draw --format=csv

case "${1:-}" in
  puzzle)
    shift
    exec python3 benchmarks/puzzle_nf4.py "$@"
    ;;
  sweep)
    shift
    exec python3 - "$@" <<'PY'
# int4 g128 bf16, Llama-3-8B layers: every candidate config checked against cuBLAS on the same
# dequantized weight, then timed with triton.testing.do_bench (L2 cleared before each call).
import torch
from triton.testing import do_bench

from inferlab.kernels.quant_formats import dequantize_int4_ref, quantize_int4
from inferlab.kernels.w4a16 import LLAMA3_8B_LAYERS, MatmulConfig, config_for, plan_launch, w4a16_matmul

DTYPE = torch.bfloat16
GEMV = [MatmulConfig(16, bn, bk, 1, 4, st) for bn in (32, 64, 128) for bk in (128, 256) for st in (3, 4, 5)]
GEMV += [MatmulConfig(16, 64, 128, 1, 4, 4, sk) for sk in (1, 2, 4, 8, 16, 32)]
TILED = [MatmulConfig(bm, bn, 128, 8, w, st) for bm in (32, 64, 128) for bn in (64, 128, 256)
         for w, st in ((4, 3), (4, 4), (8, 3))]  # int4 needs block_k >= 128


def ms(fn):
    return do_bench(fn, warmup=25, rep=100, return_mode="median")


torch.manual_seed(0)
print(f"{'layer':>12} {'M':>4} {'cuBLAS us':>9} {'default us':>10} {'best us':>8} {'x cuBLAS':>8}  best config")
for k, n, layer in LLAMA3_8B_LAYERS:
    qw = quantize_int4(torch.randn(n, k, device="cuda"), 128, scale_dtype=DTYPE)
    dense = dequantize_int4_ref(qw, DTYPE)
    for m in (1, 16, 64, 256):
        x = torch.randn(m, k, device="cuda", dtype=DTYPE)
        want = torch.mm(x, dense.t()).float()
        budget = 0.02 * want.pow(2).mean().sqrt()
        candidates = GEMV if m <= 16 else [c for c in TILED if c.block_m <= max(32, m)]
        results = []
        for c in candidates:
            try:
                got = w4a16_matmul(x, qw, config=c).float()
            except Exception as e:  # a config Triton cannot compile (shared memory) is skipped
                print(f"  skip {c.label}: {type(e).__name__}: {str(e)[:80]}")
                continue
            if (got - want).abs().max() > budget:
                print(f"  WRONG {c.label}")
                continue
            results.append((ms(lambda c=c: w4a16_matmul(x, qw, config=c)), c))
        cublas = ms(lambda: torch.mm(x, dense.t()))
        default = ms(lambda: w4a16_matmul(x, qw))
        if not results:
            print(f"{k}->{n:<6} {m:>4} no config ran")
            continue
        best_ms, best = min(results, key=lambda r: r[0])
        split = plan_launch(m, n, k, x.device, best).split_k
        print(f"{k}->{n:<6} {m:>4} {cublas * 1e3:>9.1f} {default * 1e3:>10.1f} {best_ms * 1e3:>8.1f} "
              f"{cublas / best_ms:>7.2f}x  {best.label} (split {split}; default {config_for(m).label})")
PY
    ;;
esac

if [ -z "${W4A16_SKIP_CHECKS:-}" ]; then
  # compiled checks: the tests (check() at every test shape in fp16 and bf16, the fp64 error budget,
  # the bf16 dequantization the interpreter cannot run), then `inferlab check` with its seeds
  python3 -m pytest -q -p no:cacheprovider tests/test_kernels_w4a16.py 2>&1 | tail -15
  tests=${PIPESTATUS[0]}
  checks=0
  for kernel in $KERNELS; do python3 -m inferlab check "$kernel" || checks=1; done
  if [ "$tests" -ne 0 ] || [ "$checks" -ne 0 ]; then
    echo "W4A16 checks failed (pytest exit $tests, inferlab check $checks): not timing"
    exit 1
  fi
fi
python3 -m inferlab ceilings
# shellcheck disable=SC2086  # KERNELS is a list of names
python3 -m inferlab bench $KERNELS --save-to "${OUT:-/tmp}/results" "$@"
