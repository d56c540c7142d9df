"""benchmarks/puzzle_nf4.py: the NF4 puzzle's scoring rules on synthetic measurements, the source
inspection on known kernels (with and without the features), and the static run on this machine."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "puzzle_nf4.py"


@pytest.fixture(scope="module")
def puzzle():
    spec = importlib.util.spec_from_file_location("puzzle_nf4", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["puzzle_nf4"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    yield module
    del sys.modules["puzzle_nf4"]


# ---------------------------------------------------------------- scoring
@pytest.mark.parametrize(
    ("speedup", "points"),
    [(None, 0), (0.8, -3), (1.00, -3), (1.01, 0), (1.05, 1), (1.0999, 1), (1.10, 3), (1.15, 5), (2.0, 5)],
)
def test_speedup_tiers(puzzle, speedup, points):
    assert puzzle.speedup_points(speedup) == points


def test_full_marks_are_14(puzzle):
    best = puzzle.Findings(True, 1.3, True, True, True, True)
    criteria = puzzle.score(best)
    assert puzzle.total(criteria) == (14, 0) == (puzzle.MAX_POINTS, 0)
    assert sum(puzzle.MOST_POINTS.values()) == puzzle.MAX_POINTS
    assert all(c.result == "pass" for c in criteria)


def test_every_penalty(puzzle):
    worst = puzzle.Findings(False, 0.9, False, False, False, False)
    points = {c.name: c.points for c in puzzle.score(worst)}
    assert points == {
        "single Triton kernel": 0,
        "speedup vs bitsandbytes": -3,
        "works in torch.compile": -1,
        "custom (inline) asm": 0,
        "cache eviction hints": 0,
        "fp16 and bf16 bit-exact": -1,
    }
    assert puzzle.total(puzzle.score(worst)) == (-5, 0)


def test_unmeasured_criteria_score_nothing_and_are_counted_open(puzzle):
    static_only = puzzle.Findings(single_kernel=True, inline_asm=False, eviction=True)
    criteria = puzzle.score(static_only)
    assert puzzle.total(criteria) == (4, 5 + 1 + 1)  # speedup, compile, dtypes still open
    table = puzzle.render(criteria)
    assert "not measured" in table and "of 14 (7 points not measured here" in table


def test_speedup_below_the_top_tier_is_a_fail_with_its_points(puzzle):
    (speed,) = [c for c in puzzle.score(puzzle.Findings(speedup=1.12)) if c.name.startswith("speedup")]
    assert (speed.result, speed.points) == ("fail", 3)
    assert ">=1.10x" in speed.evidence and "<1.15x" in speed.evidence


# ---------------------------------------------------------------- reading the source
GOOD = """
import triton
import triton.language as tl


@triton.jit
def _kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    x = tl.load(x_ptr + offs, mask=offs < n, eviction_policy="evict_first")
    y = tl.inline_asm_elementwise("mov.b32 $0, $1;", "=r,r", [x], dtype=tl.int32, is_pure=True, pack=1)
    tl.store(out_ptr + offs, y, mask=offs < n)


def launch(x, out):
    _kernel[(4,)](x, out, x.numel(), BLOCK=128)
"""

TWO_LAUNCHES = """
import triton


@triton.jit
def _a(x_ptr):
    pass


def launch(x):
    for chunk in range(2):
        _a[(1,)](x)
"""


def test_inspection_finds_hints_asm_and_one_launch(puzzle):
    facts = puzzle.inspect_source(GOOD)
    assert facts.jit_functions == ["_kernel"] and facts.single_launch
    assert facts.eviction_hints == ["_kernel:9 eviction_policy='evict_first'"]
    assert facts.inline_asm == ["_kernel:10"]
    assert facts.launch_sites == ["launch -> _kernel (line 15)"]


def test_inspection_flags_a_launch_in_a_loop(puzzle):
    facts = puzzle.inspect_source(TWO_LAUNCHES)
    assert facts.launch_sites == ["launch -> _a (line 12), in a loop"] and not facts.single_launch
    assert not facts.eviction_hints and not facts.inline_asm


def test_the_real_kernel_is_launched_once(puzzle):
    from inferlab.kernels import nf4

    facts = puzzle.inspect_source(Path(nf4.__file__).read_text())
    assert facts.single_launch and "_dequantize_nf4_kernel" in facts.launch_sites[0]
    assert "_dequantize_nf4_kernel" in facts.jit_functions


def test_static_run_prints_the_table(puzzle, capsys):
    assert puzzle.main(["--static-only"]) == 0
    out = capsys.readouterr().out
    assert "single Triton kernel" in out and "of 14" in out
    if "interpreter" in out:  # no GPU here: the timed criteria say so
        assert "need a GPU" in out
