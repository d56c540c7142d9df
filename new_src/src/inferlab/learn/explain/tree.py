"""Small questions about a function's syntax tree that the tagger asks: who assigns a name, and
is an expression a mask."""

from __future__ import annotations

import ast
from collections import defaultdict


def is_mask_value(value: ast.expr) -> bool:
    """A comparison, or a combination (`&`, `|`, `~`) of masks: what a bounds guard is made of."""
    while isinstance(value, ast.Subscript):  # mask_m[:, None]
        value = value.value
    if isinstance(value, ast.BinOp) and isinstance(value.op, ast.BitAnd | ast.BitOr | ast.BitXor):
        return True
    if isinstance(value, ast.UnaryOp) and isinstance(value.op, ast.Invert | ast.Not):
        return True
    return any(isinstance(n, ast.Compare) for n in ast.walk(value))


def names_outside_compares(value: ast.expr) -> set[str]:
    if isinstance(value, ast.Compare):
        return set()
    if isinstance(value, ast.Name):
        return {value.id}
    return set().union(
        *(names_outside_compares(c) for c in ast.iter_child_nodes(value) if isinstance(c, ast.expr))
    )


def keywords(node: ast.Call) -> set[str]:
    return {k.arg for k in node.keywords if k.arg}


def target_names(node: ast.Assign | ast.AugAssign | ast.AnnAssign) -> list[str]:
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    return [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]


def assignments(fn: ast.FunctionDef) -> dict[str, list[tuple[ast.stmt, ast.expr]]]:
    """name -> every (statement, value) that assigns it, in source order (AugAssign included)."""
    out: dict[str, list[tuple[ast.stmt, ast.expr]]] = defaultdict(list)
    for node in ast.walk(fn):
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign) and node.value is not None:
            for name in target_names(node):
                out[name].append((node, node.value))
    for entries in out.values():
        entries.sort(key=lambda e: e[0].lineno)
    return out
