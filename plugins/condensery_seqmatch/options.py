"""The ``seqmatch`` synthesizer's options, importing no torch (a recipe is validated against them first)."""

from __future__ import annotations

from condensery import UserError
from condensery_matching.options import PixelOptions
from pydantic import Field, model_validator


def split_ipc(ipc: int, k: int) -> list[int]:
    """``ipc`` images per class over ``k`` subsets, earlier subsets taking the remainder (50/3 -> 17,17,16)."""
    if not 1 <= k <= ipc:
        raise UserError(f"seqmatch: k={k} subsets cannot split ipc {ipc}; use 1 <= k <= ipc")
    base, extra = divmod(ipc, k)
    return [base + (1 if i < extra else 0) for i in range(k)]


class SeqMatchOptions(PixelOptions):
    subsets: list[int] | None = Field(None, description="images per class of S_1..S_K, summing to ipc (e.g. [17, 17, 16])")
    k: int | None = Field(None, ge=1, description="number of subsets, ipc split evenly (default 2; ignored with subsets)")
    stage_iterations: list[int] | None = Field(None, description="iterations of each stage (default: iterations split evenly)")
    warm_epochs: int = Field(50, ge=0, description="epochs a warm network trains on each earlier stage (S_1, S_1 ∪ S_2, ...)")
    warm_lr: float = Field(0.01, gt=0, description="lr of that training for stages without a learned lr")
    warm_momentum: float = Field(0.9, ge=0, lt=1)
    warm_weight_decay: float = Field(5e-4, ge=0)
    warm_dsa: bool = Field(True, description="DSA while training on the earlier subsets")
    stage_experts: int | None = Field(None, ge=1, description="trajectory matcher: experts per later stage (default: its num_experts)")

    @model_validator(mode="after")
    def _sizes_fit(self) -> SeqMatchOptions:
        sizes = self.sizes()
        if any(n < 1 for n in sizes) or sum(sizes) != self.ipc:
            raise ValueError(f"subsets {sizes} must be positive and add up to ipc ({self.ipc}) per class")
        if self.stage_iterations is not None:
            if len(self.stage_iterations) != len(sizes) or any(n < 0 for n in self.stage_iterations):
                raise ValueError(f"stage_iterations needs one count >= 0 per subset ({len(sizes)})")
            if sum(self.stage_iterations) != self.iterations:
                raise ValueError(f"stage_iterations add up to {sum(self.stage_iterations)}, not iterations ({self.iterations})")
        return self

    def sizes(self) -> list[int]:
        if self.subsets is not None:
            return list(self.subsets)
        k = self.k if self.k is not None else min(2, self.ipc)
        if k > self.ipc:
            raise ValueError(f"k={k} subsets cannot split ipc {self.ipc}; use k <= ipc")
        return split_ipc(self.ipc, k)

    def iterations_per_stage(self) -> list[int]:
        if self.stage_iterations is not None:
            return list(self.stage_iterations)
        return split_ipc(self.iterations, len(self.sizes())) if self.iterations >= len(self.sizes()) \
            else [self.iterations] + [0] * (len(self.sizes()) - 1)
