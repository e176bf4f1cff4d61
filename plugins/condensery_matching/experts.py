"""Expert trajectories for trajectory matching: train them, store them, read them back.

An expert is a network trained on the real training split (MTT: SGD lr 0.01, no momentum,
no weight decay, batch 256, DSA per image, 50 epochs). Its parameters are flattened into
one vector after every epoch (and once at initialisation), so expert ``i`` is one
``.safetensors`` shard ``expert_0007.safetensors`` holding a ``params`` tensor of shape
``[epochs + 1, P]`` and a JSON header that says what it was trained on. Training is
resumable (finished shards are skipped) and splits across processes (expert ``i`` is
trained by process ``i % num_processes``); each expert's seed depends only on the run
seed and ``i``, so the split does not change the experts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from condensery import RunContext, UserError, make_generator, seed_global_from, train_classifier
from condensery.api.files import atomic_path
from condensery.data import DSA
from condensery.outputs import move_aside
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

FORMAT = "condensery.expert/1"
_META_KEY = "condensery.expert"
#: Header keys two experts must share to be interchangeable.
IDENTITY = ("data", "model", "num_params", "lr", "batch_size", "dsa")


@dataclass
class ExpertSpec:
    """How experts are trained and what they are trained on."""

    epochs: int
    lr: float
    batch_size: int
    dsa: bool
    data: dict[str, Any]
    model: dict[str, Any]
    num_params: int

    def header(self, index: int, seed: int) -> dict[str, Any]:
        return {"format": FORMAT, "index": index, "seed": seed, **asdict(self)}


def data_identity(ctx: RunContext) -> dict[str, Any]:
    """What defines the training data of an expert: the recipe's data section (sans caching).

    Unset options (None) are left out, so adding an optional data option to condensery
    does not invalidate experts trained before it existed.
    """
    data = {k: v for k, v in (ctx.recipe.get("data") or {}).items()
            if k not in ("cache", "workers") and v is not None}
    data.setdefault("name", ctx.task.dataset)
    data["image_shape"] = list(ctx.task.image_shape)
    data["num_classes"] = ctx.task.num_classes
    return data


def flat_parameters(model: nn.Module) -> torch.Tensor:
    """All trainable parameters as one float32 CPU vector, in ``model.parameters()`` order."""
    return torch.cat([p.detach().float().flatten() for p in model.parameters()]).cpu()


def expert_path(directory: Path, index: int) -> Path:
    return Path(directory) / f"expert_{index:04d}.safetensors"


def read_header(path: Path) -> dict[str, Any] | None:
    """The header of a finished shard, or None if the file is missing or unreadable."""
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get(_META_KEY)
            if raw is None or "params" not in f.keys():
                return None
    except (SafetensorError, OSError, ValueError):
        return None
    try:
        header = json.loads(raw)
    except json.JSONDecodeError:
        return None
    return header if header.get("format") == FORMAT else None


def check_compatible(path: Path, header: dict[str, Any], spec: ExpertSpec) -> None:
    """A shard trained on other data or another network is an error, never silently used."""
    want = asdict(spec)
    for key in IDENTITY:
        if _without_unset(header.get(key)) != _without_unset(want[key]):
            raise UserError(
                f"expert '{path}' was trained with {key}={header.get(key)!r}, but this recipe needs "
                f"{want[key]!r}; point trajectory.experts_dir at another folder"
            )
    if int(header.get("epochs", 0)) < spec.epochs:
        raise UserError(
            f"expert '{path}' has {header.get('epochs')} epochs, fewer than the {spec.epochs} needed; "
            "use another experts_dir or lower train_epochs"
        )


def _without_unset(value: Any) -> Any:
    """Unset (None) options do not change the data: shards written before an option existed,
    or with it spelled out as None, stay valid."""
    return {k: v for k, v in value.items() if v is not None} if isinstance(value, dict) else value


def train_expert(ctx: RunContext, spec: ExpertSpec, index: int, model_name: str | None = None) -> torch.Tensor:
    """Train expert ``index`` on the real training split; return its ``[epochs + 1, P]`` trajectory."""
    gen = make_generator(ctx.runtime.seed, "expert", index)
    seed_global_from(gen)
    model = ctx.create_model(model_name)
    snapshots = [flat_parameters(model)]
    train_classifier(
        model, ctx.data.train_x, ctx.data.train_y, epochs=spec.epochs, lr=spec.lr, generator=gen,
        batch_size=spec.batch_size, momentum=0.0, weight_decay=0.0,
        augment=DSA() if spec.dsa else None, autocast=ctx.runtime.autocast, scaler=ctx.runtime.grad_scaler(), lr_schedule="none",
        on_epoch=lambda _epoch, m: snapshots.append(flat_parameters(m)), compiled=ctx.runtime.compiled,
    )
    return torch.stack(snapshots)


def write_expert(path: Path, trajectory: torch.Tensor, header: dict[str, Any]) -> Path:
    """Write atomically (temp file, then rename): a killed run never leaves half a shard."""
    with atomic_path(path) as tmp:
        save_file({"params": trajectory.contiguous()}, str(tmp), metadata={_META_KEY: json.dumps(header)})
    return path


def train_experts(
    ctx: RunContext,
    spec: ExpertSpec,
    directory: Path,
    num_experts: int,
    *,
    process_index: int = 0,
    num_processes: int = 1,
    model_name: str | None = None,
    on_done: Callable[[int, Path], None] | None = None,
) -> list[int]:
    """Train the missing experts ``0..num_experts-1`` that belong to this process; return them.

    A shard that is there but unreadable, or not an expert (no ``condensery.expert`` header), is
    moved aside (``NAME.corrupt-<time>``, named on stderr) and trained again.
    """
    directory = Path(directory)
    todo = []
    for i in range(num_experts):
        path = expert_path(directory, i)
        header = read_header(path)
        if header is not None:
            check_compatible(path, header, spec)
        elif i % num_processes == process_index:
            if path.is_file():  # damaged or foreign: kept for the user, never silently replaced
                move_aside(path, "not a readable condensery expert shard")
            todo.append(i)
    for i in ctx.progress(todo, desc="experts", total=len(todo)):
        trajectory = train_expert(ctx, spec, i, model_name)
        path = write_expert(expert_path(directory, i), trajectory, spec.header(i, ctx.runtime.seed))
        ctx.log("experts", i, epochs=float(spec.epochs))
        if on_done is not None:
            on_done(i, path)
    return todo


def available_experts(directory: Path, spec: ExpertSpec, limit: int | None = None) -> list[Path]:
    """Finished, compatible shards in ``directory`` (in index order, at most ``limit``)."""
    paths = []
    for path in sorted(Path(directory).glob("expert_*.safetensors")):
        header = read_header(path)
        if header is None:
            continue
        check_compatible(path, header, spec)
        paths.append(path)
    return paths[:limit] if limit else paths


def read_epochs(path: Path, epochs: list[int]) -> list[torch.Tensor]:
    """Rows (flat parameter vectors) of a shard, read without loading the whole trajectory."""
    with safe_open(str(path), framework="pt") as f:
        params = f.get_slice("params")
        return [params[e : e + 1][0] for e in epochs]
