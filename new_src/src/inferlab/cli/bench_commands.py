"""Speed commands: `ceilings`, `bench KERNEL...` and `bench compare RUN_A RUN_B`.

`bench` is a group whose default command runs kernels, so both `inferlab bench add swiglu`
and `inferlab bench compare A B` work as written. Timing needs a CUDA GPU: without one,
`bench` and `ceilings` say so in one sentence and exit 1, never printing interpreter timings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

from inferlab.cli.console import console, fail
from inferlab.cli.options import LabOption

NO_GPU = (
    "timing needs a CUDA GPU and none is visible here: open a free Kaggle/Colab T4 with "
    "`inferlab notebook`, or run this command on a GPU machine."
)


class _BenchGroup(TyperGroup):
    """Anything that is not a subcommand name goes to `run`: `bench add` is `bench run add`."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h")):
            args = ["run", *args]
        return super().parse_args(ctx, args)


bench_app = typer.Typer(
    cls=_BenchGroup,
    help=(
        "Time kernels against their baselines on a GPU, or compare two saved runs.\n\n"
        "Kernel names go straight after `bench`: `inferlab bench add swiglu` is short for "
        "`inferlab bench run add swiglu`.\n\n"
        "Examples: `inferlab bench add swiglu` · `inferlab bench swiglu --quick` · "
        "`inferlab bench compare RUN_A RUN_B`"
    ),
    rich_markup_mode="markdown",
)


def _print_wide(renderable) -> None:
    """Print a wide table; Rich gives a pipe (a log, a GPU machine's reply) only 80 columns."""
    from rich.console import Console

    from inferlab.bench.report import TABLE_WIDTH

    (console if console.is_terminal else Console(width=TABLE_WIDTH)).print(renderable)


def _require_gpu() -> None:
    """Exit with one sentence unless kernels are compiled for a CUDA GPU in this process."""
    import torch

    from inferlab.kernels.device import select_backend

    if not torch.cuda.is_available():
        fail(NO_GPU)
    backend = select_backend()
    if backend.interpreted:
        fail(
            f"kernels run through Triton's interpreter here ({backend.reason}); "
            "unset TRITON_INTERPRET to time them."
        )


@bench_app.command("run")
def bench_run(
    kernels: Annotated[
        list[str] | None, typer.Argument(metavar="KERNEL", help="Kernels to time (default: all).")
    ] = None,
    shape: Annotated[
        list[str] | None,
        typer.Option(
            "--shape", "-s", help="Only this shape: `llama-3-8b:8192x14336`, `8192x14336` or a model."
        ),
    ] = None,
    provider: Annotated[
        list[str] | None,
        typer.Option(
            "--provider",
            "-p",
            help="Only this baseline beside ours (repeatable): torch, torch.compile, liger.",
        ),
    ] = None,
    quick: Annotated[
        bool, typer.Option("--quick", help="Fewer rounds (2% intervals, 3 s per shape).")
    ] = False,
    self_test: Annotated[
        bool,
        typer.Option("--self-test", help="Also time known-bad providers of `add`; each must be rejected."),
    ] = False,
    save_to: Annotated[
        Path | None,
        typer.Option("--save-to", metavar="DIR", help="Also write the run's JSON (and plots) here."),
    ] = None,
    lab: LabOption = None,
) -> None:
    """Check, then time, each kernel and its baselines at the SPEC's benchmark shapes.

    Every provider is checked on the inputs it is about to be timed on (a wrong one is
    INCORRECT, with no time); times are cold-L2 CUDA-graph replays with 95% intervals; speedups
    are paired and say "faster" or "slower" only when the interval excludes 1.0. The run is
    saved in the lab with raw samples. Method: docs/benchmark-methodology.md.

    Examples: `inferlab bench add swiglu` · `inferlab bench swiglu -s 8192x14336 -p torch --quick` ·
    `inferlab bench --self-test` · `inferlab bench add --save-to benchmarks/results`
    """
    from inferlab.cli.kernel_commands import _select_specs

    specs = _select_specs(kernels) if kernels or not self_test else ()
    _require_gpu()
    _run_and_report(specs, shape, provider, quick, self_test, save_to, lab)


