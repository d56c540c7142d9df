"""Code extraction: the source of a function (or a constant) in the package, read with `ast`.

Lessons and quizzes name code as `module:qualname` (`inferlab.kernels.elementwise:_add_kernel`).
The module file is found without importing it (and so without importing torch or triton), parsed,
and the definition's lines are cut out, decorators included. Lessons therefore show exactly what
the package runs, and a test fails when a line a lesson talks about disappears.
"""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
import textwrap
from dataclasses import dataclass
from functools import cache
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Snippet:
    """Lines `first_line`..`last_line` (1-based, as in the file) of `path`: the source of `ref`."""

    ref: str
    path: Path
    first_line: int
    lines: tuple[str, ...]

    @property
    def last_line(self) -> int:
        return self.first_line + len(self.lines) - 1

    @property
    def text(self) -> str:
        return "\n".join(self.lines) + "\n"

    def numbered(self) -> list[tuple[int, str]]:
        """(file line number, line) pairs."""
        return [(self.first_line + i, line) for i, line in enumerate(self.lines)]

    def line_of(self, match: str) -> int:
        """The file line number of the one line containing `match`; ValueError if 0 or several."""
        hits = [n for n, line in self.numbered() if match in line]
        if len(hits) != 1:
            where = "no line" if not hits else f"{len(hits)} lines ({', '.join(map(str, hits))})"
            raise ValueError(f"{where} of {self.ref} contain {match!r}; exactly one must")
        return hits[0]


def split_ref(ref: str) -> tuple[str, str]:
    """`"pkg.mod:name"` -> `("pkg.mod", "name")`, or ValueError."""
    module, sep, qualname = ref.partition(":")
    if not sep or not module or not qualname:
        raise ValueError(f"code reference {ref!r} is not of the form 'package.module:name'")
    return module.strip(), qualname.strip()


def module_file(module: str) -> Path:
    """The .py file of `module`, found without importing it or its parent packages."""
    parts = module.split(".")
    spec = importlib.util.find_spec(parts[0])
    for i in range(1, len(parts)):
        if spec is None or spec.submodule_search_locations is None:
            break
        name = ".".join(parts[: i + 1])
        spec = importlib.machinery.PathFinder.find_spec(name, list(spec.submodule_search_locations))
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        raise ValueError(f"cannot find the source file of module {module!r}")
    return Path(spec.origin)


@cache
def _parse(path: Path) -> tuple[ast.Module, tuple[str, ...]]:
    text = path.read_text(encoding="utf-8")
    return ast.parse(text, filename=str(path)), tuple(text.splitlines())


def _find(body: list[ast.stmt], names: list[str]) -> ast.stmt | None:
    """The definition (function, class or assignment) at dotted path `names` in `body`, also
    inside a module-level `if` (kernels defined only `if HAVE_TRITON:`)."""
    head, rest = names[0], names[1:]
    for node in body:
        if isinstance(node, ast.If):
            found = _find(node.body, names) or _find(node.orelse, names)
            if found is not None:
                return found
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if node.name == head:
                return node if not rest else _find(node.body, rest)
        elif not rest and isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == head for t in targets):
                return node
    return None


def _node(ref: str) -> tuple[ast.stmt, Path, tuple[str, ...]]:
    module, qualname = split_ref(ref)
    path = module_file(module)
    tree, lines = _parse(path)
    node = _find(tree.body, qualname.split("."))
    if node is None:
        raise ValueError(f"{path.name} defines no {qualname!r} (from code reference {ref!r})")
    return node, path, lines


def pull(ref: str) -> Snippet:
    """The source of the definition `ref` names, decorators included."""
    node, path, lines = _node(ref)
    decorators = getattr(node, "decorator_list", [])
    first = min([node.lineno, *(d.lineno for d in decorators)])
    last = node.end_lineno or node.lineno
    body = textwrap.dedent("\n".join(lines[first - 1 : last])).split("\n")  # a nested def, flush left
    return Snippet(ref=ref, path=path, first_line=first, lines=tuple(body))


def constant(ref: str) -> object:
    """The literal value of a module-level constant (`BLOCK_SIZE = 1024`), read without importing."""
    node, path, _ = _node(ref)
    if not isinstance(node, ast.Assign | ast.AnnAssign) or node.value is None:
        raise ValueError(f"{ref!r} is not a module-level constant")
    try:
        return ast.literal_eval(node.value)
    except ValueError:
        raise ValueError(f"{ref!r} in {path.name} is not a literal constant") from None
