"""How a file spells Triton: its aliases for `triton`, `triton.language` and `triton.jit`.

`import triton.language as tl`, `from triton import language as T`, `from triton import jit`,
`from triton.language import program_id`: each binds a local name, and the analysis asks
`Names.tl_call(node)` for the `triton.language` function a call is (`"program_id"`), whatever
the spelling. With no imports at all (a pasted snippet) the usual `triton` and `tl` are assumed.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field


@dataclass(slots=True)
class Names:
    triton: set[str] = field(default_factory=set)  # local names of the triton module
    tl: set[str] = field(default_factory=set)  # local names of triton.language
    jit: set[str] = field(default_factory=set)  # local names of triton.jit
    tl_functions: dict[str, str] = field(default_factory=dict)  # local name -> triton.language name

    @classmethod
    def of(cls, tree: ast.Module) -> Names:
        names = cls()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name == "triton":
                        names.triton.add(a.asname or "triton")
                    elif a.name == "triton.language":
                        if a.asname:
                            names.tl.add(a.asname)
                        else:
                            names.triton.add("triton")  # `import triton.language` binds `triton`
            elif isinstance(node, ast.ImportFrom) and node.module:
                for a in node.names:
                    local = a.asname or a.name
                    if node.module == "triton" and a.name == "language":
                        names.tl.add(local)
                    elif node.module == "triton" and a.name == "jit":
                        names.jit.add(local)
                    elif node.module == "triton.language":
                        names.tl_functions[local] = a.name
                    elif node.module.endswith("_triton") and a.name in ("triton", "tl"):  # our kernels' shim
                        (names.triton if a.name == "triton" else names.tl).add(local)
        if not (names.triton or names.tl or names.jit or names.tl_functions):
            names.triton, names.tl = {"triton"}, {"tl"}
        return names

    def _dotted(self, node: ast.AST) -> list[str] | None:
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            return None
        return [node.id, *reversed(parts)]

    def tl_name(self, node: ast.AST) -> str | None:
        """`tl.program_id` / `triton.language.program_id` / `program_id` (imported) -> "program_id"."""
        dotted = self._dotted(node)
        if dotted is None:
            return None
        head, rest = dotted[0], dotted[1:]
        if head in self.tl and rest:
            return ".".join(rest)
        if head in self.triton and len(rest) >= 2 and rest[0] == "language":
            return ".".join(rest[1:])
        if not rest and head in self.tl_functions:
            return self.tl_functions[head]
        return None

    def tl_call(self, node: ast.AST) -> str | None:
        return self.tl_name(node.func) if isinstance(node, ast.Call) else None

    def is_jit(self, decorator: ast.expr) -> bool:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        dotted = self._dotted(target)
        if dotted is None:
            return False
        if len(dotted) == 1:
            return dotted[0] in self.jit
        return dotted[0] in self.triton and dotted[1:] == ["jit"]

    def is_triton_decorator(self, decorator: ast.expr, name: str) -> bool:
        """`@triton.autotune(...)`, `@triton.heuristics(...)`: `name` under the triton module."""
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        dotted = self._dotted(target)
        return dotted is not None and len(dotted) == 2 and dotted[0] in self.triton and dotted[1] == name

    def is_constexpr(self, annotation: ast.expr | None) -> bool:
        if annotation is None:
            return False
        if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
            return annotation.value.split(".")[-1] == "constexpr"  # a string annotation
        return self.tl_name(annotation) == "constexpr"
