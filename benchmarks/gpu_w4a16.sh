#!/usr/bin/env bash
# On the GPU machine: the weight-only quantized matmuls (w4a16_matmul, nf4_matmul, int8_matmul)
# compiled and checked, then timed against their baselines (cuBLAS on the dequantized weight,
# torch's int4pack, bitsandbytes), every run's JSON and plots saved under $OUT/results.
#
# Usage there (from the repository root, wheels in .whl/ as for gpu_bench.sh):
#   INFERLAB_GIT_REVISION=<sha> bash benchmarks/gpu_w4a16.sh [BENCH OPTIONS]   checks, then bench
#   W4A16_KERNELS=nf4_matmul bash benchmarks/gpu_w4a16.sh --quick             one kernel's bench
#   W4A16_SKIP_CHECKS=1 ...                                                  bench only (checked already)
#   bash benchmarks/gpu_w4a16.sh sweep [int4|nf4|int8] [--m 1,16]   configs per Llama-3-8B layer
#   bash benchmarks/gpu_w4a16.sh wgmma [--format nf4 --m 1,16 --layers 4096x14336]  the sm_90
#                                       wgmma kernels' configs (sweep_wgmma.py; int4 by default)
#   bash benchmarks/gpu_w4a16.sh wgmma --ws [--format nf4] --m 128,256   the warp-specialized ones
#   bash benchmarks/gpu_w4a16.sh wgmma --ws --step-k 128 --m 64        ... in K steps of 128 (int4 g128)
#   bash benchmarks/gpu_w4a16.sh puzzle      benchmarks/puzzle_nf4.py: the NF4 puzzle's score
# Time: the checks take 1-2 min (Triton compiles each variant the tests use); the bench takes two
# passes per shape (~10 s a shape with --quick, up to ~35 s without; 24 shapes a kernel): run one
# kernel per 10-min call (W4A16_KERNELS), or pick shapes with -s (e.g. -s 1x4096x14336).
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
    exec python3 benchmarks/sweep_w4a16.py "$@"
    ;;
  wgmma)
    shift
    exec python3 benchmarks/sweep_wgmma.py "$@"
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
