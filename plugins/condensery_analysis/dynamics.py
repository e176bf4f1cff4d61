"""(b) Early-training dynamics: which checkpoint of a real-data run a network trained on the set agrees with."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn
from condensery import make_generator, seed_global_from, train_classifier


class Dynamics:
    """Early-training dynamics: a part of ``Analysis``."""

    def real_run(self) -> dict[str, Any]:
        """Train on real data at constant lr; test predictions at log-spaced checkpoints."""
        d, p = self.ctx.data, self.p
        if self.o.real_per_class:
            _, idx = self.real_subset([min(self.o.real_per_class, d.class_count(c)) for c in range(self.k)], ("real-run",))
            x, y = d.train_x[idx], d.train_y[idx]
        else:
            x, y = d.train_x, d.train_y
        gen = make_generator(self.ctx.runtime.seed, "analyze", "real-run")
        seed_global_from(gen)
        model = self.ctx.create_model(p.model)
        per_epoch = math.ceil(len(x) / p.batch_size)
        total = per_epoch * self.o.real_epochs
        marks = sorted({0, *(round(v) for v in torch.logspace(0, math.log10(max(total, 1)), self.o.checkpoints).tolist())})
        preds = {0: self.test_preds(model)}

        def checkpoint(step: int, net: nn.Module) -> None:
            if step in marks:
                preds[step] = self.test_preds(net)

        train_classifier(
            model, x, y, epochs=self.o.real_epochs, lr=p.lr, generator=gen, batch_size=p.batch_size,
            momentum=p.momentum, weight_decay=p.weight_decay, augment=self.aug, autocast=self.ctx.runtime.autocast,
            lr_schedule="none", scaler=self.ctx.runtime.grad_scaler(), on_step=checkpoint,
            progress=lambda epochs: self.ctx.progress(epochs, desc="real-data run"),
        )
        self.real_model = model
        return {"steps": marks, "epochs": [s / per_epoch for s in marks], "preds": [preds[s] for s in marks],
                "iterations_per_epoch": per_epoch, "train_images": len(x)}

    def dynamics(self) -> dict[str, Any]:
        b, run = self.base(), self.real_run()
        ckpt = torch.stack(run["preds"])  # [checkpoints, n_test]

        def curve(model_preds: list[torch.Tensor]) -> list[float]:
            return torch.stack([(ckpt == p[None]).float().mean(1) for p in model_preds]).mean(0).tolist()

        out: dict[str, Any] = {
            "epochs": run["epochs"], "steps": run["steps"], "iterations_per_epoch": run["iterations_per_epoch"],
            "real_train_images": run["train_images"], "real_epochs": self.o.real_epochs,
            "checkpoint_accuracy": [self.acc(p) for p in run["preds"]],
        }
        for name in ("set", "random"):
            c = curve(b[f"{name}_preds"])
            best = max(range(len(c)), key=lambda i: c[i])
            out[name] = {"agreement": c, "best_epoch": run["epochs"][best], "best_step": run["steps"][best],
                         "best_agreement": c[best], "final_agreement": c[-1],
                         "checkpoint_accuracy_at_best": out["checkpoint_accuracy"][best]}
        return out
