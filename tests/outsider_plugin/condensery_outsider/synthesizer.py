"""``class-by-class``: learnable pixels, optimised one class after another."""

import torch
from condensery import Synthesizer, SyntheticSet, require
from condensery.generators import save_generator, task_config

from .capabilities import ClassFocus
from .generator import ClassMeans
from .options import ClassByClassOptions


class ClassByClass(Synthesizer):
    Options = ClassByClassOptions
    uses_matcher = True

    def synthesize(self, ctx):
        o = self.options
        focused = require(ctx.matcher, ClassFocus, f"synthesizer '{self.name}'")  # one line, exit 2 if not
        x, y = ctx.data.balanced_batch(o.ipc, ctx.generator("class-by-class", "init"))
        x = x.clone().requires_grad_(True)
        opt = torch.optim.SGD([x], lr=o.lr)
        for c in range(ctx.task.num_classes):
            focused.focus([c])
            for step in range(o.steps):
                loss = ctx.matcher.loss(x, y, step)
                opt.zero_grad()
                loss.backward()
                opt.step()
                ctx.log("synthesize", c * o.steps + step, loss=float(loss))
        focused.focus(None)
        images = x.detach()
        if ctx.run_dir is not None and ctx.runtime.is_main:  # any size later: `condensery generate`
            means = torch.stack([images[y == c].mean(0) for c in range(ctx.task.num_classes)]).cpu()
            save_generator(ClassMeans({}, means), ctx.run_dir / "generator", task_config(ctx))
        return SyntheticSet(images, y)
