"""Trajectory matching (MTT, Cazenavette et al. 2022), reimplemented.

Each step picks an expert trajectory and a start epoch ``t < max_start_epoch``, starts a
student at the expert's parameters θ*_t and takes ``syn_steps`` (N) SGD steps on synthetic
minibatches with a learnable lr α, through ``torch.func.functional_call`` on one flat
parameter vector. The loss is ``||θ̂_{t+N} − θ*_{t+M}||² / ||θ*_t − θ*_{t+M}||²`` with
M = ``expert_epochs``; it is backpropagated through the whole unroll to the pixels and α.

α is kept positive and finite by projection: after each optimiser step it is clamped to
``[lr_min, ∞)`` and a non-finite value is replaced by the last good one. Projection (rather
than a log/softplus parameterisation) keeps the paper's ``lr_lr`` values meaningful.

Memory: autograd through N steps keeps N sets of activations. ``checkpoint_unroll: true``
recomputes each step's forward during the backward pass (``torch.utils.checkpoint``),
keeping only the N flat parameter vectors; ``batch_syn`` bounds each step's batch. The
DSA parameters and minibatch indices of the unroll are drawn before it starts, so the
recomputation sees the same ones and the result is the same as without checkpointing.

``runtime.compile`` leaves the unroll eager by design: the loss is differentiated through
N SGD steps that each take a gradient (``create_graph=True``), and AOTAutograd refuses
double backward. Its first-order part, training the experts, is compiled (``experts.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F
from condensery import Matcher, Options, RunContext, UserError
from torch.func import functional_call
from torch.utils.checkpoint import checkpoint

from .common import dsa_from
from .experts import (
    ExpertSpec,
    available_experts,
    data_identity,
    read_epochs,
    train_experts,
)
from .options import TrajectoryOptions


class TrajectoryMatcher(Matcher):
    """Matches stored expert trajectories; offers ``ExpertMatching`` (``capabilities``)."""

    Options: ClassVar[type[Options]] = TrajectoryOptions

    def __init__(self, options: Options) -> None:
        super().__init__(options)
        #: parameter count of each tensor of the matched network (set by ``prepare``, or by
        #: ``expert_spec`` when asked before it)
        self.numels: list[int] | None = None

    # -- setup ----------------------------------------------------------------------
    def prepare(self, ctx: RunContext) -> None:
        super().prepare(ctx)
        o = self.options
        self.gen = ctx.generator("matcher", "trajectory")
        self.dsa = dsa_from(o)
        self.net = ctx.create_model(o.model)
        self.net.train()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.names = [n for n, _ in self.net.named_parameters()]
        self.shapes = [p.shape for p in self.net.parameters()]
        self.numels = [p.numel() for p in self.net.parameters()]
        self.syn_lr = torch.tensor(float(o.lr_init), device=ctx.device, requires_grad=True)
        self._last_good_lr = float(o.lr_init)
        self.experts = self.ensure_experts(ctx)

    def expert_spec(self, ctx: RunContext) -> ExpertSpec:
        o = self.options
        if self.numels is None:  # not prepared (`condensery experts`): count the network's parameters
            self.numels = [p.numel() for p in ctx.create_model(o.model).parameters()]
        model = dict(ctx.task.model) if o.model is None else {"name": o.model}
        return ExpertSpec(o.train_epochs, o.expert_lr, o.expert_batch, o.expert_dsa, data_identity(ctx),
                          model, sum(self.numels))

    def experts_directory(self, ctx: RunContext) -> Path:
        if self.options.experts_dir:
            return Path(self.options.experts_dir).expanduser()
        return Path(ctx.run_dir or ".") / "experts"

    def ensure_experts(self, ctx: RunContext) -> list[Path]:
        """Use the stored experts; train the missing ones first (each process its share)."""
        directory = self.experts_directory(ctx)
        spec = self.expert_spec(ctx)
        have = available_experts(directory, spec, self.options.num_experts)
        if len(have) < self.options.num_experts:
            rt = ctx.runtime
            train_experts(ctx, spec, directory, self.options.num_experts, process_index=rt.process_index,
                          num_processes=rt.num_processes, model_name=self.options.model)
            rt.accelerator.wait_for_everyone()
            have = available_experts(directory, spec, self.options.num_experts)
        if not have:
            raise UserError(f"no expert trajectories in '{directory}'; run `condensery experts RECIPE` first")
        return have

    def use_experts(self, experts: list[Path]) -> None:
        """Match these trajectories from now on (SeqMatch: experts warm-started on earlier subsets)."""
        if not experts:
            raise UserError("no expert trajectories to match; train experts first")
        self.experts = list(experts)

    def parameters(self) -> list[tuple[torch.Tensor, float]]:
        return [(self.syn_lr, self.options.lr_lr)]

    def learned_lr(self) -> float:
        """α, the student lr learned with the images."""
        return float(self.syn_lr.detach())

    # -- the unroll -------------------------------------------------------------------
    def _unflatten(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        return {n: t.view(s) for n, t, s in zip(self.names, flat.split(self.numels), self.shapes)}

    def _sgd_step(self, flat, images, labels, lr, idx, aug_values) -> torch.Tensor:
        """One student SGD step on the synthetic minibatch ``idx``: returns the new flat vector."""
        x, y = images[idx], labels[idx]
        if self.dsa is not None and aug_values is not None:
            x = self.dsa.apply(x, aug_values, torch.arange(x.shape[0], device=x.device))
        with self.ctx.runtime.autocast():
            out = functional_call(self.net, self._unflatten(flat), (x,))
        ce = F.cross_entropy(out.float(), y)
        (grad,) = torch.autograd.grad(ce, flat, create_graph=True)
        return flat - lr * grad

    def plan_unroll(self, n: int) -> list[tuple[torch.Tensor, object]]:
        """Minibatch indices and DSA parameters of every unroll step, drawn up front."""
        bs = self.options.batch_syn or n
        plan, perm, pos = [], torch.randperm(n, generator=self.gen), 0
        for _ in range(self.options.syn_steps):
            if pos + bs > n:
                perm, pos = torch.randperm(n, generator=self.gen), 0
            idx = perm[pos : pos + bs].to(self.ctx.device)
            pos += bs
            aug = self.dsa.sample(len(idx), self.gen, self.ctx.device) if self.dsa is not None else None
            plan.append((idx, aug))
        return plan

    def unroll(self, start: torch.Tensor, images, labels, lr, plan) -> torch.Tensor:
        flat = start.detach().clone().requires_grad_(True)
        for idx, aug in plan:
            if self.options.checkpoint_unroll:
                flat = checkpoint(self._sgd_step, flat, images, labels, lr, idx, aug, use_reentrant=False)
            else:
                flat = self._sgd_step(flat, images, labels, lr, idx, aug)
        return flat

    def trajectory_loss(self, start, target, images, labels, plan) -> torch.Tensor:
        """``||θ̂_{t+N} − θ*_{t+M}||² / ||θ*_t − θ*_{t+M}||²`` for one expert segment."""
        end = self.unroll(start, images, labels, self.syn_lr, plan)
        num = ((end - target) ** 2).sum()
        den = ((start - target) ** 2).sum().clamp_min(1e-12)
        return num / den

    def loss(self, images: torch.Tensor, labels: torch.Tensor, step: int) -> torch.Tensor:
        o = self.options
        e = int(torch.randint(len(self.experts), (1,), generator=self.gen))
        t = int(torch.randint(o.max_start_epoch, (1,), generator=self.gen))
        start, target = (r.to(self.ctx.device) for r in read_epochs(self.experts[e], [t, t + o.expert_epochs]))
        plan = self.plan_unroll(images.shape[0])
        return self.trajectory_loss(start, target, images, labels, plan)

    def after_step(self, images: torch.Tensor, labels: torch.Tensor, step: int) -> None:
        """Project α back to a positive, finite value (the known failure of learned lrs)."""
        with torch.no_grad():
            value = float(self.syn_lr)
            if value != value or value in (float("inf"), float("-inf")):
                self.syn_lr.fill_(self._last_good_lr)
            else:
                self.syn_lr.clamp_(min=self.options.lr_min)
            self._last_good_lr = float(self.syn_lr)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"gen": self.gen.get_state(), "syn_lr": self.syn_lr.detach().cpu()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if "gen" in state:
            self.gen.set_state(state["gen"])
        if "syn_lr" in state:
            with torch.no_grad():
                self.syn_lr.fill_(float(state["syn_lr"]))
            self._last_good_lr = float(self.syn_lr.detach())
