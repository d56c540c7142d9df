"""Inline directives: computed numbers and code locations inside any lesson or quiz text.

    {{ calc: num_programs(n=1000, block_size=256) }}     a number computed by inferlab.learn.napkin
    {{ calc: arithmetic_intensity(...) | .3f }}           ... with a format spec
    {{ where: inferlab.kernels.elementwise:add }}         `inferlab/kernels/elementwise.py:85-87`
    {{ line: inferlab.kernels.elementwise:_add_kernel | tl.program_id }}   that line's number

Lesson prose, annotation notes, recall prompts and quiz text all go through `expand`, so no
number in them is typed by hand.
"""

from __future__ import annotations

import re
from pathlib import Path

from inferlab.learn import napkin, source

DIRECTIVE = re.compile(r"\{\{\s*([a-z]+)\s*:\s*(.*?)\s*\}\}")
INLINE = ("calc", "where", "line")


def where(snippet: source.Snippet) -> str:
    """`inferlab/kernels/elementwise.py:48-57`: the snippet's file, from its top-level package."""
    depth = source.split_ref(snippet.ref)[0].count(".") + 1  # inferlab.kernels.elementwise: 3
    if snippet.path.name == "__init__.py":
        depth += 1
    rel = Path(*snippet.path.parts[-depth:])
    return f"{rel.as_posix()}:{snippet.first_line}-{snippet.last_line}"


def expand(text: str, context: str) -> str:
    """`text` with every inline directive replaced; ValueError naming `context` if one is bad."""
    return DIRECTIVE.sub(lambda m: _one(m.group(1), m.group(2), context), text)


def _one(kind: str, arg: str, context: str) -> str:
    head, _, tail = (part.strip() for part in arg.partition("|"))
    try:
        if kind == "calc":
            value = napkin.evaluate(head)
            return format(float(value), tail) if tail else napkin.format_number(value)
        if kind == "where":
            return where(source.pull(head))
        if kind == "line":
            return str(source.pull(head).line_of(tail))
    except (ValueError, TypeError) as e:
        raise ValueError(f"{context}: {e}") from None
    raise ValueError(f"{context}: {{{{ {kind}: ... }}}} is not an inline directive here")
