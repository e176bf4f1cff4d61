"""The coreset baselines' options, importing no torch (a recipe is validated against them first)."""

from __future__ import annotations

from typing import ClassVar

from condensery import SynthesizerOptions
from condensery.models import ModelName
from pydantic import Field


class RandomOptions(SynthesizerOptions):
    """The random real subset: ``ipc`` only."""

    uses_matcher: ClassVar[bool] = False


class SelectionOptions(SynthesizerOptions):
    uses_matcher: ClassVar[bool] = False

    feature_model: ModelName | None = Field(None, description="model whose features are used (default: the task model, random init)")
    batch_size: int = Field(512, ge=1)
