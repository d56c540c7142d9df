"""Lessons 7-12 as shipped: the properties lesson 1's tests check, run over each of them.

Each lesson loads, pulls its code, computes its numbers, renders in the terminal and as
Markdown; its quiz passes its own key; its numeric answers equal computations written out here
independently of `inferlab.learn.napkin`; every measured number it quotes matches the committed
result file it cites.
"""

from __future__ import annotations

import json
import re
import sys
import xml.etree.ElementTree as ET
from fractions import Fraction
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from inferlab.learn import curriculum, grading, render, source, terminal
from inferlab.learn.quiz import Choice, Line, Numeric, Recall, load_quiz
from quiz_answers import perfect_answers, wrong_answers

REPO = Path(__file__).resolve().parents[1]
NUMBERS = range(7, 13)
SVG = "{http://www.w3.org/2000/svg}"


def _present() -> list[int]:
    """Lessons 7-12 that exist, found by folder name (other lessons are not loaded here)."""
    names = [f.name for f in curriculum.lessons_root().iterdir() if f.is_dir()]
    return [n for n in NUMBERS if any(name.startswith(f"{n:04d}-") for name in names)]


LESSONS = _present()


@pytest.fixture(params=LESSONS, ids=[f"lesson{n}" for n in LESSONS])
def lesson(request) -> curriculum.Lesson:
    return curriculum.get_lesson(request.param)


# ---------------------------------------------------------------- independent computations
# Llama-3-8B, from its published config.json (models.yaml): written out here, not via napkin.
HIDDEN, INTER, LAYERS, HEADS, KV_HEADS, HEAD_DIM, VOCAB = 4096, 14336, 32, 32, 8, 128, 128256
LINEAR_PARAMS = LAYERS * (
    HIDDEN * HEADS * HEAD_DIM  # q
    + 2 * HIDDEN * KV_HEADS * HEAD_DIM  # k, v
    + HEADS * HEAD_DIM * HIDDEN  # o
    + 3 * HIDDEN * INTER  # gate, up, down
)
ALL_PARAMS = LINEAR_PARAMS + LAYERS * 2 * HIDDEN + HIDDEN + 2 * VOCAB * HIDDEN
KV_TOKEN_BYTES = 2 * LAYERS * KV_HEADS * HEAD_DIM * 2  # K and V, every layer, bf16
DECODE_WEIGHT_BYTES = (ALL_PARAMS - VOCAB * HIDDEN) * 2  # a decode step reads one embedding row
NF4_DOUBLE_BITS = Fraction(4) + Fraction(8, 64) + Fraction(32, 64 * 256)
# the first two entries of bitsandbytes' get_4bit_type("nf4"), typed from its source
NF4_FIRST_TWO = (-1.0, -0.6961928009986877)

# the H200's measured ceilings, benchmarks/results/20261126T214305Z-bench.json
COPY_GBPS, BF16_TFLOPS = 4178.76, 668.76
RIDGE = BF16_TFLOPS * 1e12 / (COPY_GBPS * 1e9)


def _gate_proj_time_us(tokens: int, weight_bits) -> float:
    """Roofline floor of x[tokens, 4096] @ W[14336, 4096]^T with 2-byte activations."""
    flops = 2 * tokens * 4096 * 14336
    nbytes = 4096 * 14336 * float(weight_bits) / 8 + tokens * (4096 + 14336) * 2
    return max(flops / (BF16_TFLOPS * 1e12), nbytes / (COPY_GBPS * 1e9)) * 1e6


def _decode_step_s(batch: int, context: int = 4096) -> float:
    """Llama-3-8B bf16 decode step floor: weights once, each sequence's KV cache, batch tokens."""
    traffic = DECODE_WEIGHT_BYTES + batch * context * KV_TOKEN_BYTES
    flops = batch * 2 * (ALL_PARAMS - VOCAB * HIDDEN)
    return max(traffic / (COPY_GBPS * 1e9), flops / (BF16_TFLOPS * 1e12))


def _ttft_s(prompt: int = 4096) -> float:
    """Prefill floor: 2 FLOPs per matmul weight per token, plus causal attention in every layer."""
    linear = 2 * (ALL_PARAMS - VOCAB * HIDDEN) * prompt
    attention = LAYERS * 2 * (2 * prompt * prompt * HEAD_DIM) * HEADS / 2
    return (linear + attention) / (BF16_TFLOPS * 1e12)


