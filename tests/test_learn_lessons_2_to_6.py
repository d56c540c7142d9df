"""Lessons 2-6 as shipped: the properties lesson 1's tests check, run over each of them.

For every lesson: its front matter and files, every code reference it pulls, every annotated
line, its diagrams (well-formed SVG, captioned, numbers that match the computation), its recall
prompts, its quiz (the key scores 100%, line answers resolve, numeric answers equal the
independent computations written here), and its rendering in the terminal and as Markdown.
The measured numbers the lessons quote are checked against the committed results they cite.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from fractions import Fraction
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from inferlab.learn import curriculum, grading, napkin, render, source, terminal
from inferlab.learn.quiz import Choice, Line, Numeric, Recall, load_quiz
from quiz_answers import perfect_answers

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
SVG = "{http://www.w3.org/2000/svg}"

LESSONS = {
    2: "memory-roofline",
    3: "elementwise-fusion",
    4: "softmax-reductions",
    5: "rmsnorm-residual",
    6: "matmul-tiling",
}

# ---------------------------------------------------------------- independent computations
# Measured inputs (from the committed results, checked against them in MEASURED below).
COPY_GBPS, STREAM_GBPS = 4178.76, 4309.12  # ceilings: copy, 2 reads + 1 write
BF16_TFLOPS = 668.76  # ceilings: cuBLAS bf16 8192^3


def sectors(bytes_per_thread: int, stride: int) -> int:
    """32-byte sectors covering lane i's bytes [i*stride, i*stride + bytes_per_thread)."""
    spans = (range(lane * stride, lane * stride + bytes_per_thread) for lane in range(32))
    return len({address // 32 for span in spans for address in span})


INDEPENDENT: dict[int, dict[str, object]] = {
    2: {
        "strided-sectors": 32 * 8 // 32,  # 256 bytes of span, 32 per sector
        "column-efficiency": Fraction(32 * 4, 32 * 32),  # every value in its own sector
        "ridge-h200": 668.76e12 / 4178.76e9,
        "add-floor-us": 3 * 2 * 16384 * 4096 / (4309.12e9) * 1e6,
    },
    3: {
        "eager-accesses": 2 + 3,  # silu: read gate, write s; mul: read s and up, write out
        "three-kernel-bytes": (2 + 3 + 3) * 2 * 8192 * 14336,
        "fused-floor-us": 3 * 2 * 8192 * 14336 / 4309.12e9 * 1e6,
        "predicted-speedup": Fraction(5, 3),
    },
    4: {
        "fp16-exp-overflow": math.log(65504),  # fp16's largest finite value
        "online-example": sum(math.exp(x - 5) for x in (1, 3, 5, 2)),  # the direct sum
        "online-accesses": 2 + 1,
        "split-programs": -(-128256 // 4096),
        "one-pass-floor-us": 2 * 2 * 16384 * 8192 / 4178.76e9 * 1e6,
    },
    5: {
        "fused-bytes-per-element": (2 + 2) * 2,  # read x, residual; write h, out
        "fusion-predicted-speedup": Fraction(3 + 2, 4),  # add (3) + norm (2) against 4 accesses
        "residual-floor-us": 4 * 2 * 16384 * 4096 / 4178.76e9 * 1e6,
    },
    6: {
        "prefill-flops": 2 * 8192 * 14336 * 4096,
        "decode-intensity": Fraction(2 * 14336 * 4096, 2 * (4096 + 4096 * 14336 + 14336)),
        "tile-intensity": Fraction(2 * 128 * 128, 2 * (128 + 128)),
        "grouped-blocks": 9 * (3 + 3),  # 3 A row-panels and 3 B column-panels, 9 blocks deep
        "grouped-pid-n": 10 // 3,  # ids run down the group's 3 rows: 9, 10, 11 are column 3
        "stage-smem": 4 * (128 * 64 + 64 * 256) * 2,
    },
}

SWIGLU_RUN, PREFILL = "20261126T214639Z-bench.json", "llama-3-8b:8192x14336"
SOFTMAX_RUN = "20261126T214305Z-bench.json"
SOFTMAX_SCORES = [("inferlab", "131.56"), ("inferlab", "131.6"), ("torch.compile", "307.80")]
SOFTMAX_SCORES += [("torch.compile", "307.8"), ("torch", "500.0"), ("liger", "129.26"), ("liger", "129.3")]
SOFTMAX_DECODE_1 = [("inferlab", "4.15"), ("torch.compile", "9.58"), ("torch", "33.8")]
SOFTMAX_DECODE_32 = [("inferlab", "9.76"), ("torch.compile", "16.6"), ("torch", "35.0")]
NORM_RUN, NORM_PREFILL = "20261126T214426Z-bench.json", "llama-3-8b:16384x4096"
RMSNORM_PREFILL = [("inferlab", "66.77"), ("inferlab", "66.8"), ("torch", "840.77"), ("torch", "840.8")]
RMSNORM_PREFILL += [("torch.compile", "75.25"), ("torch.compile", "75.2"), ("liger", "66.3")]
RESIDUAL_PREFILL = [("inferlab", "132.33"), ("inferlab", "132.3"), ("torch", "932.4")]
RESIDUAL_PREFILL += [("torch.compile", "134.91"), ("torch.compile", "134.9"), ("liger", "132.7")]

# Numbers a lesson states about things this repository measured: (file in benchmarks/results,
# where in it, how the lesson writes it). `where` is ("ceilings", key...) or a benchmark row
# (kernel, shape, provider) whose cold median in µs is quoted.
MEASURED: dict[int, list[tuple[str, tuple, str]]] = {
    2: [
        ("20261126T214305Z-bench.json", ("ceilings", "copy_gbps"), "4178.76"),
        ("20261126T214305Z-bench.json", ("ceilings", "copy_gbps"), "4179"),
        ("20261126T214305Z-bench.json", ("ceilings", "read2_write1_gbps"), "4309.12"),
        ("20261126T214305Z-bench.json", ("ceilings", "read2_write1_gbps"), "4309"),
        ("20261126T214305Z-bench.json", ("ceilings", "matmul_tflops", "bfloat16"), "668.76"),
        ("20261126T214305Z-bench.json", ("ceilings", "matmul_tflops", "bfloat16"), "669"),
        ("20261126T214305Z-bench.json", ("ceilings", "matmul_tflops", "float16"), "640"),
        ("20261126T214305Z-bench.json", ("ceilings", "datasheet", "copy_gbps"), "4800"),
        ("20261126T214305Z-bench.json", ("ceilings", "datasheet", "matmul_tflops"), "989"),
        ("20261126T214305Z-bench.json", ("environment", "gpu", "l2_bytes"), "62914560"),
        ("20261126T214305Z-bench.json", ("add", "llama-3-8b:16384x4096", "inferlab"), "94.10"),
        ("20261126T214305Z-bench.json", ("add", "llama-3-8b:16384x4096", "inferlab"), "94.1"),
        ("20261126T214305Z-bench.json", ("add", "llama-3-8b:16384x4096", "torch"), "93.3"),
    ],
    3: [
        ("20261126T214305Z-bench.json", ("ceilings", "read2_write1_gbps"), "4309.12"),
        *[
            (SWIGLU_RUN, ("swiglu", PREFILL, p), q)
            for p, q in (("inferlab", "163.53"), ("inferlab", "163.5"))
        ],
        *[(SWIGLU_RUN, ("swiglu", PREFILL, p), q) for p, q in (("torch", "282.19"), ("torch", "282.2"))],
        *[
            (SWIGLU_RUN, ("swiglu", PREFILL, p), q)
            for p, q in (("torch.compile", "164.2"), ("liger", "165.61"))
        ],
        *[
            (SWIGLU_RUN, ("swiglu", "llama-3-8b:1x14336", p), q)
            for p, q in (("inferlab", "1.77"), ("torch", "3.73"))
        ],
        (SWIGLU_RUN, ("swiglu", "llama-3-8b:1x14336", "torch.compile"), "1.71"),
        (SWIGLU_RUN, ("add", "self-test:50000017", "inferlab"), "201.71"),
        (SWIGLU_RUN, ("add", "self-test:50000017", "torch"), "69.78"),
        (SWIGLU_RUN, ("add", "self-test:50000017", "torch"), "69.8"),
        (SWIGLU_RUN, ("add", "self-test:33554432", "inferlab"), "47.97"),
        (SWIGLU_RUN, ("add", "self-test:33554432", "torch"), "47.82"),
    ],
    4: [
        ("20261126T214305Z-bench.json", ("ceilings", "copy_gbps"), "4178.76"),
        *[(SOFTMAX_RUN, ("softmax", "llama-3-8b:16384x8192", p), q) for p, q in SOFTMAX_SCORES],
        *[(SOFTMAX_RUN, ("softmax", "llama-3-8b:1x128256", p), q) for p, q in SOFTMAX_DECODE_1],
        *[(SOFTMAX_RUN, ("softmax", "llama-3-8b:32x128256", p), q) for p, q in SOFTMAX_DECODE_32],
    ],
    5: [
        ("20261126T214305Z-bench.json", ("ceilings", "copy_gbps"), "4178.76"),
        ("20261126T214305Z-bench.json", ("ceilings", "copy_gbps"), "4179"),
        ("20261126T214305Z-bench.json", ("add", "llama-3-8b:16384x4096", "inferlab"), "94.10"),
        ("20261126T214305Z-bench.json", ("add", "llama-3-8b:16384x4096", "inferlab"), "94.1"),
        *[(NORM_RUN, ("rmsnorm", NORM_PREFILL, p), q) for p, q in RMSNORM_PREFILL],
        *[(NORM_RUN, ("rmsnorm_residual", NORM_PREFILL, p), q) for p, q in RESIDUAL_PREFILL],
        (NORM_RUN, ("rmsnorm", "llama-3-8b:1x4096", "inferlab"), "2.35"),
        ("20261126T220930Z-bench.json", ("rmsnorm", "llama-3-8b:1x4096", "torch"), "14.9"),
        ("20261126T220930Z-bench.json", ("rmsnorm", "llama-3-8b:1x4096", "inferlab"), "2.04"),
    ],
    6: [
        ("20261126T214305Z-bench.json", ("ceilings", "matmul_tflops", "bfloat16"), "668.76"),
        ("20261126T214305Z-bench.json", ("ceilings", "matmul_tflops", "bfloat16"), "669"),
        ("20261126T214305Z-bench.json", ("ceilings", "matmul_tflops", "float16"), "640"),
        ("20261126T214305Z-bench.json", ("ceilings", "datasheet", "matmul_tflops"), "989"),
        ("20261126T214305Z-bench.json", ("ceilings", "copy_gbps"), "4178.76"),
    ],
}

# Text each diagram must hold, computed here: a number drawn by hand must match the math.
DIAGRAM_TEXT: dict[int, list[str]] = {
    2: [f"ridge ≈ {668.76e12 / 4178.76e9:.0f}", "1/6 FLOP/byte", f"≤ {4.17876 / 6:.2f} TFLOP/s"],
    3: [
        *[f"{a} accesses per element" for a in (8, 5, 3)],
        *[f"{a * 2 * 8192 * 14336 / 1e9:.2f} GB moved" for a in (8, 5, 3)],
        *[f"floor ≥ {a * 2 * 8192 * 14336 / 4309.12e9 * 1e6:.0f} µs" for a in (8, 5, 3)],
        "measured: 282.2 µs",
        "measured: 163.5 µs",
    ],
    4: [
        f"rows of at most {source.constant('inferlab.kernels.softmax:ONLINE_THRESHOLD')} values",
        f"chunks of {source.constant('inferlab.kernels.softmax:SPLIT_BLOCK_SIZE')}: one program each",
        f"fewer than {source.constant('inferlab.kernels.softmax:SPLIT_MAX_ROWS')} of them",
        "l = l · e^(m − m_new) + Σ e^(x − m_new)",
    ],
    5: [
        f"{(2 + 2 + 2) + (2 + 4) + (4 + 4) + 4 + (4 + 4) + (4 + 2) + (2 + 2)} B",  # eager, as in the lesson
        f"{3 * 2 + 2 * 2} B",
        f"{4 * 2} B",
        f"{94.10 + 66.77:.1f} µs",
        "932.4 µs",
        "132.3 µs",
        "3 + 2 = 5 accesses per element",
        "2 reads + 2 writes = 4 accesses per element",
    ],
    6: [
        f"9 blocks each: {9 * (1 + 9)} blocks",
        f"9 blocks each: {9 * (3 + 3)} blocks",
        "acc += tl.dot(a, b)",
        "grouped, GROUP_SIZE_M = 3",
    ],
}


# ---------------------------------------------------------------- fixtures
@pytest.fixture(params=sorted(LESSONS), ids=lambda n: f"lesson{n}")
def lesson(request) -> curriculum.Lesson:
    return curriculum.get_lesson(request.param)


@pytest.fixture
def quiz(lesson):
    return load_quiz(lesson)


def lesson_text(lesson: curriculum.Lesson) -> str:
    """Everything the learner reads from the lesson's folder, directives unexpanded."""
    names = ("lesson.md", "annotations.yaml", "recall.yaml", "quiz.yaml")
    return "\n".join(lesson.file(n).read_text(encoding="utf-8") for n in names)


def code_refs(lesson: curriculum.Lesson, quiz) -> set[str]:
    refs = set(lesson.annotations)
    refs |= set(re.findall(r"\{\{\s*(?:code|annotations):\s*([\w.:]+)", lesson.body))
    refs |= {q.code for q in quiz.questions if isinstance(q, Line)}
    return refs


# ---------------------------------------------------------------- the lesson
def test_listed_with_front_matter(lesson):
    assert lesson.slug == LESSONS[lesson.number]
    assert lesson.prerequisites == (lesson.number - 1,)
    assert lesson.title and lesson.diagrams and lesson.kernels
    assert f"{lesson.number:04d}-{lesson.slug}" in [f.name for f in curriculum.lessons_root().iterdir()]
    for name in ("lesson.md", "quiz.yaml", "annotations.yaml", "recall.yaml"):
        assert lesson.file(name).is_file(), name


def test_every_code_reference_resolves_and_is_declared(lesson, quiz):
    refs = code_refs(lesson, quiz)
    assert refs, "a lesson shows code from the package"
    assert set(lesson.kernels) >= refs
    for ref in set(lesson.kernels) | set(re.findall(r"\{\{\s*where:\s*([\w.:]+)", lesson.body)):
        assert source.pull(ref).lines


def test_every_annotation_matches_exactly_one_pulled_line(lesson):
    shown = set(re.findall(r"\{\{\s*annotations:\s*([\w.:]+)", lesson.body))
    assert set(lesson.annotations) == shown, "every annotated reference is rendered, and only those"
    for ref, notes in lesson.annotations.items():
        snippet = source.pull(ref)
        for note in notes:
            hits = [line for line in snippet.lines if note.match in line]
            assert len(hits) == 1, f"{ref}: {note.match!r} is on {len(hits)} lines"


def test_no_code_is_pasted(lesson):
    """Code blocks in the prose may show CUDA or formulas, never the package's Python."""
    for block in re.findall(r"```(\w*)\n(.*?)```", lesson.body, flags=re.S):
        assert block[0] != "python", "package code is pulled with {{ code: ... }}, not pasted"


def test_markdown_rendering_pulls_code_and_computes_numbers(lesson):
    md = render.to_markdown(lesson)
    assert "{{" not in md and "}}" not in md
    assert md.startswith(f"# Lesson {lesson.number}: ")
    for ref in re.findall(r"\{\{\s*code:\s*([\w.:]+)", lesson.body):
        assert source.pull(ref).text in md
    for d in lesson.diagrams:
        assert f"]({d.file})" in md


def test_terminal_rendering(lesson):
    console = Console(record=True, width=100, color_system=None)
    terminal.show_lesson(console, lesson)
    out = console.export_text()
    assert "{{" not in out
    for d in lesson.diagrams:
        assert d.file in out.replace("\n", "")


def test_lesson_command(lesson, monkeypatch, capsys):
    from inferlab.cli.app import main

    for extra in ([], ["--markdown"]):
        monkeypatch.setattr(sys, "argv", ["inferlab", "lesson", "show", str(lesson.number), *extra])
        with pytest.raises(SystemExit) as info:
            main()
        out, err = capsys.readouterr()
        assert info.value.code == 0, err
        if extra:
            assert out.startswith(f"# Lesson {lesson.number}: {lesson.title}")


def test_diagrams_are_well_formed_svg_with_captions(lesson):
    for diagram in lesson.diagrams:
        assert diagram.caption and "{{" not in diagram.caption
        root = ET.fromstring(lesson.file(diagram.file).read_text(encoding="utf-8"))
        assert root.tag == f"{SVG}svg"
        assert root.get("viewBox") and root.find(f"{SVG}title") is not None
        text = " ".join("".join(t.itertext()) for t in root.iter(f"{SVG}text"))
        for expected in DIAGRAM_TEXT[lesson.number]:
            assert expected in text, expected


@pytest.mark.skipif(shutil.which("rsvg-convert") is None, reason="rsvg-convert is not installed")
def test_diagrams_render(lesson, tmp_path):
    for diagram in lesson.diagrams:
        png = tmp_path / "d.png"
        subprocess.run(["rsvg-convert", str(lesson.file(diagram.file)), "-o", str(png)], check=True)
        assert png.stat().st_size > 1000


def test_recall_prompts(lesson):
    assert 3 <= len(lesson.recall) <= 5
    assert len({p.id for p in lesson.recall}) == len(lesson.recall)
    for prompt in lesson.recall:
        assert prompt.prompt and prompt.answer and len(prompt.key_points) >= 3
        assert "{{" not in prompt.prompt + prompt.answer + "".join(prompt.key_points)


# ---------------------------------------------------------------- evidence
def measured_value(name: str, where: tuple) -> float:
    data = json.loads((RESULTS / name).read_text(encoding="utf-8"))
    if where[0] in ("ceilings", "environment"):
        value = data
        for key in where:
            value = value[key]
        return float(value)
    (row,) = [r for r in data["rows"] if (r["kernel"], r["shape"], r["provider"]) == where]
    assert row["status"] == "ok"
    return float(row["cold_us"]["median"])


def test_quoted_measurements_match_the_committed_results(lesson):
    text = lesson_text(lesson)
    for name, where, quoted in MEASURED[lesson.number]:
        assert quoted in text, f"{quoted} ({where}) is not quoted in lesson {lesson.number}"
        assert name[:16] in text, f"lesson {lesson.number} quotes {name} without citing it"
        decimals = len(quoted.partition(".")[2])
        assert round(measured_value(name, where), decimals) == pytest.approx(float(quoted)), (name, where)


def test_speed_claims_cite_committed_results(lesson):
    text = lesson_text(lesson)
    cited = set(re.findall(r"benchmarks/results/([\w.-]+\.json)", text))
    if "µs" in text:
        assert cited, f"lesson {lesson.number} states times without citing a result"
    for name in cited:
        assert (RESULTS / name).is_file(), name


# ---------------------------------------------------------------- the quiz


def test_quiz_mixes_every_kind(quiz):
    assert len(quiz.questions) >= 6
    assert {type(q) for q in quiz.questions} == {Choice, Line, Numeric, Recall}
    for q in quiz.questions:
        assert "{{" not in q.prompt + getattr(q, "explanation", "")
        if isinstance(q, Numeric):
            assert q.units


def test_the_key_scores_100_percent(quiz, tmp_path):
    path = tmp_path / "answers.yaml"
    path.write_text(yaml.safe_dump(perfect_answers(quiz), allow_unicode=True))
    report = grading.grade(quiz, grading.load_answers(path, quiz))
    assert report.score == len(quiz.questions) and not report.misses


def test_wrong_answers_are_marked_wrong_with_a_correction(quiz):
    for q in quiz.questions:
        if isinstance(q, Choice):
            result = q.grade((q.answer + 1) % len(q.options))
        elif isinstance(q, Line):
            snippet = q.snippet()
            result = q.grade(snippet.first_line if q.answer() != snippet.first_line else q.answer() + 1)
        elif isinstance(q, Numeric):
            result = q.grade(float(q.answer()) * 2)
        else:
            result = q.grade(q.parse({"text": "", "points": []}))
        assert result.score == 0 and result.correction, q.id


def test_line_answers_are_lines_of_the_pulled_source(quiz):
    for q in quiz.questions:
        if isinstance(q, Line):
            snippet = q.snippet()
            number = q.answer()
            assert snippet.first_line <= number <= snippet.last_line
            assert q.match in dict(snippet.numbered())[number]


def test_numeric_answers_equal_independent_computations(lesson, quiz):
    numeric = {q.id: q.answer() for q in quiz.questions if isinstance(q, Numeric)}
    independent = INDEPENDENT[lesson.number]
    assert set(numeric) == set(independent)
    for qid, value in numeric.items():
        assert float(value) == pytest.approx(float(independent[qid]), rel=1e-9), qid


def test_recall_questions_use_the_lessons_prompts(lesson, quiz):
    prompts = {p.prompt for p in lesson.recall}
    for q in quiz.questions:
        if isinstance(q, Recall):
            assert q.prompt in prompts


# ---------------------------------------------------------------- the napkin computations
def test_napkin_computations_for_lessons_2_to_6():
    e = napkin.evaluate
    assert e("ridge_point(peak_tflops=989, bandwidth_gbps=4800)") == pytest.approx(989e12 / 4.8e12)
    assert e("roofline_tflops(intensity=1000, peak_tflops=669, bandwidth_gbps=4179)") == 669
    assert e("roofline_tflops(intensity=10, peak_tflops=669, bandwidth_gbps=4179)") == pytest.approx(41.79)
    assert e("memory_time_us(bytes=4179e9, bandwidth_gbps=4179)") == pytest.approx(1e6)
    assert e("compute_time_us(flops=2e12, peak_tflops=1000)") == pytest.approx(2000.0)  # 2 ms
    assert e("achieved_gbps(bytes=1e9, time_us=1e6)") == pytest.approx(1.0)
    for bytes_per_thread, stride in ((4, 4), (4, 8), (4, 128), (16, 16), (2, 2), (8, 12)):
        assert e(f"warp_sectors({bytes_per_thread}, {stride})") == sectors(bytes_per_thread, stride)
    assert e("sector_efficiency(4)") == 1
    with pytest.raises(ValueError, match="stride_bytes >= bytes_per_thread"):
        e("warp_sectors(4, 2)")
    assert e('float_max("float16")') == 65504.0
    assert e('float_max("bfloat16")') == pytest.approx(3.3895313892515355e38)
    assert e('float_max("float32")') == pytest.approx(3.4028234663852886e38)
    assert e('exp_overflow_at("float16")') == pytest.approx(math.log(65504))
    with pytest.raises(ValueError, match="float_max knows"):
        e('float_max("float8")')
    assert e("exp(0)") == 1.0
    assert e("matmul_flops(2, 3, 4)") == 48
    assert e("matmul_bytes_ideal(2, 3, 4, 2)") == (8 + 12 + 6) * 2
    # naive: every output reads a row of A and a column of B
    assert e("matmul_bytes_tiled(8, 8, 8, 2, 1, 1)") == (2 * 8 * 8 * 8 + 8 * 8) * 2
    assert e("tile_intensity(128, 128, 2)") == 64
    assert e("blocks_loaded(1, 9, 9)") == 90 and e("blocks_loaded(3, 3, 9)") == 54
    # group_m = 1 is row-major order
    assert [(e(f"grouped_tile_m({p}, 4, 5, 1)"), e(f"grouped_tile_n({p}, 4, 5, 1)")) for p in range(6)] == [
        (0, 0), (0, 1), (0, 2), (0, 3), (0, 4), (1, 0)
    ]  # fmt: skip
    # grouped, 9 x 9 tiles in groups of 3 rows: down a column of 3, then the next column
    assert [(e(f"grouped_tile_m({p}, 9, 9, 3)"), e(f"grouped_tile_n({p}, 9, 9, 3)")) for p in range(5)] == [
        (0, 0), (1, 0), (2, 0), (0, 1), (1, 1)
    ]  # fmt: skip
    assert e("grouped_tile_m(27, 9, 9, 3)") == 3  # the second group starts on row 3
    assert e("wave_panel_bytes(9, 9, 9, 1, 64, 16, 16, 2)") == (1 * 16 + 9 * 16) * 64 * 2
    assert e("wave_panel_bytes(9, 9, 9, 3, 64, 16, 16, 2)") == (3 * 16 + 3 * 16) * 64 * 2
    assert e("matmul_smem_bytes(128, 256, 64, 3, 2)") == 3 * (128 * 64 + 64 * 256) * 2
