"""The ``mgdd`` synthesizer: meta-train, adapt, or just generate with a meta generator.

- ``mode: meta-train`` — first-order meta-learning (Reptile) of a fresh (or given) generator
  on sub-tasks of the recipe's dataset: each task is a random class subset with a random
  ipc; the inner loop takes ``meta.inner_steps`` Adam steps on the task's matcher loss, the outer
  update moves the weights toward the average adapted weights.
- ``mode: adapt`` — load ``generator``, take ``adapt.steps`` Adam steps on the recipe's
  dataset (fresh initial sets of random sizes from ``adapt.ipcs`` every step).
- ``mode: generate`` — load ``generator`` and generate, no training.

Every mode saves the generator (``RUN_DIR/generator/``; not in ``generate`` mode) and returns
the set of the recipe's ``ipc`` generated with the recipe seed -- the same set
``condensery generate RUN_DIR/generator --ipc N --seed SEED`` writes.

The loss of a task is the matcher's loss on ``G(X0)``; with a matcher that takes support
targets (``capabilities.TargetMatching``: ``krr``) and ``labels.krr`` the support labels are the
closed-form KRR solution for ``X0`` in a separate random-feature space
(``tasks.KRRLabeler``), as MGDD prescribes ("solve the labels in the original space, then
pass through the generator"). Work is split over Accelerate processes
by task (meta-train) or by initial set (adapt); weight deltas / gradients are summed.
"""

from __future__ import annotations

import copy
import time
import weakref
from pathlib import Path
from typing import Any, ClassVar

import torch
from condensery import (
    DivergenceError,
    LoopCheckpoint,
    RunContext,
    Synthesizer,
    SyntheticSet,
    UserError,
    backward_step,
    loop_fingerprint,
    make_generator,
    offers,
)
from condensery.generators import task_config
from condensery.training import seed_global

from .artifact import load_meta_generator, save_meta_generator
from .capabilities import TargetMatching
from .generation import GRADIENT_STEP, generate_set, run_generator
from .generator import MetaGenerator, build_generator
from .options import MGDDOptions
from .tasks import KRRLabeler, sample_task, task_context


