"""Reading a run: Rich tables (time, rate, % of the measured ceiling, speedups with their
intervals and verdicts) and one PNG per kernel (matplotlib, if installed)."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from inferlab.bench.store import Comparison

TABLE_WIDTH = 160  # a pipe gets 80 columns from Rich; the table needs more to stay one row per line
STATUS_STYLE = {"INCORRECT": "bold red", "IMPOSSIBLE": "bold magenta", "unavailable": "yellow"}


def _interval(low: float, high: float, digits: int = 2) -> str:
    return f"[{low:.{digits}f}-{high:.{digits}f}]"


def speedup_text(name: str, ratio: dict) -> str:
    style = {"faster": "green", "slower": "red"}.get(ratio["verdict"], "dim")
    return (
        f"vs {name}: {ratio['value']:.3f}x {_interval(ratio['ci_low'], ratio['ci_high'], 3)} "
        f"[{style}]{ratio['verdict']}[/]"
    )


def bench_table(rows: list[dict], title: str = "Benchmark (cold L2, CUDA-graph replays)") -> Table:
    table = Table(title=title, show_lines=False)
    for col in ("kernel", "shape", "provider", "µs median [p20-p80]", "rate", "% ceiling", "speedup (ours)"):
        table.add_column(col, overflow="fold")
    for r in rows:
        if r["status"] != "ok":
            why = r["problems"][0] if r["problems"] else ""
            style = STATUS_STYLE.get(r["status"], "")
            table.add_row(
                r["kernel"], r["shape"], r["provider"], f"[{style}]{r['status']}[/] {why}", "", "", ""
            )
            continue
        cold, rate = r["cold_us"], r["rate"]
        fraction = rate["fraction_of_ceiling"]
        speedups = "\n".join(speedup_text(n, s) for n, s in r.get("speedups", {}).items())
        time_text = f"{cold['median']:.2f} {_interval(cold['p20'], cold['p80'])}"
        if not r["method"].startswith("cuda-graph"):
            time_text += " (eager events)"
        if cold.get("run_to_run") is not None:  # absent in runs saved before passes
            time_text += f"\nrun-to-run {cold['run_to_run']:.2%}"
        table.add_row(
            r["kernel"],
            r["shape"],
            r["provider"],
            time_text,
            f"{rate['value']:.0f} {rate['unit']}"
            if rate["unit"] == "GB/s"
            else f"{rate['value']:.1f} TFLOP/s",
            "-" if fraction is None else f"{fraction:.0%}",
            speedups,
        )
    return table


def ceilings_table(ceilings: dict, cached: bool) -> Table:
    sheet = ceilings.get("datasheet") or {}
    table = Table(title=f"Ceilings of {ceilings['device']['name']}" + (" (cached)" if cached else ""))
    for col in ("what", "measured", sheet.get("label", "datasheet")):
        table.add_column(col)
    table.add_row(
        "copy bandwidth (read + write)", f"{ceilings['copy_gbps']:.0f} GB/s", _num(sheet, "copy_gbps")
    )
    for dtype, rate in ceilings["matmul_tflops"].items():
        table.add_row(f"{dtype} matmul 8192³", f"{rate:.0f} TFLOP/s", _num(sheet, "matmul_tflops"))
    return table


def _num(sheet: dict, key: str) -> str:
    return f"{sheet[key]:g}" if key in sheet else "unknown"


def _spread_text(spread: float | None) -> str:
    return "none" if spread is None else f"{spread:.2%}"  # the header says which run has none


def compare_table(cmp: Comparison) -> Table:
    """One row per (kernel, shape, dtype, provider); the interval of "B vs A" is already
    stretched by the run-to-run spreads shown beside it."""
    table = Table(title="\n".join(cmp.header))
    for col in ("kernel", "shape", "dtype", "provider", "A µs", "B µs", "run-to-run A / B", "B vs A"):
        table.add_column(col)
    for e in cmp.rows:
        if e["ratio"] is None:
            status = f"A {e['status_a']}, B {e['status_b']}"
            table.add_row(*e["key"], "-", "-", "-", status)
            continue
        ratio = e["ratio"]
        spreads = f"{_spread_text(e['spread_a'])} / {_spread_text(e['spread_b'])}"
        change = f"{ratio['value']:.3f}x {_interval(ratio['ci_low'], ratio['ci_high'], 3)} {ratio['verdict']}"
        table.add_row(*e["key"], f"{e['median_a']:.2f}", f"{e['median_b']:.2f}", spreads, change)
    return table


def plot_kernels(rows: list[dict], folder: Path) -> list[Path] | str:
    """One PNG per kernel: % of ceiling and speedup of ours across its shapes; or why not."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib not installed: no plots"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for kernel in dict.fromkeys(r["kernel"] for r in rows):
        ok = [r for r in rows if r["kernel"] == kernel and r["status"] == "ok"]
        shapes = list(dict.fromkeys(r["shape"] for r in ok))
        if not shapes:
            continue
        fig, (ax_ceiling, ax_speed) = plt.subplots(1, 2, figsize=(12, 4.5))
        for provider in dict.fromkeys(r["provider"] for r in ok):
            by_shape = {r["shape"]: r for r in ok if r["provider"] == provider}
            xs = [i for i, s in enumerate(shapes) if s in by_shape]
            fractions = [(by_shape[shapes[i]]["rate"]["fraction_of_ceiling"] or 0) * 100 for i in xs]
            ax_ceiling.plot(xs, fractions, marker="o", label=provider)
        ours = {r["shape"]: r for r in ok if r["provider"] == "inferlab"}
        baselines = {b for r in ours.values() for b in r.get("speedups", {})}
        for b in sorted(baselines):
            xs = [i for i, s in enumerate(shapes) if s in ours and b in ours[s].get("speedups", {})]
            ratios = [ours[shapes[i]]["speedups"][b] for i in xs]
            values = [x["value"] for x in ratios]
            errors = [
                [v - x["ci_low"] for v, x in zip(values, ratios, strict=True)],
                [x["ci_high"] - v for v, x in zip(values, ratios, strict=True)],
            ]
            ax_speed.errorbar(xs, values, yerr=errors, marker="o", capsize=3, label=f"vs {b}")
        ax_speed.axhline(1.0, color="gray", linewidth=0.8)
        for ax, ylabel in ((ax_ceiling, "% of measured ceiling"), (ax_speed, "speedup of inferlab (95% CI)")):
            ax.set_xticks(range(len(shapes)), shapes, rotation=20, ha="right", fontsize=8)
            ax.set_ylabel(ylabel)
            if ax.get_legend_handles_labels()[0]:  # a kernel with no baseline has no speedup lines
                ax.legend(fontsize=8)
        fig.suptitle(f"{kernel}: cold L2, CUDA-graph replays")
        fig.tight_layout()
        path = folder / f"{kernel}.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        paths.append(path)
    return paths
