"""`build_site`: the lab and the curriculum as a static site (lessons, records, experiments,
benchmarks, portfolio).

Order matters: gather the data, copy every asset and claim every page path, and only then
render, so Markdown on any page knows which relative links will resolve. A broken record,
experiment or result file never stops a build: it is listed as a problem on its index page.
"""

from __future__ import annotations

import os
import posixpath
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path

import jinja2

from inferlab import __version__
from inferlab.lab.layout import Lab
from inferlab.lab.records import list_records
from inferlab.site.benchmarks import TIMED_KINDS, plot_run
from inferlab.site.experiments import list_experiments
from inferlab.site.markdown import MarkdownRenderer, code_css, highlight_code
from inferlab.site.notes import note_views, standalone_problems
from inferlab.site.output import SiteWriter
from inferlab.site.pages import LessonPage, Page, SiteData, all_pages
from inferlab.site.results import load_results, repo_results_dir

STATIC_FILES = ("style.css", "favicon.svg")
NAV = (
    ("index.html", "Home"),
    ("lessons/index.html", "Lessons"),
    ("records/index.html", "Records"),
    ("experiments/index.html", "Experiments"),
    ("notes/index.html", "Notes"),
    ("benchmarks/index.html", "Benchmarks"),
    ("portfolio.html", "Portfolio"),
)
AUTO = "auto"


@dataclass(slots=True)
class BuildReport:
    out: Path
    pages: int
    seconds: float
    problems: list[str] = field(default_factory=list)  # broken records, experiments, results, lessons


def build_site(lab: Lab, out: Path | None = None, *, repo_results: Path | None | str = AUTO) -> BuildReport:
    """Build the site into `out` (default `<lab>/site/`), replacing a previous build there.

    `repo_results`: the committed `benchmarks/results/` folder to show; by default the one of the
    checkout this package runs from (none when installed from a wheel).
    """
    started = time.perf_counter()
    out = Path(out).expanduser().resolve() if out is not None else lab.root / "site"
    repo_dir = repo_results_dir() if repo_results == AUTO else repo_results
    writer = SiteWriter(out)
    try:
        data = _gather(lab, Path(repo_dir) if repo_dir else None)
        _copy_assets(data, writer)
        pages = all_pages(data)
        for page in pages:
            writer.reserve(page.path)
        environment = _environment(writer)
        for page in pages:
            writer.write_text(page.path, _render(environment, page))
        writer.publish()
    except BaseException:
        writer.discard()
        raise
    problems = data.record_problems + data.experiment_problems + data.result_problems
    problems += data.note_problems + standalone_problems(data.notes)
    problems += [f"lesson {p.lesson.number}: {p.error}" for p in data.lessons if p.error]
    return BuildReport(out, len(pages), time.perf_counter() - started, problems)


def _gather(lab: Lab, repo_dir: Path | None) -> SiteData:
    from inferlab.learn.curriculum import list_lessons

    records, record_problems = list_records(lab)
    experiments, experiment_problems = list_experiments(lab)
    results, result_problems = load_results(lab, repo_dir)
    data = SiteData(
        lessons=[_lesson_page(lesson) for lesson in list_lessons()],
        records=records,
        record_problems=[_relative(p, lab) for p in record_problems],
        experiments=experiments,
        experiment_problems=experiment_problems,
        results=results,
        result_problems=result_problems,
    )
    data.notes, note_problems = note_views(
        lab,
        {p.lesson.number: p.page_site_path for p in data.lessons},
        records,
        {e.number: e.page_site_path for e in experiments},
        {name: r.page_site_path for r in results for name in (r.path.name, r.path.stem)},
        repo_dir,
    )
    data.note_problems = [_relative(p, lab) for p in note_problems]
    return data


def _lesson_page(lesson) -> LessonPage:
    from inferlab.learn import render

    try:
        return LessonPage(lesson, render.to_markdown(lesson), "")
    except ValueError as e:  # a directive naming code that moved: show the lesson's error, go on
        return LessonPage(lesson, "", str(e))


def _copy_assets(data: SiteData, writer: SiteWriter) -> None:
    for name in STATIC_FILES:
        writer.copy(files("inferlab.site") / "static" / name, f"static/{name}")
    writer.write_text("static/code.css", code_css())
    for page in data.lessons:
        for diagram in page.lesson.diagrams:
            writer.copy(page.lesson.file(diagram.file), f"{page.site_dir}/{diagram.file}")
    for experiment in data.experiments:
        for asset in experiment.assets:
            writer.copy(asset, f"{experiment.site_dir}/{asset.name}")
    for result in data.results:
        writer.copy(result.path, result.file_site_path)
        if result.kind in TIMED_KINDS:
            data.plots[result.slug] = plot_run(result, writer)


def _environment(writer: SiteWriter) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("inferlab.site", "templates"),
        autoescape=True,  # every page: learner-written text is always escaped
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    markdown = MarkdownRenderer(lambda path: path in writer.published)

    @jinja2.pass_context
    def url(ctx, site_path: str) -> str:
        """A link from the page being rendered to `site_path`, relative so the site works anywhere."""
        return posixpath.relpath(site_path, posixpath.dirname(ctx["page_path"]) or ".")

    @jinja2.pass_context
    def render_markdown(ctx, text: str):
        return markdown.render(text, ctx["page_path"])

    env.globals.update(url=url, nav=NAV, version=__version__)
    env.globals["built"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    env.filters["markdown"] = render_markdown
    env.filters["highlight"] = highlight_code
    env.filters["plural"] = lambda count, noun: noun if count == 1 else f"{noun}s"
    return env


def _render(env: jinja2.Environment, page: Page) -> str:
    template = env.get_template(page.template)
    return template.render(page_path=page.path, title=page.title, **page.context)


def _relative(problem: str, lab: Lab) -> str:
    """Problems name files by their path in the lab, never by the learner's home folder."""
    prefix = str(lab.root) + os.sep
    return problem[len(prefix) :] if problem.startswith(prefix) else problem
