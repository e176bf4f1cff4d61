"""How different the images of one class are, as the teacher sees them.

``feature_diversity``: mean over classes of the mean pairwise cosine distance (1 - cos) of
the teacher's penultimate features between distinct images of the class. 0 means every
image of a class looks the same to the teacher; higher is more diverse. Classes with a
single image are skipped (IPC 1 has no within-class diversity).

The ``diversity`` evaluator reports it for the synthetic set and, under the same teacher,
for the random real subset, so it lands in metrics.json next to the accuracies.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F
from condensery import Evaluator, Options, Result, RunContext, SyntheticSet, UserError
from condensery.models import embed_batched
from condensery.teachers import load_teacher

from .options import DiversityOptions


@torch.no_grad()
def feature_diversity(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float | None:
    """Mean within-class pairwise cosine distance of ``model``'s features (None if no class has 2 images)."""
    was_training = model.training
    model.eval()
    feats = F.normalize(embed_batched(model, images).float(), dim=1)
    model.train(was_training)
    hard = labels.argmax(dim=1) if labels.dim() == 2 else labels
    per_class = []
    for c in hard.unique():
        f = feats[hard == c]
        n = f.shape[0]
        if n < 2:
            continue
        sim = f @ f.T
        mean_cos = (sim.sum() - sim.diagonal().sum()) / (n * (n - 1))
        per_class.append(1.0 - float(mean_cos))
    return sum(per_class) / len(per_class) if per_class else None


class DiversityEvaluator(Evaluator):
    """Within-class feature diversity under the teacher, for the set and the random subset."""

    Options: ClassVar[type[Options]] = DiversityOptions

    def __init__(self, options: DiversityOptions) -> None:
        super().__init__(options)
        self._path: str | None = None

    def teacher_path(self, synset: SyntheticSet, ctx: RunContext) -> str:
        if self.options.teacher:
            return self.options.teacher
        meta = synset.metadata.get("teacher") or {}
        if meta.get("path"):
            self._path = str(meta["path"])  # remembered for the random subset evaluated next
        if self._path is None and ctx.run_dir is not None and (ctx.run_dir / "teacher.safetensors").is_file():
            self._path = str(Path(ctx.run_dir) / "teacher.safetensors")
        if self._path is None:
            raise UserError("the diversity evaluator needs a teacher; set its 'teacher' option to a teacher .safetensors")
        return self._path

    def evaluate(self, synset: SyntheticSet, ctx: RunContext) -> list[Result]:
        role = synset.metadata.get("role", "synthetic")
        path = self.teacher_path(synset, ctx)
        model, header = load_teacher(path, ctx)
        value = feature_diversity(model, synset.images.to(ctx.device), synset.labels.to(ctx.device))
        if value is None:
            return []
        spec = header.get("model") or {}
        return [Result.from_values(self.name, str(spec.get("name", "teacher")), role, [value],
                                   metric="mean within-class pairwise cosine distance of teacher features",
                                   teacher=path)]
