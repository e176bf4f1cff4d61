"""BatchNorm-statistics matching (the "recover" objective of SRe2L / DWA), reimplemented.

A trained teacher with BatchNorm layers remembers the per-channel mean and variance of the
real data at every BN input (its running statistics). Synthetic images are pulled toward
those statistics and toward their target class:

    CE(f(A(x)), y) + alpha_bn * sum_l m_l (||mu_l(x) - mu_l^BN||_2 + var_weight ||var_l(x) - var_l^BN||_2)

with ``m_1 = first_bn_weight`` (10) for the first BN layer and 1 for the others, statistics
taken by forward hooks on the BN modules (biased variance over batch and space, as
BatchNorm computes it), and ``A`` a random shift (small images) or random-resized crop +
flip (larger ones). The teacher runs in eval mode, so it normalises with its running
statistics and is never changed by the loss.

The network can be evaluated at other weights than its own (``set_teacher(net, params)``
with a name -> tensor dict) through ``torch.func.functional_call``: that is how DWA
synthesises against a perturbed teacher theta + delta without ever writing into it.

Teachers travel in the one teacher format of the core (``condensery.teachers.save_teacher`` /
``load_teacher``: the state dict plus its model spec in the header), so a teacher the
soft-label evaluator cached serves here as well.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F
from condensery import Matcher, Options, RunContext, UserError
from condensery.data import crop_flip
from condensery.teachers import load_teacher
from condensery.training import soft_cross_entropy

from .common import synthesis_steps
from .options import BNStatsOptions


# -- statistics --------------------------------------------------------------------------
def bn_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """Every BatchNorm module with running statistics, in registration (forward) order."""
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


def batch_statistics(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and biased variance over all dims but 1 (what BatchNorm normalises by)."""
    dims = [d for d in range(x.dim()) if d != 1]
    x = x.float()
    return x.mean(dim=dims), x.var(dim=dims, unbiased=False)


def bn_statistics_loss(
    stats: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]],
    var_weight: float = 1.0,
    first_bn_weight: float = 10.0,
) -> torch.Tensor:
    """sum_l m_l (||mu - mu_BN||_2 + var_weight ||var - var_BN||_2) over (mu, var, mu_BN, var_BN)."""
    if not stats:
        raise UserError("the BN-statistics loss needs a network with BatchNorm layers (e.g. convnet_bn, resnet18)")
    total = stats[0][0].new_zeros(())
    for i, (mu, var, rmu, rvar) in enumerate(stats):
        m = first_bn_weight if i == 0 else 1.0
        total = total + m * (torch.linalg.vector_norm(mu - rmu) + var_weight * torch.linalg.vector_norm(var - rvar))
    return total


class BNStatsRecorder:
    """Forward hooks that record (mu, var, running_mean, running_var) at every BN input."""

    def __init__(self, model: nn.Module) -> None:
        self.layers = bn_layers(model)
        self.stats: list[tuple[torch.Tensor, ...]] = []
        self.active = False
        self.handles = [m.register_forward_hook(self._hook) for m in self.layers]

    def _hook(self, module: nn.modules.batchnorm._BatchNorm, inputs: tuple[torch.Tensor, ...], _out) -> None:
        if self.active:
            mu, var = batch_statistics(inputs[0])
            self.stats.append((mu, var, module.running_mean.float(), module.running_var.float()))

    def __enter__(self) -> BNStatsRecorder:
        self.stats = []
        self.active = True
        return self

    def __exit__(self, *exc: Any) -> None:
        self.active = False

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []


