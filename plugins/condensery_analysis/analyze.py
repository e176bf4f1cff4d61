"""``condensery analyze RUN_DIR``: what is in a distilled set, measured three ways.

(a) Substitution outside the standard setting: the set mixed with real data, and trained
    far longer than its protocol, each next to the same number of random real images.
(b) Early-training dynamics: which checkpoint of a real-data training run a network trained
    on the set agrees with most (prediction agreement on the test split).
(c) Per-image information: the test-accuracy drop when each distilled image is left out,
    and its nearest real training images in the feature space of the real-data network.

Every network is trained with the run's own evaluation protocol (model, lr, batch size,
augmentation, momentum, weight decay; the first evaluator that has ``epochs``) unless an
option overrides it; accuracy is test accuracy at the end of training, mean ± std over
``runs`` seeds. Leave-one-out runs reuse the seeds of the full-set runs, so each drop is a
paired difference. Writes ``analysis.json``, ``report.md`` and PNG figures.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from condensery import (
    DSA,
    RunContext,
    SyntheticSet,
    UserError,
    backward_step,
    crop_flip,
    embed,
    embed_batched,
    make_generator,
    predict,
    train_classifier,
)
from condensery.progress import say

SECTIONS = ("substitution", "dynamics", "per-image")


@dataclass
class AnalysisOptions:
    """Budgets of ``condensery analyze``; ``None`` means "as the run's evaluation protocol"."""

    epochs: int | None = None  # training epochs on the set (and on each same-size real subset)
    augment: str | None = None  # override the protocol's augmentation (DSA dominates CPU time)
    runs: int = 2  # seeds per measured accuracy
    long_factor: float = 3.0  # "much longer": epochs x this
    mix: list[int] = field(default_factory=lambda: [10])  # real images per class mixed in
    real_epochs: int = 30  # epochs of the real-data reference run (dynamics, neighbours)
    real_per_class: int | None = None  # cap on real images per class of that run
    checkpoints: int = 20  # checkpoints along it (log-spaced in iterations)
    max_images: int = 10  # distilled images analysed one by one (round-robin over classes)
    neighbors: int = 5  # nearest real images shown per distilled image
    sections: list[str] = field(default_factory=lambda: list(SECTIONS))


@dataclass
class Protocol:
    model: str | None
    epochs: int
    lr: float
    batch_size: int
    momentum: float
    weight_decay: float
    augment: str
    set_lr: float  # lr for the set alone: its learned lr if it has one and the protocol uses it


def protocol_of(plan: Any, synset: SyntheticSet, options: AnalysisOptions) -> Protocol:
    """The run's training protocol (first evaluator with ``epochs``), overridden by options."""
    ev = next((e for e in plan.resolved.get("evaluators", []) if "epochs" in e), {})
    lr = float(ev.get("lr", 0.01))
    learned = synset.lr is not None and ev.get("use_learned_lr", True)
    return Protocol(
        model=ev.get("model"), epochs=int(options.epochs or ev.get("epochs", 300)), lr=lr,
        batch_size=int(ev.get("batch_size", 256)), momentum=float(ev.get("momentum", 0.9)),
        weight_decay=float(ev.get("weight_decay", 5e-4)), augment=options.augment or str(ev.get("augment", "dsa")),
        set_lr=float(synset.lr) if learned else lr,
    )


def augmenter(kind: str, image_shape: tuple[int, ...]):
    """The protocol's batched augmentation; none on vectors stored as 1x1 images."""
    if image_shape[-1] == 1 and image_shape[-2] == 1:
        return None
    return {"dsa": DSA(), "crop-flip": crop_flip, "flip": lambda x, g: crop_flip(x, g, pad=0)}.get(kind)


