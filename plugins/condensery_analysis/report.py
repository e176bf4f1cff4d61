"""The analysis report: ``report.md`` with a table per section and three PNG figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from condensery import RunContext, SyntheticSet
from condensery.api.files import atomic_path, write_atomic
from condensery.outputs import PNG_METADATA

FIGURES = {"substitution": "substitution.png", "dynamics": "dynamics.png", "per-image": "per_image.png"}


def pct(s: dict[str, Any]) -> str:
    return f"{100 * s['mean']:.2f} ± {100 * s['std']:.2f} %"


def display(x: torch.Tensor, ctx: RunContext) -> Any:
    """Images ``[N,C,H,W]`` in the task's space -> numpy arrays for ``imshow`` (vectors as strips)."""
    v = ctx.data.denormalize(x.detach().float()).cpu()
    c, h, w = v.shape[1:]
    if c not in (1, 3):  # vectors stored as [d,1,1]: one row of d values, scaled jointly
        v = v.reshape(len(v), 1, -1)
        return ((v - v.min()) / (v.max() - v.min()).clamp_min(1e-12)).numpy()
    v = v.clamp(0, 1)
    return v[:, 0].numpy() if c == 1 else v.permute(0, 2, 3, 1).numpy()


def _save(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png", metadata=PNG_METADATA)
    plt.close(fig)


def plot_substitution(sub: dict[str, Any], path: Path) -> None:
    import matplotlib.pyplot as plt

    rows = sub["rows"]
    fig, ax = plt.subplots(figsize=(1.9 * len(rows) + 2, 3.6))
    xs = range(len(rows))
    for j, (key, label) in enumerate((("set", "with the distilled set"), ("random", "with as many random real images"))):
        ax.bar([x + (j - 0.5) * 0.38 for x in xs], [100 * r[key]["mean"] for r in rows], 0.38,
               yerr=[100 * r[key]["std"] for r in rows], label=label, capsize=3)
    for x, r in zip(xs, rows):
        if "real_alone" in r:
            ax.hlines(100 * r["real_alone"]["mean"], x - 0.4, x + 0.4, colors="k", linestyles="dashed")
    ax.set_xticks(list(xs), [f"{r['setting']}\n({r['training']})" for r in rows], fontsize=8)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("substitution (dashed: the real images alone)")
    ax.legend(fontsize=8)
    _save(fig, path)


def plot_dynamics(dyn: dict[str, Any], path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    # checkpoint 0 (initialisation) sits at a quarter of the first iteration on the log axis
    xs = [e if e > 0 else dyn["epochs"][1] / 4 for e in dyn["epochs"]]
    for key, label in (("set", "trained on the distilled set"), ("random", "trained on a random subset")):
        ax.plot(xs, [100 * a for a in dyn[key]["agreement"]], marker="o", ms=3, label=label)
        ax.axvline(xs[dyn["epochs"].index(dyn[key]["best_epoch"])], ls=":", c=ax.lines[-1].get_color())
    ax.plot(xs, [100 * a for a in dyn["checkpoint_accuracy"]], c="gray", ls="--", label="real-data checkpoint accuracy")
    ax.set_xscale("log")
    ax.set_xlabel("epoch of real-data training (log; leftmost = initialisation)")
    ax.set_ylabel("test prediction agreement (%)")
    ax.legend(fontsize=8)
    _save(fig, path)


def plot_per_image(per: dict[str, Any], ctx: RunContext, synset: SyntheticSet, path: Path) -> None:
    import matplotlib.pyplot as plt

    rows = per["images"]
    if not rows:
        return
    k = len(rows[0]["neighbors"])
    syn = display(synset.images[[r["index"] for r in rows]], ctx)
    real = display(ctx.data.train_x[[i for r in rows for i in r["neighbors"]]], ctx)
    vector = syn.ndim == 3 and syn.shape[1] == 1
    cell = (1.6, 0.5) if vector else (1.2, 1.3)
    # constrained layout keeps the suptitle right above the first row (with the default layout
    # and square images, a band of empty space opened between them)
    fig, axes = plt.subplots(len(rows), k + 1, figsize=(cell[0] * (k + 1), cell[1] * len(rows) + 0.4), squeeze=False,
                             layout="constrained")
    names = ctx.task.class_names
    cmap = "gray" if syn.ndim == 3 else None
    for i, r in enumerate(rows):
        axes[i, 0].imshow(syn[i], cmap=cmap, vmin=0, vmax=1, aspect="auto" if vector else "equal")
        axes[i, 0].set_title(f"#{r['index']} '{names[r['label']]}' drop {100 * r['drop']:+.1f}", fontsize=6)
        for j in range(k):
            axes[i, j + 1].imshow(real[i * k + j], cmap=cmap, vmin=0, vmax=1, aspect="auto" if vector else "equal")
            axes[i, j + 1].set_title(f"'{names[r['neighbor_labels'][j]]}' {r['neighbor_similarity'][j]:.2f}", fontsize=6)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("distilled image (test-accuracy drop when left out, points) | nearest real training images", fontsize=8)
    _save(fig, path)


def write_report(result: dict[str, Any], ctx: RunContext, synset: SyntheticSet, out: Path) -> Path:
    """Figures and ``report.md`` for the sections present in ``result``."""
    import matplotlib

    matplotlib.use("Agg")
    out.mkdir(parents=True, exist_ok=True)
    p, o = result["protocol"], result["options"]
    lines = [
        f"# What is in the distilled set of `{result['run_dir']}`",
        "",
        f"Recipe `{result['recipe']}`, method `{result['method']}`, {result['num_images']} images of "
        f"`{result['dataset']}` (per class: {result['images_per_class']}).",
        f"Protocol: model `{p['model'] or ctx.task.model.get('name')}`, {p['epochs']} epochs, lr {p['lr']} "
        f"(set alone: {p['set_lr']}), batch {p['batch_size']}, augmentation `{p['augment']}`; "
        f"{o['runs']} seeds per number; test accuracy at the end of training, mean ± std.",
        "",
        f"Standard protocol: distilled set {pct(result['base']['set'])}, "
        f"random real subset of the same size {pct(result['base']['random'])} (the one-draw subset of "
        "`random_draws: one`; the std is over training seeds only. The evaluators' default draws afresh per "
        "network, like the fresh-draw row below).",
        "",
    ]
    if "substitution" in result:
        plot_substitution(result["substitution"], out / FIGURES["substitution"])
        lines += ["## Substitution outside the standard setting", "",
                  "Does the set stand in for real data when mixed with real images, or when training runs "
                  "far longer than usual? Each row compares adding the distilled set with adding as many "
                  "random real images (same images per class).", "",
                  "| setting | training | with distilled set | with random real images | difference (points) | real images alone |",
                  "|---|---|---|---|---|---|"]
        for r in result["substitution"]["rows"]:
            alone = pct(r["real_alone"]) if "real_alone" in r else "—"
            lines.append(f"| {r['setting']} | {r['training']} | {pct(r['set'])} | {pct(r['random'])} | "
                         f"{100 * r['difference']:+.2f} | {alone} |")
        lines += ["", f"![substitution]({FIGURES['substitution']})", ""]
    if "dynamics" in result:
        d = result["dynamics"]
        plot_dynamics(d, out / FIGURES["dynamics"])
        lines += ["## Early-training dynamics", "",
                  f"A network trained on the real training split ({d['real_train_images']} images, constant lr, "
                  f"{d['real_epochs']} epochs, {d['iterations_per_epoch']} iterations per epoch) is checkpointed at "
                  f"{len(d['epochs'])} log-spaced iterations; each network of the standard protocol is compared with "
                  "every checkpoint by the share of test images on which their predictions agree.", "",
                  "| trained on | most similar real-data epoch | agreement there | agreement with the last checkpoint | that checkpoint's accuracy |",
                  "|---|---|---|---|---|"]
        for key, name in (("set", "distilled set"), ("random", "random real subset")):
            x = d[key]
            lines.append(f"| {name} | {x['best_epoch']:.3g} (iteration {x['best_step']}) | {100 * x['best_agreement']:.1f} % | "
                         f"{100 * x['final_agreement']:.1f} % | {100 * x['checkpoint_accuracy_at_best']:.1f} % |")
        lines += ["", f"![dynamics]({FIGURES['dynamics']})", ""]
    if "per-image" in result:
        per = result["per-image"]
        plot_per_image(per, ctx, synset, out / FIGURES["per-image"])
        names = ctx.task.class_names
        lines += ["## Per-image information", "",
                  f"Test-accuracy drop when one distilled image is left out (full set: {100 * per['full_accuracy']:.2f} %; "
                  f"paired seeds, mean ± std over {o['runs']}), and its nearest real training images "
                  f"({per['neighbor_space']}, cosine similarity).", "",
                  "| image | class | drop (points) | nearest real images (class, similarity) |", "|---|---|---|---|"]
        for r in sorted(per["images"], key=lambda r: -r["drop"]):
            nb = ", ".join(f"#{i} '{names[c]}' {s:.2f}" for i, c, s in
                           zip(r["neighbors"], r["neighbor_labels"], r["neighbor_similarity"]))
            lines.append(f"| #{r['index']} | {names[r['label']]} | {100 * r['drop']:+.2f} ± {100 * r['drop_std']:.2f} | {nb} |")
        if per["images"]:
            lines += ["", f"![per-image]({FIGURES['per-image']})", ""]
    lines += ["", f"Time: {result['seconds']} s."]
    path = out / "report.md"
    write_atomic(path, "\n".join(lines) + "\n")
    return path
