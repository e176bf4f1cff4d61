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
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from condensery import (
    Evaluator,
    Options,
    Result,
    RunContext,
    SyntheticSet,
    UserError,
    accuracy,
    backward_step,
    predict,
    read_safetensors,
    train_classifier,
)
from pydantic import Field

from .protocol import (
    Augmentation,
    TrainProtocol,
    arm_record,
    arm_stream,
    augmenter,
    cache_root,
    choose_lr,
    data_fingerprint,
    draw_record,
    key_of,
    model_name,
    seed_torch,
    spread_runs,
    stage_info,
    stage_plan,
    subject_for_run,
)


class TeacherOptions(Options):
    model: str | None = Field(None, description="teacher network (default: the task model)")
    model_options: dict[str, Any] = Field(default_factory=dict, description="options of the teacher network, e.g. {width: 32}")
    path: str | None = Field(None, description="load this .safetensors state dict instead of training")
    epochs: int = Field(50, ge=1, description="training epochs on the real training split")
    lr: float = Field(0.01, gt=0)
    batch_size: int = Field(256, ge=1)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(5e-4, ge=0)
    augment: Augmentation = "crop-flip"
    schedule: Literal["cosine", "step", "none"] = "cosine"
    cache: bool = Field(True, description="keep the trained teacher as .safetensors and reuse it")
    cache_dir: str | None = Field(None, description="where (default $CONDENSERY_CACHE/teachers)")


class SoftLabelOptions(TrainProtocol):
    epochs: int = Field(300, ge=1)
    lr: float = Field(1e-3, gt=0)
    optimizer: Literal["adamw", "sgd"] = "adamw"
    weight_decay: float = Field(0.01, ge=0)
    schedule: Literal["cosine", "step", "none"] = "cosine"
    use_learned_lr: bool = Field(False, description="a learned lr is an SGD lr; off for AdamW")
    augment: Augmentation = "crop-flip"
    temperature: float = Field(4.0, gt=0, description="softmax temperature of the KL loss")
    mix: Literal["none", "mixup", "cutmix"] = "cutmix"
    mix_alpha: float = Field(1.0, gt=0, description="Beta(alpha, alpha) of the mixing ratio")
    # replaces TrainProtocol.targets (hard | stored): this protocol never trains on bare class
    # labels; its choice is where the soft targets come from
    targets: Literal["teacher", "stored"] = Field(  # type: ignore[assignment]
        "teacher", description="teacher: soft targets online; stored: the set's own labels (regression "
                               "labels with squared error)")
    teacher: TeacherOptions = Field(default_factory=TeacherOptions)


def stored_targets(synset: SyntheticSet, num_classes: int) -> torch.Tensor:
    """The set's own labels as target distributions (one-hot for hard labels); regression
    (least-squares) labels as they are, never normalised into probabilities."""
    if synset.label_kind == "regression":
        return synset.labels.float()
    stored = synset.labels.float() if synset.soft else F.one_hot(synset.labels.long(), num_classes).float()
    return stored / stored.sum(dim=1, keepdim=True).clamp_min(1e-12)


# -- teacher ------------------------------------------------------------------------------
def _teacher_path(ctx: RunContext, t: TeacherOptions) -> Path:
    spec = dict(ctx.task.model) if t.model is None else {"name": t.model}
    opts = t.model_dump(exclude={"cache", "cache_dir", "path"})
    key = key_of(data_fingerprint(ctx), spec, opts, ctx.runtime.seed)
    root = Path(os.path.expanduser(t.cache_dir)) if t.cache_dir else cache_root() / "teachers"
    return root / f"{ctx.task.dataset}-{spec['name']}-{key}.safetensors"


def _load_state(model: nn.Module, path: Path) -> nn.Module:
    state, _ = read_safetensors(path, "teacher ", device=str(next(model.parameters()).device))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise UserError(f"teacher '{path}' does not fit the teacher model ({first}); set teacher.model to its architecture") from None
    return model


def build_teacher(ctx: RunContext, t: TeacherOptions) -> nn.Module:
    """Load, reuse from the cache, or train the teacher; returned in eval mode, frozen."""
    seed_torch(("teacher", "init"), ctx.runtime.seed)
    model = ctx.create_model(t.model, **t.model_options)
    if t.path is not None:
        path = Path(os.path.expanduser(t.path))
        if not path.is_file():
            raise UserError(f"teacher.path '{path}' does not exist; give a .safetensors state dict or leave it unset to train one")
        _load_state(model, path)
    else:
        path = _teacher_path(ctx, t)
        rt = ctx.runtime
        if not (t.cache and path.is_file()) and (rt.is_main or not t.cache):
            gen = seed_torch(("teacher", "train"), rt.seed)
            train_classifier(
                model, ctx.data.train_x, ctx.data.train_y, epochs=t.epochs, lr=t.lr, generator=gen,
                batch_size=t.batch_size, momentum=t.momentum, weight_decay=t.weight_decay,
                augment=augmenter(t.augment), autocast=rt.autocast, scaler=rt.grad_scaler(), lr_schedule=t.schedule,
            )
            if t.cache:
                from safetensors.torch import save_file

                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(path.name + ".tmp")
                save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(tmp))
                os.replace(tmp, path)
        if t.cache:
            if rt.num_processes > 1:
                rt.accelerator.wait_for_everyone()
            _load_state(model, path)  # every process uses the very same bytes
    model.eval()
    for prm in model.parameters():
        prm.requires_grad_(False)
    return model


