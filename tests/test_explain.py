"""`inferlab explain`: any @triton.jit kernel tagged line by line, read with ast (no import, no GPU),
with likely bugs flagged; the package's own kernels and kernels it has never seen."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cli_run import run
from inferlab.errors import InferlabError
from inferlab.learn.explain import explain_file, parse_target
from inferlab.learn.explain.concepts import CONCEPTS

KERNELS = Path(__file__).parents[1] / "src" / "inferlab" / "kernels"
KERNEL_FILES = sorted(p for p in KERNELS.glob("*.py") if "@triton.jit" in p.read_text())

MATMUL = """
import triton
import triton.language as tl


@triton.autotune(configs=[triton.Config({"BLOCK_M": 64}, num_stages=3, num_warps=4)], key=["M"])
@triton.jit
def matmul_kernel(a_ptr, b_ptr, c_ptr, M, N, K, stride_am, stride_ak, stride_bk, stride_bn,
                  stride_cm, stride_cn, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    pid = tl.program_id(axis=0)
    num_pid_n = tl.cdiv(N, BLOCK_N)
    pid_m = pid // num_pid_n
    pid_n = pid % num_pid_n
    offs_am = (pid_m.to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)) % M
    offs_bn = (pid_n.to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)) % N
    offs_k = tl.arange(0, BLOCK_K)
    a_ptrs = a_ptr + (offs_am[:, None] * stride_am + offs_k[None, :] * stride_ak)
    b_ptrs = b_ptr + (offs_k[:, None] * stride_bk + offs_bn[None, :] * stride_bn)
    accumulator = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k in range(0, tl.cdiv(K, BLOCK_K)):
        a = tl.load(a_ptrs, mask=offs_k[None, :] < K - k * BLOCK_K, other=0.0)
        b = tl.load(b_ptrs, mask=offs_k[:, None] < K - k * BLOCK_K, other=0.0)
        accumulator = tl.dot(a, b, accumulator)
        a_ptrs += BLOCK_K * stride_ak
        b_ptrs += BLOCK_K * stride_bk
    c = accumulator.to(tl.float16)
    offs_cm = pid_m.to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_cn = pid_n.to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    c_mask = (offs_cm[:, None] < M) & (offs_cn[None, :] < N)
    tl.store(c_ptr + stride_cm * offs_cm[:, None] + stride_cn * offs_cn[None, :], c, mask=c_mask)
"""

BUGGY = """
from triton import jit
from triton import language as T


@jit
def scale_kernel(x_ptr, out_ptr, n, scale, BLOCK: T.constexpr):
    pid = T.program_id(0)
    offs = pid * BLOCK + T.arange(0, BLOCK)
    x = T.load(x_ptr + offs)
    T.store(out_ptr + offs, x * scale, mask=offs < n)


@jit
def row_kernel(x_ptr, out_ptr, stride, n_cols, BLOCK: T.constexpr):
    row = T.program_id(0)
    cols = T.arange(0, BLOCK)
    x = T.load(x_ptr + row * stride + cols, mask=cols < n_cols)
    T.store(out_ptr + row * stride + cols, x, mask=cols < n_cols)


def not_a_kernel(pid):
    return pid * 1024
"""

ATOMIC_BLOCKPTR = """
import triton
import triton.language as tl


@triton.jit
def histogram_kernel(x_ptr, hist_ptr, n, BLOCK: tl.constexpr):
    pid = tl.program_id(0).to(tl.int64)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    bins = tl.load(x_ptr + offs, mask=mask, other=0)
    tl.atomic_add(hist_ptr + bins, 1, mask=mask)


