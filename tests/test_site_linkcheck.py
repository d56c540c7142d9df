"""The link checker must catch what it exists to catch: prove it can fail."""

from __future__ import annotations

from inferlab.site import check_site


def _page(root, path, body):
    file = root / path
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(f"<!doctype html><html><body>{body}</body></html>")


def test_a_site_whose_links_all_resolve_passes(tmp_path):
    _page(
        tmp_path,
        "index.html",
        '<a href="a/index.html#top">a</a> <a href="a/">folder</a> <a href="#me" id="me">me</a>',
    )
    _page(
        tmp_path,
        "a/index.html",
        '<h1 id="top">A</h1><img src="../pic.png"><a href="https://example.org/x">out</a>',
    )
    (tmp_path / "pic.png").write_bytes(b"png")
    assert check_site(tmp_path) == []


def test_every_kind_of_broken_link_is_reported(tmp_path):
    _page(
        tmp_path,
        "index.html",
        '<a href="missing.html">1</a>\n<img src="gone.png">\n<a href="a.html#nowhere">2</a>\n'
        '<a href="#absent">3</a>\n<a href="../outside.html">4</a>\n<a href="/rooted.html">5</a>\n'
        '<link rel="stylesheet" href="static/none.css">',
    )
    _page(tmp_path, "a.html", "<h1 id='here'>A</h1>")
    (tmp_path.parent / "outside.html").write_text("x")
    problems = check_site(tmp_path)
    assert len(problems) == 7, problems
    text = "\n".join(problems)
    assert "index.html:1: missing.html: no such file" in text
    assert "gone.png: no such file" in text
    assert "a.html#nowhere: no id 'nowhere' on a.html" in text
    assert "#absent: no id 'absent' on index.html" in text
    assert "../outside.html: points outside the site" in text
    assert "/rooted.html: absolute path" in text
    assert "static/none.css: no such file" in text
