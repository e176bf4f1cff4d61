"""The multi-index model task: Gaussian inputs whose label depends on an r-dim projection.

``x ~ N(0, I_d)``, ``z = Wᵀx`` with ``W`` a fixed ``d x r`` matrix with orthonormal columns,
and ``y = g(z)``: the label sees only the r-dimensional subspace spanned by W. It is the
setting in which distillation has a theory: a two-layer network of width L learns it, and a
distilled set needs memory on the order of ``r²d + L`` (the subspace, then the readout)
against ``d²`` for a naive encoding of the data's second moments.

Vectors are stored as ``[d,1,1]`` "images" (d channels of 1x1): the core's per-channel
normalisation is then per-coordinate standardisation, and the ``mlp`` model flattens them.
No spatial augmentation makes sense on them: recipes set ``augment: none`` / ``dsa: false``.

Links ``g``:
- ``norm``: ``||z||²`` cut at the chi-square(r) quantiles into ``num_classes`` equal-mass classes
  (radial: not linearly separable, needs the hidden layer);
- ``argmax``: ``argmax_i z_i`` (r classes, piecewise linear);
- ``sign-product``: ``prod_i sign(z_i) > 0`` (2 classes, an r-sparse parity in the basis W).
"""

from __future__ import annotations

import torch
from condensery import DatasetSource, RawSplits, make_generator

from .options import MultiIndexOptions


class MultiIndex(DatasetSource):
    """Gaussian inputs ``[d,1,1]`` with labels ``g(Wᵀx)``; generated, never cached on disk."""

    Options = MultiIndexOptions  # r, d, link and num_classes are checked with the options (options.py)

    @property
    def num_classes(self) -> int:
        return self.options.link_classes()

    def projection(self) -> torch.Tensor:
        """``W`` ``[d, r]`` with orthonormal columns, fixed by ``task_seed``."""
        g = make_generator(self.options.task_seed, "multi-index", "W")
        q, _ = torch.linalg.qr(torch.randn(self.options.d, self.options.r, generator=g, dtype=torch.float64))
        return q.float()

    def thresholds(self) -> torch.Tensor:
        """Chi-square(r) quantiles cutting ``||z||²`` into equal-mass classes (norm link)."""
        from scipy.stats import chi2

        k = self.num_classes
        return torch.tensor([chi2.ppf(i / k, self.options.r) for i in range(1, k)], dtype=torch.float32)

    def label(self, x: torch.Tensor) -> torch.Tensor:
        """Labels of points ``x`` ``[n, d]`` (or ``[n, d, 1, 1]``): a function of ``Wᵀx`` only."""
        z = x.reshape(x.shape[0], -1).float() @ self.projection()
        link = self.options.link
        if link == "norm":
            return torch.bucketize(z.pow(2).sum(1), self.thresholds()).long()
        if link == "argmax":
            return z.argmax(1).long()
        return (torch.sign(z).prod(1) > 0).long()

    def load(self) -> RawSplits:
        o = self.options
        g = make_generator(o.task_seed, "multi-index", "points")
        xtr = torch.randn(o.n_train, o.d, generator=g)
        xte = torch.randn(o.n_test, o.d, generator=g)
        return RawSplits(
            xtr[:, :, None, None].contiguous(), self.label(xtr), xte[:, :, None, None].contiguous(), self.label(xte),
            [str(c) for c in range(self.num_classes)],
        )
