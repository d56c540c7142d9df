"""Markdown to HTML for the site: markdown-it-py, with raw HTML switched off.

Records and experiments are written by the learner, so their Markdown is untrusted: `html=False`
makes `<script>` or `<img onerror=...>` in a record show as text, and markdown-it's own link
check already refuses `javascript:`-style URLs. On top of CommonMark this adds what the site
needs: ids on headings (so `#anchors` resolve), tables wrapped in a scroll container (phones),
a lone image shown as a figure with its caption, code highlighted by Pygments, and relative
links that point at nothing the site publishes turned into plain text (so no link is broken).
"""

from __future__ import annotations

import posixpath
import re
import unicodedata
from collections.abc import Callable
from urllib.parse import unquote, urlsplit

from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from markupsafe import Markup, escape

CODE_CSS_CLASS = "highlight"
_EXTERNAL_SCHEMES = ("http", "https", "mailto")
_COMMENT_LINE = re.compile(r"<!--(?:(?!-->).)*-->")


def slugify(text: str) -> str:
    """`"CUDA: grid → block"` -> `"cuda-grid-block"`: a heading's id."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-") or "section"


class MarkdownRenderer:
    """Renders Markdown for pages of one site; `published(path)` says whether a site path exists."""

    def __init__(self, published: Callable[[str], bool]) -> None:
        self._published = published
        self._md = MarkdownIt("commonmark", {"html": False, "highlight": _highlight})
        self._md.enable(["table", "strikethrough"])
        self._md.core.ruler.push("heading_ids", _heading_ids)
        self._md.core.ruler.push("local_links", self._local_links)
        self._md.core.ruler.push("figures", _figures)
        self._md.add_render_rule("image", _render_image)
        self._md.add_render_rule("table_open", _render_table_open)
        self._md.add_render_rule("table_close", _render_table_close)

    def render(self, text: str, page_path: str) -> Markup:
        """`text` as HTML for the page at site path `page_path` (e.g. `records/0001.html`)."""
        return Markup(self._md.render(_drop_comment_lines(text), {"page_path": page_path}))

    def _local_links(self, state: StateCore) -> None:
        page_dir = posixpath.dirname(state.env.get("page_path", ""))
        ids = state.env.get("heading_ids", set())
        for token in state.tokens:
            for child in token.children or ():
                if child.type == "link_open" and not self._target_ok(str(child.attrs["href"]), page_dir, ids):
                    _unlink(token.children, child)
                elif child.type == "image" and not self._target_ok(str(child.attrs["src"]), page_dir, ids):
                    child.type, child.tag = "text", ""
                    child.content = f"[image not published: {child.content or child.attrs['src']}]"
                    child.children, child.attrs = None, {}

    def _target_ok(self, url: str, page_dir: str, ids: set[str]) -> bool:
        parts = urlsplit(url)
        if parts.scheme or url.startswith("//"):
            return parts.scheme in _EXTERNAL_SCHEMES
        if not parts.path:  # `#anchor` within this page
            return not parts.fragment or parts.fragment in ids
        if parts.path.startswith("/"):  # the site may be served below a prefix: never absolute
            return False
        target = posixpath.normpath(posixpath.join(page_dir, unquote(parts.path)))
        return not target.startswith("..") and self._published(target)


def _drop_comment_lines(text: str) -> str:
    """Without lines that are one whole `<!-- ... -->` comment (outside code fences).

    With raw HTML off, a comment would show as text; tools write markers this way (the result
    block of an experiment's README) that Markdown viewers hide, and so does the site.
    """
    kept, fence = [], None
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        marker = re.match(r"(`{3,}|~{3,})", stripped)
        if marker and (
            fence is None or marker.group(1)[0] == fence[0] and len(marker.group(1)) >= len(fence)
        ):
            fence = marker.group(1) if fence is None else None
        elif fence is None and _COMMENT_LINE.fullmatch(stripped):
            continue
        kept.append(line)
    return "".join(kept)


def _unlink(children: list[Token], link_open: Token) -> None:
    """Keep a link's text but drop the link: its `<a>` pair becomes a titled `<span>`."""
    start = children.index(link_open)
    depth = 0
    for token in children[start:]:
        depth += token.nesting if token.type in ("link_open", "link_close") else 0
        if token.type == "link_close" and depth == 0:
            token.tag = "span"
            break
    link_open.tag = "span"
    link_open.attrs = {"class": "unpublished", "title": "this link's target is not part of the site"}


def _heading_ids(state: StateCore) -> None:
    seen: set[str] = set()
    for i, token in enumerate(state.tokens):
        if token.type == "heading_open":
            base = slugify(state.tokens[i + 1].content)
            anchor, n = base, 1
            while anchor in seen:
                n += 1
                anchor = f"{base}-{n}"
            seen.add(anchor)
            token.attrSet("id", anchor)
    state.env["heading_ids"] = seen


def _figures(state: StateCore) -> None:
    """A paragraph holding only an image becomes `<figure>`, its alt text the caption."""
    tokens = state.tokens
    for i in range(1, len(tokens) - 1):
        children = tokens[i].children or []
        opener = tokens[i - 1]
        # a tight list's paragraphs are hidden (not rendered): a figure there would lose its tags
        if (
            opener.type == "paragraph_open"
            and not opener.hidden
            and len(children) == 1
            and children[0].type == "image"
        ):
            tokens[i - 1].tag = tokens[i + 1].tag = "figure"
            children[0].meta["figure"] = True


def _render_image(self, tokens, idx, options, env) -> str:
    token = tokens[idx]
    alt = self.renderInlineAsText(token.children or [], options, env)
    img = f'<img src="{escape(token.attrs["src"])}" alt="{escape(alt)}" loading="lazy">'
    if token.meta.get("figure"):
        return f"{img}<figcaption>{escape(alt)}</figcaption>"
    return img


def _render_table_open(self, tokens, idx, options, env) -> str:
    return '<div class="table-wrap">' + self.renderToken(tokens, idx, options, env)


def _render_table_close(self, tokens, idx, options, env) -> str:
    return self.renderToken(tokens, idx, options, env) + "</div>\n"


def _highlight(code: str, lang: str, _attrs: str) -> str:
    """Pygments HTML (classes only, so the stylesheet colours it), or "" for markdown-it's default."""
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import get_lexer_by_name
    from pygments.util import ClassNotFound

    if not lang:
        return ""
    try:
        lexer = get_lexer_by_name(lang)
    except ClassNotFound:
        return ""
    # markdown-it keeps output that starts with `<pre` as it is, and wraps anything else again
    body = highlight(code, lexer, HtmlFormatter(nowrap=True))
    return f'<pre class="{CODE_CSS_CLASS}"><code>{body}</code></pre>'


def highlight_code(code: str, lang: str) -> Markup:
    """`code` highlighted as `lang`, as a `<pre>` block (escaped text if Pygments lacks `lang`)."""
    return Markup(_highlight(code, lang, "") or f"<pre><code>{escape(code)}</code></pre>")


def code_css() -> str:
    """The stylesheet for highlighted code."""
    from pygments.formatters import HtmlFormatter

    return HtmlFormatter(style="friendly").get_style_defs(f".{CODE_CSS_CLASS}")
