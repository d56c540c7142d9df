"""Which pages the site has: one `Page` (site path, template, context) per page.

Everything here is data gathered before rendering; `inferlab.site.build` claims every page's path
first and only then renders, so a link from one page to another can be checked while rendering.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from inferlab.lab.record_file import Record
from inferlab.learn.curriculum import Lesson
from inferlab.site.benchmarks import TIMED_KINDS, bench_rows, check_rows, environment_items
from inferlab.site.experiments import Experiment, headline, other_fields
from inferlab.site.notes import NoteView
from inferlab.site.portfolio import bench_claims, check_claims, concluded
from inferlab.site.results import ResultFile


@dataclass(frozen=True, slots=True)
class LessonPage:
    lesson: Lesson
    markdown: str  # from `inferlab.learn.render.to_markdown`, or "" if it failed
    error: str  # why the lesson could not be rendered, or ""

    @property
    def site_dir(self) -> str:
        return f"lessons/{self.lesson.number:04d}-{self.lesson.slug}"

    @property
    def page_site_path(self) -> str:
        return f"{self.site_dir}/index.html"


@dataclass(slots=True)
class SiteData:
    lessons: list[LessonPage]
    records: list[Record]
    record_problems: list[str]
    experiments: list[Experiment]
    experiment_problems: list[str]
    results: list[ResultFile]
    result_problems: list[str]
    plots: dict[str, list[str] | str] = field(default_factory=dict)  # result slug -> site paths or why not
    notes: list[NoteView] = field(default_factory=list)  # reading notes, standalone ones flagged
    note_problems: list[str] = field(default_factory=list)  # unreadable note files


@dataclass(frozen=True, slots=True)
class Page:
    path: str
    template: str
    title: str
    context: dict[str, Any]


def record_site_path(record: Record) -> str:
    return f"records/{record.id:04d}.html"


def all_pages(data: SiteData) -> list[Page]:
    lesson_paths = {p.lesson.number: p.page_site_path for p in data.lessons}
    plot_lists = {slug: p for slug, p in data.plots.items() if isinstance(p, list)}
    pages = [
        Page("index.html", "index.html", "inferlab lab", {"data": data, "lesson_paths": lesson_paths}),
        Page("lessons/index.html", "lessons.html", "Lessons", {"lessons": data.lessons}),
        Page(
            "records/index.html",
            "records.html",
            "Learning records",
            {"records": data.records, "problems": data.record_problems, "lesson_paths": lesson_paths},
        ),
        Page(
            "experiments/index.html",
            "experiments.html",
            "Experiments",
            {"experiments": data.experiments, "problems": data.experiment_problems},
        ),
        Page(
            "notes/index.html",
            "notes.html",
            "Reading notes",
            {"notes": data.notes, "problems": data.note_problems},
        ),
        Page(
            "benchmarks/index.html",
            "benchmarks.html",
            "Benchmarks and checks",
            {"results": data.results, "problems": data.result_problems},
        ),
        Page(
            "portfolio.html",
            "portfolio.html",
            "Portfolio",
            {
                "bench_claims": bench_claims(data.results, plot_lists),
                "check_claims": check_claims(data.results),
                "experiments": concluded(data.experiments),
                "records": data.records,
                "lessons": data.lessons,
            },
        ),
    ]
    for page in data.lessons:
        records = [r for r in data.records if r.lesson == page.lesson.number]
        context = {"page": page, "records": records, "lesson_paths": lesson_paths}
        pages.append(Page(page.page_site_path, "lesson.html", page.lesson.title, context))
    for record in data.records:
        context = {"record": record, "lesson_paths": lesson_paths}
        pages.append(Page(record_site_path(record), "record.html", record.title, context))
    for view in data.notes:
        pages.append(Page(view.site_path, "note.html", view.note.title, {"view": view}))
    experiment_of = {f"{e.number:04d}-{e.slug}": e for e in data.experiments}
    for e in data.experiments:
        runs = [r for r in data.results if _experiment_folder(r) == f"{e.number:04d}-{e.slug}"]
        context = {"experiment": e, "headline": headline(e), "other_fields": other_fields(e), "results": runs}
        pages.append(Page(e.page_site_path, "experiment.html", e.title, context))
    for result in data.results:
        experiment = experiment_of.get(_experiment_folder(result))
        pages.append(_result_page(result, data.plots.get(result.slug, []), experiment))
    return pages


def _experiment_folder(result: ResultFile) -> str:
    """The experiment folder an experiment run names (`0003-slug`), or ""."""
    about = result.payload.get("experiment")
    return str(about.get("folder", "")) if result.kind == "experiment" and isinstance(about, dict) else ""


def _result_page(result: ResultFile, plots: list[str] | str, experiment: Experiment | None) -> Page:
    context: dict[str, Any] = {
        "result": result,
        "experiment": experiment,
        "environment": environment_items(result),
        "plots": plots if isinstance(plots, list) else [],
        "plot_note": plots if isinstance(plots, str) else "",
        "wide": True,
    }
    if result.kind in TIMED_KINDS:
        context["bench_rows"] = bench_rows(result)
    elif result.kind == "check":
        context["check_rows"] = check_rows(result)
    title = f"{result.kind} run {result.path.stem} ({result.device})"
    return Page(result.page_site_path, "result.html", title, context)
