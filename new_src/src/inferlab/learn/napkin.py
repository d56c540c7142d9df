"""Napkin math for lessons and quizzes: named computations, and the small expressions that call them.

Numbers in lessons and quiz answers are never typed by hand: the data holds an expression such as
`arithmetic_intensity(flops=elementwise_flops(n=1), bytes=elementwise_bytes(n=1, bytes_per_element=4))`
and `evaluate` computes it here. Expressions may use numbers, strings, `+ - * / // **`, and calls
of the functions in `COMPUTATIONS`; nothing else (no names, no attributes), so lesson data cannot
run arbitrary code. `/` between integers stays exact (a Fraction: 1/12 is 1/12).
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from fractions import Fraction

from inferlab.learn import source

Number = int | float | Fraction

WARP_SIZE = 32  # threads per warp on every NVIDIA GPU so far (CUDA C++ Programming Guide)


def cdiv(a: int, b: int) -> int:
    """ceil(a / b) for positive integers, as `triton.cdiv`."""
    return -(-a // b)


def num_programs(n: int, block_size: int) -> int:
    """Program instances in a 1-D grid: one per `block_size` elements, rounded up."""
    return cdiv(n, block_size)


def masked_lanes(n: int, block_size: int) -> int:
    """Offsets the last program computes but masks off: the grid covers more than n elements."""
    return num_programs(n, block_size) * block_size - n


def threads_per_program(num_warps: int) -> int:
    """Threads one program instance (one CUDA thread block) runs on."""
    return num_warps * WARP_SIZE


def elements_per_thread(block_size: int, num_warps: int) -> Number:
    """Elements of a 1-D block each thread holds in registers."""
    return _exact(Fraction(block_size, threads_per_program(num_warps)))


def elementwise_bytes(n: int, bytes_per_element: int, reads: int = 2, writes: int = 1) -> int:
    """DRAM bytes of an elementwise op: each input read once, each output written once."""
    return n * bytes_per_element * (reads + writes)


def elementwise_flops(n: int, flops_per_element: int = 1) -> int:
    """FLOPs of an elementwise op (an add is 1 per element)."""
    return n * flops_per_element


def arithmetic_intensity(flops: Number, bytes: Number) -> Number:
    """FLOPs per byte moved (exact when both are integers)."""
    return _exact(Fraction(flops) / Fraction(bytes))


def constant(ref: str) -> object:
    """A module-level constant of the package, read from its source (`module:NAME`)."""
    return source.constant(ref)


def _exact(value: Fraction) -> Number:
    return value.numerator if value.denominator == 1 else value


# lessons 2-6: rooflines, coalescing, floating-point range, matmul tiling. Measured rates are
# arguments (the lesson cites the committed result they come from); only derived numbers live here.
SECTOR_BYTES = 32  # the unit a warp's global accesses are served in (CUDA Best Practices Guide)
# (mantissa bits, largest exponent) of the formats lessons discuss: IEEE 754 binary16/32, bfloat16
_FLOAT_FORMATS = {"float16": (10, 15), "bfloat16": (7, 127), "float32": (23, 127)}


def ridge_point(peak_tflops: Number, bandwidth_gbps: Number) -> float:
    """FLOP per byte where the roofline bends: peak FLOP/s over memory bytes/s."""
    return float(peak_tflops) * 1e12 / (float(bandwidth_gbps) * 1e9)


def roofline_tflops(intensity: Number, peak_tflops: Number, bandwidth_gbps: Number) -> float:
    """Attainable TFLOP/s at `intensity` FLOP/byte: min(peak, intensity x bandwidth)."""
    return min(float(peak_tflops), float(intensity) * float(bandwidth_gbps) * 1e9 / 1e12)


def memory_time_us(bytes: Number, bandwidth_gbps: Number) -> float:
    """Microseconds to move `bytes` at `bandwidth_gbps` (1 GB/s = 1e9 bytes/s)."""
    return float(bytes) / (float(bandwidth_gbps) * 1e9) * 1e6


def compute_time_us(flops: Number, peak_tflops: Number) -> float:
    """Microseconds to do `flops` at `peak_tflops`."""
    return float(flops) / (float(peak_tflops) * 1e12) * 1e6


def achieved_gbps(bytes: Number, time_us: Number) -> float:
    """The bandwidth a kernel reached: bytes it must move over its measured time, in GB/s."""
    return float(bytes) / (float(time_us) * 1e-6) / 1e9


def warp_sectors(bytes_per_thread: int, stride_bytes: int | None = None) -> int:
    """32-byte sectors one warp-wide access touches: lane i reads bytes_per_thread bytes at
    i * stride_bytes from an aligned base (stride_bytes defaults to contiguous)."""
    stride = bytes_per_thread if stride_bytes is None else stride_bytes
    if bytes_per_thread <= 0 or stride < bytes_per_thread:
        raise ValueError("warp_sectors needs bytes_per_thread > 0 and stride_bytes >= bytes_per_thread")
    sectors: set[int] = set()
    for lane in range(WARP_SIZE):
        first, last = lane * stride, lane * stride + bytes_per_thread - 1
        sectors.update(range(first // SECTOR_BYTES, last // SECTOR_BYTES + 1))
    return len(sectors)


def sector_efficiency(bytes_per_thread: int, stride_bytes: int | None = None) -> Number:
    """Bytes the warp asked for over bytes the sectors it touched carry."""
    fetched = warp_sectors(bytes_per_thread, stride_bytes) * SECTOR_BYTES
    return _exact(Fraction(WARP_SIZE * bytes_per_thread, fetched))


def exp(x: Number) -> float:
    """e**x, for worked examples of softmax."""
    import math

    return math.exp(float(x))


def float_max(dtype: str) -> float:
    """Largest finite value of `dtype`: (2 - 2**-mantissa_bits) * 2**max_exponent."""
    if dtype not in _FLOAT_FORMATS:
        raise ValueError(f"float_max knows {', '.join(_FLOAT_FORMATS)}, not {dtype!r}")
    mantissa_bits, max_exponent = _FLOAT_FORMATS[dtype]
    return (2 - 2.0**-mantissa_bits) * 2.0**max_exponent


def exp_overflow_at(dtype: str) -> float:
    """The x past which exp(x) is larger than dtype's largest finite value (inf): ln(float_max)."""
    import math

    return math.log(float_max(dtype))


