"""Likely bugs in a `@triton.jit` function, found by following values from `tl.program_id`.

Each value of the function carries flags, propagated in statement order:

    pid       derived from `tl.program_id`
    arange    derived from `tl.arange`
    tiled     both: offsets like `pid * BLOCK + tl.arange(0, BLOCK)`, where the last program's
              block runs past the end of the data (the grid rounds up)
    i64       widened with `.to(tl.int64)` (or `tl.cast(..., tl.int64)`)
    blockptr  a block pointer (`tl.make_block_ptr`, `tl.advance`)

`% n` wraps an offset into range (the matmul tutorial's `offs_am = (...) % M` idiom): the result
is `wrapped`, never `tiled`, though still a program id for the overflow check. Two findings:

- unmasked: a `tl.load`/`tl.store`/`tl.atomic_*` of tiled offsets with no `mask=` (or a block
  pointer built from the program id, accessed with no `boundary_check`), except inside a
  whole-block guard, `if pid_offset + BLOCK <= n:` (the fast path of a kernel that masks only its
  last program);
- overflow: a program id multiplied in int32 (`pid * BLOCK_SIZE`, `row * stride`): the product
  wraps once it passes 2**31.

Both are "likely": a size that is always a multiple of the block, or a tensor that stays under
2**31 elements, makes them safe, and the finding says so.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from inferlab.learn.explain.names import Names

MASK_POSITION = {"load": 1, "store": 2}  # tl.load(pointer, mask, ...), tl.store(pointer, value, mask, ...)


@dataclass(frozen=True, slots=True)
class Finding:
    line: int
    kind: str  # "unmasked" or "overflow"
    message: str


def pointer_arg(call: ast.Call) -> ast.expr | None:
    if call.args:
        return call.args[0]
    return next((k.value for k in call.keywords if k.arg in ("pointer", "base")), None)


def mask_arg(call: ast.Call, name: str | None) -> ast.expr | None:
    """The `mask` a load/store/atomic passes, or None (also for a literal `mask=None`)."""
    mask = next((k.value for k in call.keywords if k.arg == "mask"), None)
    position = MASK_POSITION.get(name or "")
    if mask is None and position is not None and len(call.args) > position:
        mask = call.args[position]
    if isinstance(mask, ast.Constant) and mask.value is None:
        return None
    return mask


def block_pointer_names(fn: ast.FunctionDef, names: Names) -> set[str]:
    """Names assigned a block pointer or a tensor descriptor anywhere in `fn`."""
    makers = {"make_block_ptr", "advance", "make_tensor_descriptor", "_experimental_make_tensor_descriptor"}
    found = set()
    for node in ast.walk(fn):
        if isinstance(node, ast.Assign) and names.tl_call(node.value) in makers:
            found |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return found


def check(fn: ast.FunctionDef, names: Names) -> tuple[tuple[Finding, ...], frozenset[int]]:
    """(the likely bugs of `fn`, the lines of its whole-block guards, like `if start + BLOCK <= n:`)."""
    checker = _Checker(names)
    checker.run(fn.body)
    findings = tuple(sorted(checker.findings.values(), key=lambda f: (f.line, f.kind)))
    return findings, frozenset(checker.guards)


class _Checker:
    def __init__(self, names: Names) -> None:
        self.names = names
        self.env: dict[str, frozenset[str]] = {}
        self.findings: dict[tuple[int, str], Finding] = {}
        self.guards: set[int] = set()  # `if` lines that test a program's block against the size
        self.guarded = 0  # > 0 inside such an `if`: a whole block, no mask needed

    # ---- statements, in order; loop bodies twice so loop-carried values settle
    def run(self, body: list[ast.stmt]) -> None:
        for stmt in body:
            for expr in _header_exprs(stmt):
                self.inspect(expr)
            if isinstance(stmt, ast.Assign):
                flags = self.flags(stmt.value)
                for t in stmt.targets:
                    self.bind(t, flags)
            elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
                self.bind(stmt.target, self.flags(stmt.value))
            elif isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Name):
                old = self.env.get(stmt.target.id, frozenset())
                self.env[stmt.target.id] = _combine(old | self.flags(stmt.value), stmt.op)
            elif isinstance(stmt, ast.For):
                self.bind(stmt.target, frozenset())
                self.run(stmt.body)
                self.run(stmt.body)
                self.run(stmt.orelse)
            elif isinstance(stmt, ast.While):
                self.run(stmt.body)
                self.run(stmt.body)
                self.run(stmt.orelse)
            elif isinstance(stmt, ast.If):
                guard = self._is_block_guard(stmt.test)
                self.guarded += guard
                self.run(stmt.body)
                self.guarded -= guard
                self.run(stmt.orelse)
            elif isinstance(stmt, ast.With):
                self.run(stmt.body)

    def _is_block_guard(self, test: ast.expr) -> bool:
        """`if block_start + BLOCK_SIZE <= n_elements:`: a comparison of a program-id offset."""
        if not isinstance(test, ast.Compare) or not all(isinstance(op, ast.Lt | ast.LtE) for op in test.ops):
            return False
        if "pid" in self.flags(test.left):
            self.guards.add(test.lineno)
            return True
        return False

    def bind(self, target: ast.expr, flags: frozenset[str]) -> None:
        for n in ast.walk(target):
            if isinstance(n, ast.Name):
                self.env[n.id] = flags

    # ---- flags of an expression
    def flags(self, node: ast.expr) -> frozenset[str]:
        if isinstance(node, ast.Name):
            return self.env.get(node.id, frozenset())
        if isinstance(node, ast.Call):
            return self._call_flags(node)
        if isinstance(node, ast.BinOp):
            return _combine(self.flags(node.left) | self.flags(node.right), node.op)
        if isinstance(node, ast.Subscript):
            return self.flags(node.value)
        if isinstance(node, ast.UnaryOp):
            return self.flags(node.operand)
        if isinstance(node, ast.IfExp):
            return self.flags(node.body) | self.flags(node.orelse)
        if isinstance(node, ast.Tuple | ast.List):
            return frozenset().union(*(self.flags(e) for e in node.elts))
        return frozenset()  # constants, comparisons (booleans), attributes like x_ptr.dtype

    def _call_flags(self, node: ast.Call) -> frozenset[str]:
        name = self.names.tl_call(node)
        args = [*node.args, *(k.value for k in node.keywords)]
        union = frozenset().union(*(self.flags(a) for a in args)) if args else frozenset()
        if name == "program_id":
            return frozenset({"pid"})
        if name == "arange":
            return frozenset({"arange"})
        if name in ("load", "num_programs") or (name or "").startswith("atomic_"):
            return frozenset()  # data (or the grid size), not an offset
        if name in ("make_block_ptr", "advance"):
            return union | {"blockptr"}
        if name == "cast" and len(node.args) > 1:
            return self._widen(self.flags(node.args[0]), node.args[1])
        if name is None and isinstance(node.func, ast.Attribute) and node.func.attr == "to" and node.args:
            return self._widen(self.flags(node.func.value), node.args[0])
        if name is None and isinstance(node.func, ast.Attribute):
            return self.flags(node.func.value) | union  # x.reshape(...), offs.broadcast_to(...)
        return _combine(union, None)

    def _widen(self, flags: frozenset[str], dtype: ast.expr) -> frozenset[str]:
        if self.names.tl_name(dtype) == "int64":
            return flags | {"i64"}
        return flags - {"i64"}

    # ---- the two checks, on every expression of a statement (not inside nested bodies)
    def inspect(self, expr: ast.expr) -> None:
        for node in ast.walk(expr):
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
                self._overflow(node)
            elif isinstance(node, ast.Call):
                self._access(node)

    def _overflow(self, node: ast.BinOp) -> None:
        left, right = self.flags(node.left), self.flags(node.right)
        if "i64" in left | right:
            return
        for mine, other in ((left, node.right), (right, node.left)):
            if "pid" in mine and not (isinstance(other, ast.Constant) and other.value in (0, 1)):
                self._add(
                    node.lineno,
                    "overflow",
                    f"`{ast.unparse(node)}` multiplies a program id in int32: it wraps once the product "
                    "passes 2**31 (a large tensor or stride); widen first, e.g. `pid.to(tl.int64)`",
                )
                return

    def _access(self, node: ast.Call) -> None:
        name = self.names.tl_call(node)
        if name not in ("load", "store") and not (name or "").startswith("atomic_"):
            return
        pointer = pointer_arg(node)
        if pointer is None:
            return
        flags = self.flags(pointer)
        keywords = {k.arg for k in node.keywords}
        if "blockptr" in flags:
            if "pid" in flags and "boundary_check" not in keywords:
                self._add(
                    node.lineno,
                    "unmasked",
                    f"`tl.{name}` of a block pointer placed by the program id has no `boundary_check`: "
                    "the last tile reads or writes past the edge unless every size is a multiple of the "
                    "block",
                )
            return
        if "tiled" in flags and mask_arg(node, name) is None and not self.guarded:
            self._add(
                node.lineno,
                "unmasked",
                f"`tl.{name}` without `mask=` on offsets built from the program id and `tl.arange`: "
                "the last program runs past the end (the grid rounds up) unless every size is a "
                "multiple of the block",
            )

    def _add(self, line: int, kind: str, message: str) -> None:
        self.findings.setdefault((line, kind), Finding(line, kind, message))


def _combine(flags: frozenset[str], op: ast.operator | None) -> frozenset[str]:
    if isinstance(op, ast.Mod):  # wrapped into range: no longer runs past the end
        return (flags - {"arange", "tiled"}) | {"wrapped"}
    if "pid" in flags and "arange" in flags and "wrapped" not in flags:
        return flags | {"tiled"}
    return flags


def _header_exprs(stmt: ast.stmt) -> list[ast.expr]:
    """The expressions a statement evaluates itself (a compound statement's body is run separately)."""
    if isinstance(stmt, ast.For):
        return [stmt.iter]
    if isinstance(stmt, ast.While | ast.If):
        return [stmt.test]
    if isinstance(stmt, ast.With):
        return [item.context_expr for item in stmt.items]
    if isinstance(stmt, ast.FunctionDef | ast.ClassDef):
        return []
    return [n for n in ast.iter_child_nodes(stmt) if isinstance(n, ast.expr)]
