"""How the cost of a step grows: tables and a plot from ``tools/bench_matchers.py`` JSON rows.

Seconds per step and peak memory of every method against IPC (at the class count with the
most rows) and against the number of classes (at one IPC), one line per method, for one mixed
precision setting; the markdown tables go to stdout (for BENCHMARKS.md), the figure to PNG.

    python tools/bench_matchers.py --quick --ipcs 1,10,50 --classes 10 -o ipc.json
    python tools/bench_matchers.py --quick --ipcs 10 --classes 2,5,10,20 -o classes.json
    python tools/plot_bench.py ipc.json classes.json --png cost.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def load_rows(paths: list[str], precision: str) -> list[dict]:
    """Every error-free row of ``paths`` at ``precision``; a configuration measured twice keeps its last row."""
    rows: dict[tuple, dict] = {}
    for path in paths:
        for r in json.loads(Path(path).read_text()):
            if "error" not in r and r.get("mixed_precision") == precision:
                rows[(r["method"], r["ipc"], r.get("classes", 10))] = r
    return list(rows.values())


def series(rows: list[dict], vary: str, fixed: str, value: int) -> dict[str, list[tuple[int, dict]]]:
    """Per method, the rows with ``fixed == value`` ordered by ``vary``."""
    out: dict[str, list[tuple[int, dict]]] = {}
    for r in rows:
        if r.get(fixed, 10) == value:
            out.setdefault(r["method"], []).append((r.get(vary, 10), r))
    return {m: sorted(v, key=lambda p: p[0]) for m, v in sorted(out.items()) if len(v) > 1}


def table(lines: dict[str, list[tuple[int, dict]]], vary: str) -> str:
    """A markdown table: one row per method, 's / step, peak MB' per value of ``vary``."""
    values = sorted({x for v in lines.values() for x, _ in v})
    head = f"| method | {' | '.join(f'{vary} {x}' for x in values)} |"
    sep = "|---" * (len(values) + 1) + "|"
    body = []
    for method, points in lines.items():
        cells = {x: f"{r['seconds_per_step']:.3g} s, {r['peak_memory_mb']:.0f} MB" for x, r in points}
        body.append(f"| {method} | {' | '.join(cells.get(x, '–') for x in values)} |")
    return "\n".join([head, sep, *body])


def plot(by_ipc: dict, by_classes: dict, png: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(10, 8))
    for col, (lines, xlabel) in enumerate(((by_ipc, "images per class (IPC)"), (by_classes, "classes"))):
        for row, (key, ylabel) in enumerate((("seconds_per_step", "seconds per step"),
                                             ("peak_memory_mb", "peak memory (MB)"))):
            ax = axes[row][col]
            for method, points in lines.items():
                ax.plot([x for x, _ in points], [r[key] for _, r in points], marker="o", label=method)
            ax.set_xscale("log")
            ax.set_yscale("log")
            xs = sorted({x for v in lines.values() for x, _ in v})
            ax.set_xticks(xs, [str(x) for x in xs])
            ax.minorticks_off()
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            ax.grid(True, which="both", alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    if not handles:  # no against-IPC lines: take the legend from the against-classes panel
        handles, labels = axes[0][1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=max(len(labels), 1), fontsize=8)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(png, dpi=110)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("json", nargs="+", help="bench_matchers.py -o files")
    ap.add_argument("--precision", default="no", help="mixed precision setting to show (no, bf16, fp16)")
    ap.add_argument("--ipc", type=int, default=10, help="IPC of the against-classes lines")
    ap.add_argument("--png", default=None, help="write the 2x2 figure here")
    args = ap.parse_args(argv)
    rows = load_rows(args.json, args.precision)
    if not rows:
        raise SystemExit(f"no rows at mixed_precision={args.precision} in {', '.join(args.json)}")
    counts = [r.get("classes", 10) for r in rows]  # the against-IPC lines: the class count measured most
    most = max(set(counts), key=lambda k: (counts.count(k), k))
    by_ipc = series(rows, "ipc", "classes", most)
    by_classes = series(rows, "classes", "ipc", args.ipc)
    print(f"Against IPC ({most} classes):\n\n{table(by_ipc, 'IPC')}\n")
    print(f"Against the number of classes (IPC {args.ipc}):\n\n{table(by_classes, 'classes')}")
    if args.png:
        device = rows[0].get("device", "?")
        plot(by_ipc, by_classes, Path(args.png), f"cost of one step ({device}, mixed precision {args.precision})")


if __name__ == "__main__":
    main()
