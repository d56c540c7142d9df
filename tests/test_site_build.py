"""`build_site`: every page is there, every internal link resolves, learner text stays text,
broken files are reported rather than fatal, and 100 pages build in well under 10 s."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from inferlab.errors import InferlabError
from inferlab.lab import init_lab, new_record
from inferlab.site import build_site, check_site
from test_site_support import XSS_IMG, XSS_SCRIPT, check_payload, make_lab


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One build shared by the tests that only read it (plots make a build take a second)."""
    lab = make_lab(tmp_path_factory.mktemp("built") / "lab")
    report = build_site(lab, repo_results=None)
    return lab, report


def _html_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.html"))


class _Elements(HTMLParser):
    """Every start tag with its attributes, to look for anything that could run."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _elements(path: Path) -> list[tuple[str, dict]]:
    parser = _Elements()
    parser.feed(path.read_text())
    return parser.tags


def test_every_internal_link_resolves(built):
    _, report = built
    assert check_site(report.out) == []


def test_builds_the_pages_of_every_section(built):
    lab, report = built
    out = report.out
    assert out == lab.root / "site"
    for page in (
        "index.html",
        "portfolio.html",
        "lessons/index.html",
        "lessons/0001-thread-block-grid/index.html",
        "records/index.html",
        "records/0001.html",
        "records/0002.html",
        "experiments/index.html",
        "experiments/0001-add-bandwidth/index.html",
        "benchmarks/index.html",
        "benchmarks/lab-20260101T000000Z-bench.html",
        "benchmarks/lab-20260101T000001Z-check.html",
        "benchmarks/lab-20260101T000003Z-experiment.html",
    ):
        assert (out / page).is_file(), page
    assert report.pages == len(_html_files(out))


def test_every_page_is_readable_on_a_phone(built):
    _, report = built
    css = (report.out / "static" / "style.css").read_text()
    assert "overflow-x: auto" in css and "max-width: 100%" in css
    for page in _html_files(report.out):
        tags = _elements(page)
        viewport = [a for t, a in tags if t == "meta" and a.get("name") == "viewport"]
        assert viewport and "width=device-width" in viewport[0]["content"], page
        html = page.read_text()
        # every table sits in a scroll container, so a wide one never widens the page
        assert html.count("<table") == html.count('<div class="table-wrap">\n<table') + html.count(
            '<div class="table-wrap"><table'
        ), page


def test_learner_html_is_shown_as_text_and_never_runs(built):
    _, report = built
    record_page = (report.out / "records" / "0002.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in record_page
    assert "&lt;img src=x onerror=alert(2)&gt;" in record_page
    for page in _html_files(report.out):
        text = page.read_text()
        assert XSS_SCRIPT not in text and XSS_IMG not in text, page
        for tag, attrs in _elements(page):
            assert tag != "script", page
            handlers = [name for name in attrs if name.startswith("on")]
            assert not handlers, (page, tag, handlers)
            for name in ("href", "src"):
                assert not str(attrs.get(name, "")).lower().startswith("javascript:"), page


def test_javascript_links_in_a_record_are_not_links(tmp_path):
    lab = init_lab(tmp_path / "lab")
    new_record(
        lab,
        "links",
        body="[click](javascript:alert(1)) and [x](JAVASCRIPT:alert(1))",
        links=["javascript:alert(1)"],
    )
    report = build_site(lab, repo_results=None)
    page = report.out / "records" / "0001.html"
    hrefs = [a.get("href", "") for t, a in _elements(page) if t == "a"]
    assert not any("alert" in h for h in hrefs)
    assert "javascript:alert(1)" in page.read_text()  # shown, as text


def test_a_broken_record_is_listed_as_a_problem(built):
    _, report = built
    records_page = (report.out / "records" / "index.html").read_text()
    assert "Problems (1)" in records_page
    assert "records/0003-broken.md:" in records_page
    assert str(report.out.parent) not in records_page  # no absolute path of the learner's disk
    assert any("0003-broken.md" in p for p in report.problems)
    assert not (report.out / "records" / "0003.html").exists()


def test_record_markdown_gets_anchors_tables_and_highlighted_code(built):
    _, report = built
    page = (report.out / "records" / "0001.html").read_text()
    assert 'id="the-fix"' in page and 'href="#the-fix"' in page
    assert '<pre class="highlight"><code>' in page
    assert 'href="https://triton-lang.org/"' in page
    # a relative link to nothing the site publishes stays as text, so no link is broken
    assert 'href="../nowhere.html"' not in page and "a missing page" in page
    assert 'href="../lessons/0001-thread-block-grid/index.html"' in page  # the record's lesson


def test_lesson_pages_show_the_package_code_and_diagrams(built):
    _, report = built
    folder = report.out / "lessons" / "0001-thread-block-grid"
    page = (folder / "index.html").read_text()
    assert "_add_kernel" in page and "inferlab/kernels/elementwise.py:" in page
    assert (folder / "grid-vs-programs.svg").is_file()
    assert '<img src="grid-vs-programs.svg"' in page and "<figcaption>" in page
    assert "Why the mask matters" in page  # the record on this lesson is linked


def test_experiments_show_front_matter_body_and_their_files(built):
    _, report = built
    folder = report.out / "experiments" / "0001-add-bandwidth"
    page = (folder / "index.html").read_text()
    assert page.count("Does add reach the copy bandwidth?") == 2  # <title> and <h1>: the body's is dropped
    assert "<th>metric</th>" in page and "<td>268435456</td>" in page  # predictions as a table
    assert "inferlab:result" not in page  # the README's marker comments are hidden, as on GitHub
    assert (folder / "plot.png").is_file() and '<img src="plot.png"' in page
    assert (folder / "run.py").is_file() and '<span class="k">def</span>' in page
    # the learner's SVG could carry script: it is not published, and its link becomes text
    assert not (folder / "notes.svg").exists() and 'href="notes.svg"' not in page
    assert 'href="../../benchmarks/lab-20260101T000003Z-experiment.html"' in page
    run_page = (report.out / "benchmarks" / "lab-20260101T000003Z-experiment.html").read_text()
    assert 'href="../experiments/0001-add-bandwidth/index.html"' in run_page and "1.80×" in run_page
    listing = (report.out / "experiments" / "index.html").read_text()
    assert "0002-no-front-matter/README.md:1:" in listing
    portfolio = (report.out / "portfolio.html").read_text()
    assert "88% at 256M elements; below L2 size the launch dominates." in portfolio
    assert "More detail" not in portfolio


def test_no_experiments_and_no_results_still_build(tmp_path):
    lab = init_lab(tmp_path / "lab")
    (lab.experiments_dir).rmdir()
    report = build_site(lab, repo_results=None)
    assert check_site(report.out) == []
    assert "No experiments yet" in (report.out / "experiments" / "index.html").read_text()
    assert "No benchmark runs yet" in (report.out / "portfolio.html").read_text()


def test_bench_and_check_runs_become_tables_plots_and_claims(built):
    _, report = built
    bench = (report.out / "benchmarks" / "lab-20260101T000000Z-bench.html").read_text()
    assert "llama-3-8b:8192x14336" in bench and "unavailable" in bench
    assert "1.80× [1.75–1.85]" in bench
    plots = list((report.out / "benchmarks" / "plots").glob("lab-20260101T000000Z-bench-*/swiglu.png"))
    assert len(plots) == 1 and plots[0].read_bytes()[:4] == b"\x89PNG"
    check = (report.out / "benchmarks" / "lab-20260101T000001Z-check.html").read_text()
    assert "FAIL" in check and "max error 0.5 &gt; tolerance" in check
    index = (report.out / "benchmarks" / "index.html").read_text()
    assert "results/20260101T000002Z-bench.json: cannot be read as JSON" in index
    portfolio = (report.out / "portfolio.html").read_text()
    assert "swiglu on NVIDIA H100 80GB HBM3" in portfolio
    assert "1.80× [1.75–1.85] faster than torch" in portfolio
    assert "inferlab bench swiglu -s llama-3-8b:" in portfolio
    assert 'href="benchmarks/files/lab/20260101T000000Z-bench.json"' in portfolio
    assert "2 of 3 (kernel, dtype) pairs match" in portfolio and "Failed: softmax float16" in portfolio


def test_committed_results_back_the_portfolio_first(tmp_path):
    lab = make_lab(tmp_path / "lab")
    repo = tmp_path / "repo-results"
    repo.mkdir()
    (repo / "20250101T000000Z-h100-check.json").write_text(json.dumps(check_payload()))
    report = build_site(lab, repo_results=repo)
    portfolio = (report.out / "portfolio.html").read_text()
    assert "benchmarks/results/20250101T000000Z-h100-check.json" in portfolio
    assert portfolio.count("Correct on NVIDIA H100 80GB HBM3") == 1  # the lab's run on that card defers
    assert (report.out / "benchmarks/files/repo/20250101T000000Z-h100-check.json").is_file()
    assert check_site(report.out) == []


def test_the_repository_results_are_found_from_a_checkout():
    from inferlab.site.results import repo_results_dir

    folder = repo_results_dir()
    assert folder is not None and folder.name == "results" and folder.parent.name == "benchmarks"


def test_a_rebuild_replaces_the_site_and_reuses_plots(tmp_path):
    lab = make_lab(tmp_path / "lab")
    report = build_site(lab, repo_results=None)
    plot = sorted(report.out.glob("benchmarks/plots/*/swiglu.png"))[0].relative_to(report.out)
    (report.out / plot).write_bytes(b"\x89PNG reused")  # an unchanged run's plot is copied, not redrawn
    (report.out / "stale.html").write_text("old")
    again = build_site(lab, repo_results=None)
    assert not (again.out / "stale.html").exists()
    assert (again.out / plot).read_bytes() == b"\x89PNG reused"
    leftovers = [p.name for p in lab.root.iterdir() if p.name.startswith(".site.")]
    assert leftovers == []


def test_refuses_to_replace_a_folder_it_did_not_make(tmp_path):
    lab = init_lab(tmp_path / "lab")
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "mine.txt").write_text("keep me")
    with pytest.raises(InferlabError, match="not made by `inferlab site build`"):
        build_site(lab, notes, repo_results=None)
    assert (notes / "mine.txt").read_text() == "keep me"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".notes")] == []


def test_a_hundred_pages_build_in_under_ten_seconds(tmp_path):
    lab = init_lab(tmp_path / "lab")
    body = "## Recall\n\nSome *text* with `code` and a list:\n\n- one\n- two\n\n```python\nx = 1\n```\n"
    for i in range(100):
        new_record(lab, f"Record number {i}", lesson=1, status="corrected", body=body)
    start = time.perf_counter()
    report = build_site(lab, repo_results=None)
    seconds = time.perf_counter() - start
    assert report.pages >= 100
    assert seconds < 10, f"{report.pages} pages took {seconds:.1f} s"
    assert check_site(report.out) == []


def test_building_never_imports_torch(tmp_path):
    lab = init_lab(tmp_path / "lab")
    code = (
        "import sys; from inferlab.lab import Lab; from inferlab.site import build_site; "
        f"build_site(Lab.open({str(lab.root)!r})); "
        "bad = [m for m in ('torch', 'triton') if m in sys.modules]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
