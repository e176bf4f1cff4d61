"""ZCA whitening of images (as MTT / KIP use it), fitted on the training split.

The images are flattened to ``D = C·H·W`` features; with the training mean ``μ`` and
covariance ``Σ = U diag(s) Uᵀ`` the whitening matrix is ``W = U diag(1/sqrt(s + eps)) Uᵀ``
(eps added to every eigenvalue, 0.1 by default, as the MTT code does) and
``transform(x) = (x − μ) W``; ``inverse`` undoes it exactly (``W⁻¹ = U diag(sqrt(s + eps)) Uᵀ``).
W is symmetric, so the whitened data stays in the image layout (it is "zero-phase").
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch


@dataclass
class ZCA:
    """A fitted ZCA transform: ``mean`` ``[D]``, ``matrix`` W and ``inverse_matrix`` W⁻¹ ``[D,D]``."""

    mean: torch.Tensor
    matrix: torch.Tensor
    inverse_matrix: torch.Tensor
    eps: float

    @classmethod
    def fit(cls, x: torch.Tensor, eps: float = 0.1) -> ZCA:
        """Fit on images ``[N,C,H,W]`` (computed in float64 for a stable eigendecomposition)."""
        flat = x.reshape(x.shape[0], -1).double()
        mean = flat.mean(dim=0)
        centred = flat - mean
        cov = centred.T @ centred / max(1, flat.shape[0] - 1)
        s, u = torch.linalg.eigh(cov)
        s = s.clamp_min(0) + eps
        w = (u * s.rsqrt()) @ u.T
        w_inv = (u * s.sqrt()) @ u.T
        return cls(mean.float(), w.float(), w_inv.float(), eps)

    def transform(self, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
        return self._apply(x, self.matrix, -1, batch_size)

    def inverse(self, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
        return self._apply(x, self.inverse_matrix, +1, batch_size)

    def _apply(self, x: torch.Tensor, m: torch.Tensor, sign: int, batch_size: int) -> torch.Tensor:
        shape = x.shape
        flat = x.reshape(shape[0], -1)
        mean, m = self.mean.to(x.device, x.dtype), m.to(x.device, x.dtype)
        out = []
        for i in range(0, flat.shape[0], batch_size):
            chunk = flat[i : i + batch_size]
            out.append((chunk - mean) @ m if sign < 0 else chunk @ m + mean)
        return torch.cat(out).reshape(shape) if out else x.clone()

    def info(self) -> dict:
        """What a SyntheticSet records: enough to refit and check the very same transform."""
        digest = hashlib.sha1(self.matrix.cpu().numpy().tobytes() + self.mean.cpu().numpy().tobytes()).hexdigest()
        return {"eps": self.eps, "fitted_on": "train split (validation excluded), after normalisation",
                "dim": int(self.mean.numel()), "sha1": digest}
