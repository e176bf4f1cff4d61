"""The adaptive subset loss of a nested pool: which prefix trains next to the full pool.

After "Multisize Dataset Condensation" (MDC, He et al., ICLR 2024), reimplemented from the
paper's description (``prefix_sampling: adaptive`` of the ``multisize`` synthesizer). MDC
argues that training every prefix at once pulls the pool's images in conflicting directions,
so it trains one prefix at a time, the one that is learning fastest, and then keeps it as it
is. (At the CPU budget of docs/results.md, 600 steps, the rule never left size 1, and training
every prefix, ``prefix_sampling: all``, did better.)

The rule, for a pool of K images per class and a period of P steps:

- **checks** at steps 0, P, 2P, ... (before that step's update) measure, for every proper prefix
  size k in 1..K-1, the distance d_k: the squared L2 distance between a class's mean real
  embedding and the mean embedding of its first k synthetic images, averaged over classes;
- **selection**: the check at step 0 selects k = 1 (there is nothing to compare with yet); every
  later check selects the size whose distance changed most since the previous check,
  argmax_k |d_k(now) - d_k(previous)| (on a tie the smallest such k): the "most learnable subset";
- **loss**: for the P steps from a check, the selected prefix's matcher loss is added to the full
  pool's (one prefix term per step);
- **freezing**: while the selected size is k, the first f images of every class are not updated
  (no gradient from any term, their pixels kept bit for bit), f being the largest size selected
  at an *earlier* check that is smaller than k (nothing is frozen when there is none). A prefix
  learned once is so kept while larger ones learn; it learns again only if it is selected again.

The embedding is one randomly initialised network of the task model, drawn once from the run's
seed, and the real means come from one fixed draw of up to ``REAL_PER_CLASS`` images per class
without augmentation. MDC measures under its matching network; here the matchers differ (DM
draws a new network every step, DC trains one, MTT and KRR have none to share), and fixing both
the network and the real means makes the change between two checks a change of the images
alone. The state (selected sizes, the last distances) is checkpointed with the pixel loop, and
the network and means are redrawn identically on resume, so a resumed run selects the same sizes.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from condensery import RunContext, make_generator
from condensery.models import embed_batched
from condensery.training import seed_global

#: real images per class whose mean embedding the prefixes are measured against (fewer if the class is smaller)
REAL_PER_CLASS = 256
#: images per forward pass of the measuring network
CHUNK = 512


def select_size(previous: torch.Tensor | None, current: torch.Tensor) -> int:
    """The prefix size a check selects from the distances of sizes 1..K-1 (index i is size i + 1).

    None before the first check: size 1. Otherwise the size whose distance changed most
    since ``previous``; the smallest one on a tie (``argmax`` returns the first maximum).
    """
    if previous is None:
        return 1
    return int(torch.argmax((current - previous).abs())) + 1


def frozen_size(selected: list[int]) -> int:
    """How many images per class are frozen while ``selected[-1]`` trains: the largest earlier
    selection smaller than it, 0 if none (``selected`` holds one size per check, in order)."""
    current = selected[-1]
    return max((k for k in selected[:-1] if k < current), default=0)


def prefix_distances(features: torch.Tensor, classes: torch.Tensor, positions: torch.Tensor,
                     real_means: torch.Tensor, pool_ipc: int) -> torch.Tensor:
    """d_k for k = 1..K-1 (float64): per class, the squared distance of the mean of its first k
    rows' ``features`` to its ``real_means`` row, averaged over the classes."""
    k_classes, dim = real_means.shape
    grid = torch.zeros(k_classes, pool_ipc, dim, dtype=torch.float64, device=features.device)
    grid[classes, positions] = features.double()
    sizes = torch.arange(1, pool_ipc + 1, dtype=torch.float64, device=features.device)
    means = grid.cumsum(1) / sizes.view(1, -1, 1)
    return ((means - real_means.double()[:, None, :]) ** 2).sum(-1).mean(0)[:-1]


class PrefixEmbedding:
    """The fixed measuring network and per-class real mean embeddings, built on first use."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.net: torch.nn.Module | None = None
        self.real_means: torch.Tensor | None = None

    def _build(self) -> None:
        ctx = self.ctx
        seed = ctx.runtime.seed
        with torch.random.fork_rng(devices=[]):  # the network's init leaves the run's global stream as it was
            seed_global(seed, "multisize-adaptive", "net")
            net = ctx.create_model()
        net.eval()
        for p in net.parameters():
            p.requires_grad_(False)
        gen = make_generator(seed, "multisize-adaptive", "real")
        means = []
        for c in range(ctx.task.num_classes):
            real = ctx.data.train_x[ctx.data.class_batch_indices(c, REAL_PER_CLASS, gen)].to(ctx.device)
            means.append(embed_batched(net, real, CHUNK).double().mean(0))
        self.net, self.real_means = net, torch.stack(means)

    def distances(self, images: torch.Tensor, classes: torch.Tensor, positions: torch.Tensor,
                  pool_ipc: int) -> torch.Tensor:
        if self.net is None:
            self._build()
        assert self.net is not None and self.real_means is not None
        features = embed_batched(self.net, images.detach(), CHUNK)
        return prefix_distances(features, classes, positions, self.real_means, pool_ipc)


class AdaptiveSelection:
    """The selected size of every period so far and the last check's distances (checkpointed).

    ``measure(images, labels)`` gives d_1..d_{K-1}; it is called once per period, at its first step.
    """

    def __init__(self, pool_ipc: int, period: int,
                 measure: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
        self.pool_ipc, self.period, self.measure = pool_ipc, period, measure
        self.selected: list[int] = []
        self.previous: torch.Tensor | None = None

    def size_at(self, step: int, images: torch.Tensor, labels: torch.Tensor) -> int | None:
        """The prefix size trained at ``step`` (checking first at a period's first step); None if K < 2."""
        if self.pool_ipc < 2:
            return None
        period = step // self.period
        if len(self.selected) == period:  # this period's check is not done yet
            current = self.measure(images, labels).detach().to("cpu", torch.float64)
            self.selected.append(select_size(self.previous, current))
            self.previous = current
        if len(self.selected) != period + 1:
            raise RuntimeError(f"adaptive selection at step {step} holds {len(self.selected)} selections; "
                               f"expected {period + 1} (steps must run in order from a check)")
        return self.selected[period]

    def frozen(self) -> int:
        """Images per class frozen in the current period (0: none)."""
        return frozen_size(self.selected) if self.selected else 0

    def state_dict(self) -> dict[str, torch.Tensor]:
        previous = self.previous if self.previous is not None else torch.zeros(0, dtype=torch.float64)
        return {"selected": torch.tensor(self.selected, dtype=torch.int64), "previous": previous}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.selected = [int(k) for k in state["selected"].tolist()]
        self.previous = state["previous"].to(torch.float64) if len(state["previous"]) else None
