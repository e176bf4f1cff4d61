"""(b) Early-training dynamics: which checkpoint of a real-data run a network trained on the set agrees with."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from condensery import backward_step, make_generator, seed_global_from


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
        opt = torch.optim.SGD(model.parameters(), lr=p.lr, momentum=p.momentum, weight_decay=p.weight_decay)
        per_epoch = math.ceil(len(x) / p.batch_size)
        total = per_epoch * self.o.real_epochs
        marks = sorted({0, *(round(v) for v in torch.logspace(0, math.log10(max(total, 1)), self.o.checkpoints).tolist())})
        preds, step = {0: self.test_preds(model)}, 0
        scaler = self.ctx.runtime.grad_scaler()
        model.train()
        for _ in self.ctx.progress(range(self.o.real_epochs), desc="real-data run"):
            perm = torch.randperm(len(x), generator=gen).to(x.device)
            for start in range(0, len(x), p.batch_size):
                xb, yb = x[perm[start : start + p.batch_size]], y[perm[start : start + p.batch_size]]
                if self.aug is not None:
                    xb = self.aug(xb, gen)
                with self.ctx.runtime.autocast():
                    loss = F.cross_entropy(model(xb).float(), yb)
                opt.zero_grad(set_to_none=True)
                backward_step(loss, opt, scaler)
                step += 1
                if step in marks:
                    preds[step] = self.test_preds(model)
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
