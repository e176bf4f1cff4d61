"""Hard-label evaluation: train fresh networks on the set's class labels, report test accuracy.

Accuracy is measured once, at the end of training (never the best test checkpoint), over
``runs`` networks with different seeds. The runner applies the very same evaluator to the
random real subset of the same size.
"""

from __future__ import annotations

from typing import ClassVar

from condensery import Evaluator, Options, Result, RunContext, SyntheticSet, accuracy

from .protocol import TrainProtocol, choose_lr, model_name, train_once


class HardLabelEvaluator(Evaluator):
    Options: ClassVar[type[Options]] = TrainProtocol
    name = "hard-label"

    def evaluate(self, synset: SyntheticSet, ctx: RunContext) -> list[Result]:
        p = self.options
        role = synset.metadata.get("role", "synthetic")
        labels = synset.hard_labels
        lr, lr_info = choose_lr(ctx, p, synset, labels, role)
        accs, vals = [], []
        for run in ctx.progress(range(p.runs), desc=f"evaluate {role}"):
            model = train_once(ctx, p, synset, lr, (self.name, role, "run", run), labels)
            accs.append(accuracy(model, ctx.data.test_x, ctx.data.test_y, ctx.runtime.autocast))
            if len(ctx.data.val_y):
                vals.append(accuracy(model, ctx.data.val_x, ctx.data.val_y, ctx.runtime.autocast))
        extra = {"epochs": p.epochs, "augment": p.augment, "lr": lr, **lr_info}
        if vals:
            extra["val_mean"] = sum(vals) / len(vals)
        return [Result.from_values(self.name, model_name(ctx, p), role, accs, **extra)]