def matmul_flops(m: int, n: int, k: int) -> int:
    """C[m, n] = A[m, k] @ B[k, n]: one multiply and one add per (i, j, k)."""
    return 2 * m * n * k


def matmul_bytes_ideal(m: int, n: int, k: int, bytes_per_element: int) -> int:
    """DRAM bytes if A and B are read once and C written once: the floor for any schedule."""
    return (m * k + k * n + m * n) * bytes_per_element


def matmul_bytes_tiled(m: int, n: int, k: int, bytes_per_element: int, block_m: int, block_n: int) -> int:
    """Bytes loaded by BLOCK_M x BLOCK_N output tiles with no cache reuse between programs: each
    A row-panel is read once per column of tiles, each B column-panel once per row of tiles.
    block_m = block_n = 1 is the naive kernel (every output reads its own row and column)."""
    a_reads = m * k * cdiv(n, block_n)
    b_reads = k * n * cdiv(m, block_m)
    return (a_reads + b_reads + m * n) * bytes_per_element


def tile_intensity(block_m: int, block_n: int, bytes_per_element: int) -> Number:
    """FLOP per byte loaded of one K step of a tile: 2*BM*BN*BK FLOPs over (BM + BN)*BK elements."""
    return _exact(Fraction(2 * block_m * block_n, bytes_per_element * (block_m + block_n)))


def blocks_loaded(tiles_m: int, tiles_n: int, k_blocks: int) -> int:
    """A and B blocks loaded to compute a tiles_m x tiles_n patch of output tiles, k_blocks deep."""
    return k_blocks * (tiles_m + tiles_n)


