"""The ``multi-index`` dataset's and the ``mlp`` model's options, importing no torch.

A recipe's ``data`` and ``model`` sections are validated against them before either module
is imported (``plugin.py`` registers both with their options class).
"""

from __future__ import annotations

from typing import Literal

from condensery import DatasetOptions, Options, UserError
from pydantic import Field, model_validator

Link = Literal["norm", "argmax", "sign-product"]


class MultiIndexOptions(DatasetOptions):
    d: int = Field(16, ge=1, description="input dimension")
    r: int = Field(2, ge=1, description="dimension of the projection the label depends on")
    link: Link = Field("norm", description="label function of the projection")
    num_classes: int | None = Field(None, ge=2, description="classes of the norm link (default 2); argmax has r, sign-product 2")
    n_train: int = Field(4000, ge=2, description="training points (before the validation split)")
    n_test: int = Field(2000, ge=1, description="test points")
    task_seed: int = Field(0, ge=0, description="draws W and the points; part of the task, not of the run")
    normalize: bool = Field(False, description="inputs are already standard Gaussian; keep them as drawn")

    def link_classes(self) -> int:
        """The task's classes: ``num_classes`` (default 2) for the norm link, r for argmax, 2 for sign-product."""
        return {"norm": self.num_classes or 2, "argmax": self.r, "sign-product": 2}[self.link]

    @model_validator(mode="after")
    def _consistent(self) -> MultiIndexOptions:
        # UserError rather than ValueError: the recipe error is the line itself, as the source's own check was
        if self.r > self.d:
            raise UserError(f"multi-index needs r <= d, got r={self.r} > d={self.d}; lower data.r or raise data.d")
        if self.link == "argmax" and self.r < 2:
            raise UserError("the argmax link needs r >= 2 (it has r classes); raise data.r or use link: norm")
        if self.link != "norm" and self.num_classes is not None and self.num_classes != self.link_classes():
            raise UserError(f"link '{self.link}' has {self.link_classes()} classes; drop data.num_classes")
        return self


class MLPOptions(Options):
    """The two-layer network ``x -> a(W1 x + b1) -> W2 h + b2`` (``condensery_analysis.mlp``)."""

    width: int = Field(64, ge=1, description="hidden units")
    activation: Literal["relu", "tanh", "gelu"] = "relu"
