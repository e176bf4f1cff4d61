"""The generator folder: save a ``Generator`` atomically, read its config, load it by type.

A generator (``condensery.Generator``) is saved as a folder in the diffusers convention:
``config.json`` names its registered ``type`` (plus the task and recipe it was made for)
next to ``.safetensors`` weights. A network generator is a diffusers ``ModelMixin`` +
``ConfigMixin`` written by ``save_pretrained``; a tensor generator (a pool of images) writes
its own safetensors file. Either way the folder is written under a temporary name, fsynced
and renamed, so a kill never leaves half a generator, and it is read back only through
safetensors (never unpickled). ``load_generator`` looks the type up among the registered
generators (hook ``register_generators``).
"""
from __future__ import annotations

import json
import os
import shutil
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .api.errors import UserError
from .api.generator import Generator

if TYPE_CHECKING:
    from .api.context import RunContext

__all__ = ["save_generator", "load_generator", "read_generator_config", "task_config", "check_config"]

CONFIG = "config.json"
FORMAT = "condensery.generator/2"


def save_generator(generator: Generator, folder: str | os.PathLike[str], config: dict[str, Any],
                   registry: Any = None) -> Path:
    """Write ``generator`` to ``folder`` atomically: temp folder, weights, config, fsync, rename.

    ``config`` holds ``task`` and ``recipe`` (and any keys of the type); the weights'
    own config keys (a diffusers ``save_pretrained`` config) are merged under it, and
    ``type`` (the name the generator's class is registered under) and ``format`` always win.
    """
    from ._engine.plugins import get_registry

    type_name = (registry or get_registry()).name_of("generator", type(generator))
    generator.config = {**generator.config, "type": type_name}
    folder = Path(folder)
    tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    extra = generator.save_weights(tmp) or {}
    written = tmp / CONFIG
    network = json.loads(written.read_text()) if written.is_file() else {}
    merged = {**network, **config, **extra, "type": type_name, "format": FORMAT}
    with written.open("w") as f:
        f.write(json.dumps(merged, indent=2, default=str) + "\n")
        f.flush()
        os.fsync(f.fileno())
    for path in tmp.iterdir():  # the weights too: a rename must never expose an unsynced file
        if path.is_file():
            with path.open("rb") as f:
                os.fsync(f.fileno())
    old = folder.with_name(f"{folder.name}.old-{os.getpid()}")
    if folder.exists():
        os.replace(folder, old)
    os.replace(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)
    generator.config = merged
    return folder


def read_generator_config(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The parsed ``config.json`` of a generator folder; any problem is a one-line ``UserError``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"generator folder '{folder}' does not exist; pass the generator/ folder of a run "
                        "whose synthesizer builds a generator (mgdd, multisize)")
    path = folder / CONFIG
    if not path.is_file():
        raise UserError(f"'{folder}' is not a generator folder (no {CONFIG}); pass the generator/ folder of a run")
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"'{path}' is not valid JSON ({exc}); regenerate the folder with its run") from None
    if not isinstance(config, dict) or not isinstance(config.get("type"), str):
        raise UserError(f"'{path}' names no generator 'type'; it was not written by condensery")
    if config.get("format") != FORMAT:
        raise UserError(f"'{path}' has format {config.get('format')!r}, this condensery reads {FORMAT!r}; "
                        "rerun the synthesizer that wrote it")
    check_config(path, config, _schemas())
    return config


def check_config(path: Path, config: dict[str, Any], schema: Any) -> None:
    """``config`` checked against ``schema`` (a pydantic model of the keys a reader uses): a value
    of the wrong kind is one ``UserError`` line naming the key, never a crash in the generator."""
    from pydantic import ValidationError

    try:
        schema.model_validate(config)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(config)"
        raise UserError(f"'{path}': '{where}' {err['msg'][:1].lower() + err['msg'][1:]}; the folder is damaged, "
                        "rerun the synthesizer that wrote it") from None


@cache
def _schemas() -> Any:
    """The keys of ``config.json`` every generator type shares (``task``, ``recipe``), as pydantic models."""
    from pydantic import BaseModel, ConfigDict, Field

    class Loose(BaseModel):
        model_config = ConfigDict(extra="allow", strict=True)

    class TaskRecord(Loose):
        dataset: str | None = None
        num_classes: int | None = Field(None, ge=1)
        class_names: list[str] | None = None
        image_shape: list[int] | None = Field(None, min_length=3, max_length=3)
        mean: list[float] | None = None
        std: list[float] | None = None
        zca: dict[str, Any] | None = None

    class RecipeRecord(Loose):
        name: str | None = None
        data: dict[str, Any] | None = None
        model: dict[str, Any] | None = None
        matcher: dict[str, Any] | None = None

    class Shared(Loose):
        type: str
        task: TaskRecord | None = None
        recipe: RecipeRecord | None = None

    return Shared


def load_generator(folder: str | os.PathLike[str], registry: Any = None) -> Generator:
    """The generator in ``folder``, of whatever registered type its ``config.json`` names."""
    from ._engine.plugins import get_registry

    folder = Path(folder)
    config = read_generator_config(folder)
    registry = registry or get_registry()
    info = registry.get("generator", config["type"])
    cls = info.check()  # its declared options must be its own Options
    if not (isinstance(cls, type) and issubclass(cls, Generator)):
        raise UserError(f"generator '{config['type']}' from {info.source} is not a Generator subclass; its plugin is broken")
    try:
        return cls.load(folder, config)
    except KeyError as exc:
        raise UserError(f"'{folder / CONFIG}' lacks the key {exc}; regenerate the folder with its run") from None


def task_config(ctx: RunContext) -> dict[str, Any]:
    """The ``task`` and ``recipe`` entries of a generator's config, from the run that built it."""
    t = ctx.task
    synth = ctx.recipe.get("synthesizer") or {}
    zca = ctx.data.zca.info() if ctx.data.zca is not None else None
    return {
        "task": {"dataset": t.dataset, "num_classes": t.num_classes, "class_names": t.class_names,
                 "image_shape": list(t.image_shape), "mean": t.mean, "std": t.std, "zca": zca},
        "recipe": {"name": ctx.recipe.get("name"), "data": ctx.recipe.get("data"),
                   "model": ctx.recipe.get("model", t.model), "matcher": synth.get("matcher")},
    }
