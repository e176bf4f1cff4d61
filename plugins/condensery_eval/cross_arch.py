"""Cross-architecture evaluation: one protocol (hard- or soft-label) over several networks.

A distilled set is only useful if it trains networks other than the one it was distilled
with. Every model in ``models`` is trained under the same protocol and reported as its own
result; the runner does the same on the random subset of the same size.
"""

from __future__ import annotations

from typing import Any, ClassVar

from condensery import Evaluator, Options, Result, RunContext, SyntheticSet
from pydantic import Field, field_validator, model_validator

from .hard_label import HardLabelEvaluator
from .soft_label import SoftLabelEvaluator

PROTOCOLS: dict[str, type[Evaluator]] = {"hard-label": HardLabelEvaluator, "soft-label": SoftLabelEvaluator}


class CrossArchOptions(Options):
    models: list[str] = Field(default_factory=lambda: ["convnet", "resnet18", "vgg11_dd"], min_length=1,
                              description="registered model names or timm names")
    protocol: dict[str, Any] = Field(default_factory=lambda: {"name": "hard-label"},
                                     description="the evaluator to apply, with its options: {name: hard-label|soft-label, ...}")

    @field_validator("models")
    @classmethod
    def _known_models(cls, models: list[str]) -> list[str]:
        import timm
        from condensery.models import convnet  # noqa: F401  (registers the DD ConvNets into timm)
        from condensery.plugins import get_registry

        registered = get_registry().names("model")
        for m in models:
            if m not in registered and not timm.is_model(m):
                raise ValueError(f"unknown model '{m}'; use one of {', '.join(registered)} or any timm model name")
        return models

    @model_validator(mode="after")
    def _valid_protocol(self) -> CrossArchOptions:
        spec = dict(self.protocol)
        name = spec.pop("name", "hard-label")
        if name not in PROTOCOLS:
            raise ValueError(f"protocol name '{name}' is not one of {', '.join(PROTOCOLS)}")
        if "model" in spec:
            raise ValueError("protocol must not set 'model'; list the networks in 'models'")
        PROTOCOLS[name].Options(**spec)  # raises with the bad key / value
        return self


class CrossArchEvaluator(Evaluator):
    Options: ClassVar[type[Options]] = CrossArchOptions
    name = "cross-arch"

    def __init__(self, options: CrossArchOptions) -> None:
        super().__init__(options)
        spec = dict(options.protocol)
        self.protocol_name = spec.pop("name", "hard-label")
        cls = PROTOCOLS[self.protocol_name]
        self.evaluators = [(m, cls(cls.Options(**spec, model=m))) for m in options.models]

    def evaluate(self, synset: SyntheticSet, ctx: RunContext) -> list[Result]:
        results = []
        for model, ev in self.evaluators:
            for r in ev.evaluate(synset, ctx):
                r.evaluator = self.name
                r.model = model
                r.extra["protocol"] = self.protocol_name
                results.append(r)
        return results
