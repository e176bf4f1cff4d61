"""Hard-label evaluation: train fresh networks on the set's class labels, report test accuracy.

Accuracy is measured once, at the end of training (never the best test checkpoint), over
``runs`` networks with different seeds; a set's learned lr is used when it has one (and
``use_learned_lr``), otherwise the fixed lr or the one picked on the validation split. The
runner applies the very same evaluator to the random real subset of the same size. A set
that carries stages (SeqMatch) is trained sequentially (``protocol.stage_plan``), and its
result says ``protocol: sequential`` with the stage lrs.

``targets: stored`` trains on the set's own labels instead, with the same protocol:
least-squares (regression) labels with squared error, soft labels with soft cross-entropy;
the random arm of a set with solved labels carries its own (``label_like``).
"""

from __future__ import annotations

from typing import ClassVar

from condensery import Evaluator, Options, Result, RunContext, SyntheticSet
from condensery.training import accuracy

from .protocol import (
    TrainProtocol,
    arm_record,
    arm_stream,
    choose_lr,
    draw_record,
    model_name,
    spread_runs,
    stage_info,
    subject_for_run,
    train_once,
    training_targets,
)


class HardLabelEvaluator(Evaluator):
    Options: ClassVar[type[Options]] = TrainProtocol

    def evaluate(self, synset: SyntheticSet, ctx: RunContext) -> list[Result]:
        p = self.options
        role = synset.metadata.get("role", "synthetic")
        stored = p.targets == "stored"
        labels, label_loss = training_targets(synset, stored)

        def train(lr: float, stream: tuple):
            return train_once(ctx, p, synset, lr, stream, labels, label_loss)

        lr, lr_info = choose_lr(ctx, p, synset, labels, self.name, train)
        has_val = len(ctx.data.val_y) > 0

        def one(run: int) -> tuple[float, float | None, list[int] | None]:
            subject = subject_for_run(ctx, p, synset, run)
            y, loss = training_targets(subject, stored)
            model = train_once(ctx, p, subject, lr, arm_stream(self.name, synset, p, "run", run), y, loss)
            test = accuracy(model, ctx.data.test_x, ctx.data.test_y, ctx.runtime.autocast)
            val = accuracy(model, ctx.data.val_x, ctx.data.val_y, ctx.runtime.autocast) if has_val else None
            return test, val, draw_record(subject)

        out = spread_runs(ctx, p.runs, one, desc=f"{self.name}: {role}")
        extra = {"epochs": p.epochs, "augment": p.augment, "lr": lr, "targets": p.targets, "label_loss": label_loss,
                 "paired": p.paired, **lr_info, **stage_info(p, synset, lr), **arm_record(role, p, out)}
        return [Result.from_values(self.name, model_name(ctx, p), role, [o[0] for o in out], **extra)]
