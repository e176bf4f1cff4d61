"""The random real subset an evaluator compares a set with: the same images per class, drawn
once for the run or afresh for every network (``random_draws: per-run``), labelled the way
the set is (its own least-squares labels when the set's were solved)."""

from __future__ import annotations

import torch
from condensery import RunContext, SyntheticSet, UserError, label_like

from .options import TrainProtocol


def class_counts(synset: SyntheticSet, num_classes: int) -> list[int]:
    return torch.bincount(synset.hard_labels.long().cpu(), minlength=num_classes).tolist()


def random_like(ctx: RunContext, synset: SyntheticSet) -> SyntheticSet:
    """The random real subset with the same images per class as ``synset``.

    A class-balanced set gets exactly the subset the runner uses (``ctx.random_subset``).
    A set with solved (least-squares) labels gets a subset with its own solved labels
    (``label_like``), as the runner's random arm does.
    """
    counts = class_counts(synset, ctx.task.num_classes)
    if len(set(counts)) == 1:
        rnd = ctx.random_subset(counts[0])
    else:
        for c, n in enumerate(counts):
            if ctx.data.class_count(c) < n:
                raise UserError(f"the set has {n} images of class '{ctx.task.class_names[c]}', more than "
                                f"the {ctx.data.class_count(c)} real training images; no random subset of that size exists")
        rnd = draw(ctx, counts, ctx.generator("random-subset", tuple(counts)),
                   {"method": "random", "num_classes": ctx.task.num_classes})
    rnd.metadata["role"] = "random"
    return label_like(ctx, synset, rnd)


def draw(ctx: RunContext, counts: list[int], gen: torch.Generator, metadata: dict) -> SyntheticSet:
    """Real training images, ``counts[c]`` of class ``c``, drawn with ``gen``."""
    idx = torch.cat([ctx.data.class_batch_indices(c, n, gen) for c, n in enumerate(counts) if n])
    # which training images were drawn, so a result can say exactly what its random arm was
    return SyntheticSet(ctx.data.train_x[idx], ctx.data.train_y[idx],
                        metadata={**metadata, "drawn_indices": idx.tolist()})


def subject_for_run(ctx: RunContext, protocol: TrainProtocol, synset: SyntheticSet, run: int) -> SyntheticSet:
    """What run ``run`` trains on: the set itself, or, for the random baseline under
    ``random_draws: per-run``, its own class-balanced draw with the same images per class.

    One draw trained with several seeds hides the luck of the draw; measured at digits IPC 1,
    one draw scored 52 % while fresh draws scored 66 ± 7 % (docs/results.md). A random arm
    with solved labels (``label_solver``) solves each fresh draw's labels anew.
    """
    if protocol.random_draws == "one" or synset.metadata.get("role") != "random":
        return synset
    counts = class_counts(synset, ctx.task.num_classes)
    fresh = draw(ctx, counts, ctx.generator("random-draw", tuple(counts), run), dict(synset.metadata))
    return label_like(ctx, synset, fresh, "run", run)  # its own solved labels, if the arm has them


def draw_record(subject: SyntheticSet) -> list[int] | None:
    """The training-split indices a per-run random draw took (None for any other subject)."""
    return subject.metadata.get("drawn_indices")