@triton.jit
def copy_tile_kernel(x_ptr, y_ptr, M, N, stride_m, stride_n, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    x_block = tl.make_block_ptr(base=x_ptr, shape=(M, N), strides=(stride_m, stride_n),
                                offsets=(pid_m * BLOCK_M, pid_n * BLOCK_N),
                                block_shape=(BLOCK_M, BLOCK_N), order=(1, 0))
    y_block = tl.make_block_ptr(base=y_ptr, shape=(M, N), strides=(stride_m, stride_n),
                                offsets=(pid_m * BLOCK_M, pid_n * BLOCK_N),
                                block_shape=(BLOCK_M, BLOCK_N), order=(1, 0))
    tile = tl.load(x_block)
    tl.store(y_block, tile, boundary_check=(0, 1))
    x_block = tl.advance(x_block, (0, BLOCK_N))
    total = tl.sum(tile, axis=1)
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


# ---------------------------------------------------------------- the package's kernels
def test_there_are_kernel_files():
    assert len(KERNEL_FILES) >= 4 and KERNELS / "elementwise.py" in KERNEL_FILES


@pytest.mark.parametrize("path", KERNEL_FILES, ids=lambda p: p.name)
def test_every_kernel_of_the_package_is_explained(path):
    reports = explain_file(path)
    assert len(reports) == len(re.findall(r"^@triton\.jit", path.read_text(), flags=re.M))
    for report in reports:
        assert report.tags and set(report.concepts()) <= set(CONCEPTS)
        assert report.lines[0].startswith("@triton.jit") and f"def {report.name}(" in "\n".join(report.lines)
        assert report.yours()  # every kernel gets its paragraph
        launched = "program_id" in report.concepts()
        assert launched == any("tl.program_id" in line for line in report.lines)


def test_the_add_kernel_reads_as_lesson_1_teaches_it():
    (add,) = explain_file(KERNELS / "elementwise.py", "_add_kernel")
    assert add.tags_at("tl.program_id") == {"program_id"}
    assert "arange" in add.tags_at("tl.arange(0, BLOCK_SIZE)")
    assert add.tags_at("mask = offsets < n_elements") == {"mask"}
    assert add.tags_at("x = tl.load(") == {"load"}
    assert add.tags_at("tl.store(") == {"store"}
    assert "int64" in add.tags_at("pid.to(tl.int64)")
    assert "constexpr" in add.tags_at("BLOCK_SIZE: tl.constexpr")
    assert add.tags_at("@triton.jit") == {"jit"}
    assert add.findings == ()  # masked everywhere, int64 offsets
    (swiglu,) = explain_file(KERNELS / "elementwise.py", "_swiglu_kernel")
    assert not swiglu.findings  # unmasked only inside `if block_start + BLOCK_SIZE <= n_elements:`
    assert CONCEPTS["program_id"].label == "program instance" and "blockIdx" in CONCEPTS["program_id"].meaning


def test_reductions_loops_and_accumulators_in_softmax():
    reports = {r.name: r for r in explain_file(KERNELS / "softmax.py")}
    one_pass = reports["_softmax_kernel"]
    assert "reduction" in one_pass.tags_at("tl.max(x, axis=0)")
    assert "reduction" in one_pass.tags_at("tl.sum(p, axis=0)")
    assert "cross-thread communication" in " ".join(one_pass.automated())
    assert not [f for r in reports.values() for f in r.findings if f.kind == "unmasked"]
    online = reports["_softmax_online_kernel"]
    loop_lines = [n for n, tags in online.tags.items() if any(t.concept == "loop" for t in tags)]
    assert len(loop_lines) == 2
    assert "accumulator" in online.tags_at("l_i = tl.full(")
    assert "accumulator" in online.tags_at("l_i = l_i *")


def test_constexpr_branches_are_compile_time():
    (kernel,) = explain_file(KERNELS / "rmsnorm.py", "_rmsnorm_kernel")
    assert "constexpr" in kernel.tags_at("if HAS_RESIDUAL:")
    assert "helper" in kernel.tags_at("normed = _round(")


# ---------------------------------------------------------------- kernels it has never seen
def test_a_matmul_with_a_k_loop_an_accumulator_and_tl_dot(tmp_path):
    (mm,) = explain_file(write(tmp_path, "mm.py", MATMUL))
    assert mm.autotuned
    assert mm.tags_at("tl.dot(a, b, accumulator)") >= {"dot", "accumulator"}
    assert mm.tags_at("for k in range") == {"loop"}
    assert "over K" in mm.tags[mm.line_of("for k in range")][0].note
    assert "accumulator" in mm.tags_at("accumulator = tl.zeros(")
    assert {"load", "mask"} <= mm.tags_at("a = tl.load(")
    assert "mask" in mm.tags_at("c_mask = (offs_cm")
    automated = " ".join(mm.automated()).lower()
    assert "tensor-core" in automated and "pipelining" in automated
    # `% M` wraps the tile into range and the K loads are masked: nothing to flag about masks
    assert not [f for f in mm.findings if f.kind == "unmasked"]


def test_an_unmasked_load_and_an_int32_pid_product_are_flagged(tmp_path):
    path = write(tmp_path, "buggy.py", BUGGY)
    scale, row = explain_file(path)
    assert [(f.kind, f.line) for f in scale.findings] == [
        ("overflow", scale.line_of("offs = pid * BLOCK")),
        ("unmasked", scale.line_of("x = T.load(")),
    ]
    assert "pid.to(tl.int64)" in scale.findings[0].message and "mask=" in scale.findings[1].message
    assert scale.tags_at("T.program_id(0)") == {"program_id"}  # the `from triton import language as T` alias
    assert [f.kind for f in row.findings] == ["overflow", "overflow"]  # row * stride, on two lines
    assert "row * stride" in row.findings[0].message


def test_atomics_and_block_pointers(tmp_path):
    hist, tile = explain_file(write(tmp_path, "misc.py", ATOMIC_BLOCKPTR))
    assert hist.tags_at("tl.atomic_add(") == {"atomic"}
    assert hist.tags_at("mask = offs < n") == {"mask"}  # the guard the atomic passes as mask=
    assert hist.findings == ()
    assert "block_ptr" in tile.tags_at("x_block = tl.make_block_ptr(")
    assert "block_ptr" in tile.tags_at("x_block = tl.advance(")
    assert {"load", "block_ptr"} <= tile.tags_at("tile = tl.load(x_block)")
    assert "reduction" in tile.tags_at("total = tl.sum(")
    unmasked = [f for f in tile.findings if f.kind == "unmasked"]
    assert [f.line for f in unmasked] == [
        tile.line_of("tile = tl.load(x_block)")
    ]  # the store has boundary_check
    assert "boundary_check" in unmasked[0].message


def test_a_file_and_one_kernel_from_the_command_line(monkeypatch, capsys, tmp_path):
    code, out, err = run(monkeypatch, capsys, "explain", f"{KERNELS / 'elementwise.py'}:_add_kernel")
    assert code == 0, err
    assert "_add_kernel" in out and "program instance" in out and "What Triton automates here" in out
    assert "_swiglu_kernel" not in out and "No likely bugs" in out
    line = explain_file(KERNELS / "elementwise.py", "_add_kernel")[0].line_of("tl.program_id")
    assert re.search(rf"^\s*{line}\s+pid = tl.program_id", out, flags=re.M)
    code, out, _ = run(monkeypatch, capsys, "explain", str(write(tmp_path, "buggy.py", BUGGY)))
    assert code == 0 and "Likely bugs (2)" in out and "scale_kernel" in out and "row_kernel" in out


def test_compiled_without_a_gpu_says_so_in_one_sentence(monkeypatch, capsys):
    from inferlab.kernels.device import select_backend

    if not select_backend().interpreted:
        pytest.skip("a GPU is here: --compiled compiles")
    code, out, _ = run(
        monkeypatch, capsys, "explain", f"{KERNELS / 'elementwise.py'}:_add_kernel", "--compiled"
    )
    assert code == 0 and "--compiled needs a CUDA GPU" in out
    assert "program instance" in out  # the static part still comes first


@pytest.mark.parametrize(
    ("text", "target", "message"),
    [
        (None, "missing.py", "does not exist"),
        ("def broken(:\n", "bad.py", "bad.py:1: syntax error"),
        ("import triton\n\ndef f(x):\n    return x\n", "plain.py", "has no @triton.jit function"),
        (BUGGY, "buggy.py:nope", "has no @triton.jit function 'nope'; it has scale_kernel, row_kernel"),
    ],
)
def test_bad_targets_are_one_clear_error(monkeypatch, capsys, tmp_path, text, target, message):
    if text is not None:
        write(tmp_path, target.partition(":")[0], text)
    path, kernel = parse_target(str(tmp_path / target))
    with pytest.raises(InferlabError, match=re.escape(message)):
        explain_file(path, kernel)
    code, _, err = run(monkeypatch, capsys, "explain", str(tmp_path / target))
    assert code == 1 and message in err and len(err.strip().splitlines()) <= 2


def test_parse_target():
    assert parse_target("k.py:_add_kernel") == (Path("k.py"), "_add_kernel")
    assert parse_target("dir/k.py") == (Path("dir/k.py"), None)


def test_help_imports_neither_torch_nor_fsrs():
    code = (
        "import sys\n"
        "sys.argv = ['inferlab', '--help']\n"
        "from inferlab.cli.app import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "bad = [m for m in ('torch', 'triton', 'fsrs', 'inferlab.learn.explain') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for command in ("recall", "review", "next", "explain"):
        assert command in result.stdout


def test_a_registered_kernels_name_explains_its_module(monkeypatch, capsys):
    """`inferlab explain softmax`: the SPEC's module file, as if its path were given; an unknown
    name still gets the one-line error, which says a kernel name works too."""
    from inferlab.learn.explain.analyze import registered_kernel_file

    assert registered_kernel_file("softmax").name == "softmax.py"
    assert registered_kernel_file("w4a16_matmul").name == "w4a16_kernels.py"
    assert registered_kernel_file("no_such_kernel") is None and registered_kernel_file("a b") is None
    code, out, err = run(monkeypatch, capsys, "explain", "softmax")
    assert code == 0 and "_softmax_kernel" in out and "softmax.py" in out, err
    code, _, err = run(monkeypatch, capsys, "explain", "no_such_kernel")
    assert code == 1 and "name of a registered kernel" in err
