"""The ``seqmatch`` synthesizer: K subsets optimised one after another over a wrapped matcher.

Stage k optimises only S_k (with its own learned lr when the matcher learns one; it restarts
from the matcher's initial value) while S_<k stay frozen: the matcher sees the concatenation
``[S_<k (detached), S_k]`` so its student trains on S_<k ∪ S_k. What makes S_k target a
later stage of training is the warm start (``stages.py``):

- trajectory matcher (``ExpertMatching``): stage-k experts start from a network trained
  sequentially on S_1 .. S_<k with their lrs, then train on real data; they are generated
  inside the run directory before the stage starts (stage 1 uses the matcher's own experts);
- gradient matcher (``WarmStartable``): every fresh matching network is first
  trained sequentially on S_1 .. S_<k.

``iterations`` is the total over all stages (split evenly unless ``stage_iterations``), so a
SeqMatch run and its base matcher's pixel run can be compared at the same budget. The set is
stored stage-major with ``stages`` (subset of each image) and ``stage_lrs``; evaluators train
on it sequentially. A checkpoint holds the stage and the step; a killed run resumes there.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from condensery import (
    LoopCheckpoint,
    RunContext,
    SyntheticSet,
    UserError,
    backward_step,
    loop_fingerprint,
    make_generator,
    offers,
)
from condensery.resumable import SavedLoop
from condensery_matching.capabilities import ExpertMatching
from condensery_matching.pixel import PixelSynthesizer

from .capabilities import WarmStartable
from .options import SeqMatchOptions
from .stages import (
    history_key,
    stage_bounds,
    stage_experts,
    stage_layout,
    staged_spec,
    warm_train,
)


class SeqMatchSynthesizer(PixelSynthesizer):
    """Learnable pixels in K sequential subsets; later subsets match later training."""

    Options: ClassVar[type[SeqMatchOptions]] = SeqMatchOptions
    uses_matcher = True
    CHECKPOINT = "seqmatch"

    def synthesize(self, ctx: RunContext) -> SyntheticSet:
        o, matcher, rt = self.options, ctx.matcher, ctx.runtime
        sizes, iters = o.sizes(), o.iterations_per_stage()
        kinds = self._warm_kind(matcher, len(sizes))
        num_classes = ctx.task.num_classes
        x0, y0 = self.initial_images(ctx)
        order, stages = stage_layout(sizes, num_classes)
        order = order.to(x0.device)
        bank, labels = x0[order].detach().clone(), y0[order].clone()
        stages = stages.to(x0.device)
        bounds = stage_bounds(sizes, num_classes)
        initial = [t.detach().clone() for t, _ in matcher.parameters()]
        stage_lrs: list[float | None] = []
        loop = LoopCheckpoint(ctx, self.CHECKPOINT, loop_fingerprint(ctx, o, bank=bank))
        saved = self._resume_stage(loop, bank, stage_lrs)
        first, start = (0, 0) if saved is None else (int(saved.meta["stage"]), saved.step)
        every = rt.options.checkpoint_every
        for k in range(first, len(sizes)):
            lo, hi = bounds[k], bounds[k + 1]
            x = bank[lo:hi].clone().requires_grad_(True)
            extras = matcher.parameters()
            groups = [{"params": [x], "lr": o.lr}] + [{"params": [t], "lr": lr} for t, lr in extras]
            opt = self.make_optimizer(groups)
            scaler = rt.grad_scaler()
            resumed = saved is not None and k == first
            if not resumed:
                with torch.no_grad():  # each stage learns its own lr, from the initial value
                    for (t, _), v in zip(extras, initial):
                        t.copy_(v)
                start = 0
                if k > 0 and rt.is_main:  # the frozen history is final: expert generation resumes from here
                    self._save(loop, bank, x, lo, hi, opt, matcher, k, 0, stage_lrs)
            self._begin_stage(ctx, kinds, k, bank[:lo], labels[:lo], stages[:lo], stage_lrs)
            if resumed:
                saved.restore(optimizers=[opt], stateful=[matcher])
                ctx.log("synthesize", sum(iters[:k]) + start, resumed=1.0, subset=float(k + 1))
            frozen, lab = bank[:lo], labels[:hi]
            steps = range(start, iters[k])
            for step in ctx.progress(steps, desc=f"seqmatch stage {k + 1}/{len(sizes)}", total=len(steps)):
                g = sum(iters[:k]) + step
                images = torch.cat([frozen, x]) if lo else x
                loss = matcher.loss(images, lab, g)
                if not torch.isfinite(loss.detach()):
                    self._diverged(ctx, f"matcher loss became {loss.item()} (stage {k + 1})", g)
                opt.zero_grad(set_to_none=True)
                backward_step(loss, opt, scaler)
                if not torch.isfinite(x).all():
                    self._diverged(ctx, f"the synthetic images of stage {k + 1} became non-finite", g)
                images = torch.cat([frozen, x]) if lo else x
                matcher.after_step(images, lab, g)
                if step % o.log_every == 0 or step == iters[k] - 1:
                    ctx.log("synthesize", g, loss=loss.item(), subset=float(k + 1))
                if (step + 1) % every == 0 and step + 1 < iters[k] and rt.is_main:
                    self._save(loop, bank, x, lo, hi, opt, matcher, k, step + 1, stage_lrs)
            with torch.no_grad():
                bank[lo:hi] = x.detach()
            lr = matcher.learned_lr()
            stage_lrs.append(None if lr is None else float(lr))
        learned = stage_lrs if all(v is not None for v in stage_lrs) else None
        meta = {"subsets": sizes, "stage_iterations": iters, "warm_start": kinds}
        return SyntheticSet(bank.detach(), labels, lr=None if learned is None else learned[-1],
                            stages=stages, stage_lrs=learned, metadata={"seqmatch": meta})

    # -- warm starts --------------------------------------------------------------------
    @staticmethod
    def _warm_kind(matcher, stages: int) -> str:
        if offers(matcher, ExpertMatching):
            return "experts"
        if offers(matcher, WarmStartable):
            return "network"
        if stages == 1:
            return "none"
        raise UserError(
            f"seqmatch warm-starts stages 2..{stages} through its matcher, which must offer ExpertMatching "
            "(expert_spec, experts_directory, use_experts) or WarmStartable (set_warm_start); "
            f"{type(matcher).__name__} offers neither; use synthesizer.matcher.name: trajectory or gradient, or k: 1"
        )

    def _warm_fn(self, ctx: RunContext, images, labels, stages, stage_lrs):
        o = self.options
        lrs = [o.warm_lr if v is None else v for v in stage_lrs]

        def warm(model, gen) -> None:
            warm_train(ctx, model, images, labels, stages, lrs, o.warm_epochs, gen,
                       o.warm_momentum, o.warm_weight_decay, o.warm_dsa)
        return warm, lrs

    def _begin_stage(self, ctx: RunContext, kind: str, k: int, images, labels, stages, stage_lrs) -> None:
        """Point the matcher at stage k's targets: warm-started experts or networks."""
        matcher, o = ctx.matcher, self.options
        if kind == "none":
            return
        if k == 0:  # S_1 matches the matcher's own targets (its experts, fresh networks)
            if kind == "network":
                matcher.set_warm_start(None)
            return
        warm, lrs = self._warm_fn(ctx, images.detach(), labels, stages, stage_lrs)
        if kind == "network":
            seed = ctx.runtime.seed

            def warm_net(net, iteration: int) -> None:
                gen = make_generator(seed, "seqmatch-warm", k, iteration)
                warm(net, gen)
            matcher.set_warm_start(warm_net)
            return
        settings = {"epochs": o.warm_epochs, "momentum": o.warm_momentum, "wd": o.warm_weight_decay,
                    "dsa": o.warm_dsa}
        key = history_key(images, labels, stages, lrs, settings)
        spec = staged_spec(matcher.expert_spec(ctx), key, k)
        directory = ctx.checkpoints.folder / "seqmatch-experts" / f"stage{k + 1}-{key}"
        count = o.stage_experts or matcher.options.num_experts
        paths = stage_experts(ctx, spec, directory, count, k, warm, matcher.options.model)
        matcher.use_experts(paths)

    # -- checkpoints ----------------------------------------------------------------
    @staticmethod
    def _save(loop: LoopCheckpoint, bank, x, lo, hi, opt, matcher, stage: int, step: int, stage_lrs) -> None:
        snapshot = bank.detach().clone()
        snapshot[lo:hi] = x.detach()
        lrs = torch.tensor([float("nan") if v is None else v for v in stage_lrs], dtype=torch.float64)
        loop.save(step, {"bank": snapshot, "stage_lrs": lrs}, optimizers=[opt], stateful=[matcher],
                  meta={"stage": stage})

    @staticmethod
    def _resume_stage(loop: LoopCheckpoint, bank, stage_lrs) -> SavedLoop | None:
        """The last checkpoint (its stage in ``meta``), with ``bank`` and ``stage_lrs`` restored;
        the stage's optimizer and matcher are restored once the stage has built them."""
        saved = loop.load()
        if saved is None:
            return None
        with torch.no_grad():
            bank.copy_(saved.tensors["bank"].to(bank.device))
        stage_lrs.extend(None if v != v else float(v) for v in saved.tensors["stage_lrs"].tolist())
        saved.announce(f"at stage {int(saved.meta['stage']) + 1}, step {saved.step}")
        return saved
