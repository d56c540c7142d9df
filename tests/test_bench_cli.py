"""The bench commands on a machine without a GPU: one sentence, exit 1, never a timing."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from inferlab.bench import store

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU behaviour")


def _inferlab(*args, env_home=None):
    import os

    env = {**os.environ, "INFERLAB_HOME": str(env_home)} if env_home else None
    return subprocess.run(
        [sys.executable, "-m", "inferlab", *args], capture_output=True, text=True, timeout=120, env=env
    )


@pytest.mark.parametrize("args", [("bench", "add"), ("bench", "add", "swiglu", "--quick"), ("bench",)])
def test_bench_without_a_gpu_prints_one_sentence_and_exits_1(args):
    result = _inferlab(*args)
    assert result.returncode == 1
    text = (result.stdout + result.stderr).strip()
    assert len(text.splitlines()) == 1, text
    assert "needs a CUDA GPU" in text and "inferlab notebook" in text
    assert "µs" not in text


def test_ceilings_without_a_gpu_exits_1():
    result = _inferlab("ceilings")
    assert result.returncode == 1 and "needs a CUDA GPU" in result.stderr


def test_help_lists_run_and_compare():
    result = _inferlab("bench", "--help")
    assert result.returncode == 0
    assert "compare" in result.stdout and "inferlab bench add swiglu" in result.stdout


def test_compare_needs_no_gpu_and_refuses_other_devices(tmp_path):
    def run(name):
        env = {"gpu": {"name": name, "capability": "9.0", "sm_count": 132, "memory_bytes": 1}}
        return store.build_payload([], env, None, None, None, {})

    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(run("NVIDIA H100 80GB HBM3")))
    b.write_text(json.dumps(run("NVIDIA H200")))
    home = tmp_path / "home"
    refused = _inferlab("bench", "compare", str(a), str(b), env_home=home)
    assert refused.returncode == 1 and "--allow-different-devices" in refused.stderr
    allowed = _inferlab("bench", "compare", str(a), str(b), "--allow-different-devices", env_home=home)
    assert allowed.returncode == 0, allowed.stderr
    assert "different devices" in allowed.stdout
