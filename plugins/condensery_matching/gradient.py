"""Gradient matching (DC, Zhao et al. 2021; DSA, Zhao & Bilen 2021), reimplemented.

For every class c the cross-entropy gradient of the network's weights on a real batch of
class c is compared with the gradient on the synthetic images of class c; the distance is
summed over layers and classes. Per layer (DC's "layer-wise, channel-wise" distance) the
gradient is reshaped to ``[out_channels, -1]`` and the distance is the sum over output
channels of ``1 - cosine``; one-dimensional parameters (biases, norm scales/shifts) are
skipped, as in the paper.

One *iteration* of the paper is ``outer_loop`` synthesizer steps on the same network:
after each step except the last, the network trains ``inner_loop`` epochs on the current
synthetic set. Every iteration starts a freshly initialised network. So a recipe that wants
the paper's 1000 iterations sets ``synthesizer.iterations = 1000 * outer_loop``.
Defaults by IPC are the paper's: 1 -> (1, 1), 10 -> (10, 50), 50 -> (50, 10).

With DSA on, the same augmentation (op and parameters drawn per class) is applied to the
real and the synthetic batch of a class; the inner training uses independent DSA per image.

With ``runtime.compile`` the first-order passes go through ``torch.compile``: the real side
(its gradient is a detached target: most of the work, 256 real images per class) and the
inner training of the network. The synthetic side stays eager by design: its gradient is
differentiated again (``create_graph=True``), and AOTAutograd refuses double backward.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F
from condensery import Matcher, Options, RunContext, backward_step, make_generator, seed_global_from

from .common import dsa_from, siamese_batches, synthesis_steps
from .options import Distance, GradientOptions

#: Paper defaults (outer_loop, inner_loop) by images per class; other IPCs use the nearest.
LOOPS_BY_IPC = {1: (1, 1), 10: (10, 50), 20: (20, 25), 30: (30, 20), 40: (40, 15), 50: (50, 10)}


def default_loops(ipc: int) -> tuple[int, int]:
    """The paper's (outer, inner) loop counts for ``ipc`` (nearest listed IPC otherwise)."""
    key = min(LOOPS_BY_IPC, key=lambda k: (abs(k - ipc), k))
    return LOOPS_BY_IPC[key]


def matched_parameters(net: nn.Module) -> list[torch.Tensor]:
    """Weights whose gradients are matched: everything but 1-d tensors (biases, norm params)."""
    return [p for p in net.parameters() if p.requires_grad and p.dim() > 1]


def gradient_distance(
    g_real: list[torch.Tensor], g_syn: list[torch.Tensor], distance: Distance = "channel-cosine"
) -> torch.Tensor:
    """Distance between two lists of per-layer gradients (same shapes, same order)."""
    total = g_syn[0].new_zeros(())
    if distance == "channel-cosine":
        for gr, gs in zip(g_real, g_syn):
            gr = gr.reshape(gr.shape[0], -1)
            gs = gs.reshape(gs.shape[0], -1)
            dot = (gr * gs).sum(dim=1)
            norms = gr.norm(dim=1) * gs.norm(dim=1)
            # the tiny epsilon in numerator and denominator makes identical rows (zero rows
            # included) exactly distance 0; DC's code adds 1e-6 to the denominator only,
            # which biases small gradients away from cosine 1
            total = total + (1 - (dot + 1e-12) / (norms + 1e-12)).sum()
        return total
    flat_r = torch.cat([g.flatten() for g in g_real])
    flat_s = torch.cat([g.flatten() for g in g_syn])
    if distance == "mse":
        return ((flat_r - flat_s) ** 2).sum()
    return 1 - (flat_r * flat_s).sum() / (flat_r.norm() * flat_s.norm() + 1e-6)


