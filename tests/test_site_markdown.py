"""Markdown for the site: raw HTML stays text, unsafe or unpublished links are not links."""

from __future__ import annotations

from inferlab.site.markdown import MarkdownRenderer, slugify

PUBLISHED = {"records/0001.html", "lessons/0001-x/index.html", "lessons/0001-x/d.svg"}


def _render(text: str, page: str = "records/0002.html") -> str:
    return str(MarkdownRenderer(PUBLISHED.__contains__).render(text, page))


def test_raw_html_is_escaped():
    html = _render("<script>alert(1)</script>\n\nhi <img src=x onerror=alert(1)> there")
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_unsafe_schemes_never_become_links():
    html = _render(
        "[a](javascript:alert(1)) [b](vbscript:x) [c](data:text/html,hi) ![d](javascript:alert(1))"
    )
    assert "href=" not in html and "src=" not in html


def test_relative_links_are_kept_only_when_the_site_has_the_target():
    html = _render(
        "[one](0001.html) [lesson](../lessons/0001-x/index.html) [gone](0009.html) [up](../../x.html)"
    )
    assert 'href="0001.html"' in html and 'href="../lessons/0001-x/index.html"' in html
    assert 'href="0009.html"' not in html and '<span class="unpublished"' in html and "gone" in html
    assert "../../x.html" not in html


def test_anchors_must_name_a_heading_of_the_same_text():
    html = _render("# Why masks\n\n## Why masks\n\n[ok](#why-masks-2) [bad](#nope)")
    assert 'id="why-masks"' in html and 'id="why-masks-2"' in html
    assert 'href="#why-masks-2"' in html and 'href="#nope"' not in html


def test_a_lone_image_is_a_figure_with_its_caption():
    html = _render("![The grid, drawn](d.svg)\n\ntext ![inline](d.svg)", page="lessons/0001-x/index.html")
    figure = '<figure><img src="d.svg" alt="The grid, drawn" loading="lazy">'
    assert figure + "<figcaption>The grid, drawn</figcaption></figure>" in html
    assert '<p>text <img src="d.svg" alt="inline" loading="lazy"></p>' in html


def test_missing_images_become_text():
    html = _render("![plot](plot.png)")
    assert "<img" not in html and "[image not published: plot]" in html


def test_tables_scroll_and_code_is_highlighted():
    html = _render("| a |\n|---|\n| 1 |\n\n```python\nx = 1\n```\n\n```\nplain <b>\n```")
    assert '<div class="table-wrap"><table>' in html
    assert '<pre class="highlight"><code><span class="n">x</span>' in html
    assert "<pre><code>plain &lt;b&gt;" in html


def test_slugify():
    assert slugify("CUDA: grid → block → thread") == "cuda-grid-block-thread"
    assert slugify("→") == "section"
