"""Soft-label evaluation (SRe2L-style knowledge distillation from a teacher).

A teacher trained on the real training split (or loaded from a ``.safetensors`` state dict)
labels *every augmented, mixed batch online*: the student minimises
``T² · KL(softmax(teacher/T) ‖ softmax(student/T))``, with AdamW and a cosine schedule by
default. Because soft labels carry the teacher's knowledge, even a random real subset
scores high under this protocol: always read it next to the random subset (which the runner
evaluates with the same teacher) and the ranking evaluator's LRS.

``targets: stored`` trains on the set's own labels instead: probabilities with the same KL
loss, least-squares (regression, ``label_kind``) labels with squared error on the logits
(mixing them by CutMix/Mixup is linear, so the mixed target is still a regression target).

Teachers are cached as ``.safetensors`` under ``$CONDENSERY_CACHE/teachers`` (or
``teacher.cache_dir``), keyed by the data fingerprint, the teacher options and the seed.

The teacher is ``teacher``, the student's training ``student``; both are re-exported here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch.nn as nn
from condensery import Evaluator, Options, Result, RunContext, SyntheticSet, UserError
from condensery.training import accuracy, predict

from .options import SoftLabelOptions, TeacherOptions
from .protocol import (
    arm_record,
    arm_stream,
    choose_lr,
    draw_record,
    model_name,
    seed_torch,
    spread_runs,
    stage_info,
    stage_plan,
    subject_for_run,
)
from .student import stored_targets, train_student
from .teacher import build_teacher


class SoftLabelEvaluator(Evaluator):
    """Student trained on the set with soft targets (online teacher or stored labels)."""

    Options: ClassVar[type[Options]] = SoftLabelOptions

    def __init__(self, options: SoftLabelOptions) -> None:
        super().__init__(options)
        self._teacher: tuple[tuple[int, str | None], nn.Module] | None = None

    def teacher_options(self, synset: SyntheticSet) -> tuple[TeacherOptions, str]:
        """The teacher to use and where it came from: the recipe, or the set's own teacher.

        A set labelled by a teacher (DWA/SRe2L record ``metadata["teacher"]``) is judged with
        that very teacher unless the recipe names one, so a DWA run needs no teacher.path.
        """
        t = self.options.teacher
        recorded = synset.metadata.get("teacher")
        if t.path is not None or not isinstance(recorded, dict) or not recorded.get("path"):
            return t, "recipe" if t.path is not None else "trained"
        path = Path(os.path.expanduser(str(recorded["path"])))
        if not path.is_file():
            raise UserError(
                f"the set was labelled by teacher '{path}', which does not exist here; "
                "set the soft-label evaluator's teacher.path to a copy of it")
        spec = recorded.get("model")
        update: dict[str, Any] = {"path": str(path)}
        if isinstance(spec, dict) and "model" not in t.model_fields_set:
            update["model"] = spec.get("name")
            update["model_options"] = {k: v for k, v in spec.items() if k != "name"}
        return t.model_copy(update=update), "set metadata"

    def teacher(self, ctx: RunContext, synset: SyntheticSet | None = None,
                options: TeacherOptions | None = None) -> nn.Module:
        """The teacher, built once per context and shared by the synthetic and random sets."""
        t = options or (self.options.teacher if synset is None else self.teacher_options(synset)[0])
        key = (id(ctx), t.path)
        if self._teacher is None or self._teacher[0] != key:
            self._teacher = (key, build_teacher(ctx, t))
        return self._teacher[1]

    def evaluate(self, synset: SyntheticSet, ctx: RunContext) -> list[Result]:
        p = self.options
        role = synset.metadata.get("role", "synthetic")
        teacher = None
        if p.targets == "teacher":
            used, source = self.teacher_options(synset)
            teacher = self.teacher(ctx, options=used)

        def loss_of(subject: SyntheticSet) -> Literal["kd", "mse"]:
            return "mse" if teacher is None and subject.label_kind == "regression" else "kd"

        def train(lr: float, stream: tuple, subject: SyntheticSet = synset) -> nn.Module:
            gen = seed_torch(stream, ctx.runtime.seed)
            stored = None if teacher is not None else stored_targets(subject, ctx.task.num_classes)
            plan = stage_plan(p, subject, lr)
            if plan is None:
                return train_student(ctx, p, subject.images, lr, gen, teacher, stored, label_loss=loss_of(subject))
            model = None  # sequential (SeqMatch): one student, S_1, then S_1 ∪ S_2, ...
            for s in plan:
                ps = p.model_copy(update={"epochs": s.epochs})
                part = None if stored is None else stored[s.index]
                model = train_student(ctx, ps, subject.images[s.index], s.lr, gen, teacher, part, model,
                                      label_loss=loss_of(subject))
            return model

        lr, lr_info = choose_lr(ctx, p, synset, synset.hard_labels, self.name, train)
        data, ac = ctx.data, ctx.runtime.autocast
        has_val = len(data.val_y) > 0
        teacher_pred = predict(teacher, data.test_x, autocast=ac) if teacher is not None else None

        def one(run: int) -> tuple[float, float | None, list[int] | None, float | None]:
            subject = subject_for_run(ctx, p, synset, run)
            model = train(lr, arm_stream(self.name, synset, p, "run", run), subject)
            test = accuracy(model, data.test_x, data.test_y, ac)
            val = accuracy(model, data.val_x, data.val_y, ac) if has_val else None
            agree = None
            if teacher_pred is not None:
                agree = float((predict(model, data.test_x, autocast=ac) == teacher_pred).float().mean())
            return test, val, draw_record(subject), agree

        out = spread_runs(ctx, p.runs, one, desc=f"{self.name}: {role}")
        extra = {"epochs": p.epochs, "augment": p.augment, "lr": lr, "optimizer": p.optimizer,
                 "temperature": p.temperature, "mix": p.mix, "targets": p.targets, "label_loss": loss_of(synset),
                 "paired": p.paired, **lr_info, **stage_info(p, synset, lr), **arm_record(role, p, out)}
        if teacher is not None:
            extra["teacher_agreement"] = sum(o[3] for o in out) / len(out)
            extra["teacher_test"] = accuracy(teacher, data.test_x, data.test_y, ac)
            teacher.eval()
            extra["teacher_model"] = used.model or ctx.task.model.get("name", "convnet")
            extra["teacher_source"] = source
            if used.path is not None:
                extra["teacher_path"] = used.path
        return [Result.from_values(self.name, model_name(ctx, p), role, [o[0] for o in out], **extra)]
