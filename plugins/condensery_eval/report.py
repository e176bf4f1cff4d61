"""``condensery report``: runs side by side, as a markdown table and an accuracy-vs-IPC plot."""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from condensery import UserError
from condensery.api.files import atomic_path
from condensery.compare import comparisons, pooled_interval
from condensery.outputs import PNG_METADATA

#: runtime settings that change speed or bookkeeping, never the numbers
_SPEED_ONLY = ("threads", "checkpoint_every", "log_with")


def load_run(path: str | Path) -> dict[str, Any]:
    """A run's metrics.json (given the run directory or the file itself)."""
    path = Path(path)
    file = path / "metrics.json" if path.is_dir() else path
    if not file.is_file():
        raise UserError(f"'{path}' has no metrics.json; give finished run directories (condensery run / eval)")
    try:
        metrics = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"'{file}' is not valid JSON ({exc})") from None
    if not isinstance(metrics, dict) or not isinstance(metrics.get("results"), list):
        raise UserError(f"'{file}' lacks a 'results' list; it is not a condensery metrics.json")
    metrics["_path"] = str(path)
    return metrics


def _pct(r: dict[str, Any] | None) -> str:
    return "–" if r is None else _points((r["mean"], r.get("std", 0.0)))


def rows(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (run, evaluator, model, arm): synthetic next to random."""
    out = []
    for m in runs:
        groups: dict[tuple, dict[str, dict]] = defaultdict(dict)
        for r in m["results"]:
            key = (r.get("evaluator", "?"), r.get("model", "?"), r.get("arm", ""))
            groups[key][r.get("set", "synthetic")] = r
        for (ev, model, arm), sets in groups.items():
            if "synthetic" not in sets and "random" not in sets:
                continue  # e.g. the full-data reference of the ranking evaluator
            syn = sets.get("synthetic")
            compared = comparisons([syn, sets["random"]]) if syn and "random" in sets else []
            out.append({
                "method": m.get("method", "?") + (f"+{m['matcher']}" if m.get("matcher") else ""), "dataset": m.get("dataset", "?"), "ipc": m.get("ipc"),
                "evaluator": ev if arm in ("", "method") else f"{ev} ({arm})", "model": model,
                "synthetic": syn, "random": sets.get("random"),
                "lrs": syn.get("lrs") if syn else None, "ars": syn.get("ars") if syn else None,
                "primary": arm in ("", "method"), "run": m["_path"].rstrip("/"),
                "comparison": compared[0] if compared else None,
            })
    return out


def _with_current_defaults(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` resolved again, so a run written before an option existed states its default too.

    A recipe that no longer resolves (its plugin gone, an option since removed) is compared
    as written.
    """
    from condensery import get_registry, load_plan

    try:
        return load_plan(doc, get_registry(), needs_synthesizer=True).resolved
    except UserError:
        return doc


def _recipe_without_seed(run: dict[str, Any]) -> tuple[str, int] | None:
    """(the run's resolved recipe minus its seed, as a comparable key; the seed), if it has one.

    Evaluations of an existing set (``condensery eval``) keep their source in the key, so
    only evaluations of the same set are pooled.
    """
    from condensery.tasks import read_recipe

    base = Path(run["_path"])
    try:
        doc = read_recipe((base if base.is_dir() else base.parent) / "recipe.yaml")
    except (UserError, UnicodeDecodeError):
        return None  # no readable recipe beside it: the run is reported, just not pooled
    if not isinstance(doc.get("seed"), int):
        return None
    doc = _with_current_defaults(doc)
    rest = {k: v for k, v in doc.items() if k != "seed"}
    if isinstance(rest.get("runtime"), dict):
        rest["runtime"] = {k: v for k, v in rest["runtime"].items() if k not in _SPEED_ONLY}
    return json.dumps([rest, run.get("source")], sort_keys=True, default=str), doc["seed"]


def seed_groups(runs: list[dict[str, Any]]) -> list[list[tuple[int, dict[str, Any]]]]:
    """Runs whose recipes differ only in ``seed`` (two or more, all seeds distinct), by seed."""
    by_key: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for m in runs:
        keyed = _recipe_without_seed(m)
        if keyed is not None:
            by_key[keyed[0]].append((keyed[1], m))
    groups = []
    for members in by_key.values():
        seeds = [s for s, _ in members]
        if len(members) > 1 and len(set(seeds)) == len(seeds):
            groups.append(sorted(members, key=lambda t: t[0]))
    return groups


def _mean_std(xs: list[float]) -> tuple[float, float]:
    return statistics.fmean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0


def seed_rows(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per group of seeds and (evaluator, model): mean ± std over seeds of each seed's mean.

    Each seed distils its own set and draws its own random subset, so the spread over seeds
    holds the luck of both; the margin is taken per seed (a paired difference), then pooled.
    """
    out = []
    for members in seed_groups(runs):
        per_seed = [{(r["evaluator"], r["model"]): r for r in rows([m]) if r["primary"] and r["synthetic"] and r["random"]}
                    for _, m in members]
        for key in [k for k in per_seed[0] if all(k in p for p in per_seed)]:
            syn = [p[key]["synthetic"]["mean"] for p in per_seed]
            rnd = [p[key]["random"]["mean"] for p in per_seed]
            val = [(p[key]["synthetic"].get("val_mean"), p[key]["random"].get("val_mean")) for p in per_seed]
            val_ok = all(isinstance(a, (int, float)) and isinstance(b, (int, float)) for a, b in val)
            first = per_seed[0][key]
            arms = [(p[key]["synthetic"].get("values") or [p[key]["synthetic"]["mean"]],
                     p[key]["random"].get("values") or [p[key]["random"]["mean"]],
                     bool(p[key]["comparison"] and p[key]["comparison"]["paired"])) for p in per_seed]
            out.append({
                "runs": [m["_path"].rstrip("/") for _, m in members], "seeds": [s for s, _ in members],
                "method": first["method"], "dataset": first["dataset"], "ipc": first["ipc"],
                "evaluator": key[0], "model": key[1],
                "synthetic": _mean_std(syn), "random": _mean_std(rnd),
                "difference": _mean_std([s - r for s, r in zip(syn, rnd)]),
                "ci95": pooled_interval(arms)[1:],  # bootstrap over seeds and, within each, networks
                "val_difference": _mean_std([a - b for a, b in val]) if val_ok else None,
            })
    return out


def _points(ms: tuple[float, float] | None, signed: bool = False) -> str:
    if ms is None:
        return "–"
    return f"{100 * ms[0]:{'+' if signed else ''}.2f} ± {100 * ms[1]:.2f}"


def _interval(ci: Any) -> str:
    """``[+1.20, +3.40]``, with a mark when the interval includes zero (no claim either way)."""
    if not ci:
        return "–"
    low, high = ci
    return f"[{100 * low:+.2f}, {100 * high:+.2f}]" + (" ✗ includes 0" if low <= 0 <= high else "")


def _difference(c: dict[str, Any] | None) -> str:
    if c is None:
        return "–"
    notes = [] if c["paired"] or not c.get("ci95") else ["unpaired"]
    if c.get("random_draws") == "one":
        notes.append("one random draw")
    return f"{100 * c['difference']:+.2f} {_interval(c.get('ci95'))}" + (f" ({', '.join(notes)})" if notes else "")


def _run_name(path: str) -> str:
    """The run folder's name; an ``eval-*`` folder with the run it sits in (``run/eval-x``)."""
    p = Path(path)
    return f"{p.parent.name}/{p.name}" if p.name.startswith("eval") and p.parent.name else p.name


def render(runs: list[dict[str, Any]], plot_name: str | None = None) -> str:
    table = rows(runs)
    has_ars = any(r["ars"] is not None for r in table)
    head = ["run", "method", "dataset", "IPC", "evaluator", "model", "synthetic (%)", "random (%)",
            "synthetic − random, 95 % CI (points)", "LRS"]
    head += ["ARS"] if has_ars else []
    lines = ["# condensery report", "",
             "Test accuracy at the end of training, mean ± std over runs; the random real subset "
             "has the same images per class and the same protocol. The difference is paired network for "
             "network (t interval over the pairs); runs written before pairing get Welch's unpaired interval "
             "and say so; a random arm of one draw trained several times (`random_draws: one`) is marked, "
             "since its interval misses which images were drawn. ✗ marks an interval that includes zero: no "
             "claim either way.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in sorted(table, key=lambda r: (r["dataset"], r["method"], r["ipc"] or 0, r["evaluator"], r["model"])):
        cells = [f"`{_run_name(r['run'])}`", r["method"], r["dataset"], str(r["ipc"]), r["evaluator"], r["model"],
                 _pct(r["synthetic"]), _pct(r["random"]), _difference(r["comparison"]),
                 "–" if r["lrs"] is None else f"{100 * r['lrs']:.2f}"]
        cells += (["–" if r["ars"] is None else f"{100 * r['ars']:.2f}"] if has_ars else [])
        lines.append("| " + " | ".join(cells) + " |")
    fulls = [(m, r) for m in runs for r in m["results"] if r.get("set") == "full"]
    if fulls:
        lines.append("")
        for m, r in fulls:
            lines.append(f"Full training data ({m.get('dataset')}, {r.get('model')}, hard labels): {_pct(r)} %.")
    if has_ars or any(r["lrs"] is not None for r in table):
        lines += ["", "LRS / ARS: DD-Ranking's label- and augmentation-robust scores (×100); see docs/evaluation.md."]
    pooled = seed_rows(runs)
    if pooled:
        lines += ["", "## Over seeds", "",
                  "Runs whose recipes differ only in `seed`. Each seed distils its own set and draws its own "
                  "random subset; mean ± std over seeds of each seed's mean, and of each seed's difference "
                  "(synthetic − random, points; on the validation split where the runs recorded it). The 95 % "
                  "interval is a bootstrap over seeds and, within each seed, over its networks, so it covers the "
                  "distillation's luck too.", "",
                  "| runs | seeds | method | IPC | evaluator | model | synthetic (%) | random (%) | difference | "
                  "95 % CI (seeds × networks) | difference (validation) |",
                  "|" + "---|" * 11]
        for r in pooled:
            cells = [", ".join(f"`{Path(p).name}`" for p in r["runs"]), ", ".join(map(str, r["seeds"])),
                     r["method"], str(r["ipc"]), r["evaluator"], r["model"], _points(r["synthetic"]),
                     _points(r["random"]), _points(r["difference"], signed=True), _interval(r["ci95"]),
                     _points(r["val_difference"], signed=True)]
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Runs: " + ", ".join(f"`{m['_path']}`" for m in runs)]
    if plot_name:
        lines += ["", f"![accuracy against IPC]({plot_name})"]
    return "\n".join(lines) + "\n"


def plot(runs: list[dict[str, Any]], path: Path) -> None:
    """Synthetic accuracy against IPC per method (dashed: the random subset), one panel per evaluator/model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = [r for r in rows(runs) if r["primary"] and isinstance(r["ipc"], (int, float))]
    panels = sorted({(r["dataset"], r["evaluator"], r["model"]) for r in table})
    if not panels:
        panels = [("", "", "")]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for ax, (ds, ev, model) in zip(axes[0], panels):
        here = [r for r in table if (r["dataset"], r["evaluator"], r["model"]) == (ds, ev, model)]
        for method in sorted({r["method"] for r in here}):
            pts = sorted(((r["ipc"], r["synthetic"]) for r in here if r["method"] == method and r["synthetic"]),
                         key=lambda p: p[0])
            if pts:
                ax.errorbar([p[0] for p in pts], [100 * p[1]["mean"] for p in pts],
                            yerr=[100 * p[1].get("std", 0) for p in pts], marker="o", capsize=3, label=method)
        rnd: dict[float, list[float]] = defaultdict(list)
        for r in here:
            if r["random"]:
                rnd[r["ipc"]].append(r["random"]["mean"])
        if rnd:
            xs = sorted(rnd)
            ax.plot(xs, [100 * sum(rnd[x]) / len(rnd[x]) for x in xs], "k--", marker="x", label="random subset")
        ax.set_xscale("log")
        ax.set_xlabel("images per class")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"{ds} · {ev} · {model}".strip(" ·"))
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png", metadata=PNG_METADATA)
    plt.close(fig)


def write_report(run_dirs: list[str], output: str | Path, force: bool = False) -> tuple[Path, Path]:
    """``output`` (markdown) and its plot beside it (``.png``), each under the write rule."""
    from condensery.api.files import write_atomic
    from condensery.outputs import claim_output

    if not run_dirs:
        raise UserError("give at least one run directory, e.g. condensery report runs/a runs/b")
    runs = [load_run(p) for p in run_dirs]
    md = Path(output)
    if md.is_dir():
        raise UserError(f"report -o '{md}' is a directory; give a file name such as {md / 'report.md'}")
    png = md.with_suffix(".png")
    reads = [Path(p) / "metrics.json" if Path(p).is_dir() else Path(p) for p in run_dirs]
    claim_output(md, "report", force=force, reads=reads)
    claim_output(png, "picture", force=force, reads=reads, flag="the plot")
    plot(runs, png)
    write_atomic(md, render(runs, png.name))
    return md, png
