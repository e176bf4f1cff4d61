"""A copy of the smallest built-in evaluator (hard-label), registered as ``hard-label-copy``."""

from typing import ClassVar

from condensery import Evaluator, Options, Result, RunContext, SyntheticSet
from condensery.training import accuracy
from condensery_eval.options import TrainProtocol
from condensery_eval.protocol import (
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


class HardLabelCopy(Evaluator):
    """``condensery_eval.hard_label.HardLabelEvaluator``, copied; it reports the name it is registered under."""

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