def _grouped_tile(pid: int, num_pid_m: int, num_pid_n: int, group_m: int) -> tuple[int, int]:
    # Triton's matmul tutorial: program ids walk GROUP_SIZE_M rows of tiles column by column
    num_pid_in_group = group_m * num_pid_n
    first_pid_m = (pid // num_pid_in_group) * group_m
    group_size_m = min(num_pid_m - first_pid_m, group_m)
    return first_pid_m + (pid % num_pid_in_group) % group_size_m, (pid % num_pid_in_group) // group_size_m


def grouped_tile_m(pid: int, num_pid_m: int, num_pid_n: int, group_m: int) -> int:
    """The row of output tiles program `pid` computes in grouped ordering (group_m=1: row-major)."""
    return _grouped_tile(pid, num_pid_m, num_pid_n, group_m)[0]


def grouped_tile_n(pid: int, num_pid_m: int, num_pid_n: int, group_m: int) -> int:
    """The column of output tiles program `pid` computes in grouped ordering."""
    return _grouped_tile(pid, num_pid_m, num_pid_n, group_m)[1]


def wave_panel_bytes(
    programs: int, num_pid_m: int, num_pid_n: int, group_m: int, k: int, block_m: int, block_n: int,
    bytes_per_element: int,
) -> int:  # fmt: skip
    """Bytes of A row-panels and B column-panels that programs 0..programs-1 read together:
    what L2 must hold for the re-reads of one wave of concurrent programs to hit."""
    tiles = [_grouped_tile(pid, num_pid_m, num_pid_n, group_m) for pid in range(programs)]
    rows, cols = {t[0] for t in tiles}, {t[1] for t in tiles}
    return (len(rows) * block_m + len(cols) * block_n) * k * bytes_per_element


def matmul_smem_bytes(
    block_m: int, block_n: int, block_k: int, num_stages: int, bytes_per_element: int
) -> int:
    """Shared memory of a pipelined matmul loop: num_stages copies of an A and a B tile."""
    return num_stages * (block_m * block_k + block_k * block_n) * bytes_per_element


# lessons 7-12: quantization, W4A16, attention, KV cache, the runtime, serving. As above, measured
# rates (TFLOP/s, GB/s) are arguments that the lesson cites; model shapes are arguments from
# models.yaml (the published config.json values).
def _ratio(a: Number, b: Number) -> Number:
    """a / b, exact for integers and fractions, a float otherwise."""
    if isinstance(a, int | Fraction) and isinstance(b, int | Fraction):
        return _exact(Fraction(a) / Fraction(b))
    return float(a) / float(b)


def bits_per_weight(
    bits: int, scale_bits: int = 0, group_size: int = 1, scale2_bits: int = 0, group2_size: int = 1
) -> Number:
    """Storage per weight: the code, plus a scale per group, plus a second-level scale per
    group2_size groups (NF4 double quantization: 4 + 8/64 + 32/(64 * 256))."""
    return bits + _ratio(scale_bits, group_size) + _ratio(scale2_bits, group_size * group2_size)


def weight_bytes(params: int, bits: Number) -> Number:
    """Bytes of `params` weights stored at `bits` bits each."""
    return _ratio(params * bits, 8)


def llama_linear_params(
    hidden: int, intermediate: int, layers: int, heads: int, kv_heads: int, head_dim: int
) -> int:
    """Weights of the decoder layers' matmuls: q, k, v, o and gate, up, down (no bias)."""
    attention = hidden * heads * head_dim * 2 + hidden * kv_heads * head_dim * 2
    return layers * (attention + 3 * hidden * intermediate)


def llama_params(
    hidden: int, intermediate: int, layers: int, heads: int, kv_heads: int, head_dim: int,
    vocab: int, tied_embeddings: int = 0,
) -> int:  # fmt: skip
    """All parameters: the matmuls, two RMSNorm weights per layer and a final one, the embedding
    table and (untied) the lm_head."""
    norms = layers * 2 * hidden + hidden
    embeddings = vocab * hidden * (1 if tied_embeddings else 2)
    linear = llama_linear_params(hidden, intermediate, layers, heads, kv_heads, head_dim)
    return linear + norms + embeddings


def int4_sym_scale(absmax: Number) -> Number:
    """Symmetric int4 scale, GPTQ's convention (quantize_int4(symmetric=True)): 2 * absmax / 15."""
    return _ratio(2 * absmax, 15)


def int8_scale(absmax: Number) -> Number:
    """Symmetric int8 scale (quantize_int8): absmax / 127."""
    return _ratio(absmax, 127)


def rounding_max_error(scale: Number) -> Number:
    """Worst error of round-to-nearest onto a uniform grid of step `scale`, inside its range."""
    return _ratio(scale, 2)


def largest_half_gap(code: tuple) -> float:
    """Worst rounding error onto the sorted code table `code` (in units of absmax)."""
    values = sorted(float(c) for c in code)
    return max(b - a for a, b in zip(values, values[1:], strict=False)) / 2


def smallest_half_gap(code: tuple) -> float:
    """Rounding error bound where the code table is densest (in units of absmax)."""
    values = sorted(float(c) for c in code)
    return min(b - a for a, b in zip(values, values[1:], strict=False)) / 2


def linear_bytes(
    tokens: int, in_features: int, out_features: int, weight_bits: Number, act_bytes: int = 2
) -> Number:
    """DRAM bytes of y[tokens, out] = x[tokens, in] @ W.T: W read once at weight_bits per
    weight, x read once and y written once at act_bytes per element."""
    activations = tokens * (in_features + out_features) * act_bytes
    return weight_bytes(in_features * out_features, weight_bits) + activations


def roofline_time_us(flops: Number, bytes: Number, tflops: Number, gbps: Number) -> float:
    """The roofline's lower bound on a kernel's time: the slower of its compute and its traffic."""
    return max(float(flops) / (float(tflops) * 1e6), float(bytes) / (float(gbps) * 1e3))


def w4a16_ideal_speedup(
    tokens: int, in_features: int, out_features: int, weight_bits: Number, tflops: Number, gbps: Number
) -> float:
    """Roofline time of a bf16 linear layer over the same layer with weight_bits weights."""
    flops = 2 * tokens * in_features * out_features
    bf16 = linear_bytes(tokens, in_features, out_features, 16)
    quantized = linear_bytes(tokens, in_features, out_features, weight_bits)
    return roofline_time_us(flops, bf16, tflops, gbps) / roofline_time_us(flops, quantized, tflops, gbps)


def attention_score_bytes(seq_len: int, heads: int, bytes_per_element: int) -> int:
    """The S = Q K^T matrices of one sequence, all heads, if written out: seq_len^2 per head."""
    return seq_len * seq_len * heads * bytes_per_element


def attention_flops(seq_len: int, head_dim: int, heads: int, causal: int = 0) -> Number:
    """QK^T and PV: 2 * S * S * D each per head; a causal mask skips (about) half."""
    flops = 4 * seq_len * seq_len * head_dim * heads
    return _ratio(flops, 2) if causal else flops


def attention_io_bytes(seq_len: int, heads: int, kv_heads: int, head_dim: int, bytes_per_element: int) -> int:
    """Q and O (heads) and K and V (kv_heads), each read or written once: the floor."""
    return (2 * heads + 2 * kv_heads) * seq_len * head_dim * bytes_per_element


def causal_tiles(seq_len: int, block: int) -> int:
    """block x block tiles of the score matrix a causal kernel visits: on or below the diagonal."""
    n = cdiv(seq_len, block)
    return n * (n + 1) // 2


def kv_bytes_per_token(layers: int, kv_heads: int, head_dim: int, bytes_per_element: int) -> int:
    """One token's keys and values in every layer: 2 * layers * kv_heads * head_dim elements."""
    return 2 * layers * kv_heads * head_dim * bytes_per_element


def kv_slots_wasted(tokens: int, block_size: int) -> int:
    """Token slots allocated but empty: the unfilled tail of the sequence's last block."""
    return cdiv(tokens, block_size) * block_size - tokens


def paged_slot(physical_block: int, token: int, block_size: int) -> int:
    """Slot of token `token` in the KV pool, given the physical block its logical block
    (token // block_size) maps to: physical_block * block_size + token % block_size."""
    return physical_block * block_size + token % block_size


def decode_attention_intensity(heads: int, kv_heads: int, bytes_per_element: int) -> Number:
    """FLOP per byte of cached K and V that one decode step's attention reads: each cached row
    (D elements) serves heads / kv_heads query heads, 2 * D FLOPs each (q.k, or p * v)."""
    return _ratio(2 * heads, kv_heads * bytes_per_element)


def sequences_that_fit(free_bytes: Number, tokens: int, bytes_per_token: int) -> int:
    """Whole sequences of `tokens` tokens whose KV cache fits in free_bytes."""
    return int(Fraction(free_bytes) // (tokens * bytes_per_token))


def decode_step_ms(
    batch: int, weights_bytes: Number, kv_bytes_per_seq: Number, flops_per_token: Number,
    tflops: Number, gbps: Number,
) -> float:  # fmt: skip
    """Roofline floor of one decode step: the weights read once for the whole batch, each
    sequence's KV cache read once, batch * flops_per_token FLOPs."""
    traffic = float(weights_bytes) + batch * float(kv_bytes_per_seq)
    return roofline_time_us(batch * float(flops_per_token), traffic, tflops, gbps) / 1e3


def prefill_ms(flops_per_token: Number, tokens: int, tflops: Number) -> float:
    """Compute floor of a prefill: tokens * flops_per_token at the measured matmul rate."""
    return float(flops_per_token) * tokens / (float(tflops) * 1e9)


def tokens_per_s(batch: int, step_ms: Number) -> float:
    """Tokens a decode loop emits per second: one per sequence per step."""
    return batch * 1e3 / float(step_ms)


def safetensors_file_offset(header_len: int, begin: int) -> int:
    """File offset of a tensor whose data_offsets start at `begin`: 8-byte length, header, data."""
    return 8 + header_len + begin


def cost_per_million_tokens(dollars_per_hour: Number, tokens_per_second: Number) -> float:
    """Price of a million tokens from an hourly price and a sustained token rate."""
    return float(dollars_per_hour) / (float(tokens_per_second) * 3600) * 1e6


COMPUTATIONS: dict[str, Callable[..., object]] = {
    f.__name__: f
    for f in (
        cdiv,
        num_programs,
        masked_lanes,
        threads_per_program,
        elements_per_thread,
        elementwise_bytes,
        elementwise_flops,
        arithmetic_intensity,
        constant,
        # lessons 2-6
        ridge_point,
        roofline_tflops,
        memory_time_us,
        compute_time_us,
        achieved_gbps,
        warp_sectors,
        sector_efficiency,
        exp,
        float_max,
        exp_overflow_at,
        matmul_flops,
        matmul_bytes_ideal,
        matmul_bytes_tiled,
        tile_intensity,
        blocks_loaded,
        grouped_tile_m,
        grouped_tile_n,
        wave_panel_bytes,
        matmul_smem_bytes,
        # lessons 7-12
        bits_per_weight,
        weight_bytes,
        llama_linear_params,
        llama_params,
        int4_sym_scale,
        int8_scale,
        rounding_max_error,
        largest_half_gap,
        smallest_half_gap,
        linear_bytes,
        roofline_time_us,
        w4a16_ideal_speedup,
        attention_score_bytes,
        attention_flops,
        attention_io_bytes,
        causal_tiles,
        kv_bytes_per_token,
        kv_slots_wasted,
        paged_slot,
        decode_attention_intensity,
        sequences_that_fit,
        decode_step_ms,
        prefill_ms,
        tokens_per_s,
        safetensors_file_offset,
        cost_per_million_tokens,
    )
}

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv,
    ast.Pow: operator.pow,
}


def evaluate(expr: str) -> object:
    """The value of `expr` (see the module docstring for what it may contain); ValueError if bad."""
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except SyntaxError:
        raise ValueError(f"cannot parse napkin expression {expr!r}") from None
    return _eval(tree.body, expr)


def _eval(node: ast.expr, expr: str) -> object:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float | str):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_eval(node.operand, expr)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        a, b = _eval(node.left, expr), _eval(node.right, expr)
        if isinstance(a, int | Fraction) and isinstance(b, int | Fraction):
            return _exact(Fraction(a) / Fraction(b))
        return a / b
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return _BINARY[type(node.op)](_eval(node.left, expr), _eval(node.right, expr))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        fn = COMPUTATIONS.get(node.func.id)
        if fn is None:
            known = ", ".join(sorted(COMPUTATIONS))
            raise ValueError(f"unknown computation {node.func.id!r} in {expr!r}; known: {known}")
        args = [_eval(a, expr) for a in node.args]
        kwargs = {k.arg: _eval(k.value, expr) for k in node.keywords if k.arg is not None}
        try:
            return fn(*args, **kwargs)
        except TypeError as e:  # wrong or missing arguments in the lesson data
            raise ValueError(f"{e} in napkin expression {expr!r}") from None
    raise ValueError(f"napkin expression {expr!r} may hold only numbers, arithmetic and calls")


def format_number(value: object) -> str:
    """A computed value for prose: 1024 -> "1024", 12582912 -> "12,582,912", 1/12 -> "1/12"."""
    if isinstance(value, bool) or not isinstance(value, int | float | Fraction):
        return str(value)
    if isinstance(value, Fraction):
        return f"{value.numerator}/{value.denominator}"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    return f"{value:.4g}"
