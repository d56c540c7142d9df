"""Tag each line of a `@triton.jit` function with the execution-model concepts it expresses.

Read with `ast` only: the file is never imported, so any kernel can be explained on a laptop
with no GPU, no torch and no triton. See `concepts.CONCEPTS` for the vocabulary and `lint` for
the likely bugs reported beside the tags.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from inferlab.errors import InferlabError
from inferlab.learn.explain import lint
from inferlab.learn.explain.concepts import ALWAYS_YOURS, CONCEPTS
from inferlab.learn.explain.names import Names
from inferlab.learn.explain.tree import (
    assignments,
    is_mask_value,
    keywords,
    names_outside_compares,
    target_names,
)

REDUCTIONS = {
    "sum", "max", "min", "reduce", "argmax", "argmin", "cumsum", "cumprod",
    "associative_scan", "xor_sum", "sort", "histogram", "topk",
}  # fmt: skip
BLOCK_POINTERS = {
    "make_block_ptr", "advance", "make_tensor_descriptor", "_experimental_make_tensor_descriptor",
    "_experimental_descriptor_load", "_experimental_descriptor_store",
    "load_tensor_descriptor", "store_tensor_descriptor",
}  # fmt: skip
HINTS = {"multiple_of", "max_contiguous", "max_constancy", "assume"}
INITIALIZERS = {"zeros", "full", "zeros_like", "full_like"}
DIRECT = {
    "program_id": "program_id", "num_programs": "num_programs", "arange": "arange",
    "load": "load", "store": "store", "dot": "dot", "dot_scaled": "dot",
    "where": "where", "debug_barrier": "barrier",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Tag:
    concept: str  # a key of CONCEPTS
    note: str = ""

    @property
    def label(self) -> str:
        return CONCEPTS[self.concept].label + (f": {self.note}" if self.note else "")


@dataclass(frozen=True, slots=True)
class KernelReport:
    name: str
    path: Path
    first_line: int  # the first decorator's line
    lines: tuple[str, ...]  # first_line .. end of the function
    tags: dict[int, tuple[Tag, ...]]  # file line -> tags
    findings: tuple[lint.Finding, ...]
    autotuned: bool

    def numbered(self) -> list[tuple[int, str]]:
        return [(self.first_line + i, line) for i, line in enumerate(self.lines)]

    def concepts(self) -> list[str]:
        used = {t.concept for tags in self.tags.values() for t in tags}
        return [key for key in CONCEPTS if key in used]

    def automated(self) -> list[str]:
        return [CONCEPTS[k].automated for k in self.concepts() if CONCEPTS[k].automated]

    def yours(self) -> list[str]:
        return [CONCEPTS[k].yours for k in self.concepts() if CONCEPTS[k].yours] + [ALWAYS_YOURS]

    def line_of(self, match: str) -> int:
        """The file line of the one line containing `match` (ValueError otherwise): for tests."""
        hits = [n for n, line in self.numbered() if match in line]
        if len(hits) != 1:
            raise ValueError(f"{len(hits)} lines of {self.name} contain {match!r}")
        return hits[0]

    def tags_at(self, match: str) -> set[str]:
        return {t.concept for t in self.tags.get(self.line_of(match), ())}


def parse_target(target: str) -> tuple[Path, str | None]:
    """`path/to/file.py:KERNEL` or `path/to/file.py` -> (path, kernel name or None)."""
    path, sep, kernel = target.rpartition(":")
    if sep and kernel.isidentifier() and not Path(target).exists():
        return Path(path), kernel
    return Path(target), None


def registered_kernel_file(name: str) -> Path | None:
    """The source file of a registered kernel's SPEC module (`inferlab explain w4a16_matmul`),
    or None if `name` is no registered kernel. Imports the registry (and torch): only called when
    the target is not a file."""
    if not name.isidentifier():
        return None
    import importlib.util

    from inferlab.kernels import REGISTRY

    module = next((spec.module for spec in REGISTRY if spec.name == name), None)
    origin = importlib.util.find_spec(module).origin if module else None
    return Path(origin) if origin else None


def explain_file(path: Path, kernel: str | None = None) -> list[KernelReport]:
    """Every `@triton.jit` function of `path` (or only `kernel`), analyzed; InferlabError if none."""
    path = Path(path)
    if not path.is_file():
        raise InferlabError(
            f"{path} does not exist (or is not a file); give a Python file, FILE:KERNEL, or the name "
            "of a registered kernel (`inferlab run` lists them)"
        )
    try:
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text, filename=str(path))
    except UnicodeDecodeError:
        raise InferlabError(f"{path} is not a UTF-8 text file") from None
    except SyntaxError as e:
        raise InferlabError(f"{path}:{e.lineno}: syntax error, {e.msg}; fix it before explaining") from None
    names = Names.of(tree)
    functions = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and any(names.is_jit(d) for d in node.decorator_list)
    ]
    if not functions:
        raise InferlabError(f"{path} has no @triton.jit function to explain")
    if kernel is not None:
        chosen = [f for f in functions if f.name == kernel]
        if not chosen:
            known = ", ".join(f.name for f in functions)
            raise InferlabError(f"{path} has no @triton.jit function {kernel!r}; it has {known}")
        functions = chosen
    lines = text.splitlines()
    helpers = {
        f.name
        for f in ast.walk(tree)
        if isinstance(f, ast.FunctionDef) and any(names.is_jit(d) for d in f.decorator_list)
    }
    return [_report(f, path, lines, names, helpers) for f in sorted(functions, key=lambda f: f.lineno)]


def _report(
    fn: ast.FunctionDef, path: Path, lines: list[str], names: Names, helpers: set[str]
) -> KernelReport:
    tagger = _Tagger(names, helpers - {fn.name})
    tagger.visit_function(fn)
    first = min([fn.lineno, *(d.lineno for d in fn.decorator_list)])
    last = fn.end_lineno or fn.lineno
    autotuned = any(names.is_triton_decorator(d, "autotune") for d in fn.decorator_list)
    findings, guards = lint.check(fn, names)
    for line in guards:
        tagger.add(line, "mask", "a whole-block test: inside it, accesses need no mask")
    order = {key: i for i, key in enumerate(CONCEPTS)}
    tags = {
        line: tuple(sorted(dict.fromkeys(ts), key=lambda t: order[t.concept]))
        for line, ts in sorted(tagger.tags.items())
    }
    return KernelReport(fn.name, path, first, tuple(lines[first - 1 : last]), tags, findings, autotuned)


class _Tagger:
    def __init__(self, names: Names, helpers: set[str]) -> None:
        self.names = names
        self.helpers = helpers
        self.tags: dict[int, list[Tag]] = defaultdict(list)
        self.constexprs: set[str] = set()

    def add(self, line: int, concept: str, note: str = "") -> None:
        self.tags[line].append(Tag(concept, note))

    def visit_function(self, fn: ast.FunctionDef) -> None:
        for d in fn.decorator_list:
            if self.names.is_jit(d):
                self.add(d.lineno, "jit")
            elif self.names.is_triton_decorator(d, "autotune"):
                self.add(d.lineno, "constexpr", "autotune: tried configurations, the fastest kept per key")
        params = fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs
        by_line: dict[int, list[str]] = defaultdict(list)
        for a in params:
            if self.names.is_constexpr(a.annotation):
                self.constexprs.add(a.arg)
                by_line[a.lineno].append(a.arg)
        for line, args in by_line.items():
            self.add(line, "constexpr", ", ".join(args))
        blockptrs = lint.block_pointer_names(fn, self.names)
        for node in ast.walk(fn):
            if isinstance(node, ast.AnnAssign) and self.names.is_constexpr(node.annotation):
                if isinstance(node.target, ast.Name):
                    self.constexprs.add(node.target.id)
                self.add(node.lineno, "constexpr")
            elif isinstance(node, ast.Call):
                self._call(node, blockptrs)
            elif isinstance(node, ast.For | ast.While):
                self._loop(node)
        for node in ast.walk(fn):  # after every constexpr is known
            if isinstance(node, ast.If) and self._constexpr_only(node.test):
                self.add(
                    node.lineno,
                    "constexpr",
                    "a branch the compiler resolves; the other side is never compiled",
                )
        self._masks(fn)
        self._accumulators(fn)

    def _call(self, node: ast.Call, blockptrs: set[str]) -> None:
        name = self.names.tl_call(node)
        line = node.lineno
        if name in DIRECT:
            concept = DIRECT[name]
            note = ""
            if name in ("load", "store"):
                pointer = lint.pointer_arg(node)
                if "boundary_check" in keywords(node) or (
                    isinstance(pointer, ast.Name) and pointer.id in blockptrs
                ):
                    self.add(line, "block_ptr", "bounds by boundary_check")
            self.add(line, concept, note)
        elif name in REDUCTIONS:
            self.add(line, "reduction", f"tl.{name}")
        elif name and name.startswith("atomic_"):
            self.add(line, "atomic", f"tl.{name}")
        elif name in BLOCK_POINTERS:
            self.add(line, "block_ptr", f"tl.{name}")
        elif name in HINTS:
            self.add(line, "hint", f"tl.{name}")
        elif name == "cast" and len(node.args) > 1 and self.names.tl_name(node.args[1]) == "int64":
            self.add(line, "int64")
        elif name is None and isinstance(node.func, ast.Attribute):
            method = node.func.attr
            if method == "to" and node.args and self.names.tl_name(node.args[0]) == "int64":
                self.add(line, "int64")
            elif method in REDUCTIONS and self.names.tl_name(node.func.value) is None:
                self.add(line, "reduction", f".{method}()")
            elif (
                method in ("load", "store")
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in blockptrs
            ):
                self.add(line, "block_ptr", "descriptor access")
                self.add(line, method)
        elif name is None and isinstance(node.func, ast.Name) and node.func.id in self.helpers:
            self.add(line, "helper", f"{node.func.id}, inlined")

    def _loop(self, node: ast.For | ast.While) -> None:
        calls = {self.names.tl_call(n) for n in ast.walk(node) if isinstance(n, ast.Call)}
        if isinstance(node, ast.While):
            self.add(node.lineno, "loop", "a while loop, not pipelined")
            return
        iterator = self.names.tl_call(node.iter)
        is_range = (
            isinstance(node.iter, ast.Call)
            and isinstance(node.iter.func, ast.Name)
            and node.iter.func.id == "range"
        )
        if iterator == "static_range":
            self.add(node.lineno, "loop", "tl.static_range, unrolled at compile time")
        elif iterator == "range" or is_range:
            stages = next((k.value for k in node.iter.keywords if k.arg == "num_stages"), None)
            if calls & {"dot", "dot_scaled"}:
                what = "over K with tl.dot inside: tile loads pipelined num_stages deep"
            else:
                what = "its loads can be pipelined (num_stages)" if "load" in calls else ""
            parts = [what, f"num_stages={ast.unparse(stages)} here" if stages is not None else ""]
            self.add(node.lineno, "loop", ", ".join(p for p in parts if p))

    def _constexpr_only(self, test: ast.expr) -> bool:
        used = {n.id for n in ast.walk(test) if isinstance(n, ast.Name)}
        return bool(used) and used <= self.constexprs | self.names.tl | self.names.triton

    def _masks(self, fn: ast.FunctionDef) -> None:
        seeds: set[str] = set()
        for node in ast.walk(fn):
            if not isinstance(node, ast.Call):
                continue
            name = self.names.tl_call(node)
            if name in ("load", "store") or (name or "").startswith("atomic_"):
                mask = lint.mask_arg(node, name)
                if mask is None:
                    continue
                if any(isinstance(n, ast.Compare) for n in ast.walk(mask)):
                    self.add(node.lineno, "mask", "inline")
                seeds |= {n.id for n in ast.walk(mask) if isinstance(n, ast.Name)}
        assigns = assignments(fn)
        done: set[str] = set()
        while seeds - done:
            name = (seeds - done).pop()
            done.add(name)
            for node, value in assigns.get(name, []):
                if is_mask_value(value):
                    self.add(node.lineno, "mask")
                    seeds |= names_outside_compares(value) & set(assigns)

    def _accumulators(self, fn: ast.FunctionDef) -> None:
        assigns = assignments(fn)
        for loop in (n for n in ast.walk(fn) if isinstance(n, ast.For | ast.While)):
            inside = {
                target
                for node in ast.walk(loop)
                if isinstance(node, ast.Assign | ast.AugAssign)
                for target in target_names(node)
            }
            for name in inside:
                inits = [
                    node
                    for node, value in assigns.get(name, [])
                    if node.lineno < loop.lineno and self.names.tl_call(value) in INITIALIZERS
                ]
                if not inits:
                    continue
                self.add(inits[-1].lineno, "accumulator", name)
                for node, _value in assigns[name]:
                    if loop.lineno < node.lineno <= (loop.end_lineno or loop.lineno):
                        self.add(node.lineno, "accumulator", f"{name} updated")
