"""A set judged next to the random real subset: one definition for ``condensery run`` and ``condensery eval``.

An accuracy alone says little; what a set is worth is its difference from real images
chosen at random, trained and judged under the same protocol (``comparisons``). The random
arm has the set's own images per class (for a class-balanced set of ``ipc`` per class,
exactly ``ctx.random_subset(ipc)``, the baseline every method is compared with), carries
the set's protocol metadata (teacher, label solver, learned lr) and gets least-squares
labels of its own when the set's were solved. A ``DoneStore`` keeps each finished
(evaluator, set) pair, so an evaluation that is killed redoes only what was unfinished.
``environment`` is what ``metrics.json`` records about where it ran.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .api.capabilities import LabelSolver, require
from .api.components import Evaluator, Result
from .api.context import RunContext
from .api.errors import UserError
from .api.files import write_json
from .api.runtime import Runtime
from .api.synthetic import SyntheticSet

__all__ = [
    "random_like", "draw_real", "class_counts", "label_like", "evaluate_next_to_random",
    "DoneStore", "environment"
]


def class_counts(synset: SyntheticSet, num_classes: int) -> list[int]:
    """Images per class that ``synset`` stands for, for classes ``0..num_classes-1``.

    The count of its ``classes`` or hard labels. A soft-labelled set without ``classes``
    (DWA, SRe2L: labels from a teacher) does not say which class each image was made for;
    its argmax is the teacher's opinion, uneven even for a class-balanced set, so it counts
    as class-balanced when its size allows (``len / num_classes`` each), else by argmax.
    """
    if synset.soft and synset.classes is None and len(synset) % num_classes == 0:
        return [len(synset) // num_classes] * num_classes
    return torch.bincount(synset.hard_labels.long().cpu(), minlength=num_classes).tolist()


def draw_real(ctx: RunContext, counts: list[int], gen: torch.Generator, metadata: dict[str, Any]) -> SyntheticSet:
    """Real training images, ``counts[c]`` of class ``c``, drawn with ``gen``; the drawn
    training-split indices are kept as ``metadata["drawn_indices"]``, so a result can say
    exactly what its random arm was."""
    idx = torch.cat([ctx.data.class_batch_indices(c, n, gen) for c, n in enumerate(counts) if n])
    return SyntheticSet(ctx.data.train_x[idx], ctx.data.train_y[idx],
                        metadata={**metadata, "drawn_indices": idx.tolist()})


def random_like(ctx: RunContext, synset: SyntheticSet) -> SyntheticSet:
    """The random arm of ``synset``: real images with its images per class, ``role: random``,
    its ``protocol_metadata()`` and, when its labels were solved, its own solved labels.

    A class-balanced set gets ``ctx.random_subset`` (what the runner always drew); a set with
    uneven class counts gets a draw with those very counts (a balanced draw of the mean size
    would compare it with another class mix).
    """
    counts = class_counts(synset, ctx.task.num_classes)
    if len(set(counts)) == 1:
        rnd = ctx.random_subset(counts[0])
    else:
        for c, n in enumerate(counts):
            if ctx.data.class_count(c) < n:
                raise UserError(f"the set has {n} images of class '{ctx.task.class_names[c]}', more than "
                                f"the {ctx.data.class_count(c)} real training images; no random subset of that size exists")
        rnd = draw_real(ctx, counts, ctx.generator("random-subset", tuple(counts)),
                        {"method": "random", "num_classes": ctx.task.num_classes})
    rnd.metadata["role"] = "random"
    rnd.metadata.update(synset.protocol_metadata())  # the same teacher, label solver and partner lr
    return label_like(ctx, synset, rnd)


def label_like(ctx: RunContext, template: SyntheticSet, subject: SyntheticSet, *stream: Any) -> SyntheticSet:
    """``subject`` labelled the way ``template`` was: its own least-squares labels, or as it is.

    A set whose ``metadata["label_solver"]`` is ``{"matcher": NAME, "options": {...}}`` carries
    labels solved in that matcher's feature space (KRR, MGDD's ``labels.set: krr``); the set
    it is compared with (the random real subset) must get *its own* labels from the same
    solver, or the comparison mixes a label method with an image method. Returns a copy of
    ``subject`` with ``labels = solve_labels(images, classes)``, ``classes`` = its class
    labels and the same ``label_solver``; a template without a solver returns ``subject``.
    ``stream`` (e.g. a run index) further salts the real batch the solve draws.
    """
    spec = template.metadata.get("label_solver")
    if not isinstance(spec, dict):
        return subject
    name, options = spec.get("matcher"), spec.get("options") or {}
    if not isinstance(name, str) or not isinstance(options, dict):
        raise UserError(f"label_solver {spec!r} must be {{matcher: NAME, options: {{...}}}}")
    matcher = ctx.registry.get("matcher", name).build(options, where=f"label_solver matcher '{name}'")
    solver = require(matcher, LabelSolver, "the set's label_solver (the random arm gets its own labels)")
    matcher.prepare(ctx)
    classes = subject.hard_labels
    gen = ctx.generator("label-solve", len(subject), *stream)
    labels = solver.solve_labels(subject.images, classes, gen).detach()
    metadata = {**subject.metadata, "label_kind": "regression", "label_solver": spec}
    return SyntheticSet(subject.images, labels, subject.lr, subject.stages, subject.stage_lrs, metadata,
                        classes.long())


class DoneStore:
    """The finished (evaluator, set) results of one evaluation, kept as JSON at ``path``.

    ``fix`` completes the message for a damaged file (e.g. how to start over). Only the
    main process writes (``write``); every process reads the same file.
    """

    def __init__(self, path: str | Path, write: bool = True, fix: str = "") -> None:
        self.path, self.write = Path(path), write
        self.done: dict[str, list[dict[str, Any]]] = {}
        if self.path.is_file():
            try:
                self.done = json.loads(self.path.read_text())
                [Result.from_json(d) for v in self.done.values() for d in v]
            except (ValueError, UnicodeDecodeError, KeyError, TypeError, AttributeError):
                raise UserError(f"'{self.path}' (the evaluations finished so far) is damaged; delete it to redo "
                                f"them{', or ' + fix if fix else ''}") from None

    def get(self, key: str) -> list[Result] | None:
        """The results kept under ``key``, or None when that evaluation is not finished."""
        return [Result.from_json(d) for d in self.done[key]] if key in self.done else None

    def put(self, key: str, results: list[Result]) -> None:
        self.done[key] = [r.to_json() for r in results]
        if self.write:
            write_json(self.path, self.done)


def evaluate_next_to_random(ctx: RunContext, evaluators: Sequence[tuple[str, Evaluator]], synset: SyntheticSet,
                            done: DoneStore | None = None) -> list[Result]:
    """Every evaluator on ``synset`` and, for those with ``compares_random``, on its random arm
    (``random_like``, drawn once); results have ``set`` ``synthetic`` or ``random``.

    With ``done``, each finished (evaluator, set) pair is taken from it or added to it.
    """
    syn = synset.to(ctx.device)
    syn.metadata["role"] = "synthetic"
    results: list[Result] = []
    random_set = None
    for i, (name, evaluator) in enumerate(evaluators):
        roles = ("synthetic", "random") if evaluator.compares_random else ("synthetic",)
        for role in roles:
            key = f"{i}:{name}:{role}"
            out = None if done is None else done.get(key)
            if out is None:
                if role == "random" and random_set is None:
                    random_set = random_like(ctx, syn)
                out = evaluator.evaluate(syn if role == "synthetic" else random_set, ctx)
                for r in out:
                    r.set = role if role == "random" else (r.set or "synthetic")
                if done is not None:
                    done.put(key, out)
            results.extend(out)
    return results


def environment(runtime: Runtime) -> dict[str, Any]:
    """Where a set was judged, and what its numbers depend on besides the recipe (``metrics.json``).

    Exact bits hold only for one torch build (the version string carries the build, e.g.
    ``+cu130`` or ``+cpu``; ``torch_git`` the commit) on one CPU kernel family
    (``cpu_capability``: AVX2, AVX512, ...) with one thread count; the tests' fingerprints
    are keyed to these fields.
    """
    import accelerate
    import numpy
    import timm

    return {
        "condensery": __version__, "torch": torch.__version__, "torch_git": torch.version.git_version,
        "torch_cuda": torch.version.cuda, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "numpy": numpy.__version__, "timm": timm.__version__, "accelerate": accelerate.__version__,
        "python": platform.python_version(), "machine": platform.machine(),
        "device": str(runtime.device), "mixed_precision": runtime.options.mixed_precision,
        "processes": runtime.num_processes, "threads": torch.get_num_threads(),
    }