def _run_and_report(specs, shape, provider, quick, self_test, save_to, lab) -> None:
    from inferlab.bench import ceilings as ceil
    from inferlab.bench import report, runner, store
    from inferlab.bench.environment import fingerprint
    from inferlab.bench.providers import providers_for
    from inferlab.errors import InferlabError
    from inferlab.lab import Lab

    the_lab = Lab.open(lab)
    environment = fingerprint()
    card_before = ceil.card_state()
    with console.status("measuring ceilings (cached per device)..."):
        ceilings, cached = ceil.load_or_measure(the_lab, environment)
    console.print(report.ceilings_table(ceilings, cached))
    rule = runner.QUICK if quick else runner.FULL
    rows = []
    with console.status("benchmarking...") as status:

        def on_shape(spec, s):
            status.update(f"{spec.name} {runner.shape_label(s)}: checking, then timing")

        for spec in specs:
            shapes = [s for s in spec.bench_shapes if not shape or any(runner.matches(s, w) for w in shape)]
            if not shapes:
                raise InferlabError(f"no benchmark shape of {spec.name} matches {', '.join(shape)}")
            only = list(dict.fromkeys(["inferlab", *provider])) if provider else None  # ours always
            rows += runner.run_kernel(
                spec, shapes, providers_for(spec, only), ceilings, rule, on_shape=on_shape
            )
        if self_test:
            rows += _self_test_rows(rule, ceilings, on_shape)
    card_after = ceil.card_state()
    options = {"quick": quick, "self_test": self_test, "shapes": shape, "providers": provider}
    payload = store.build_payload(rows, environment, ceilings, card_before, card_after, options)
    paths = store.save_run(the_lab, payload, save_to)
    _print_wide(report.bench_table(rows))
    plots = report.plot_kernels(rows, (save_to or the_lab.results_dir) / f"{paths[0].stem}-plots")
    console.print(plots if isinstance(plots, str) else f"Plots: {', '.join(str(p) for p in plots)}")
    console.print(f"Card before: {card_before}\nCard after:  {card_after}", highlight=False)
    console.print("Run saved to " + " and ".join(str(p) for p in paths))
    failures = runner.self_test_failures(rows) if self_test else []
    for f in failures:
        console.print(f"[bold red]self-test FAILED:[/] {f}")
    ours_bad = [r for r in rows if r["provider"] == "inferlab" and r["status"] in ("INCORRECT", "IMPOSSIBLE")]
    if self_test and not failures:
        console.print("[green]self-test passed:[/] every known-bad provider was rejected where it must be.")
    if failures or ours_bad:
        raise typer.Exit(1)


def _self_test_rows(rule, ceilings, on_shape) -> list[dict]:
    from inferlab.bench import runner
    from inferlab.bench.providers import make_provider, providers_for
    from inferlab.bench.selftest import BAD_PROVIDERS, SELF_TEST_KERNEL, SELF_TEST_SHAPES
    from inferlab.kernels import get_spec
    from inferlab.kernels.spec import BenchShape

    spec = get_spec(SELF_TEST_KERNEL)
    providers = providers_for(spec, ["inferlab", "torch"])
    providers += [make_provider(name, lambda _spec, f=f: f(), spec) for name, f in BAD_PROVIDERS.items()]
    shapes = [BenchShape(dims, "self-test", "known-bad providers") for dims in SELF_TEST_SHAPES]
    return runner.run_kernel(spec, shapes, providers, ceilings, rule, on_shape=on_shape)


@bench_app.command("compare")
def bench_compare(
    run_a: Annotated[str, typer.Argument(metavar="RUN_A", help="A run: JSON path or its name in the lab.")],
    run_b: Annotated[str, typer.Argument(metavar="RUN_B", help="The run to compare with A.")],
    allow_different_devices: Annotated[
        bool, typer.Option("--allow-different-devices", help="Compare runs from different GPUs anyway.")
    ] = False,
    lab: LabOption = None,
) -> None:
    """How each (kernel, shape, dtype, provider) changed from run A to run B, with 95% intervals.

    Refuses runs from different devices unless `--allow-different-devices`. Needs no GPU.

    Examples: `inferlab bench compare 20250101T120000Z-bench 20250102T090000Z-bench` ·
    `inferlab bench compare benchmarks/results/a.json benchmarks/results/b.json`
    """
    from inferlab.bench import report, store
    from inferlab.lab import Lab

    the_lab = Lab.open(lab)
    path_a, path_b = store.resolve_run(run_a, the_lab), store.resolve_run(run_b, the_lab)
    cmp = store.compare_runs(
        store.load_run(path_a), store.load_run(path_b), str(path_a), str(path_b), allow_different_devices
    )
    _print_wide(report.compare_table(cmp))
    for key in cmp.only_in_a:
        console.print(f"only in A: {key}")
    for key in cmp.only_in_b:
        console.print(f"only in B: {key}")


def ceilings(
    lab: LabOption = None,
    refresh: Annotated[bool, typer.Option("--refresh", help="Measure again even if cached.")] = False,
) -> None:
    """Measure this GPU's copy bandwidth and bf16/fp16 matmul rate (cached per device in the lab),
    beside the datasheet figures. Benchmarks report % of these measured ceilings.

    Examples: `inferlab ceilings` · `inferlab ceilings --refresh`
    """
    _require_gpu()
    from inferlab.bench import ceilings as ceil
    from inferlab.bench import report
    from inferlab.bench.environment import fingerprint
    from inferlab.lab import Lab

    with console.status("measuring copy bandwidth and matmul rate..."):
        measured, cached = ceil.load_or_measure(Lab.open(lab), fingerprint(), refresh)
    console.print(report.ceilings_table(measured, cached))


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""
    app.command("ceilings")(ceilings)
    app.add_typer(bench_app, name="bench")
