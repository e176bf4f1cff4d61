"""Every component's options, importing no torch: a recipe is validated before any component loads."""

from typing import ClassVar

from condensery import GenerateOptions, Options, SynthesizerOptions
from pydantic import Field


class MeanOptions(Options):
    batch_real: int = Field(16, ge=1, description="real images per class drawn at every step")


class ClassByClassOptions(SynthesizerOptions):
    uses_matcher: ClassVar[bool] = True  # the runner prepares synthesizer.matcher as ctx.matcher
    steps: int = Field(20, ge=1, description="optimisation steps per class")
    lr: float = Field(0.1, gt=0, description="image learning rate")


class ClassMeansOptions(GenerateOptions):
    noise: float = Field(0.0, ge=0, description="std of the Gaussian noise added to every generated image")
