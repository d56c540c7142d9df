"""The static site: lessons, learning records, experiments, benchmarks and a portfolio.

`build_site(lab)` renders the lab and the curriculum to HTML (Jinja2 templates with autoescape,
Markdown through markdown-it-py with raw HTML off, plots through matplotlib's Agg backend);
`check_site(folder)` proves every internal link resolves; `make_server` previews it on
127.0.0.1. Nothing here needs a GPU, torch or Triton.
"""

from inferlab.site.build import BuildReport, build_site
from inferlab.site.linkcheck import check_site
from inferlab.site.serve import make_server

__all__ = ["BuildReport", "build_site", "check_site", "make_server"]
