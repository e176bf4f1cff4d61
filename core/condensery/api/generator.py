"""The generator component kind: a trained artifact that returns a SyntheticSet of any size.

A synthesizer run builds it and saves it with ``condensery.generators.save_generator`` (a
folder: ``config.json`` naming the registered type, and ``.safetensors`` weights);
``condensery generate DIR --ipc N`` loads any registered type and calls ``generate``. A
generator that needs the real data for a call (to draw initial images, to refine with its
matcher) says so through ``requires_data``; the command then opens the stored recipe's task.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .options import Options

if TYPE_CHECKING:
    from .context import RunContext
    from .synthetic import SyntheticSet


class GenerateOptions(Options):
    """Options of one ``generate`` call (``condensery generate --option KEY=VALUE``); none by default."""


class Generator:
    """Produces ``ipc`` images per class on demand. Subclasses register under a type name.

    ``config`` is the folder's ``config.json``: ``type`` (the name the class is registered
    under), ``format``, ``task`` (dataset, class names, image shape, normalisation) and
    ``recipe`` (the data, model and matcher sections a context for generation is opened
    from), plus the type's own keys.
    """

    #: options of one ``generate`` call; register the same class with ``options=`` so a call
    #: is validated before the generator's module is imported, like a recipe section
    Options: ClassVar[type[GenerateOptions]] = GenerateOptions

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    @property
    def name(self) -> str:
        """The type this generator is registered under (set in ``config`` when saved or loaded)."""
        return str(self.config["type"])

    # -- what a caller may ask ------------------------------------------------------------
    def requires_data(self, ipc: int, options: GenerateOptions) -> bool:
        """True if generating ``ipc`` per class needs the real data (a RunContext)."""
        return True

    def generate(self, ipc: int, seed: int = 0, ctx: RunContext | None = None,
                 options: GenerateOptions | None = None) -> SyntheticSet:
        """``ipc`` images per class, class-ordered; the same ``seed`` gives the same set."""
        raise NotImplementedError(f"{type(self).__name__} must implement generate(ipc, seed, ctx, options)")

    # -- the folder -----------------------------------------------------------------------
    def save_weights(self, folder: Path) -> dict[str, Any]:
        """Write the weights into ``folder`` (a fresh temporary folder); return config keys to add."""
        raise NotImplementedError(f"{type(self).__name__} must implement save_weights(folder)")

    @classmethod
    def load(cls, folder: Path, config: dict[str, Any]) -> Generator:
        """The generator saved in ``folder`` (whose parsed ``config.json`` is ``config``)."""
        raise NotImplementedError(f"{cls.__name__} must implement load(folder, config)")

    @property
    def class_names(self) -> list[str]:
        return list(self.config.get("task", {}).get("class_names", []))
