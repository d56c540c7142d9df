"""Markdown files with YAML front matter: split, validate field by field, render.

A document is a `---` line (line 1), YAML mapping lines, a closing `---` line, then the Markdown
body. Every error is a `FrontMatterError` naming the file and the 1-based line in the *file*
(PyYAML counts from the start of the YAML text, which begins on file line 2). Records use this
module; experiments reuse it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from inferlab.lab.errors import FrontMatterError

FENCE = "---"
_YAML_FIRST_LINE = 2  # the YAML text starts on the line after the opening fence


@dataclass(frozen=True, slots=True)
class Document:
    path: Path
    fields: dict[str, Any]
    field_lines: dict[str, int]  # top-level key -> 1-based file line, for error messages
    body: str

    def line_of(self, key: str) -> int:
        """The line where `key` is set, or line 1 (the opening fence) when it is missing."""
        return self.field_lines.get(key, 1)

    def error(self, key: str, reason: str) -> FrontMatterError:
        return FrontMatterError(self.path, self.line_of(key), reason)


def read_document(path: Path) -> Document:
    """Read and split `path`; FrontMatterError if it cannot be read as UTF-8 or parsed."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise FrontMatterError(path, 1, f"cannot read the file: {e.strerror or e}") from None
    try:
        text = data.decode("utf-8-sig")  # -sig: tolerate a byte-order mark from Windows editors
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise FrontMatterError(path, line, "the file is not valid UTF-8") from None
    return parse_document(text, path)


def parse_document(text: str, path: Path) -> Document:
    """Split `text` into front matter fields and body; `path` is only used in error messages."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].rstrip() != FENCE:
        raise FrontMatterError(path, 1, f"no front matter: the file must start with a '{FENCE}' line")
    closing = next((i for i in range(1, len(lines)) if lines[i].rstrip() == FENCE), None)
    if closing is None:
        raise FrontMatterError(path, 1, f"the front matter opened on line 1 has no closing '{FENCE}' line")
    yaml_text = "".join(lines[1:closing])
    fields, field_lines = _load_mapping(yaml_text, path)
    body = "".join(lines[closing + 1 :]).lstrip("\r\n")
    return Document(path=path, fields=fields, field_lines=field_lines, body=body)


def render_document(fields: dict[str, Any], body: str) -> str:
    """The inverse of `parse_document`: fields in the given order, a blank line, then the body."""
    front = yaml.safe_dump(
        fields, sort_keys=False, allow_unicode=True, default_flow_style=False, width=1_000_000
    )
    body = body.strip("\n")
    return f"{FENCE}\n{front}{FENCE}\n" + (f"\n{body}\n" if body else "")


def get_field(doc: Document, key: str, kind: type | tuple[type, ...], *, nullable: bool = False):
    """`doc.fields[key]`, checked to be of `kind` (or None if `nullable`); errors name the line."""
    if key not in doc.fields:
        raise doc.error(key, f"missing required field '{key}'")
    value = doc.fields[key]
    if value is None and nullable:
        return None
    kinds = kind if isinstance(kind, tuple) else (kind,)
    # bool is a subclass of int, but `id: true` is a mistake, not the number 1
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        wanted = " or ".join(_type_name(k) for k in kinds) + (" or null" if nullable else "")
        raise doc.error(key, f"field '{key}' must be {wanted}, not {_describe(value)}")
    return value


def get_id(doc: Document, number: int, named_by: str = "file name") -> int:
    """Field `id`, which must equal the number the file (or folder) name starts with."""
    doc_id = get_field(doc, "id", int)
    if doc_id != number:
        raise doc.error("id", f"id {doc_id} does not match the {named_by}'s number {number}")
    return doc_id


def get_text(doc: Document, key: str) -> str:
    """A text field, stripped, that must not be empty."""
    text = get_field(doc, key, str).strip()
    if not text:
        raise doc.error(key, f"field '{key}' is empty")
    return text


def get_choice(doc: Document, key: str, allowed: tuple[str, ...]) -> str:
    """A text field that must be one of `allowed`."""
    value = get_field(doc, key, str)
    if value not in allowed:
        raise doc.error(key, f"{key} {value!r} is not one of {', '.join(allowed)}")
    return value


def _load_mapping(yaml_text: str, path: Path) -> tuple[dict[str, Any], dict[str, int]]:
    loader = yaml.SafeLoader(yaml_text)
    try:
        node = loader.get_single_node()  # compose first: the node tree keeps each key's line
        if node is None:
            raise FrontMatterError(path, 1, "the front matter is empty")
        if not isinstance(node, yaml.MappingNode):
            line = node.start_mark.line + _YAML_FIRST_LINE
            raise FrontMatterError(path, line, "the front matter must be a mapping of 'field: value'")
        fields = loader.construct_document(node)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + _YAML_FIRST_LINE if mark else 1
        reason = f"invalid YAML: {e.problem or e.context or 'cannot be parsed'}"
        if e.problem and e.context and e.context_mark:  # where the broken construct began
            reason += f" ({e.context} on line {e.context_mark.line + _YAML_FIRST_LINE})"
        raise FrontMatterError(path, line, reason) from None
    except (yaml.YAMLError, ValueError) as e:  # e.g. a reader error, or an impossible date
        raise FrontMatterError(path, 1, f"invalid YAML: {_one_line(e)}") from None
    finally:
        loader.dispose()
    field_lines = {
        str(key.value): key.start_mark.line + _YAML_FIRST_LINE
        for key, _ in node.value
        if isinstance(key, yaml.ScalarNode)
    }
    return fields, field_lines


def _type_name(kind: type) -> str:
    return {int: "an integer", str: "text", list: "a list", dict: "a mapping"}.get(kind, kind.__name__)


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    return f"{type(value).__name__} {_one_line(repr(value))[:40]}"


def _one_line(value: object) -> str:
    return " ".join(str(value).split())
