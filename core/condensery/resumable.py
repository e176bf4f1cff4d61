"""One loop's resumable state: named tensors, optimizers, stateful objects, the step, a fingerprint.

A synthesizer's long loop saves, every ``runtime.checkpoint_every`` steps, what it needs to
continue identically -- its tensors, its optimizers' state, the state of its matchers (or
any object with ``state_dict()`` / ``load_state_dict()``, e.g. a network), the step and a
little JSON -- with ``LoopCheckpoint.save``, and ``LoopCheckpoint.load`` gives it back.

Each checkpoint carries a fingerprint of the configuration that wrote it (``loop_fingerprint``:
the synthesizer's and matcher's options, the task, the seed and precision, the shapes the
loop restores into). A checkpoint whose fingerprint differs, or that has none (written
before fingerprints), is **ignored with a message** naming what differs, and the loop starts
over: ``condensery run`` already refuses a run directory whose recipe differs (a UserError
naming ``--force``), so what is left is state the recipe does not capture (a generator
folder's weights, an older format) that cannot continue this run, and starting the loop over
is what ``--force`` would do for it without discarding the run's finished work. A damaged
file stays a UserError (``CheckpointStore.load``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch

if TYPE_CHECKING:
    from .api.context import RunContext
    from .api.options import Options

__all__ = ["LoopCheckpoint", "SavedLoop", "loop_fingerprint"]

#: meta keys the loop checkpoint itself writes
RESERVED = ("step", "fingerprint")


class Stateful(Protocol):
    """A matcher, a network: anything whose state is a dict of tensors."""

    def state_dict(self) -> Mapping[str, torch.Tensor]: ...

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> Any: ...


def _described(value: Any) -> Any:
    """JSON of ``value`` with every tensor replaced by its shape and dtype."""
    if torch.is_tensor(value):
        return [list(value.shape), str(value.dtype)]
    if isinstance(value, Mapping):
        return {str(k): _described(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_described(v) for v in value]
    return value


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def loop_fingerprint(ctx: RunContext, options: Options, **parts: Any) -> dict[str, str]:
    """A short hash per part of what decides whether a checkpoint continues this run.

    Always: the synthesizer ``options``, the matcher (class and options), the task (dataset,
    classes, shape, normalisation, model, number of training images) and the run (seed,
    precision). ``parts`` adds the loop's own: tensors (their shapes and dtypes count, e.g.
    ``images=images``), mappings of tensors (a network's ``state_dict()``), JSON values.
    Speed-only settings (threads, checkpoint interval) are not in it.
    """
    m, t = ctx.matcher, ctx.task
    record = {
        "synthesizer options": options.model_dump(mode="json"),
        "matcher": None if m is None else [type(m).__qualname__, m.options.model_dump(mode="json")],
        "task": [t.dataset, t.class_names, list(t.image_shape), t.mean, t.std, t.model, len(ctx.data.train_y)],
        "seed and precision": [ctx.runtime.seed, ctx.runtime.options.mixed_precision],
        **{name: _described(value) for name, value in parts.items()},
    }
    return {name: _digest(value) for name, value in record.items()}


def _flat_optimizer(opt: torch.optim.Optimizer, prefix: str) -> dict[str, torch.Tensor]:
    """An optimizer's per-parameter tensors as ``PREFIX{param id}.{key}`` (fits a safetensors file)."""
    out: dict[str, torch.Tensor] = {}
    for pid, state in opt.state_dict()["state"].items():
        for key, value in state.items():
            out[f"{prefix}{pid}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
    return out


def _load_optimizer(opt: torch.optim.Optimizer, flat: dict[str, torch.Tensor]) -> None:
    sd = opt.state_dict()
    state: dict[int, dict[str, Any]] = {}
    for key, value in flat.items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = value
    sd["state"] = state
    opt.load_state_dict(sd)


def _under(tensors: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


@dataclass
class SavedLoop:
    """A checkpoint of this configuration, as ``LoopCheckpoint.load`` found it."""

    path: Path
    step: int
    #: the named tensors ``save`` was given (on the CPU)
    tensors: dict[str, torch.Tensor]
    #: the JSON ``save`` was given
    meta: dict[str, Any]
    _state: dict[str, torch.Tensor]
    _say: Callable[[str], None]

    def restore(self, optimizers: Sequence[torch.optim.Optimizer] = (), stateful: Sequence[Stateful] = ()) -> None:
        """Load the optimizers' and the stateful objects' state, in the order ``save`` had them."""
        for i, opt in enumerate(optimizers):
            _load_optimizer(opt, _under(self._state, f"optimizer{i}/"))
        for i, obj in enumerate(stateful):
            obj.load_state_dict(_under(self._state, f"state{i}/"))

    def announce(self, where: str | None = None) -> None:
        """Say ``resuming from PATH at step N`` (or ``resuming from PATH`` + ``where``)."""
        self._say(f"  resuming from {self.path} {where or f'at step {self.step}'}")


class LoopCheckpoint:
    """Save and load one loop's state as checkpoint ``name`` of the run (``ctx.checkpoints``)."""

    def __init__(self, ctx: RunContext, name: str, fingerprint: dict[str, str]) -> None:
        self.store, self.name, self.fingerprint = ctx.checkpoints, name, fingerprint
        self.say = ctx.runtime.say

    @property
    def path(self) -> Path:
        return self.store.path(self.name)

    def save(self, step: int, tensors: Mapping[str, torch.Tensor] | None = None, *,
             optimizers: Sequence[torch.optim.Optimizer] = (), stateful: Sequence[Stateful] = (),
             meta: Mapping[str, Any] | None = None) -> None:
        """Write the loop's state at ``step`` (atomically: a kill leaves the previous one whole).

        ``tensors`` are named without ``/``; ``meta`` is small JSON (e.g. a stage).
        """
        tensors, meta = dict(tensors or {}), dict(meta or {})
        if any("/" in name for name in tensors) or any(k in meta for k in RESERVED):
            raise ValueError(f"tensor names take no '/' and meta keys {RESERVED} are the checkpoint's own")
        for i, opt in enumerate(optimizers):
            tensors.update(_flat_optimizer(opt, f"optimizer{i}/"))
        for i, obj in enumerate(stateful):
            tensors.update({f"state{i}/{k}": v for k, v in obj.state_dict().items()})
        self.store.save(self.name, tensors, {**meta, "step": step, "fingerprint": self.fingerprint})

    def load(self) -> SavedLoop | None:
        """This configuration's checkpoint, or None: none yet, or another configuration's (said, ignored)."""
        loaded = self.store.load(self.name)
        if loaded is None:
            return None
        tensors, meta = loaded
        theirs = meta.get("fingerprint")
        if not isinstance(theirs, dict):
            self.say(f"  ignoring {self.path}: it was written without a configuration fingerprint (an older "
                     "condensery); this loop starts over")
            return None
        differ = [k for k in sorted(set(theirs) | set(self.fingerprint)) if theirs.get(k) != self.fingerprint.get(k)]
        if differ:
            self.say(f"  ignoring {self.path}: it holds another configuration's state ({', '.join(differ)} "
                     "differ); this loop starts over")
            return None
        own = {k: v for k, v in meta.items() if k not in RESERVED}
        named = {k: v for k, v in tensors.items() if "/" not in k}
        state = {k: v for k, v in tensors.items() if "/" in k}
        return SavedLoop(self.path, int(meta["step"]), named, own, state, self.say)