# -- augmentation ------------------------------------------------------------------------
def random_resized_crop_flip(x: torch.Tensor, generator: torch.Generator, min_scale: float = 0.08) -> torch.Tensor:
    """Per-sample random-resized crop (area in [min_scale, 1], aspect 3/4..4/3) + flip, differentiable."""
    n = x.shape[0]
    area = torch.empty(n).uniform_(min_scale, 1.0, generator=generator)
    log_ratio = torch.empty(n).uniform_(-0.2877, 0.2877, generator=generator)  # log(3/4), log(4/3)
    ratio = log_ratio.exp()
    sw = (area * ratio).sqrt().clamp(max=1.0)
    sh = (area / ratio).sqrt().clamp(max=1.0)
    cx = (torch.rand(n, generator=generator) * 2 - 1) * (1 - sw)
    cy = (torch.rand(n, generator=generator) * 2 - 1) * (1 - sh)
    flip = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2] = sw * flip, cx
    theta[:, 1, 1], theta[:, 1, 2] = sh, cy
    theta = theta.to(device=x.device, dtype=x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False)


def make_augment(kind: str, image_size: int, shift: int, min_scale: float):
    """The synthetic-side augmentation callable ``(x, generator) -> x`` (None for none)."""
    if kind == "auto":
        kind = "shift" if image_size <= 32 else "crop-flip"
    if kind == "shift":
        return (lambda x, g: crop_flip(x, g, pad=shift, flip=False)) if shift > 0 else None
    if kind == "crop-flip":
        return lambda x, g: random_resized_crop_flip(x, g, min_scale)
    return None


# -- the matcher -------------------------------------------------------------------------
class BNStatsMatcher(Matcher):
    """CE + weighted BN-statistics distance under a (possibly perturbed) frozen teacher.

    Offers DWA's ``TeacherMatching`` (``set_teacher``, ``loss_terms``, ``close``).
    """

    Options: ClassVar[type[Options]] = BNStatsOptions

    net: nn.Module | None = None
    params: dict[str, torch.Tensor] | None = None
    recorder: BNStatsRecorder | None = None  # forward hooks on ``net``'s BN layers

    def prepare(self, ctx: RunContext) -> None:
        super().prepare(ctx)
        self.gen = ctx.generator("matcher", "bnstats")
        o = self.options
        self.augment = make_augment(o.augment, ctx.task.image_shape[-1], o.shift, o.min_scale)
        self.last: dict[str, torch.Tensor] = {}
        self.expected_steps = synthesis_steps(ctx)
        if o.teacher is not None:
            self.set_teacher(load_teacher(o.teacher, ctx)[0])

    def set_teacher(self, net: nn.Module, params: dict[str, torch.Tensor] | None = None) -> None:
        """Match against ``net`` (eval mode), evaluated at ``params`` if given (functional_call)."""
        if self.net is not net:
            self.close()
            self.net = net.eval()
            self.recorder = BNStatsRecorder(net)
            if not self.recorder.layers:
                raise UserError("the bnstats matcher needs a teacher with BatchNorm layers (e.g. convnet_bn, resnet18)")
        self.params = params

    def close(self) -> None:
        """Remove the forward hooks from the teacher."""
        if self.recorder is not None:
            self.recorder.remove()

    def loss_terms(self) -> dict[str, torch.Tensor]:
        """``ce`` and ``bn`` of the last loss."""
        return self.last

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.params is None:  # first order (statistics' gradient to the pixels): may be compiled
            return self.ctx.runtime.compiled(self.net, passes=self.expected_steps)(x)
        return torch.func.functional_call(self.net, self.params, (x,), strict=False)

    def loss(self, images: torch.Tensor, labels: torch.Tensor, step: int) -> torch.Tensor:
        if self.net is None:
            raise UserError("the bnstats matcher has no teacher; set matcher.teacher to a teacher .safetensors or use the dwa synthesizer")
        o = self.options
        x = images if self.augment is None else self.augment(images, self.gen)
        with self.recorder, self.ctx.runtime.autocast():
            logits = self.forward(x)
        logits = logits.float()
        ce = soft_cross_entropy(logits, labels) if labels.dim() == 2 else F.cross_entropy(logits, labels)
        bn = bn_statistics_loss(self.recorder.stats, o.var_weight, o.first_bn_weight)
        self.last = {"ce": ce.detach(), "bn": bn.detach()}  # tensors: no device sync per step
        return o.ce_weight * ce + o.alpha_bn * bn

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"gen": self.gen.get_state()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if "gen" in state:
            self.gen.set_state(state["gen"])