class MGDDSynthesizer(Synthesizer):
    Options: ClassVar[type[MGDDOptions]] = MGDDOptions
    uses_matcher = True

    # -- entry point --------------------------------------------------------------------
    def synthesize(self, ctx: RunContext) -> SyntheticSet:
        o = self.options
        if ctx.matcher.learned_labels() is not None:
            raise UserError("mgdd solves the support labels in closed form; set synthesizer.matcher.learn_labels=false")
        gen, info = self.starting_generator(ctx)
        t = time.perf_counter()
        if o.mode == "meta-train":
            self.meta_train(ctx, gen)
        elif o.mode == "adapt":
            self.adapt(ctx, gen)
        seconds = time.perf_counter() - t
        if o.mode != "generate" and ctx.run_dir is not None and ctx.runtime.is_main:
            save_meta_generator(gen, ctx.run_dir / "generator", self.generator_info(ctx, info, seconds))
        ctx.runtime.wait()
        synset = generate_set(gen, ctx, o.ipc, ctx.runtime.seed, o.labels.set, self.labeler_for(ctx), matcher=ctx.matcher)
        synset.metadata["generator_seconds"] = round(seconds, 3)
        return synset

    def starting_generator(self, ctx: RunContext) -> tuple[MetaGenerator, dict[str, Any]]:
        o = self.options
        c = ctx.task.image_shape[0]
        if o.generator is None:
            if o.mode != "meta-train":
                raise UserError(f"mgdd mode '{o.mode}' needs synthesizer.generator: the generator/ folder of a meta-train run")
            seed_global(ctx.runtime.seed, "mgdd-init")  # identical initial weights on every process
            return build_generator(o.architecture, c).to(ctx.device), {}
        if not Path(o.generator).is_dir():
            raise UserError(f"synthesizer.generator '{o.generator}' is not a folder; pass the generator/ folder of an mgdd run")
        gen, config = load_meta_generator(o.generator, ctx.device)
        seed_global(ctx.runtime.seed, "mgdd-adapters", c)
        if gen.add_channels(c):
            ctx.runtime.say(f"  new {c}-channel adapters (the generator knew {gen.channel_counts})")
        return gen, config

    def generator_info(self, ctx: RunContext, previous: dict[str, Any], seconds: float) -> dict[str, Any]:
        """What ``condensery generate`` needs besides weights: the task, recipe and label options."""
        o = self.options
        t = ctx.task
        history = list(previous.get("history", []))
        history.append({
            "mode": o.mode, "dataset": t.dataset, "classes": t.class_names, "seconds": round(seconds, 3),
            "steps": o.meta.steps if o.mode == "meta-train" else o.adapt.steps,
            "recipe": ctx.recipe.get("name"), "matcher": (ctx.recipe.get("synthesizer") or {}).get("matcher"),
        })
        return {
            **task_config(ctx),  # the recipe's matcher too: generation needs it for the gradient
            "labels": {"models": o.labels.models, "width": o.labels.width, "batch_real": o.labels.batch_real,
                       "reg": o.labels.reg},
            "history": history,
        }

    # -- one task's loss ----------------------------------------------------------------
    def labeler_for(self, ctx: RunContext) -> KRRLabeler | None:
        o = self.options.labels
        # a meta-training sub-task's context has no matcher (``task_context``): no labeler there
        needs = o.set == "krr" or (o.krr and ctx.matcher is not None and offers(ctx.matcher, TargetMatching))
        if not needs:
            return None
        return KRRLabeler(ctx, o.models, o.width, o.batch_real, o.reg)

    def task_loss(self, ctx: RunContext, matcher: Any, labeler: KRRLabeler | None, gen: MetaGenerator,
                  ipc: int, stream: tuple, step: int) -> torch.Tensor:
        """Matcher loss of ``G(X0)`` for a fresh initial set of ``ipc`` images per class."""
        g = ctx.generator("mgdd-x0", *stream)
        x0, y0 = ctx.data.balanced_batch(ipc, g)
        with ctx.runtime.autocast():  # an unrolled step t of training step s uses feature draw s * T + t
            x = run_generator(gen, matcher, x0, y0, ipc, GRADIENT_STEP + step * max(gen.refine_steps, 1)).float()
        judge = self.augmented(ctx, matcher) if self.options.loss_dsa else matcher
        if labeler is not None and offers(judge, TargetMatching):
            ys = labeler.labels(x0, 0, g)  # one fixed feature space: labels are a function of X0
            return judge.loss_with_targets(x, y0, step, ys)
        return judge.loss(x, y0, step)

    def augmented(self, ctx: RunContext, matcher: Any) -> Any:
        """A copy of ``matcher`` with siamese DSA on, prepared once per matcher (its own real-batch stream)."""
        cache = self.__dict__.setdefault("_augmented", weakref.WeakKeyDictionary())
        if matcher not in cache:
            if "dsa" not in type(matcher.options).model_fields:
                raise UserError(f"loss_dsa needs a matcher with a dsa option; {type(matcher).__name__} has none")
            judge = type(matcher)(matcher.options.model_copy(update={"dsa": True}))
            judge.prepare(ctx)
            cache[matcher] = judge
        return cache[matcher]

    # -- meta-training ------------------------------------------------------------------
    def meta_train(self, ctx: RunContext, gen: MetaGenerator) -> None:
        o, m, rt = self.options, self.options.meta, ctx.runtime
        params = [p for p in gen.parameters()]
        outer = torch.optim.Adam(param_groups(gen, m.lr, o.step_lr_scale))
        start = self.resume(ctx, gen, outer, "mgdd-meta-train")
        smallest = min(ctx.data.class_count(c) for c in range(ctx.task.num_classes))
        mine = [j for j in range(m.batch) if j % rt.num_processes == rt.process_index]
        if rt.num_processes > 1:
            rt.say(f"  {m.batch} sub-tasks per step over {rt.num_processes} processes")
        steps = range(start, m.steps)
        for step in ctx.progress(steps, desc="meta-train", total=len(steps)):
            delta = [torch.zeros_like(p) for p in params]
            losses = torch.zeros(2, device=ctx.device)  # first and last inner loss, summed
            for j in mine:
                task = sample_task(rt.seed, step * m.batch + j, ctx.task.num_classes, m.task_min_classes,
                                   m.task_max_classes, m.task_ipcs, smallest)
                sub = task_context(ctx, task)
                matcher = type(ctx.matcher)(ctx.matcher.options)
                matcher.prepare(sub)
                labeler = self.labeler_for(sub)
                fast = copy.deepcopy(gen)
                inner = torch.optim.Adam(param_groups(fast, m.inner_lr, o.step_lr_scale))
                scaler = rt.grad_scaler()
                for i in range(m.inner_steps):
                    loss = self.task_loss(sub, matcher, labeler, fast, task.ipc, ("inner", i), step * m.inner_steps + i)
                    check_finite(ctx, loss, "meta-train", step)
                    if i == 0:
                        losses[0] += loss.detach()
                    if i == m.inner_steps - 1:
                        losses[1] += loss.detach()
                    inner.zero_grad(set_to_none=True)
                    backward_step(loss, inner, scaler)
                for d, p, q in zip(delta, params, fast.parameters()):
                    d += q.detach() - p.detach()
            flat = rt.sum_(torch.cat([d.reshape(-1) for d in delta] + [losses]))
            outer.zero_grad(set_to_none=True)
            offset = 0
            for p in params:  # Reptile: the outer "gradient" is minus the mean displacement
                n = p.numel()
                p.grad = -(flat[offset:offset + n].view_as(p) / m.batch)
                offset += n
            outer.step()
            first, last = (flat[offset:] / m.batch).tolist()
            if step % o.log_every == 0 or step == m.steps - 1:
                ctx.log("meta-train", step, loss=first, adapted_loss=last)
            if (step + 1) % rt.options.checkpoint_every == 0 and step + 1 < m.steps and rt.is_main:
                self.checkpoint(ctx, gen, outer, "mgdd-meta-train", step + 1)

    # -- adaptation ---------------------------------------------------------------------
    def adapt(self, ctx: RunContext, gen: MetaGenerator) -> None:
        o, a, rt = self.options, self.options.adapt, ctx.runtime
        params = [p for p in gen.parameters()]
        opt = torch.optim.Adam(param_groups(gen, a.lr, o.step_lr_scale))
        scaler = rt.grad_scaler()  # fp16: every task's loss scaled alike, the sum unscaled in step
        if o.loss_dsa:
            self.augmented(ctx, ctx.matcher)  # exists before resume, so its real-batch stream is restored too
        start = self.resume(ctx, gen, opt, "mgdd-adapt", self.stateful_matchers(ctx))
        labeler = self.labeler_for(ctx)
        ipcs = a.ipcs or [o.ipc]
        smallest = min(ctx.data.class_count(c) for c in range(ctx.task.num_classes))
        if max(ipcs) > smallest:
            raise UserError(f"adapt.ipcs {ipcs} exceed the smallest class ({smallest} training images); lower them")
        mine = [j for j in range(a.batch) if j % rt.num_processes == rt.process_index]
        steps = range(start, a.steps)
        for step in ctx.progress(steps, desc="adapt", total=len(steps)):
            opt.zero_grad(set_to_none=True)
            total = torch.zeros(1, device=ctx.device)
            for j in mine:
                pick = int(torch.randint(len(ipcs), (1,), generator=make_generator(rt.seed, "mgdd-adapt-ipc", step, j)))
                pick = pick if not a.draws else (step // a.draws) % len(ipcs)
                draw = step % a.draws if a.draws else step
                loss = self.task_loss(ctx, ctx.matcher, labeler, gen, ipcs[pick], ("adapt", draw, j), step)
                check_finite(ctx, loss, "adapt", step)
                scaler.scale(loss / a.batch).backward()
                total += loss.detach()
            rt.sum_grads(params)
            rt.sum_(total)
            scaler.step(opt)
            scaler.update()
            if step % o.log_every == 0 or step == a.steps - 1:
                ctx.log("adapt", step, loss=total.item() / a.batch)
            if (step + 1) % rt.options.checkpoint_every == 0 and step + 1 < a.steps and rt.is_main:
                self.checkpoint(ctx, gen, opt, "mgdd-adapt", step + 1, self.stateful_matchers(ctx))

    # -- checkpoints --------------------------------------------------------------------
    def stateful_matchers(self, ctx: RunContext) -> list[Any]:
        """The matchers adaptation reuses across steps (the run's, and its DSA copy): their
        streams (real batches) advance every step, so a checkpoint must hold them."""
        cache = self.__dict__.get("_augmented")
        return [ctx.matcher, *([cache[ctx.matcher]] if cache is not None and ctx.matcher in cache else [])]

    def loop(self, ctx: RunContext, gen: MetaGenerator, name: str) -> LoopCheckpoint:
        """Checkpoint ``name`` of this run and generator (its architecture and channels in the fingerprint)."""
        return LoopCheckpoint(ctx, name, loop_fingerprint(ctx, self.options, generator=gen.state_dict(),
                                                           channels=gen.channel_counts))

    def checkpoint(self, ctx: RunContext, gen: MetaGenerator, opt: torch.optim.Optimizer, name: str, step: int,
                   matchers: list[Any] = ()) -> None:
        self.loop(ctx, gen, name).save(step, optimizers=[opt], stateful=[gen, *matchers])

    def resume(self, ctx: RunContext, gen: MetaGenerator, opt: torch.optim.Optimizer, name: str,
               matchers: list[Any] = ()) -> int:
        saved = self.loop(ctx, gen, name).load()
        if saved is None:
            return 0
        saved.restore(optimizers=[opt], stateful=[gen, *matchers])
        saved.announce()
        return saved.step


def param_groups(gen: MetaGenerator, lr: float, step_scale: float) -> list[dict[str, Any]]:
    """Adam groups: the unrolled refiner's step sizes at ``step_scale`` x ``lr``, the rest at ``lr``.

    Why: a handful of log step scales, each shaping a whole schedule, would move by about
    ``lr`` per step, i.e. a few percent over a CPU meta-training: too slow to learn anything.
    """
    steps = [p for n, p in gen.named_parameters() if n == "log_step_scale"]
    rest = [p for n, p in gen.named_parameters() if n != "log_step_scale"]
    return [{"params": rest, "lr": lr}] + ([{"params": steps, "lr": lr * step_scale}] if steps else [])


def check_finite(ctx: RunContext, loss: torch.Tensor, stage: str, step: int) -> None:
    if not torch.isfinite(loss):
        raise DivergenceError(f"mgdd {stage} loss became {loss.item()} at step {step}; "
                              "lower the learning rate (meta.lr / meta.inner_lr / adapt.lr) and rerun with --force")