INDEPENDENT: dict[int, dict[str, object]] = {
    7: {
        "bits-nf4-double": NF4_DOUBLE_BITS,
        "bytes-llama-bf16": ALL_PARAMS * 2 / 1e9,
        "int4-zeroed-weights": (2 * 0.5 / 15) / 2,
        "nf4-tail-error": (NF4_FIRST_TWO[1] - NF4_FIRST_TWO[0]) / 2,
    },
    8: {
        "ridge-h200": RIDGE,
        "gemv-floor": _gate_proj_time_us(1, 16),
        # lane-operations per clock per SM over int4 weights delivered per clock per SM
        "ops-per-weight": 128 / (4178.76e9 * 2 / 132 / 1.98e9),
        "ideal-speedup-m1": _gate_proj_time_us(1, 16) / _gate_proj_time_us(1, NF4_DOUBLE_BITS),
        "ideal-speedup-m128": _gate_proj_time_us(128, 16) / _gate_proj_time_us(128, NF4_DOUBLE_BITS),
        "fold-break-even": 64,  # unpack 64 x 128 weights a step = fold 2 x 64 x BLOCK_M values
        # a step's multiply-adds over an H100 SM's rate: 4 tensor cores of 512 dense bf16
        # multiply-adds a cycle each (989.4 TFLOPS = 132 SMs x 4 x 512 x 2 x 1.83 GHz)
        "ws-step-cycles": 128 * 128 * 64 / (4 * 512),
        # steps x (the per-step floor + ns per KB x the step's KB: x, words, scales and zero points)
        "ws-step-floor": (4096 // 128) * (0.226 + 0.0076 * (64 * 128 * 2 + 128 * 128 // 2 + 3 * 128) / 1024),
    },
    9: {
        "score-gib": 4096 * 4096 * 32 * 2 / 2**30,
        "attention-gflop": 2 * (2 * 4096 * 4096 * 128) * 32 / 1e9,  # QK^T and PV, 2*S*S*D each
        "causal-tiles": sum(range(1, 4096 // 128 + 1)),  # row i of tiles has i + 1 tiles
        "gqa-head": 13 // 4,
    },
    10: {
        "kv-kib-per-token": 2 * LAYERS * KV_HEADS * HEAD_DIM * 2 / 1024,
        "kv-read-per-step": 4096 * KV_TOKEN_BYTES / 2**20,
        "slot-of-token": 4 * 16 + 5,  # token 37: logical block 2 -> physical 4, offset 5
        "wasted-slots": 63 * 16 - 1000,  # 63 blocks of 16 hold 1008 slots
        "kv-equals-weights": DECODE_WEIGHT_BYTES / (4096 * KV_TOKEN_BYTES),
    },
    11: {
        "tensor-file-offset": 8 + 12000 + 117440512,
        "decode-ceiling": COPY_GBPS * 1e9 / (ALL_PARAMS * 2),
        "prefill-floor": 2 * (ALL_PARAMS - VOCAB * HIDDEN) * 4096 / (BF16_TFLOPS * 1e12) * 1e3,
    },
    12: {
        "cost-batch1": 3 / (3600 / _decode_step_s(1)) * 1e6,
        "tpot-batch64": _decode_step_s(64) * 1e3,
        "launch-overhead": 103.25 - 39.71,
        "e2e-floor": (_ttft_s() + 255 * _decode_step_s(1)) * 1e3,
    },
}


# ---------------------------------------------------------------- measured numbers quoted
CEILINGS = "20261126T214305Z-bench.json"  # ceilings of the H200 run the lessons cite
KERNELS = "20261126T214426Z-bench.json"  # nf4_dequantize and rope on that H200
RUN_B = "20261126T214639Z-bench.json"  # the second run, minutes later, for the run-to-run comparison
COMPARISON = "20261126T214639Z-compare-with-214305Z.txt"
TWO_PASS_COMPARISON = "20261126T235233Z-compare-with-235139Z.txt"  # after the harness took two passes
NF4_SHAPE, ROPE_SHAPE = "llama-3-8b:14336x4096", "llama-3-8b:1x4096x32x8x128"
FLASH = "20261126T224337Z-bench.json"  # flash_attention against torch SDPA's back-ends (lesson 9)
FLASH_SHAPE, FLASH_LONG = "llama-3-8b:4x32x8x4096x4096x128", "llama-3-8b:1x32x8x16384x16384x128"
PAGED = "20261126T224023Z-bench.json"  # paged_decode_attention against dense SDPA (lesson 10)
PAGED_SHAPE = "llama-3-8b:32x32x8x4096x128x16"
W4A16_M1 = "20261126T234518Z-bench.json"  # the int4 CUDA-core GEMV at M = 1 (lesson 8)
W4A16_SHAPE = "llama-3-8b:1x4096x14336"
W4A16_OURS = (W4A16_M1, "row", "w4a16_matmul", W4A16_SHAPE, "inferlab")
NF4_WGMMA_H100 = "20261127T042702Z-bench.json"  # nf4_matmul on the wgmma kernel, an H100 (lesson 8)
INT4_TILED_H100 = "20261127T054815Z-bench.json"  # w4a16_matmul from 33 rows (tiled wgmma), an H100
INT4_WS_H100 = "20261127T071053Z-bench.json"  # from 33 rows (warp-specialized wgmma), an H100
INT4_WS64_H100 = "20261127T090339Z-bench.json"  # to 64 rows in K steps of 128, an H100
INT4_STREAM_K_H100 = "20261127T091254Z-bench.json"  # stream-K (reverted), an H100
NF4_WS_H100 = "20261127T083804Z-bench.json"  # nf4_matmul from 64 rows (warp-specialized), an H100


def _result(name: str, *where: str) -> object:
    """A value of a committed result file: `("ceilings", key, ...)`, `("environment", key, ...)`
    or `("row", kernel, shape, provider, key, ...)`."""
    data = json.loads((REPO / "benchmarks" / "results" / name).read_text())
    if where[0] == "row":
        kernel, shape, provider, *where = where[1:]
        (value,) = [
            r for r in data["rows"] if (r["kernel"], r["shape"], r["provider"]) == (kernel, shape, provider)
        ]
    else:
        value = data
    for key in where:
        value = value[key]
    return value


# (lesson, the number as the lesson prints it, its format, (file, where in it), scale)
MEASURED: list[tuple[int, str, str, tuple, float]] = [
    *[(n, "4178.76", ".2f", (CEILINGS, "ceilings", "copy_gbps"), 1) for n in (8, 9, 11, 12)],
    *[(n, "668.76", ".2f", (CEILINGS, "ceilings", "matmul_tflops", "bfloat16"), 1) for n in (8, 9, 11, 12)],
    (8, "4309.12", ".2f", (CEILINGS, "ceilings", "read2_write1_gbps"), 1),
    (8, "60", ".0f", (CEILINGS, "environment", "gpu", "l2_bytes"), 2**-20),
    (8, "40.30", ".2f", (KERNELS, "row", "nf4_dequantize", NF4_SHAPE, "inferlab", "cold_us", "median"), 1),
    (
        8,
        "71.35",
        ".2f",
        (KERNELS, "row", "nf4_dequantize", NF4_SHAPE, "bitsandbytes", "cold_us", "median"),
        1,
    ),
    *[
        (
            8,
            text,
            ".3f",
            (KERNELS, "row", "nf4_dequantize", NF4_SHAPE, "inferlab", "speedups", "bitsandbytes", k),
            1,
        )
        for text, k in (("1.771", "value"), ("1.769", "ci_low"), ("1.777", "ci_high"))
    ],
    *[
        (8, text, ".2f", (W4A16_M1, "row", "w4a16_matmul", W4A16_SHAPE, provider, "cold_us", "median"), 1)
        for provider, text in (("inferlab", "18.61"), ("cublas-bf16", "30.96"), ("torch-int4pack", "18.24"))
    ],
    *[
        (8, text, ".3f", (*W4A16_OURS, "speedups", vs, "value"), 1)
        for vs, text in (("cublas-bf16", "1.663"), ("torch-int4pack", "0.976"))
    ],
    *[
        entry
        for shape, us, ratio in (
            ("1x4096x14336", "24.1", "1.74"),
            ("1x14336x4096", "26.7", "1.67"),
            ("16x4096x14336", "28.8", "1.48"),
            ("16x14336x4096", "29.6", "1.54"),
        )  # fmt: skip
        for entry in (
            (
                8,
                us,
                ".1f",
                (NF4_WGMMA_H100, "row", "nf4_matmul", f"llama-3-8b:{shape}", "inferlab", "cold_us", "median"),
                1,
            ),
            (
                8,
                ratio,
                ".2f",
                (
                    NF4_WGMMA_H100,
                    "row",
                    "nf4_matmul",
                    f"llama-3-8b:{shape}",
                    "inferlab",
                    "speedups",
                    "cublas-bf16",
                    "value",
                ),
                1,
            ),
        )
    ],
    *[
        (
            8,
            text,
            fmt,
            (INT4_TILED_H100, "row", "w4a16_matmul", f"llama-3-8b:{m}x4096x14336", "inferlab", *key),
            1,
        )
        for m, us, ratio in (("64", "35.5", "1.25"), ("128", "46.2", "1.00"), ("256", "81.4", "0.62"))
        for text, fmt, key in (
            (us, ".1f", ("cold_us", "median")),
            (ratio, ".2f", ("speedups", "cublas-bf16", "value")),
        )
    ],
    *[
        (
            8,
            text,
            fmt,
            (INT4_WS_H100, "row", "w4a16_matmul", f"llama-3-8b:{m}x4096x14336", "inferlab", *key),
            1,
        )
        for m, us, ratio in (("128", "37.6", "1.22"), ("256", "55.4", "0.90"))
        for text, fmt, key in (
            (us, ".1f", ("cold_us", "median")),
            (ratio, ".2f", ("speedups", "cublas-bf16", "value")),
        )
    ],
    *[
        (8, text, fmt, (name, "row", kernel, shape, "inferlab", *key), 1)
        for name, kernel, shape, text, fmt, key in (
            (
                INT4_WS64_H100,
                "w4a16_matmul",
                "llama-3-8b:64x4096x14336",
                "29.0",
                ".1f",
                ("cold_us", "median"),
            ),
            (
                INT4_WS64_H100,
                "w4a16_matmul",
                "llama-3-8b:64x4096x14336",
                "1.53",
                ".2f",
                ("speedups", "cublas-bf16", "value"),
            ),
            (
                INT4_STREAM_K_H100,
                "w4a16_matmul",
                "llama-3-8b:64x4096x14336",
                "34.5",
                ".1f",
                ("cold_us", "median"),
            ),
            (NF4_WS_H100, "nf4_matmul", "llama-3-8b:128x4096x14336", "49.9", ".1f", ("cold_us", "median")),
            (
                NF4_WS_H100,
                "nf4_matmul",
                "llama-3-8b:128x4096x14336",
                "0.92",
                ".2f",
                ("speedups", "cublas-bf16", "value"),
            ),
        )
    ],
    (8, "3666", ".0f", (KERNELS, "row", "nf4_dequantize", NF4_SHAPE, "inferlab", "rate", "value"), 1),
    (
        8,
        "85",
        ".0f",
        (KERNELS, "row", "nf4_dequantize", NF4_SHAPE, "inferlab", "rate", "fraction_of_ceiling"),
        100,
    ),
    *[
        (9, text, ".2f", (KERNELS, "row", "rope", ROPE_SHAPE, provider, "cold_us", "median"), 1)
        for provider, text in (("inferlab", "22.05"), ("torch", "263.54"), ("torch.compile", "26.98"))
    ],
    *[
        (9, text, ".3f", (KERNELS, "row", "rope", ROPE_SHAPE, "inferlab", "speedups", "torch.compile", k), 1)
        for text, k in (("1.224", "value"), ("1.221", "ci_low"), ("1.228", "ci_high"))
    ],
    *[(n, "150109880320", "d", (CEILINGS, "environment", "gpu", "memory_bytes"), 1) for n in (10, 12)],
    *[
        (12, text, ".2f", (KERNELS, "row", "nf4_dequantize", NF4_SHAPE, provider, *key), 1)
        for provider, key, text in (
            ("inferlab", ("cold_us", "median"), "40.30"),
            ("inferlab", ("warm_us", "median"), "39.71"),
            ("inferlab", ("eager_us",), "103.25"),
            ("inferlab", ("launch_overhead_us",), "63.53"),
            ("bitsandbytes", ("cold_us", "median"), "71.35"),
            ("bitsandbytes", ("warm_us", "median"), "71.85"),
            ("bitsandbytes", ("eager_us",), "79.52"),
        )
    ],
    (
        12,
        "1.771",
        ".3f",
        (KERNELS, "row", "nf4_dequantize", NF4_SHAPE, "inferlab", "speedups", "bitsandbytes", "value"),
        1,
    ),
    (12, "60", ".0f", (CEILINGS, "environment", "gpu", "l2_bytes"), 2**-20),
    *[
        (12, text, ".2f", (run, "row", kernel, shape, provider, "cold_us", "median"), 1)
        for run, kernel, shape, provider, text in (
            (CEILINGS, "swiglu_fused", "llama-3-8b:8192x14336", "torch.compile", "164.21"),
            (RUN_B, "swiglu_fused", "llama-3-8b:8192x14336", "torch.compile", "162.14"),
            (CEILINGS, "add", "llama-3-8b:16384x4096", "torch.compile", "93.94"),
            (RUN_B, "add", "llama-3-8b:16384x4096", "torch.compile", "94.81"),
            (CEILINGS, "swiglu", "llama-3-8b:64x14336", "inferlab", "3.17"),
            (RUN_B, "swiglu", "llama-3-8b:64x14336", "inferlab", "3.31"),
            (CEILINGS, "swiglu_fused", "llama-3-8b:8192x14336", "inferlab", "171.54"),
            (RUN_B, "swiglu_fused", "llama-3-8b:8192x14336", "inferlab", "162.42"),
        )
    ],
    *[
        (
            12,
            text,
            ".3f",
            (run, "row", "swiglu", "llama-3-8b:64x14336", "inferlab", "speedups", "torch.compile", k),
            1,
        )
        for run, k, text in (
            (CEILINGS, "value", "1.035"),
            (CEILINGS, "ci_low", "1.032"),
            (CEILINGS, "ci_high", "1.043"),
            (RUN_B, "value", "1.020"),
            (RUN_B, "ci_low", "1.013"),
            (RUN_B, "ci_high", "1.040"),
        )
    ],
    (9, "91", ".0f", (KERNELS, "row", "rope", ROPE_SHAPE, "inferlab", "rate", "fraction_of_ceiling"), 100),
    *[
        (9, text, ".2f", (FLASH, "row", "flash_attention", FLASH_SHAPE, provider, "cold_us", "median"), 1)
        for provider, text in (("inferlab", "1324.96"), ("sdpa-flash", "1776.83"), ("sdpa-cudnn", "950.40"))
    ],
    *[
        (9, text, ".3f", (FLASH, "row", "flash_attention", shape, "inferlab", "speedups", provider, k), 1)
        for shape, provider, k, text in (
            (FLASH_SHAPE, "sdpa-flash", "value", "1.339"),
            (FLASH_SHAPE, "sdpa-flash", "ci_low", "1.335"),
            (FLASH_SHAPE, "sdpa-flash", "ci_high", "1.346"),
            (FLASH_SHAPE, "sdpa-cudnn", "value", "0.717"),
            (FLASH_SHAPE, "sdpa-cudnn", "ci_low", "0.715"),
            (FLASH_SHAPE, "sdpa-cudnn", "ci_high", "0.727"),
            (FLASH_LONG, "sdpa-flash", "value", "1.505"),
            (FLASH_LONG, "sdpa-cudnn", "value", "0.750"),
        )
    ],
    (9, "415", ".0f", (FLASH, "row", "flash_attention", FLASH_SHAPE, "inferlab", "rate", "value"), 1),
    *[
        (
            9,
            text,
            ".0f",
            (FLASH, "row", "flash_attention", FLASH_SHAPE, provider, "rate", "fraction_of_ceiling"),
            100,
        )
        for provider, text in (("inferlab", "64"), ("sdpa-cudnn", "89"))
    ],
    (9, "651.39", ".2f", (FLASH, "ceilings", "matmul_tflops", "bfloat16"), 1),
    *[
        (
            10,
            text,
            ".2f",
            (PAGED, "row", "paged_decode_attention", PAGED_SHAPE, provider, "cold_us", "median"),
            1,
        )
        for provider, text in (("inferlab", "155.88"), ("sdpa-dense", "122.21"))
    ],
    *[
        (10, text, ".0f", (PAGED, "row", "paged_decode_attention", PAGED_SHAPE, provider, "rate", "value"), 1)
        for provider, text in (("inferlab", "3448"), ("sdpa-dense", "4397"))
    ],
    (
        10,
        "80",
        ".0f",
        (PAGED, "row", "paged_decode_attention", PAGED_SHAPE, "inferlab", "rate", "fraction_of_ceiling"),
        100,
    ),
    (10, "4322.63", ".2f", (PAGED, "ceilings", "memory_gbps"), 1),
    (10, "4146.36", ".2f", (PAGED, "ceilings", "copy_gbps"), 1),
    *[
        (
            10,
            text,
            ".3f",
            (PAGED, "row", "paged_decode_attention", PAGED_SHAPE, "inferlab", "speedups", provider, k),
            1,
        )
        for provider, k, text in (
            ("sdpa-dense", "value", "0.784"),
            ("sdpa-dense", "ci_low", "0.780"),
            ("sdpa-dense", "ci_high", "0.786"),
            ("torch", "value", "2.796"),
            ("torch.compile", "value", "2.537"),
        )
    ],
]

# Text each diagram must hold, computed here: a number drawn by hand must match the math.
DIAGRAM_TEXT: dict[int, list[str]] = {
    12: [
        f"TTFT ≥ {_ttft_s() * 1e3:.1f} ms",
        f"TPOT ≥ {_decode_step_s(1) * 1e3:.2f} ms",
        "TTFT + (n - 1) × TPOT",
    ],
    11: ["N: u64, little-endian", "file offset 8 + N", f"[0, {14336 * 4096 * 2}]", "14336 × 4096 × 2 bytes"],
    10: [
        "sequence A: 37 tokens",
        f"waste {3 * 16 - 37} slots",
        f"waste {2 * 16 - 20} slots",
        f"slot {4 * 16 + 36 % 16}",
        "block_table[A] =",
    ],
    9: [
        f"visits {sum(range(1, 9))} of {8 * 8}",
        "α = exp(m - m_new)",
        "acc = α·acc + P V_j",
        "O_i = acc / l",
    ],
    8: [
        "copy bandwidth 4178.76 GB/s",
        "bf16 matmul 668.76 TFLOP/s",
        f"ridge ≈ {668.76e12 / 4178.76e9:.0f} FLOP/byte",
        f"intensity ≈ {16 / float(NF4_DOUBLE_BITS):.1f} M",
        f"runs ~{16 / float(NF4_DOUBLE_BITS):.1f}× faster",
    ],
}


def _quoted(lesson: curriculum.Lesson) -> list[tuple[str, str, float]]:
    return [
        (text, fmt, _result(*where) * scale) for n, text, fmt, where, scale in MEASURED if n == lesson.number
    ]


# ---------------------------------------------------------------- the lesson
def test_every_lesson_from_7_to_12_that_exists_is_tested():
    assert 7 in LESSONS  # the suite is not vacuous
    for number in LESSONS:
        assert curriculum.get_lesson(number).number == number


def test_front_matter(lesson):
    assert lesson.title and lesson.slug
    assert lesson.prerequisites == (lesson.number - 1,)
    assert len(lesson.diagrams) == 1
    for name in ("lesson.md", "quiz.yaml", "recall.yaml"):
        assert lesson.file(name).is_file(), name
    if lesson.kernels:
        assert lesson.file("annotations.yaml").is_file()


def test_every_code_reference_resolves(lesson):
    blocks = set(re.findall(r"\{\{\s*(?:code|annotations):\s*([\w.:]+)\s*\}\}", lesson.body))
    wheres = set(re.findall(r"\{\{\s*where:\s*([\w.:]+)\s*\}\}", lesson.body))
    assert set(lesson.kernels) == blocks  # every pulled block is declared, every declared one shown
    assert set(lesson.annotations) <= blocks
    for ref in blocks | wheres | set(lesson.annotations):
        assert source.pull(ref).lines


def test_every_annotated_reference_is_pulled_and_shown(lesson):
    """Notes in annotations.yaml reach the reader only through an `annotations:` directive next
    to the `code:` one; a reference with notes but no directive would be silently dropped."""
    for ref in lesson.annotations:
        assert f"{{{{ code: {ref} }}}}" in lesson.body, ref
        assert f"{{{{ annotations: {ref} }}}}" in lesson.body, ref


def test_every_annotation_matches_exactly_one_pulled_line(lesson):
    """Fails as soon as a line the lesson explains changes or disappears."""
    for ref, notes in lesson.annotations.items():
        snippet = source.pull(ref)
        for note in notes:
            hits = [line for line in snippet.lines if note.match in line]
            assert len(hits) == 1, f"{ref}: {note.match!r} is on {len(hits)} lines"
            assert note.note


def test_every_calc_evaluates(lesson):
    for expr in re.findall(r"\{\{\s*calc:\s*(.*?)\s*(?:\|[^}]*)?\}\}", lesson.body):
        render.inline.expand(f"{{{{ calc: {expr} }}}}", f"lesson {lesson.number}")


def test_no_number_in_a_directive_spans_lines(lesson):
    """A directive broken over two lines would be left unexpanded in the text."""
    for line in lesson.body.splitlines():
        assert line.count("{{") == line.count("}}"), line


def test_rendered_markdown(lesson):
    md = render.to_markdown(lesson)
    assert md.startswith(f"# Lesson {lesson.number}:")
    assert "{{" not in md and "}}" not in md
    for ref in lesson.kernels:
        assert source.pull(ref).text in md
    for diagram in lesson.diagrams:
        assert f"]({diagram.file})" in md
    assert "## References" in md


def test_terminal_rendering(lesson):
    console = Console(record=True, width=110, color_system=None)
    terminal.show_lesson(console, lesson)
    out = console.export_text()
    assert "{{" not in out
    assert lesson.diagrams[0].file in out
    for ref in lesson.kernels:
        first = next(line.strip() for line in source.pull(ref).lines if line.strip())
        assert first[:40] in out


def test_lesson_command(lesson, monkeypatch, capsys):
    from inferlab.cli.app import main

    monkeypatch.setattr(sys, "argv", ["inferlab", "lesson", "show", str(lesson.number), "--markdown"])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith(f"# Lesson {lesson.number}:")


def test_diagram_is_well_formed_svg_with_a_caption(lesson):
    for diagram in lesson.diagrams:
        assert f"{{{{ diagram: {diagram.file} }}}}" in lesson.body
        assert len(diagram.caption.split()) >= 10
        root = ET.fromstring(lesson.file(diagram.file).read_text(encoding="utf-8"))
        assert root.tag == f"{SVG}svg"
        assert root.get("viewBox")
        title = root.find(f"{SVG}title")
        assert title is not None and title.text
        texts = [t.text for t in root.iter(f"{SVG}text") if t.text]
        assert len(texts) >= 5


def test_recall_prompts(lesson):
    assert 3 <= len(lesson.recall) <= 5
    assert len({p.id for p in lesson.recall}) == len(lesson.recall)
    for prompt in lesson.recall:
        assert prompt.prompt and prompt.answer and len(prompt.key_points) >= 3
        assert "{{" not in prompt.prompt + prompt.answer + "".join(prompt.key_points)


def test_references_come_with_trust_notes(lesson):
    refs = lesson.body.split("## References", 1)[1]
    items = re.findall(r"^\d+\. ", refs, flags=re.M)
    assert len(items) >= 2
    assert "trust" in refs.lower() or "peer reviewed" in refs.lower()


def test_cited_files_exist(lesson):
    """Every committed file the lesson points at (results, docs) is in the repository."""
    for path in re.findall(r"`((?:benchmarks/results|docs)/[\w./-]+)`", lesson.body):
        assert (REPO / path).is_file(), path


def test_measured_numbers_match_the_committed_results(lesson):
    md = lesson.body + render.to_markdown(lesson) + lesson.file("quiz.yaml").read_text(encoding="utf-8")
    for text, fmt, value in _quoted(lesson):
        assert format(value, fmt) == text, (text, value)
        assert text in md, text


def test_the_run_to_run_comparison_lesson_12_quotes_is_the_committed_one():
    """Lesson 12 reads its A/B times from the two runs; the committed comparison shows the same."""
    text = (REPO / "benchmarks" / "results" / COMPARISON).read_text(encoding="utf-8")
    quoted = (("164.21", "162.14", "1.013"), ("93.94", "94.81", "0.991"), ("3.17", "3.31", "0.955"))
    for a, b, ratio in (*quoted, ("171.54", "162.42", "1.056")):
        assert re.search(rf"{re.escape(a)}\s*│\s*{re.escape(b)}\s*│\s*{re.escape(ratio)}x", text), (a, b)
        assert f"{ratio}×" in curriculum.get_lesson(12).body


def test_the_two_pass_comparison_lesson_12_quotes_is_the_committed_one():
    """The row lesson 12 quotes from the two-pass runs' comparison, and that every row agrees."""
    text = (REPO / "benchmarks" / "results" / TWO_PASS_COMPARISON).read_text(encoding="utf-8")
    row = r"64x14336\s*│\s*bfloat16\s*│\s*torch\.compile\s*│.*0\.07% / 2\.37%\s*│\s*"
    row += r"0\.988x \[0\.956-1\.028\] same"
    assert re.search(row, text)
    assert text.count("same (within noise)") == 18
    body = curriculum.get_lesson(12).body
    assert all(quoted in body for quoted in ("2.37%", "0.988×", "0.956 to 1.028", "all 18 rows"))


def test_diagram_numbers_match_the_computation(lesson):
    svg = " ".join(lesson.file(d.file).read_text(encoding="utf-8") for d in lesson.diagrams)
    for text in DIAGRAM_TEXT.get(lesson.number, []):
        assert text in svg, text


# ---------------------------------------------------------------- the quiz


def test_quiz_size_and_kinds(lesson):
    quiz = load_quiz(lesson)
    assert len(quiz.questions) >= 6
    kinds = {type(q) for q in quiz.questions}
    assert {Choice, Numeric, Recall} <= kinds
    assert (Line in kinds) == bool(lesson.kernels)  # "point at the line" wherever there is code


def test_line_answers_resolve(lesson):
    for q in load_quiz(lesson).questions:
        if isinstance(q, Line):
            assert q.code in lesson.kernels
            snippet = q.snippet()
            number = q.answer()
            assert snippet.first_line <= number <= snippet.last_line
            assert q.match in dict(snippet.numbered())[number]


def test_numeric_answers_equal_independent_computations(lesson):
    expected = INDEPENDENT.get(lesson.number, {})
    numeric = {q.id: q.answer() for q in load_quiz(lesson).questions if isinstance(q, Numeric)}
    assert set(numeric) == set(expected)
    for qid, value in expected.items():
        if isinstance(value, int | Fraction):
            assert numeric[qid] == value, qid
        else:
            assert float(numeric[qid]) == pytest.approx(value, rel=1e-9), qid


def test_numeric_questions_state_units_and_tolerance(lesson):
    for q in load_quiz(lesson).questions:
        if isinstance(q, Numeric):
            assert q.units
            assert q.rel_tol <= 0.05 and q.abs_tol == 0.0


def test_the_key_scores_100_percent_and_misses_are_corrected(lesson, tmp_path):
    quiz = load_quiz(lesson)
    path = tmp_path / "answers.yaml"
    path.write_text(yaml.safe_dump(perfect_answers(quiz)))
    report = grading.grade(quiz, grading.load_answers(path, quiz))
    assert report.score == len(quiz.questions) and not report.misses
    path.write_text(yaml.safe_dump(wrong_answers(quiz)))
    report = grading.grade(quiz, grading.load_answers(path, quiz))
    assert len(report.misses) == len(quiz.questions)
    assert all(r.correction for r in report.misses)


def test_recall_questions_name_prompts_of_the_lesson(lesson):
    data = yaml.safe_load(lesson.file("quiz.yaml").read_text(encoding="utf-8"))
    ids = {p.id for p in lesson.recall}
    for q in data["questions"]:
        if q["kind"] == "recall":
            assert q["recall"] in ids
