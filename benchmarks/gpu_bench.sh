#!/usr/bin/env bash
# On the GPU machine: measured ceilings, then the benchmark harness over the given kernels,
# saving every run's JSON and plots under $OUT/results (copied into benchmarks/results/).
# Usage there: INFERLAB_GIT_REVISION=<sha> bash benchmarks/gpu_bench.sh KERNEL... [-- bench options]
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:src PYTHONUNBUFFERED=1
export INFERLAB_HOME=/tmp/inferlab-lab  # not under $OUT: only 8 files come back
python3 -m inferlab ceilings
python3 -m inferlab bench "$@" --save-to "${OUT:-/tmp}/results"
