"""Kernel commands: `run` (the main job), `check` (one kernel in detail) and `doctor`."""

from __future__ import annotations

import typer

from inferlab.cli.console import console
from inferlab.cli.options import LabOption

DTYPES = {
    "fp32": "float32",
    "float32": "float32",
    "fp16": "float16",
    "float16": "float16",
    "bf16": "bfloat16",
    "bfloat16": "bfloat16",
}


def _parse_dtypes(names: list[str] | None):
    import torch

    from inferlab.errors import InferlabError

    if not names:
        return None
    out = []
    for name in names:
        if name.lower() not in DTYPES:
            raise InferlabError(f"unknown dtype {name!r}; use one of fp32, fp16, bf16")
        out.append(getattr(torch, DTYPES[name.lower()]))
    return out


def _select_specs(names: list[str] | None):
    from inferlab.errors import InferlabError
    from inferlab.kernels import REGISTRY, get_spec

    if not names:
        return REGISTRY
    try:
        return tuple(get_spec(n) for n in names)
    except ValueError as e:
        raise InferlabError(str(e)) from None


def run(
    kernel: list[str] = typer.Option(None, "--kernel", "-k", help="Only this kernel (repeatable)."),
    dtype: list[str] = typer.Option(None, "--dtype", "-d", help="Only this dtype: fp32, fp16, bf16."),
    lab: LabOption = None,
) -> None:
    """The main job: check every kernel against its PyTorch reference, record the result, say
    what to learn next. Exits non-zero if any kernel fails.

    With no GPU, kernels run through Triton's CPU interpreter at small shapes.

    Examples: `inferlab run` · `inferlab run -k add -d fp16`
    """
    from rich.table import Table

    from inferlab.bench.checks import rows_to_json, sweep
    from inferlab.bench.environment import fingerprint
    from inferlab.kernels.device import select_backend
    from inferlab.lab import Lab
    from inferlab.lab.results import save_result

    the_lab = Lab.open(lab)  # fail on a bad --lab before spending time on kernels
    specs = _select_specs(kernel)
    dtypes = _parse_dtypes(dtype)
    backend = select_backend()
    console.print(f"Checking {len(specs)} kernel(s) on [bold]{backend.label}[/]: {backend.reason}.")
    with console.status("checking...") as status:
        rows = sweep(specs, dtypes, on_result=lambda r: status.update(f"checked {r.spec} {r.dims} {r.dtype}"))

    table = Table(title="Kernels against their PyTorch references")
    for col in ("kernel", "dtype", "shapes", "result", "max error", "device"):
        table.add_column(col)
    for row in rows:
        if row.skipped:
            verdict = f"[yellow]SKIP[/] {row.skipped}"
        else:
            verdict = "[green]PASS[/]" if row.passed else "[bold red]FAIL[/]"
        names = ["x".join(map(str, s)) for s in row.shapes]
        shapes = " ".join(names) if len(names) <= 3 else f"{len(names)} shapes, {names[0]} … {names[-1]}"
        table.add_row(row.kernel, row.dtype, shapes, verdict, f"{row.max_abs_err:.2g}", backend.device)
    console.print(table)
    for row in rows:
        for r in row.results:
            if not r.passed:
                console.print(f"[red]{r.message}[/]", highlight=False)

    path = save_result(
        the_lab, "check", {"kind": "check", "environment": fingerprint(), "rows": rows_to_json(rows)}
    )
    console.print(f"Result written to {path}")
    _print_next_step(the_lab)
    if not all(row.passed or row.skipped for row in rows):
        raise typer.Exit(1)


def _print_next_step(the_lab) -> None:
    from inferlab.learn.next_step import next_step

    console.print(f"[bold]Next:[/] {next_step(the_lab)}")


def check(
    kernel: str = typer.Argument(..., help="Kernel name, e.g. add or swiglu."),
    shape: str = typer.Option(
        None, "--shape", "-s", help="Comma-separated dims, e.g. 4,4096 (default: every test shape)."
    ),
    dtype: list[str] = typer.Option(None, "--dtype", "-d", help="fp32, fp16 or bf16 (repeatable)."),
    seed: int = typer.Option(None, "--seed", help="Reproduce a failure with the seed it printed."),
) -> None:
    """Check one kernel against its reference and print every detail (seed, errors, problems).

    Examples: `inferlab check add` · `inferlab check swiglu --shape 3,1000 -d bf16 --seed 42`
    """
    from inferlab.errors import InferlabError
    from inferlab.kernels.device import select_backend
    from inferlab.kernels.spec import check as check_one

    (spec,) = _select_specs([kernel])
    dtypes = _parse_dtypes(dtype) or spec.dtypes
    if shape:
        try:
            shapes = [tuple(int(d) for d in shape.split(","))]
        except ValueError:
            raise InferlabError(
                f"--shape must be comma-separated integers, like 4,4096, not {shape!r}"
            ) from None
    else:
        shapes = [s.dims for s in spec.test_shapes]
    device = select_backend().device
    failed = False
    for dims in shapes:
        for dt in dtypes:
            result = check_one(spec, dims, dt, device, seed=seed)
            failed |= not result.passed
            console.print(result.message, style=None if result.passed else "red", highlight=False)
    if failed:
        raise typer.Exit(1)


def doctor(lab: LabOption = None) -> None:
    """Print what this machine has (GPU, driver, torch, triton, interpreter, uv, lab) and what
    that allows.

    Example: `inferlab doctor`
    """
    import shutil

    from rich.table import Table

    from inferlab.bench.environment import fingerprint
    from inferlab.lab import Lab

    facts = fingerprint()
    gpu = facts["gpu"]
    table = Table(show_header=False, title="inferlab doctor")
    table.add_row("backend", facts["backend"])
    table.add_row(
        "GPU",
        f"{gpu['name']} (sm_{gpu['capability'].replace('.', '')}, {gpu['sm_count']} SMs, "
        f"{gpu['memory_bytes'] / 2**30:.0f} GiB, L2 {(gpu['l2_bytes'] or 0) / 2**20:.0f} MiB)"
        if gpu
        else "none found",
    )
    table.add_row("driver", (gpu or {}).get("driver") or "-")
    table.add_row("CUDA (torch build)", facts["cuda"] or "none (CPU build)")
    table.add_row("torch", facts["torch"])
    table.add_row("triton", facts["triton"] or "not installed")
    table.add_row("numpy", facts["numpy"] or "-")
    table.add_row("python", facts["python"])
    table.add_row("uv", shutil.which("uv") or "not on PATH")
    table.add_row("git revision", facts["git_revision"] or "-")
    try:
        table.add_row("lab", str(Lab.open(lab).root))
    except Exception as e:  # doctor reports a broken lab instead of stopping at it
        table.add_row("lab", f"[red]{e}[/]")
    console.print(table)
    if gpu:
        allows = "compiled kernels, timing and baselines (`inferlab run`, later `inferlab bench`)"
        if facts["backend"].startswith("cpu"):
            allows = "a GPU is present but TRITON_INTERPRET=1 forces the interpreter; unset it to compile"
    elif facts["triton"]:
        allows = (
            "correctness through Triton's CPU interpreter at small shapes; no timing "
            "(use a Kaggle/Colab T4 notebook or a GPU machine for that)"
        )
    else:
        allows = "references, lessons and quizzes; kernels need Linux (see the README for a container)"
    console.print(f"[bold]This allows:[/] {allows}.")


def register(app: typer.Typer) -> None:
    app.command()(run)
    app.command()(check)
    app.command()(doctor)
