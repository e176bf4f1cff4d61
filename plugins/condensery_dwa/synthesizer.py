"""The ``dwa`` synthesizer: squeeze -> directed weight adjustment -> recover -> relabel.

- **squeeze**: train a BatchNorm teacher on the real training split (or load one from a
  ``.safetensors`` file) and keep it as ``RUN_DIR/teacher.safetensors`` with its model spec
  in the header. A teacher already in the run directory with the same spec and budget is
  reused, so an interrupted run does not train it twice.
- **recover**, batch by batch: batch ``b`` holds one image of each class of its class
  chunk (``ipc`` x chunks batches). Before recovering it, the teacher's weights are pushed
  along the ascent direction of the CE of the batch's real images (``adjust.py``; ``rho: 0``
  skips it). The images, initialised from those real images (``init: real``) or from noise,
  are then optimised with Adam (betas 0.5, 0.9) and a cosine lr against the ``bnstats``
  matcher evaluated at theta + delta, and clamped to the valid pixel range after each step.
  Batches are independent and seeded by b alone: each process takes a contiguous share
  (``runtime.split``, logged in ``logs/process-i.json``) and the results are gathered on
  every process (``runtime.gather``).
- **relabel**: soft labels ``softmax(teacher(x) / T)`` per image are stored as the set's
  labels (a fallback for evaluators without a teacher); the teacher path and spec go into
  ``metadata["teacher"]`` so a soft-label evaluator can label augmented batches online.

SRe2L is the same synthesizer with ``rho: 0``, ``var_weight: 1``, ``init: noise``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F
from condensery import (
    DivergenceError,
    LoopCheckpoint,
    RunContext,
    Synthesizer,
    SyntheticSet,
    UserError,
    backward_step,
    loop_fingerprint,
    make_generator,
    require,
    seed_global_from,
    train_classifier,
)
from condensery.data import crop_flip
from condensery.teachers import load_teacher, read_teacher, save_teacher
from condensery.training import accuracy

from .adjust import directed_perturbation, global_norm, perturbed_parameters
from .capabilities import TeacherMatching
from .diversity import feature_diversity
from .options import DWAOptions

TEACHER_FILE = "teacher.safetensors"


class DWASynthesizer(Synthesizer):
    Options: ClassVar[type[DWAOptions]] = DWAOptions
    CHECKPOINT = "dwa-recover"

    # -- squeeze ----------------------------------------------------------------------
    def squeeze(self, ctx: RunContext) -> tuple[nn.Module, str, dict[str, Any]]:
        """The frozen eval-mode teacher, the path of its file and its header."""
        from condensery_matching.bnstats import bn_layers

        o = self.options
        if o.teacher is not None:
            model, header = load_teacher(o.teacher, ctx)
            path = str(Path(o.teacher).expanduser().resolve())
        else:
            spec = dict(o.teacher_model)
            if not isinstance(spec.get("name"), str):
                raise UserError("synthesizer.teacher_model needs a 'name', e.g. {name: resnet18}")
            budget = {"epochs": o.teacher_epochs, "lr": o.teacher_lr, "batch_size": o.teacher_batch_size,
                      "weight_decay": o.teacher_weight_decay, "augment": o.teacher_augment,
                      "dataset": ctx.task.dataset, "seed": ctx.runtime.seed}
            run_dir = ctx.run_dir or Path(".")
            file = run_dir / TEACHER_FILE
            reuse = False
            if file.is_file():
                _, old = read_teacher(file)
                reuse = old.get("model") == spec and old.get("budget") == budget
            if not reuse and ctx.runtime.is_main:
                model = self.train_teacher(ctx, spec)
                ac = ctx.runtime.autocast
                info = {"budget": budget, "test_accuracy": accuracy(model, ctx.data.test_x, ctx.data.test_y, ac)}
                if len(ctx.data.val_y):
                    info["val_accuracy"] = accuracy(model, ctx.data.val_x, ctx.data.val_y, ac)
                save_teacher(file, model, spec, **info)
                ctx.log("squeeze", o.teacher_epochs, **{k: v for k, v in info.items() if k != "budget"})
            if ctx.runtime.num_processes > 1:
                ctx.runtime.accelerator.wait_for_everyone()
            model, header = load_teacher(file, ctx)  # every process uses the very same bytes
            path = str(file.resolve())
        if not bn_layers(model):
            raise UserError(f"teacher {header.get('model')} has no BatchNorm layers; use e.g. resnet18 or convnet_bn")
        return model, path, header

    def train_teacher(self, ctx: RunContext, spec: dict[str, Any]) -> nn.Module:
        o = self.options
        gen = make_generator(ctx.runtime.seed, "dwa", "teacher")
        seed_global_from(gen)
        model = ctx.build_model(spec)
        pad = max(1, round(ctx.task.image_shape[-1] / 8))
        augment = None
        if o.teacher_augment != "none":
            flip = o.teacher_augment == "crop-flip"
            augment = lambda x, g: crop_flip(x, g, pad=pad, flip=flip)  # noqa: E731
        return train_classifier(
            model, ctx.data.train_x, ctx.data.train_y, epochs=o.teacher_epochs, lr=o.teacher_lr,
            generator=gen, batch_size=o.teacher_batch_size, weight_decay=o.teacher_weight_decay,
            augment=augment, autocast=ctx.runtime.autocast, scaler=ctx.runtime.grad_scaler(), lr_schedule="cosine",
            on_epoch=lambda e, m: ctx.log("squeeze", e) if (e + 1) % 5 == 0 else None, compiled=ctx.runtime.compiled,
        )

    # -- recover ----------------------------------------------------------------------
    def batches(self, ctx: RunContext) -> list[tuple[int, list[int]]]:
        """(ipc index, classes) of every batch, in a fixed order."""
        k = ctx.task.num_classes
        per = self.options.classes_per_batch or k
        chunks = [list(range(s, min(s + per, k))) for s in range(0, k, per)]
        return [(i, chunk) for i in range(self.options.ipc) for chunk in chunks]

    def make_matcher(self, ctx: RunContext):
        """The registered ``bnstats`` matcher, configured from this synthesizer's options."""
        o = self.options
        matcher = ctx.registry.get("matcher", "bnstats").build(
            {"alpha_bn": o.alpha_bn, "var_weight": o.var_weight, "first_bn_weight": o.first_bn_weight,
             "augment": o.augment, "shift": o.shift})
        require(matcher, TeacherMatching, "DWA's recover step")
        matcher.prepare(ctx)
        return matcher

    def pixel_range(self, ctx: RunContext) -> tuple[torch.Tensor, torch.Tensor]:
        """Lowest and highest valid value per channel in normalised space ([0, 1] pixels)."""
        mean = torch.tensor(ctx.task.mean, device=ctx.device).view(1, -1, 1, 1)
        std = torch.tensor(ctx.task.std, device=ctx.device).view(1, -1, 1, 1)
        return (0 - mean) / std, (1 - mean) / std

    def recover_batch(
        self, ctx: RunContext, teacher: nn.Module, matcher, b: int, real: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, float]]:
        o = self.options
        gen = ctx.generator("dwa", "batch", b)
        delta = directed_perturbation(teacher, real, labels, o.rho, o.steps, ctx.runtime.autocast)
        dnorm = float(global_norm(list(delta.values())))
        matcher.set_teacher(teacher, perturbed_parameters(teacher, delta) if o.rho > 0 else None)
        matcher.gen = ctx.generator("dwa", "batch", b, "augment")
        if o.init == "real":
            x0 = real.clone()
        else:
            x0 = torch.randn(real.shape, generator=gen).to(ctx.device)
        lo, hi = self.pixel_range(ctx)
        x = x0.clamp(lo, hi).requires_grad_(True)
        opt = torch.optim.Adam([x], lr=o.lr, betas=(0.5, 0.9))
        scaler = ctx.runtime.grad_scaler()
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda t: 0.5 * (1 + math.cos(math.pi * t / max(1, o.iterations))))
        loss = torch.zeros(())
        for step in range(o.iterations):
            loss = matcher.loss(x, labels, step)
            if not torch.isfinite(loss):
                raise DivergenceError(f"recover loss became {loss.item()} at step {step} of batch {b}; lower synthesizer.lr")
            opt.zero_grad(set_to_none=True)
            backward_step(loss, opt, scaler)
            sched.step()
            with torch.no_grad():
                x.copy_(torch.maximum(torch.minimum(x, hi), lo))
            if step % o.log_every == 0 or step == o.iterations - 1:
                ctx.log("recover", step, batch=b, loss=float(loss.detach()), **{k: float(v) for k, v in matcher.loss_terms().items()})
        matcher.set_teacher(teacher, None)
        return x.detach(), {"delta_norm": dnorm, "loss": float(loss.detach())}

    def recover(self, ctx: RunContext, teacher: nn.Module) -> tuple[torch.Tensor, torch.Tensor, list[dict]]:
        """All batches (this process's share, resumable), gathered; images class-ordered."""
        o = self.options
        k, ipc = ctx.task.num_classes, o.ipc
        rt = ctx.runtime
        real_idx = ctx.data.balanced_indices(ipc, ctx.generator("dwa", "real"))  # class c, image i at c*ipc+i
        matcher = self.make_matcher(ctx)
        batches = self.batches(ctx)
        loop = LoopCheckpoint(ctx, f"{self.CHECKPOINT}-p{rt.process_index}", loop_fingerprint(ctx, o))
        done: dict[int, torch.Tensor] = {}
        infos: dict[int, dict] = {}
        saved = loop.load()  # its step: how many batches are done
        if saved is not None:
            done = {int(key[1:]): t.to(ctx.device) for key, t in saved.tensors.items()}
            infos = {int(b): v for b, v in saved.meta["infos"].items()}
            ctx.log("recover", 0, resumed_batches=len(done))
            saved.announce(f"with {len(done)} of {len(batches)} batches recovered")
        mine = rt.split(range(len(batches)), "recover batches")
        for b in ctx.progress(mine, desc="recover (dwa)" if o.rho > 0 else "recover (sre2l)"):
            if b in done:
                continue
            i, classes = batches[b]
            idx = real_idx[torch.tensor([c * ipc + i for c in classes], device=real_idx.device)]
            real, labels = ctx.data.train_x[idx], ctx.data.train_y[idx]
            done[b], infos[b] = self.recover_batch(ctx, teacher, matcher, b, real, labels)
            loop.save(len(done), {f"b{j}": t for j, t in done.items()},
                      meta={"infos": {str(j): v for j, v in infos.items()}})
        matcher.close()
        results = rt.gather([(b, done[b].cpu(), infos[b]) for b in mine])
        images = torch.empty(k * ipc, *ctx.task.image_shape)
        labels = torch.empty(k * ipc, dtype=torch.long)
        info_list: list[dict] = [{} for _ in batches]
        for b, x, info in results:
            i, classes = batches[b]
            pos = torch.tensor([c * ipc + i for c in classes])
            images[pos] = x.float()
            labels[pos] = torch.tensor(classes)
            info_list[b] = info
        return images.to(ctx.device), labels.to(ctx.device), info_list

    # -- relabel ----------------------------------------------------------------------
    @torch.no_grad()
    def relabel(self, ctx: RunContext, teacher: nn.Module, images: torch.Tensor) -> torch.Tensor:
        """Soft labels softmax(teacher(x) / T) per image, [N, K]."""
        teacher.eval()
        out = []
        for s in range(0, images.shape[0], 512):
            with ctx.runtime.autocast():
                logits = teacher(images[s : s + 512])
            out.append(F.softmax(logits.float() / self.options.temperature, dim=1))
        return torch.cat(out)

    # -- the whole pipeline -----------------------------------------------------------
    def synthesize(self, ctx: RunContext) -> SyntheticSet:
        o = self.options
        teacher, path, header = self.squeeze(ctx)
        before = {k: v.detach().clone() for k, v in teacher.state_dict().items()}
        images, targets, infos = self.recover(ctx, teacher)
        after = teacher.state_dict()
        if not all(torch.equal(before[k], after[k]) for k in before):  # a guard; cheap next to recover
            raise RuntimeError("the teacher changed during recover; this is a bug in the dwa plugin")
        soft = self.relabel(ctx, teacher, images)
        div = feature_diversity(teacher, images, targets)
        rnd = ctx.random_subset(o.ipc)
        div_rnd = feature_diversity(teacher, rnd.images, rnd.labels)
        agree = float((soft.argmax(dim=1) == targets).float().mean())
        norms = [i.get("delta_norm", 0.0) for i in infos]
        metrics = {"diversity": div, "diversity_random": div_rnd, "teacher_agreement": agree,
                   "mean_delta_norm": sum(norms) / max(1, len(norms))}
        ctx.log("relabel", 0, **{k: v for k, v in metrics.items() if v is not None})
        return SyntheticSet(
            images, soft,
            metadata={
                "teacher": {"path": path, "model": header.get("model"), "temperature": o.temperature,
                            "test_accuracy": header.get("test_accuracy")},
                "soft_labels": {"temperature": o.temperature, "source": "teacher"},
                "target_labels": targets.tolist(),
                "synthesis": metrics,
                "variant": "dwa" if o.rho > 0 else "sre2l",
            },
        )
