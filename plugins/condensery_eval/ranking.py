"""DD-Ranking's fairness scores, from runs this evaluator performs itself.

Soft labels are knowledge distillation: under a soft-label protocol even a random real
subset scores high, so raw accuracy overstates what the *images* contribute. Two scores,
both normalised from [-1, 1] to [0, 1] by ``(e^x - e^-1) / (e - e^-1)``, accuracies as
fractions:

- Label-Robust Score: ``HLR = Acc(full real, hard) - Acc(syn, hard)`` (how far the images
  alone are from the full data) and ``IOR = Acc(syn, method protocol) - Acc(random,
  method protocol)`` (what the images add over random real images under the method's
  own protocol); ``α = w·IOR - (1-w)·HLR``, ``LRS = norm(α)``.
- Augmentation-Robust Score: ``β = γ·(Acc_syn,aug - Acc_rnd,aug) + (1-γ)·(Acc_syn,noaug -
  Acc_rnd,noaug)`` under the method protocol, ``ARS = norm(β)``.

The full-data accuracy is computed once per data fingerprint, model and protocol and
cached as JSON under ``$CONDENSERY_CACHE/full-accuracy`` (or given as ``full_accuracy``).
The random subset is evaluated here (``compares_random = False``) under every arm.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any, ClassVar

from condensery import Evaluator, Options, Result, RunContext, SyntheticSet
from condensery.api.files import write_atomic
from condensery.evaluation import class_counts, random_like
from condensery.training import accuracy

from .caches import cache_root, data_fingerprint, key_of
from .inner import inner_evaluator
from .options import RankingOptions
from .protocol import (
    model_name,
    spread_runs,
    train_once,
)
from .soft_label import SoftLabelEvaluator

_LOW, _HIGH = math.exp(-1), math.e


def normalise(x: float) -> float:
    """Map a score in [-1, 1] to [0, 1] exponentially (DD-Ranking's normalisation)."""
    return (math.exp(x) - _LOW) / (_HIGH - _LOW)


def label_robust_score(hlr: float, ior: float, w: float = 0.5) -> float:
    return normalise(w * ior - (1 - w) * hlr)


def augmentation_robust_score(
    syn_aug: float, rnd_aug: float, syn_noaug: float, rnd_noaug: float, gamma: float = 0.5
) -> float:
    return normalise(gamma * (syn_aug - rnd_aug) + (1 - gamma) * (syn_noaug - rnd_noaug))


def file_digest(path: Path) -> str:
    """sha1 of a file's bytes (a teacher is identified by what it is, not where it lies)."""
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_cached_arms(path: Path | None) -> dict[str, dict]:
    """The cached random arms at ``path`` ({} when absent or unreadable: recomputed, never trusted)."""
    if path is None or not path.is_file():
        return {}
    try:
        arms = json.loads(path.read_text())["arms"]
        for d in arms.values():
            Result.from_json(d)
        return arms
    except (ValueError, KeyError, TypeError, AttributeError):
        path.unlink(missing_ok=True)
        return {}


def write_cached_arms(path: Path, arms: dict[str, dict]) -> None:
    write_atomic(path, json.dumps({"arms": arms}))


class RankingEvaluator(Evaluator):
    Options: ClassVar[type[Options]] = RankingOptions
    compares_random: ClassVar[bool] = False

    def method_protocol(self, synset: SyntheticSet) -> str:
        p = self.options.protocol
        if p != "auto":
            return p
        return "soft-label" if synset.soft or synset.metadata.get("label_protocol") == "soft-label" else "hard-label"

    def full_accuracy(self, ctx: RunContext) -> tuple[list[float], str]:
        """Hard-label accuracy of networks trained on the whole training split (cached)."""
        o = self.options
        if o.full_accuracy is not None:
            return [o.full_accuracy], "given"
        proto = o.hard.model_copy(update={"epochs": o.full_epochs, "runs": o.full_runs, "lr_grid": None})
        spec = dict(ctx.task.model) if proto.model is None else {"name": proto.model}
        key = key_of(data_fingerprint(ctx), spec, proto.model_dump(), ctx.runtime.seed)
        path = cache_root() / "full-accuracy" / f"{ctx.task.dataset}-{spec['name']}-{key}.json"
        if o.cache and path.is_file():
            try:
                return [float(v) for v in json.loads(path.read_text())["values"]], "cache"
            except (ValueError, KeyError, TypeError):
                path.unlink(missing_ok=True)  # a damaged cache is recomputed, never trusted
        full = SyntheticSet(ctx.data.train_x, ctx.data.train_y)

        def one(run: int) -> float:
            model = train_once(ctx, proto, full, proto.lr, ("ranking", "full", "run", run), ctx.data.train_y)
            return accuracy(model, ctx.data.test_x, ctx.data.test_y, ctx.runtime.autocast)

        values = spread_runs(ctx, proto.runs, one, desc="full-data accuracy")
        if o.cache and ctx.runtime.is_main:
            write_atomic(path, json.dumps({"values": values, "dataset": ctx.task.dataset, "model": spec,
                                           "protocol": proto.model_dump(mode="json"), "seed": ctx.runtime.seed}))
        return values, "computed"

    def random_cache_path(self, ctx: RunContext, rnd: SyntheticSet, method: str, aug_kind: str) -> Path:
        """Where the random arms of this evaluation are kept: keyed by everything they depend on.

        With paired training the random arm does not depend on the synthetic set, only on
        the data, the seed, the images per class, the protocols, the teacher (its file's
        bytes, or the options it is trained from) and what the partner passes on (solved
        labels, a learned lr). Two methods judged on the same task (DWA and SRe2L) share it.
        """
        o = self.options
        teacher: Any = None
        if method == "soft-label" and o.soft.targets == "teacher":
            t, _ = SoftLabelEvaluator(o.soft).teacher_options(rnd)
            teacher = file_digest(Path(os.path.expanduser(t.path))) if t.path else t.model_dump(mode="json")
        spec = dict(ctx.task.model)
        key = key_of(data_fingerprint(ctx), spec, ctx.runtime.seed, class_counts(rnd, ctx.task.num_classes),
                     rnd.metadata.get("label_solver"), rnd.metadata.get("partner_lr"), teacher, method, aug_kind,
                     o.hard.model_dump(mode="json"), o.soft.model_dump(mode="json") if method == "soft-label" else None)
        return cache_root() / "ranking-random" / f"{ctx.task.dataset}-{key}.json"

    def evaluate(self, synset: SyntheticSet, ctx: RunContext) -> list[Result]:
        o = self.options
        syn = synset.to(ctx.device)
        syn.metadata["role"] = "synthetic"
        rnd = random_like(ctx, syn)  # with the set's teacher, label solver and partner lr
        method = self.method_protocol(syn)
        base = o.soft if method == "soft-label" else o.hard
        aug_kind = o.aug or (base.augment if base.augment != "none" else "dsa")
        cache_path = self.random_cache_path(ctx, rnd, method, aug_kind) if o.cache_random else None
        cached = read_cached_arms(cache_path)
        fresh: dict[str, dict] = {}

        def pair(ev: Evaluator, arm: str) -> tuple[Result, Result]:
            a = ev.evaluate(syn, ctx)[0]
            if arm in cached:
                b = Result.from_json(cached[arm])
                b.extra["random_source"] = "cache"
            else:
                b = ev.evaluate(rnd, ctx)[0]
                b.evaluator, b.set = self.name, "random"
                b.extra["arm"] = arm
                fresh[arm] = b.to_json()
            for r, s in ((a, "synthetic"), (b, "random")):
                r.evaluator, r.set = self.name, s
                r.extra["arm"] = arm
            return a, b

        hard_syn, hard_rnd = pair(inner_evaluator("hard-label", o.hard), "hard")
        aug_ev = inner_evaluator(method, base.model_copy(update={"augment": aug_kind}))
        if method == "hard-label" and aug_kind == o.hard.augment:
            aug_syn, aug_rnd = hard_syn, hard_rnd
        else:
            aug_syn, aug_rnd = pair(aug_ev, "method")
        noaug_ev = inner_evaluator(method, base.model_copy(update={"augment": "none"}))
        if method == "soft-label":
            noaug_ev._teacher = aug_ev._teacher  # one teacher for both arms
        noaug_syn, noaug_rnd = pair(noaug_ev, "noaug")

        full_values, full_source = self.full_accuracy(ctx)
        full = Result.from_values(self.name, model_name(ctx, o.hard), "full", full_values,
                                  arm="full", source=full_source, epochs=o.full_epochs)
        hlr = full.mean - hard_syn.mean
        ior = aug_syn.mean - aug_rnd.mean
        scores = {
            "lrs": label_robust_score(hlr, ior, o.w),
            "ars": augmentation_robust_score(aug_syn.mean, aug_rnd.mean, noaug_syn.mean, noaug_rnd.mean, o.gamma),
            "hlr": hlr, "ior": ior, "w": o.w, "gamma": o.gamma, "protocol": method, "full_mean": full.mean,
        }
        head = Result.from_values(self.name, model_name(ctx, base), "synthetic", aug_syn.values,
                                  **{**aug_syn.extra, "arm": "method", "augment": aug_kind, **scores})
        head_rnd = Result.from_values(self.name, model_name(ctx, base), "random", aug_rnd.values,
                                      **{**aug_rnd.extra, "arm": "method", "augment": aug_kind})
        if cache_path is not None and ctx.runtime.is_main and fresh:
            write_cached_arms(cache_path, {**cached, **fresh})
        out = [head, head_rnd]
        if aug_syn is not hard_syn:
            out += [hard_syn, hard_rnd]
        return out + [noaug_syn, noaug_rnd, full]
