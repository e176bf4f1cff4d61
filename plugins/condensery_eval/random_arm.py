"""The random arm per network: under ``random_draws: per-run`` every network of the random
baseline trains on its own draw with the set's images per class (the arm itself, drawn
once, is ``condensery.evaluation.random_like``), labelled the way the set is."""

from __future__ import annotations

from condensery import RunContext, SyntheticSet
from condensery.evaluation import class_counts, draw_real, label_like

from .options import TrainProtocol


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
    fresh = draw_real(ctx, counts, ctx.generator("random-draw", tuple(counts), run), dict(synset.metadata))
    return label_like(ctx, synset, fresh, "run", run)  # its own solved labels, if the arm has them


def draw_record(subject: SyntheticSet) -> list[int] | None:
    """The training-split indices a per-run random draw took (None for any other subject)."""
    return subject.metadata.get("drawn_indices")
