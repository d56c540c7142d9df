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