class GradientMatcher(Matcher):
    """DC (``dsa: false``) and DSA (``dsa: true``) gradient matching; offers SeqMatch's ``WarmStartable``."""

    Options: ClassVar[type[Options]] = GradientOptions
    #: the loss is a sum of per-class terms; the random streams advance the same way for
    #: any subset of classes, so the inner training stays identical across processes
    class_separable = True

    def prepare(self, ctx: RunContext) -> None:
        super().prepare(ctx)
        o = self.options
        ipc = int((ctx.recipe.get("synthesizer") or {}).get("ipc", 1))
        outer, inner = default_loops(ipc)
        self.outer = o.outer_loop or outer
        self.inner = inner if o.inner_loop is None else o.inner_loop
        self.gen = ctx.generator("matcher", "gradient")
        self.dsa = dsa_from(o)
        self.net: nn.Module | None = None
        self.net_opt: torch.optim.Optimizer | None = None
        self.net_iteration = -1
        self.warm_start: Callable[[nn.Module, int], None] | None = None
        self.expected_steps = synthesis_steps(ctx) * max(self.inner, 1)

    def set_warm_start(self, fn: Callable[[nn.Module, int], None] | None) -> None:
        """Train every fresh matching network with ``fn(net, iteration)`` before it is matched.

        SeqMatch uses it to start the network from one trained on the earlier, frozen
        subsets. The current network is dropped, so the next step builds a warm one.
        """
        self.warm_start = fn
        self.net, self.net_opt, self.net_iteration = None, None, -1

    # -- network of the current iteration -----------------------------------------
    def _network(self, step: int) -> nn.Module:
        iteration = step // self.outer
        if self.net is None or iteration != self.net_iteration:
            seed_gen = make_generator(self.ctx.runtime.seed, "gm-net", iteration)
            seed_global_from(seed_gen)
            self.net = self.ctx.create_model(self.options.model)
            if self.warm_start is not None:
                self.warm_start(self.net, iteration)
            self.net.train()
            self.net_opt = torch.optim.SGD(self.net.parameters(), lr=self.options.net_lr, momentum=self.options.net_momentum)
            self.scaler = self.ctx.runtime.grad_scaler()
            self.net_iteration = iteration
            # first-order passes only (the real side, the inner training): see the module docstring
            self.forward = self.ctx.runtime.compiled(self.net, passes=self.expected_steps)
        return self.net

    def class_gradients(
        self, net: nn.Module, x: torch.Tensor, y: torch.Tensor, create_graph: bool
    ) -> list[torch.Tensor]:
        """Gradients of the mean CE on ``(x, y)`` w.r.t. the matched weights.

        First order (``create_graph=False``) runs the compiled forward when ``runtime.compile``
        is on; the synthetic side (``create_graph=True``) stays eager: no double backward
        through a compiled graph.
        """
        params = matched_parameters(net)
        forward = self.forward if not create_graph and net is self.net else net
        with self.ctx.runtime.autocast():
            out = forward(x)
        loss = F.cross_entropy(out.float(), y)
        grads = torch.autograd.grad(loss, params, create_graph=create_graph)
        return [g.float() for g in grads] if create_graph else [g.detach().float() for g in grads]

    def loss(self, images: torch.Tensor, labels: torch.Tensor, step: int) -> torch.Tensor:
        ctx = self.ctx
        k = ctx.task.num_classes
        net = self._network(step)
        real, real_y, syn = siamese_batches(ctx.data, images, labels, self.options.batch_real, self.gen, self.dsa)
        total = images.new_zeros(())
        for c in range(k):
            rm, sm = real_y == c, labels == c
            if not bool(sm.any()) or not bool(rm.any()):
                continue
            g_real = self.class_gradients(net, real[rm], real_y[rm], create_graph=False)
            g_syn = self.class_gradients(net, syn[sm], labels[sm], create_graph=True)
            total = total + gradient_distance(g_real, g_syn, self.options.distance)
        return total

    def after_step(self, images: torch.Tensor, labels: torch.Tensor, step: int) -> None:
        """Between outer steps of an iteration, train the network on the synthetic set."""
        if (step + 1) % self.outer == 0 or self.net is None or self.inner == 0:
            return
        x, y = images.detach(), labels.detach()
        n = x.shape[0]
        bs = self.options.batch_train
        for _ in range(self.inner):
            perm = torch.randperm(n, generator=self.gen).to(x.device)
            for start in range(0, n, bs):
                idx = perm[start : start + bs]
                xb = x[idx]
                if self.dsa is not None:
                    xb = self.dsa(xb, self.gen)
                with self.ctx.runtime.autocast():
                    out = self.forward(xb)
                loss = F.cross_entropy(out.float(), y[idx])
                self.net_opt.zero_grad(set_to_none=True)
                backward_step(loss, self.net_opt, self.scaler)

    # -- checkpoints: the random stream and the network of the running iteration --------
    def state_dict(self) -> dict[str, torch.Tensor]:
        state = {"gen": self.gen.get_state(), "net_iteration": torch.tensor(self.net_iteration)}
        if self.net is not None:
            state.update({f"net.{k}": v.detach() for k, v in self.net.state_dict().items()})
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if "gen" in state:
            self.gen.set_state(state["gen"])
        iteration = int(state.get("net_iteration", torch.tensor(-1)))
        net_state = {k[4:]: v for k, v in state.items() if k.startswith("net.")}
        if iteration >= 0 and net_state:
            self._network(iteration * self.outer)
            self.net.load_state_dict(net_state)
