"""Cross-architecture evaluation: one protocol (hard- or soft-label) over several networks.

A distilled set is only useful if it trains networks other than the one it was distilled
with. Every model in ``models`` is trained under the same protocol and reported as its own
result; the runner does the same on the random subset of the same size.
"""

from __future__ import annotations

from typing import ClassVar

from condensery import Evaluator, Options, Result, RunContext, SyntheticSet

from .inner import PROTOCOLS, inner_evaluator
from .options import CrossArchOptions


class CrossArchEvaluator(Evaluator):
    Options: ClassVar[type[Options]] = CrossArchOptions

    def __init__(self, options: CrossArchOptions) -> None:
        super().__init__(options)
        spec = dict(options.protocol)
        self.protocol_name = spec.pop("name", "hard-label")
        cls = PROTOCOLS[self.protocol_name]
        self.evaluators = [(m, inner_evaluator(self.protocol_name, cls.Options(**spec, model=m))) for m in options.models]

    def evaluate(self, synset: SyntheticSet, ctx: RunContext) -> list[Result]:
        results = []
        for model, ev in self.evaluators:
            for r in ev.evaluate(synset, ctx):
                r.evaluator = self.name
                r.model = model
                r.extra["protocol"] = self.protocol_name
                results.append(r)
        return results
