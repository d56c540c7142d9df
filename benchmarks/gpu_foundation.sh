#!/usr/bin/env bash
# On the GPU machine (see ../shared/GPU.md): install the carried wheels, then check every
# kernel compiled (fp32, fp16, bf16) and run the test suite on the GPU.
# Usage there: INFERLAB_GIT_REVISION=<sha> bash benchmarks/gpu_foundation.sh
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:src PYTHONUNBUFFERED=1
export INFERLAB_HOME=/tmp/inferlab-lab  # not under $OUT: only 8 files come back
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,power.draw --format=csv
python3 -m inferlab doctor
python3 -m inferlab run; echo "inferlab run exit code: $?"
cp "$INFERLAB_HOME"/results/*-check.json "${OUT:-/tmp}/" 2>/dev/null
# the GPU-relevant tests (the image lacks nbformat, selenium and the like that the rest need)
python3 -m pytest -q -p no:cacheprovider tests/test_kernels_*.py tests/test_checker.py tests/test_bench_*.py tests/test_quant_formats.py 2>&1 | tail -25
