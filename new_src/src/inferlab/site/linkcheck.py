"""Every internal link of a built site must resolve: a checker over its HTML files.

Each relative `href` or `src` must name a file inside the site (a folder link must have an
`index.html`), and a `#fragment` must name an `id` on the target page. Links with a scheme
(`https:`, `mailto:`, `data:`) lead outside the site and are not followed.
"""

from __future__ import annotations

from functools import cache
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

_LINK_ATTRS = {"href", "src"}


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[tuple[int, str]] = []  # (line, url)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name == "id" or (tag == "a" and name == "name"):
                self.ids.add(value)
            elif name in _LINK_ATTRS:
                self.links.append((self.getpos()[0], value))


def check_site(root: Path) -> list[str]:
    """One `page:line: url: why` line per broken internal link; [] when every link resolves."""
    root = Path(root).resolve()
    parsed = cache(_parse)
    broken = []
    for page in sorted(root.rglob("*.html")):
        for line, url in parsed(page).links:
            why = _why_broken(root, page, url, parsed)
            if why:
                broken.append(f"{page.relative_to(root).as_posix()}:{line}: {url}: {why}")
    return broken


def _why_broken(root: Path, page: Path, url: str, parsed) -> str | None:
    parts = urlsplit(url)
    if parts.scheme or url.startswith("//"):
        return None  # outside the site
    if parts.path.startswith("/"):
        return "absolute path (breaks when the site is not served from the domain's root)"
    target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
    if not target.is_relative_to(root):
        return "points outside the site"
    if target.is_dir():
        target = target / "index.html"
    if not target.is_file():
        return "no such file"
    if parts.fragment and target.suffix == ".html" and unquote(parts.fragment) not in parsed(target).ids:
        return f"no id {parts.fragment!r} on {target.relative_to(root).as_posix()}"
    return None


def _parse(page: Path) -> _Page:
    parser = _Page()
    parser.feed(page.read_text(encoding="utf-8"))
    parser.close()
    return parser