# -- student ------------------------------------------------------------------------------
def mix_batch(x: torch.Tensor, kind: str, alpha: float, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Mixup or CutMix within the batch: (mixed images, partner index, share of the original)."""
    n = x.shape[0]
    perm = torch.randperm(n, generator=gen).to(x.device)
    if kind == "none" or n < 2:
        return x, perm, 1.0
    seed = int(torch.randint(2**62, (1,), generator=gen))
    lam = float(np.random.default_rng(seed).beta(alpha, alpha))
    if kind == "mixup":
        return lam * x + (1 - lam) * x[perm], perm, lam
    h, w = x.shape[2:]
    rh, rw = int(h * math.sqrt(1 - lam)), int(w * math.sqrt(1 - lam))
    cy, cx = (int(v) for v in torch.randint(0, 1 << 30, (2,), generator=gen))
    cy, cx = cy % h, cx % w
    y0, y1 = max(cy - rh // 2, 0), min(cy + rh // 2, h)
    x0, x1 = max(cx - rw // 2, 0), min(cx + rw // 2, w)
    out = x.clone()
    out[:, :, y0:y1, x0:x1] = x[perm][:, :, y0:y1, x0:x1]
    return out, perm, 1 - (y1 - y0) * (x1 - x0) / (h * w)


def kd_loss(student: torch.Tensor, target_logp: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T² · KL(target ‖ softmax(student/T))`` with the target given as log-probabilities."""
    logp = F.log_softmax(student / temperature, dim=1)
    return F.kl_div(logp, target_logp, log_target=True, reduction="batchmean") * temperature**2


def train_student(
    ctx: RunContext, p: SoftLabelOptions, images: torch.Tensor, lr: float, gen: torch.Generator,
    teacher: nn.Module | None = None, stored: torch.Tensor | None = None, model: nn.Module | None = None,
    label_loss: Literal["kd", "mse"] = "kd",
) -> nn.Module:
    """Train a fresh student on ``images`` with soft targets from ``teacher`` (or ``stored`` probabilities).

    ``label_loss: mse`` takes ``stored`` as regression targets: ``½ ||logits − target||²``.
    """
    if label_loss == "mse" and stored is None:
        raise ValueError("label_loss mse needs stored regression targets")
    model = model if model is not None else ctx.create_model(p.model)
    if p.optimizer == "adamw":
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=p.weight_decay)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=p.momentum, weight_decay=p.weight_decay)
    if p.schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=p.epochs)
    elif p.schedule == "step":
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[max(1, p.epochs // 2)], gamma=0.1)
    else:
        sched = None
    aug = augmenter(p.augment)
    scaler = ctx.runtime.grad_scaler()
    autocast = ctx.runtime.autocast
    n, temp = images.shape[0], p.temperature
    if teacher is not None:
        teacher.eval()  # predict()/accuracy() leave a model in train mode
    model.train()
    for _epoch in range(p.epochs):
        order = torch.randperm(n, generator=gen).to(images.device)
        for start in range(0, n, p.batch_size):
            idx = order[start : start + p.batch_size]
            x = images[idx]
            if aug is not None:
                x = aug(x, gen)
            x, partner, lam = mix_batch(x, p.mix, p.mix_alpha, gen)
            if teacher is not None:
                with torch.no_grad(), autocast():
                    target = F.log_softmax(teacher(x).float() / temp, dim=1)
            elif label_loss == "mse":
                ys = stored[idx]
                target = lam * ys + (1 - lam) * ys[partner]
            else:
                probs = stored[idx]
                target = (lam * probs + (1 - lam) * probs[partner]).clamp_min(1e-8).log()
            with autocast():
                out = model(x)
            if label_loss == "mse":
                loss = 0.5 * ((out.float() - target) ** 2).sum(dim=1).mean()
            else:
                loss = kd_loss(out.float(), target, temp)
            if not torch.isfinite(loss):
                from condensery import DivergenceError

                raise DivergenceError(f"soft-label student loss became {loss.item()}; lower the lr")
            opt.zero_grad(set_to_none=True)
            backward_step(loss, opt, scaler)
        if sched is not None:
            sched.step()
    return model


class SoftLabelEvaluator(Evaluator):
    """Student trained on the set with soft targets (online teacher or stored labels)."""

    Options: ClassVar[type[Options]] = SoftLabelOptions
    name = "soft-label"

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

        out = spread_runs(ctx, p.runs, one, desc=f"evaluate {role} (soft)")
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
