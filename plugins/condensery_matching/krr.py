"""Kernel ridge regression matching with random-feature kernels (RFAD / KIP style), reimplemented.

The synthetic set is the support of a kernel ridge regressor; a real batch is predicted
from it and the squared error is the loss (KIP):

    ŷ_t = K_ts (K_ss + λI)⁻¹ y_s,   λ = reg · tr(K_ss) / n_s,   loss = ½ mean ||ŷ_t − y_t||²

with centred one-hot targets. The kernel is RFAD's random-feature approximation: Φ is the
concatenated penultimate features of ``num_models`` randomly initialised (never trained),
wide ConvNets, each scaled by 1/sqrt(features), and K = ΦΦᵀ; cost is linear in |S|. The
networks are redrawn every ``resample_every`` steps. Labels can be learned (a tensor in
``parameters()``, stored in the SyntheticSet through ``learned_labels()``).

Unverified choices, made here: the feature networks keep the task model's normalisation;
the default real batch is 64 per class; the ridge is relative to the kernel's trace.
The features are first order (one backward to the pixels), so with ``runtime.compile`` they go
through ``torch.compile``, every redrawn network reusing the first graph.
``solve_krr_labels`` is the closed-form label solve; ``KRRMatcher.solve_labels`` applies it
in the feature space of draw 0 (``condensery.api.capabilities.LabelSolver``), for MGDD's sets and their random arm.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F
from condensery import Matcher, Options, RunContext, UserError, make_generator, seed_global_from
from condensery.models import embed

from .common import dsa_from, real_class_batches, siamese_batches, synthesis_steps
from .options import KRROptions


def centred_one_hot(labels: torch.Tensor, k: int) -> torch.Tensor:
    """One-hot targets shifted to zero mean per row (KIP's label convention)."""
    return F.one_hot(labels, k).float() - 1.0 / k


def _kernels(features_syn: torch.Tensor, features_real: torch.Tensor, reg: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``K_ss + λI`` and ``K_ts`` in float64 (the solve is ill-conditioned in float32)."""
    fs, ft = features_syn.double(), features_real.double()
    kss = fs @ fs.T
    kts = ft @ fs.T
    n = kss.shape[0]
    lam = reg * torch.trace(kss).clamp_min(1e-12) / n
    return kss + lam * torch.eye(n, dtype=kss.dtype, device=kss.device), kts


def krr_predict(features_syn: torch.Tensor, features_real: torch.Tensor, y_syn: torch.Tensor, reg: float) -> torch.Tensor:
    """``K_ts (K_ss + λI)⁻¹ y_s``: predictions for the real rows from the synthetic support."""
    kss, kts = _kernels(features_syn, features_real, reg)
    return (kts @ torch.linalg.solve(kss, y_syn.double())).to(features_syn.dtype)


def solve_krr_labels(
    features_syn: torch.Tensor, features_real: torch.Tensor, y_real: torch.Tensor, reg: float = 1e-6
) -> torch.Tensor:
    """Closed-form support labels: ``argmin_Y ||K_ts (K_ss + λI)⁻¹ Y − Y_t||²``.

    ``features_*`` are ``[n, D]`` feature rows (kernel K = FFᵀ), ``y_real`` is ``[n_t, K]``
    (e.g. centred one-hot). Least squares through the pseudo-inverse, so it also works when
    there are fewer real rows than synthetic ones (minimum-norm solution).
    """
    kss, kts = _kernels(features_syn, features_real, reg)
    a = torch.linalg.solve(kss, kts.T).T  # K_ts (K_ss + λI)⁻¹, [n_t, n_s]
    # rank decided at 1e-8 of the largest singular value: with more support images than feature
    # dimensions (digits IPC 50: 250 images, 128 features) A is rank-deficient, and the default
    # cut-off inverted its round-off singular values (~1e-9) into labels of 1e8; well-posed
    # solves have no singular values that small and are unchanged
    return (torch.linalg.pinv(a, rtol=1e-8) @ y_real.double()).to(features_syn.dtype)


class KRRMatcher(Matcher):
    """KRR matching; offers closed-form labels (``condensery.api.capabilities.LabelSolver``) and support targets
    (MGDD's ``TargetMatching``: ``loss_with_targets``)."""

    Options: ClassVar[type[Options]] = KRROptions

    def __init__(self, options: Options) -> None:
        super().__init__(options)
        self.labels: torch.Tensor | None = None  # the learned support labels (``learn_labels``, from ``prepare``)

    def prepare(self, ctx: RunContext) -> None:
        super().prepare(ctx)
        self.gen = ctx.generator("matcher", "krr")
        self.dsa = dsa_from(self.options)
        self.nets: list[nn.Module] = []
        self.nets_drawn = -1
        k = ctx.task.num_classes
        ipc = int((ctx.recipe.get("synthesizer") or {}).get("ipc", 1))
        self.init_labels = torch.arange(k, device=ctx.device).repeat_interleave(ipc)
        self.labels: torch.Tensor | None = None
        self.expected_passes = synthesis_steps(ctx) * self.options.num_models
        if self.options.learn_labels:
            self.labels = centred_one_hot(self.init_labels, k).requires_grad_(True)

    def parameters(self) -> list[tuple[torch.Tensor, float]]:
        return [(self.labels, self.options.label_lr)] if self.labels is not None else []

    def learned_labels(self) -> torch.Tensor | None:
        """The learned support labels (``learn_labels``; None before ``prepare``)."""
        return None if self.labels is None else self.labels.detach()

    def networks(self, step: int) -> list[nn.Module]:
        """The random feature networks of this step (redrawn every ``resample_every`` steps)."""
        draw = step // self.options.resample_every
        if draw != self.nets_drawn:
            gen = make_generator(self.ctx.runtime.seed, "krr-nets", draw)
            opts: dict[str, Any] = {}
            name = self.options.model or self.ctx.task.model.get("name", "convnet")
            if self.options.width is not None and str(name).startswith("convnet"):
                opts["width"] = self.options.width
            self.nets = []
            for _ in range(self.options.num_models):
                seed_global_from(gen)
                net = self.ctx.create_model(self.options.model, **opts)
                for p in net.parameters():
                    p.requires_grad_(False)
                self.nets.append(net.train())
            self.nets_drawn = draw
        return self.nets

    def features(self, nets: list[nn.Module], x: torch.Tensor) -> torch.Tensor:
        """Concatenated random features, scaled so K = ΦΦᵀ averages the models' kernels."""
        feats = []
        with self.ctx.runtime.autocast():
            for net in nets:
                f = self.ctx.runtime.compiled(net, embed, passes=self.expected_passes)(x).float()
                feats.append(f / f.shape[1] ** 0.5)
        return torch.cat(feats, dim=1) / len(nets) ** 0.5

    def targets(self, labels: torch.Tensor) -> torch.Tensor:
        k = self.ctx.task.num_classes
        if self.labels is None:
            return centred_one_hot(labels, k)
        if self.labels.shape[0] != labels.shape[0] or not torch.equal(self.init_labels, labels):
            raise UserError("krr learn_labels needs the class-ordered pixel synthesizer (ipc images of class 0, then 1, ...)")
        return self.labels

    def loss(self, images: torch.Tensor, labels: torch.Tensor, step: int) -> torch.Tensor:
        """KRR loss of a real batch predicted from ``(images, support labels)``: centred one-hot
        of ``labels``, or the learned labels."""
        return self.loss_with_targets(images, labels, step, None)

    def loss_with_targets(self, images: torch.Tensor, labels: torch.Tensor, step: int,
                          targets: torch.Tensor | None) -> torch.Tensor:
        """``loss`` with ``targets`` ([N, K]) as the support labels (None: ``labels``' own);
        MGDD passes its closed-form label solve here."""
        ctx = self.ctx
        k = ctx.task.num_classes
        nets = self.networks(step)
        real, real_y, syn = siamese_batches(ctx.data, images, labels, self.options.batch_real, self.gen, self.dsa)
        with torch.no_grad():
            f_real = self.features(nets, real)
        f_syn = self.features(nets, syn)
        support = self.targets(labels) if targets is None else targets
        pred = krr_predict(f_syn, f_real, support, self.options.reg)
        return 0.5 * ((pred - centred_one_hot(real_y, k)) ** 2).sum(dim=1).mean()

    @torch.no_grad()
    def solve_labels(self, images: torch.Tensor, classes: torch.Tensor | None,
                     generator: torch.Generator) -> torch.Tensor:
        """Closed-form support labels ``[N, K]`` for ``images`` in the random features of draw 0.

        ``Y_s = argmin_Y ||K_ts (K_ss + λI)⁻¹ Y − Y_t||²`` with ``Y_t`` the centred one-hot
        labels of a fresh real batch (``batch_real`` per class, drawn with ``generator``);
        solved in float64 through the pseudo-inverse. The solve does not need ``classes``.
        One fixed feature space (draw 0, from the run seed), so labels are a function of
        the images and the real batch alone.
        """
        nets = self.networks(0)
        k = self.ctx.task.num_classes
        real, real_y = real_class_batches(self.ctx.data, self.options.batch_real, generator)
        f_s, f_t = self.features(nets, images), self.features(nets, real)
        labels = solve_krr_labels(f_s.float(), f_t.float(), centred_one_hot(real_y, k), self.options.reg).float()
        if not bool(torch.isfinite(labels).all()) or float(labels.abs().max()) > 1e3:
            raise UserError(f"the least-squares label solve for {len(images)} images is ill-posed ({len(real)} real "
                            f"images to fit, largest label {float(labels.abs().max()):.3g}); ask for fewer images per class")
        return labels

    def state_dict(self) -> dict[str, torch.Tensor]:
        state = {"gen": self.gen.get_state()}
        if self.labels is not None:
            state["labels"] = self.labels.detach()
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if "gen" in state:
            self.gen.set_state(state["gen"])
        if "labels" in state and self.labels is not None and state["labels"].shape == self.labels.shape:
            with torch.no_grad():
                self.labels.copy_(state["labels"].to(self.labels.device))