class Analysis:
    """The three measurements on one run directory; each returns a JSON-able dict."""

    def __init__(self, ctx: RunContext, synset: SyntheticSet, protocol: Protocol, options: AnalysisOptions) -> None:
        self.ctx, self.syn, self.p, self.o = ctx, synset, protocol, options
        self.k = ctx.task.num_classes
        self.counts = torch.bincount(synset.hard_labels.long().cpu(), minlength=self.k).tolist()
        self.aug = augmenter(protocol.augment, ctx.task.image_shape)
        self._base: dict[str, Any] | None = None
        self.real_model: nn.Module | None = None

    # -- training ---------------------------------------------------------------
    def train(self, x: torch.Tensor, y: torch.Tensor, stream: tuple, epochs: int | None = None,
              lr: float | None = None) -> nn.Module:
        """One fresh task network on ``(x, y)``; its init and batches depend on ``stream`` only."""
        gen = make_generator(self.ctx.runtime.seed, "analyze", *stream)
        torch.manual_seed(int(torch.randint(2**31 - 1, (1,), generator=gen)))
        model = self.ctx.create_model(self.p.model)
        return train_classifier(
            model, x, y, epochs=epochs or self.p.epochs, lr=lr or self.p.lr, generator=gen,
            batch_size=self.p.batch_size, momentum=self.p.momentum, weight_decay=self.p.weight_decay,
            augment=self.aug, autocast=self.ctx.runtime.autocast, scaler=self.ctx.runtime.grad_scaler(),
        )

    def test_preds(self, model: nn.Module) -> torch.Tensor:
        return predict(model, self.ctx.data.test_x, autocast=self.ctx.runtime.autocast)

    def acc(self, preds: torch.Tensor) -> float:
        return float((preds == self.ctx.data.test_y).float().mean())

    def labels_like_set(self, y: torch.Tensor) -> torch.Tensor:
        """Real hard labels in the set's label format (one-hot when the set is soft)."""
        return F.one_hot(y, self.k).to(self.syn.labels.dtype) if self.syn.soft else y

    def real_subset(self, counts: list[int], stream: tuple, extra: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Indices of ``counts[c] + extra`` distinct real images of each class, as two parts."""
        gen = self.ctx.generator("analyze", *stream)
        firsts, rests = [], []
        for c, n in enumerate(counts):
            idx = self.ctx.data.class_batch_indices(c, n + extra, gen)
            if len(idx) < n + extra:
                raise UserError(f"class '{self.ctx.task.class_names[c]}' has {len(idx)} training images, fewer than "
                                f"the {n + extra} asked for; lower --mix or analyse a smaller set")
            firsts.append(idx[:extra])
            rests.append(idx[extra:])
        return torch.cat(firsts), torch.cat(rests)

    def trained_accs(self, x: torch.Tensor, y: torch.Tensor, tag: str, **kw: Any) -> tuple[list[float], list[torch.Tensor]]:
        preds = [self.test_preds(self.train(x, y, (tag, "run", r), **kw)) for r in range(self.o.runs)]
        return [self.acc(p) for p in preds], preds

    def run_random_subset(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The evaluators' one-draw random subset (``ctx.random_subset``, ``random_draws: one``);
        the evaluators' default draws per network instead, which ``fresh_draw_accs`` mirrors.
        An unbalanced set gets its own draw with the same images per class."""
        if len(set(self.counts)) == 1:
            rnd = self.ctx.random_subset(self.counts[0])
            return rnd.images, rnd.labels
        _, ridx = self.real_subset(self.counts, ("random",))
        return self.ctx.data.train_x[ridx], self.ctx.data.train_y[ridx]

    def fresh_draw_accs(self) -> list[float]:
        """One new random subset per seed: the spread includes which real images were drawn,
        which a single draw trained with several seeds hides (at 1 image per class it is large)."""
        d, accs = self.ctx.data, []
        for r in range(self.o.runs):
            _, idx = self.real_subset(self.counts, ("draw", r))
            accs.append(self.acc(self.test_preds(self.train(d.train_x[idx], d.train_y[idx], ("draw", r)))))
        return accs

    def base(self) -> dict[str, Any]:
        """The set and the same-size random real subset under the protocol (shared by all sections)."""
        if self._base is None:
            rx, ry = self.run_random_subset()
            s_acc, s_preds = self.trained_accs(self.syn.images, self.syn.labels, "set", lr=self.p.set_lr)
            r_acc, r_preds = self.trained_accs(rx, ry, "random")
            self._base = {"set": s_acc, "random": r_acc, "set_preds": s_preds, "random_preds": r_preds}
        return self._base

    # -- (a) substitution ---------------------------------------------------------
    def substitution(self) -> dict[str, Any]:
        d, b = self.ctx.data, self.base()
        rows = [row("standard protocol", f"{self.p.epochs} epochs", b["set"], b["random"], len(self.syn)),
                row("standard protocol, a fresh random draw per seed", f"{self.p.epochs} epochs", b["set"],
                    self.fresh_draw_accs(), len(self.syn))]
        smallest = min(d.class_count(c) - n for c, n in enumerate(self.counts))
        for m in self.o.mix:
            m = min(m, smallest)
            if m < 1:
                continue
            midx, ridx = self.real_subset(self.counts, ("mix", m), extra=m)
            mx, my = d.train_x[midx], d.train_y[midx]
            real_only, _ = self.trained_accs(mx, my, f"mix-{m}-alone")
            with_set, _ = self.trained_accs(torch.cat([mx, self.syn.images]),
                                            torch.cat([self.labels_like_set(my), self.syn.labels]), f"mix-{m}-set")
            with_real, _ = self.trained_accs(torch.cat([mx, d.train_x[ridx]]),
                                             torch.cat([my, d.train_y[ridx]]), f"mix-{m}-random")
            r = row(f"mixed with {m} real / class", f"{self.p.epochs} epochs", with_set, with_real, len(self.syn))
            r["real_alone"] = summary(real_only)
            rows.append(r)
        long_epochs = max(1, round(self.p.epochs * self.o.long_factor))
        s_long, _ = self.trained_accs(self.syn.images, self.syn.labels, "long-set", epochs=long_epochs, lr=self.p.set_lr)
        r_long, _ = self.trained_accs(*self.run_random_subset(), "long-random", epochs=long_epochs)
        rows.append(row(f"long training (x{self.o.long_factor:g})", f"{long_epochs} epochs", s_long, r_long, len(self.syn)))
        return {"rows": rows}

    # -- (b) early-training dynamics ----------------------------------------------
    def real_run(self) -> dict[str, Any]:
        """Train on real data at constant lr; test predictions at log-spaced checkpoints."""
        d, p = self.ctx.data, self.p
        if self.o.real_per_class:
            _, idx = self.real_subset([min(self.o.real_per_class, d.class_count(c)) for c in range(self.k)], ("real-run",))
            x, y = d.train_x[idx], d.train_y[idx]
        else:
            x, y = d.train_x, d.train_y
        gen = make_generator(self.ctx.runtime.seed, "analyze", "real-run")
        torch.manual_seed(int(torch.randint(2**31 - 1, (1,), generator=gen)))
        model = self.ctx.create_model(p.model)
        opt = torch.optim.SGD(model.parameters(), lr=p.lr, momentum=p.momentum, weight_decay=p.weight_decay)
        per_epoch = math.ceil(len(x) / p.batch_size)
        total = per_epoch * self.o.real_epochs
        marks = sorted({0, *(round(v) for v in torch.logspace(0, math.log10(max(total, 1)), self.o.checkpoints).tolist())})
        preds, step = {0: self.test_preds(model)}, 0
        scaler = self.ctx.runtime.grad_scaler()
        model.train()
        for _ in self.ctx.progress(range(self.o.real_epochs), desc="real-data run"):
            perm = torch.randperm(len(x), generator=gen).to(x.device)
            for start in range(0, len(x), p.batch_size):
                xb, yb = x[perm[start : start + p.batch_size]], y[perm[start : start + p.batch_size]]
                if self.aug is not None:
                    xb = self.aug(xb, gen)
                with self.ctx.runtime.autocast():
                    loss = F.cross_entropy(model(xb).float(), yb)
                opt.zero_grad(set_to_none=True)
                backward_step(loss, opt, scaler)
                step += 1
                if step in marks:
                    preds[step] = self.test_preds(model)
        self.real_model = model
        return {"steps": marks, "epochs": [s / per_epoch for s in marks], "preds": [preds[s] for s in marks],
                "iterations_per_epoch": per_epoch, "train_images": len(x)}

    def dynamics(self) -> dict[str, Any]:
        b, run = self.base(), self.real_run()
        ckpt = torch.stack(run["preds"])  # [checkpoints, n_test]

        def curve(model_preds: list[torch.Tensor]) -> list[float]:
            return torch.stack([(ckpt == p[None]).float().mean(1) for p in model_preds]).mean(0).tolist()

        out: dict[str, Any] = {
            "epochs": run["epochs"], "steps": run["steps"], "iterations_per_epoch": run["iterations_per_epoch"],
            "real_train_images": run["train_images"], "real_epochs": self.o.real_epochs,
            "checkpoint_accuracy": [self.acc(p) for p in run["preds"]],
        }
        for name in ("set", "random"):
            c = curve(b[f"{name}_preds"])
            best = max(range(len(c)), key=lambda i: c[i])
            out[name] = {"agreement": c, "best_epoch": run["epochs"][best], "best_step": run["steps"][best],
                         "best_agreement": c[best], "final_agreement": c[-1],
                         "checkpoint_accuracy_at_best": out["checkpoint_accuracy"][best]}
        return out

    # -- (c) per-image information ---------------------------------------------------
    def chosen_images(self) -> list[int]:
        """Up to ``max_images`` indices, round-robin over classes (first images of each class first)."""
        labels = self.syn.hard_labels.cpu()
        per = [(labels == c).nonzero().flatten().tolist() for c in range(self.k)]
        order = []
        for rank in range(max(map(len, per), default=0)):
            order += [lst[rank] for lst in per if rank < len(lst)]
        return order[: self.o.max_images]

    def per_image(self) -> dict[str, Any]:
        b = self.base()
        full = sum(b["set"]) / len(b["set"])
        if self.real_model is None:
            self.real_run()
        n = len(self.syn)
        rows = []
        d = self.ctx.data
        with torch.no_grad():  # centred features: ReLU features share a large common component
            real = embed_batched(self.real_model.eval(), d.train_x).float()
            centre = real.mean(0, keepdim=True)
            feats_real = F.normalize(real - centre, dim=1)
            feats_syn = F.normalize(embed(self.real_model, self.syn.images).float() - centre, dim=1)
            self.real_model.train()
        sims = feats_syn @ feats_real.T
        top = sims.topk(min(self.o.neighbors, len(d.train_x)), dim=1)
        labels = self.syn.hard_labels
        for i in self.ctx.progress(self.chosen_images(), desc="leave one out"):
            keep = torch.arange(n, device=self.syn.images.device) != i
            accs, _ = self.trained_accs(self.syn.images[keep], self.syn.labels[keep], "set", lr=self.p.set_lr)
            drops = [a - x for a, x in zip(b["set"], accs)]  # paired: same seeds as the full-set runs
            nb = top.indices[i].tolist()
            rows.append({
                "index": i, "label": int(labels[i]), "drop": sum(drops) / len(drops), "drop_std": std(drops),
                "neighbors": nb, "neighbor_labels": d.train_y[nb].tolist(),
                "neighbor_similarity": [round(v, 4) for v in top.values[i].tolist()],
            })
        return {"full_accuracy": full, "images": rows,
                "neighbor_space": "penultimate features of the real-data network, centred on the real mean"}


def row(setting: str, training: str, set_accs: list[float], real_accs: list[float], n: int) -> dict[str, Any]:
    s, r = summary(set_accs), summary(real_accs)
    return {"setting": setting, "training": training, "set": s, "random": r, "difference": s["mean"] - r["mean"],
            "images_compared": n}


def std(values: list[float]) -> float:
    return float(torch.tensor(values).std()) if len(values) > 1 else 0.0


def summary(values: list[float]) -> dict[str, Any]:
    return {"mean": sum(values) / len(values), "std": std(values), "values": values}


def load_run(run_dir: Path, registry: Any, overrides: list[str]) -> tuple[Any, RunContext, SyntheticSet]:
    """The run's plan, a RunContext as ``condensery run`` builds it, and its set on the device."""
    from condensery.recipe import load_recipe
    from condensery.runner import load_data, make_task
    from condensery.runtime import Runtime

    for name in ("recipe.yaml", "synthetic.safetensors"):
        if not (run_dir / name).is_file():
            raise UserError(f"'{run_dir}' has no {name}; give a run directory written by `condensery run`")
    plan = load_recipe(run_dir / "recipe.yaml", overrides, registry)
    runtime = Runtime(plan.runtime, plan.seed, announce=False)
    data = load_data(plan, runtime)
    ctx = RunContext(make_task(plan, data), data, runtime, registry, None, plan.resolved)
    synset = SyntheticSet.load(run_dir / "synthetic.safetensors")
    if tuple(synset.images.shape[1:]) != tuple(ctx.task.image_shape):
        raise UserError(f"the set's images are {list(synset.images.shape[1:])} but the recipe's data are "
                        f"{list(ctx.task.image_shape)}; the run directory is inconsistent")
    return plan, ctx, synset.to(ctx.device)


def analyze(run_dir: str | Path, output: str | Path | None, options: AnalysisOptions, registry: Any,
            overrides: list[str] | None = None) -> tuple[dict[str, Any], Path]:
    """Run the chosen sections on ``run_dir``; write ``analysis.json``, ``report.md`` and figures."""
    from condensery.rundir import write_json

    from .report import write_report

    unknown = [s for s in options.sections if s not in SECTIONS]
    if unknown:
        raise UserError(f"unknown analysis section '{unknown[0]}'; choose from {', '.join(SECTIONS)}")
    if options.runs < 1 or options.max_images < 0 or options.real_epochs < 1 or options.checkpoints < 2:
        raise UserError("--runs and --real-epochs must be >= 1, --checkpoints >= 2, --max-images >= 0")
    run_dir = Path(run_dir)
    out = Path(output) if output else run_dir / "analysis"
    t0 = time.perf_counter()
    plan, ctx, synset = load_run(run_dir, registry, overrides or [])
    protocol = protocol_of(plan, synset, options)
    a = Analysis(ctx, synset, protocol, options)
    say(f"[analyze] {run_dir}: {len(synset)} images of {plan.data_name}, protocol {protocol.epochs} epochs, "
        f"{options.runs} runs, device {ctx.device}")
    result: dict[str, Any] = {
        "run_dir": str(run_dir), "recipe": plan.name, "dataset": plan.data_name,
        "method": synset.metadata.get("method"), "num_images": len(synset), "images_per_class": a.counts,
        "protocol": asdict(protocol), "options": asdict(options), "seconds": {},
    }
    base = a.base()
    result["base"] = {"set": summary(base["set"]), "random": summary(base["random"])}
    for section, fn in (("substitution", a.substitution), ("dynamics", a.dynamics), ("per-image", a.per_image)):
        if section in options.sections:
            t = time.perf_counter()
            result[section] = fn()
            result["seconds"][section] = round(time.perf_counter() - t, 2)
    result["seconds"]["total"] = round(time.perf_counter() - t0, 2)
    write_report(result, ctx, synset, out)
    write_json(out / "analysis.json", result)
    return result, out
