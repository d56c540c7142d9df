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
