"""How far does each prefix term of a nested pool move its images, with and without ``prefix_weighting: size``?

A multisize step adds the matcher loss of prefixes of k images per class to the full pool's.
Under distribution matching an image's gradient from a k-per-class term is 1/k of its class
mean gap's, so at one pool lr the terms of large prefixes (and the full pool) barely move
their images. ``prefix_weighting: size`` weighs each term by k. This script measures, for each
size k asked, the mean per-image gradient norm of the k-prefix term over that prefix's images,
unweighted (what a per-size run of k images per class gets from its loss: the same term) and
weighted by k, averaged over ``--nets`` held-out matcher draws (steps 10000, 10001, ...: one
network and one real batch per draw, shared by every term, as in the pool's steps).

The images are the recipe's initial ones, those after ``--set synthesizer.iterations=N``
pool steps when N > 0 (the recipe's own options, so its prefix_sampling and weighting), or a
saved set (``--images RUN/synthetic.safetensors``, e.g. a finished pool).

Do the terms pull an image the same way? The draws are split in two halves (even, odd steps)
and each term's gradient is averaged within a half. For every size k, on the prefix's images:
the split-half cosine of term k with itself and of the largest term on the same images (their
reliabilities: how far noise alone lowers a cosine); the cross-half cosine of term k with the
largest size's term (the full pool's); and that cross cosine divided by the square root of the
two reliabilities (the correction for attenuation): about 1 when both terms pull the images the
same way under noise, 0 when their directions are unrelated, below 0 when they oppose. Mean
per-image cosines throughout.

    OMP_NUM_THREADS=1 python studies/prefix_gradient_study.py recipes/any-size/digits-pool-dm.yaml \\
        --sizes 1 7 10 23 50 --set "data.classes=[5,6,7,8,9]" --set synthesizer.iterations=0
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

import torch
from condensery import get_registry, open_task


def first_rows(labels: torch.Tensor, k: int) -> torch.Tensor:
    """Rows of the first ``k`` images of every class, in set order."""
    seen: dict[int, int] = {}
    rows = []
    for i, c in enumerate(labels.tolist()):
        if seen.get(c, 0) < k:
            rows.append(i)
        seen[c] = seen.get(c, 0) + 1
    return torch.tensor(rows, dtype=torch.long, device=labels.device)


def per_image_cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean over rows of the cosine between the rows of ``a`` and ``b`` (each row one image's gradient)."""
    return float(torch.nn.functional.cosine_similarity(a.flatten(1), b.flatten(1), dim=1).mean())


def load_images(path: str, ctx) -> tuple[torch.Tensor, torch.Tensor]:
    """A saved set in the task's normalised space, class order kept (the any-size study's loader)."""
    from any_size_study import load_arm

    synset = load_arm(Path(path), ctx)
    return synset.images, synset.hard_labels


def measure(recipe: str, overrides: list[str], sizes: list[int], nets: int, images_path: str | None = None) -> dict[str, Any]:
    plan, ctx = open_task(recipe, get_registry(), overrides=overrides, needs_synthesizer=True, announce=False)
    matcher, synth = plan.matcher, plan.synthesizer
    matcher.prepare(ctx)
    if images_path is not None:
        images, labels = load_images(images_path, ctx)
    elif synth.options.iterations > 0:
        synset = synth.synthesize(ctx)
        images, labels = synset.images.to(ctx.device), synset.hard_labels.to(ctx.device)
    else:
        images, labels = synth.initial_images(ctx)
    x = images.detach().clone().requires_grad_(True)
    subsets = [first_rows(labels, k) for k in sizes]
    norms: dict[int, list[float]] = {k: [] for k in sizes}
    halves = {k: [torch.zeros_like(x), torch.zeros_like(x)] for k in sizes}  # summed gradients of even / odd draws
    for j in range(nets):
        losses = matcher.subset_losses(x, labels, 10_000 + j, subsets)
        for k, rows, loss in zip(sizes, subsets, losses):
            (grad,) = torch.autograd.grad(loss, x, retain_graph=True)
            norms[k].append(float(grad[rows].flatten(1).norm(dim=1).mean()))
            halves[k][j % 2] += grad.detach()
    largest = max(sizes)
    rows_out = []
    for k, rows in zip(sizes, subsets):
        plain = statistics.mean(norms[k])
        row: dict[str, Any] = {"k": k, "none": plain, "size": k * plain}
        if nets > 1:
            (even, odd), (full_even, full_odd) = halves[k], halves[largest]
            split, split_full = per_image_cosine(even[rows], odd[rows]), per_image_cosine(full_even[rows], full_odd[rows])
            cross = (per_image_cosine(even[rows], full_odd[rows]) + per_image_cosine(odd[rows], full_even[rows])) / 2
            row.update(split_half=split, split_half_largest=split_full, cross_half=cross,
                       agreement=cross / (split * split_full) ** 0.5 if split > 0 and split_full > 0 else None)
        rows_out.append(row)
    return {"recipe": recipe, "overrides": overrides, "nets": nets, "iterations": synth.options.iterations,
            "images": images_path, "rows": rows_out}


def table(result: dict[str, Any]) -> str:
    base = result["rows"][0]
    largest = max(r["k"] for r in result["rows"])
    lines = ["| k | per-image grad, none | / k=1's | per-image grad, size | / k=1's | split-half cosine "
             f"| cross-half cosine with k={largest} | agreement with k={largest} |", "|---" * 8 + "|"]

    def shown(value: float | None) -> str:
        return "–" if value is None else f"{value:.3f}"

    for r in result["rows"]:
        lines.append(f"| {r['k']} | {r['none']:.3g} | {r['none'] / base['none']:.3f} | {r['size']:.3g} | "
                     f"{r['size'] / base['size']:.3f} | {shown(r.get('split_half'))} | {shown(r.get('cross_half'))} "
                     f"| {shown(r.get('agreement'))} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", help="a multisize recipe")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 7, 10, 23, 50], help="prefix sizes to measure")
    parser.add_argument("--nets", type=int, default=5, help="held-out matcher draws to average over")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="recipe override KEY=VALUE")
    parser.add_argument("--images", help="measure this saved set (e.g. a pool run's synthetic.safetensors)")
    parser.add_argument("--out", help="write the result as JSON here")
    args = parser.parse_args()
    result = measure(args.recipe, args.overrides, args.sizes, args.nets, args.images)
    print(table(result))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    from condensery import UserError

    try:
        main()
    except UserError as exc:  # a bad recipe, override or set: one line, exit 2
        print(f"prefix_gradient_study: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
