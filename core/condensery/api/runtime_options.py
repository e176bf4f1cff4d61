"""The ``runtime`` section of a recipe: device, precision, compiling, threads, checkpoints, trackers.

Kept apart from ``runtime.py`` (torch, Accelerate) so that a recipe resolves -- and a bad
one fails -- without importing either.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field, field_validator

from .options import Options


class RuntimeOptions(Options):
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
    cpu: bool = Field(False, description="force the CPU even when a GPU is present")
    compile: Literal["no", "yes", "auto"] = Field(
        "no", description="first-order network passes through torch.compile: no, yes, or auto (where the expected "
                          "passes x input elements reach 5e7: CIFAR-sized stages, not digits); double-backward "
                          "parts stay eager",
    )
    compile_mode: Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"] = Field(
        "default", description="torch.compile mode when compiling (reduce-overhead: CUDA graphs on a GPU)",
    )
    checkpoint_every: int = Field(200, ge=1, description="steps between checkpoints of long stages")
    threads: int | None = Field(None, ge=1, description="CPU threads for torch (default: torch's choice)")
    log_with: list[str] = Field(
        default_factory=list,
        description="Accelerate experiment trackers to log to (tensorboard, wandb, mlflow, aim, ...), "
                    "files under RUN_DIR/trackers",
    )

    @field_validator("mixed_precision", "compile", mode="before")
    @classmethod
    def _yaml_no(cls, v: Any) -> Any:
        # YAML 1.1 reads a bare `no` as False (and a bare `yes` as True)
        return {False: "no", True: "yes"}.get(v, v) if isinstance(v, bool) else v

    @field_validator("log_with", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("log_with")
    @classmethod
    def _installed_trackers(cls, names: list[str]) -> list[str]:
        if names:
            check_trackers(names)
        return names


def check_trackers(names: Sequence[str]) -> None:
    """Every name is an Accelerate tracker that is installed here, or one ``UserError`` line.

    Checked when the recipe resolves, so a run never starts and then fails to log.
    """
    from accelerate.tracking import LOGGER_TYPE_TO_CLASS, get_available_trackers

    known = sorted(LOGGER_TYPE_TO_CLASS)
    available = {str(t) for t in get_available_trackers()}
    for name in names:
        if name not in LOGGER_TYPE_TO_CLASS:
            raise ValueError(f"unknown tracker '{name}'; Accelerate offers {', '.join(known)}")
        if name not in available:
            raise ValueError(
                f"tracker '{name}' is not installed; pip install {name.replace('_', '-')}, "
                f"or drop it from runtime.log_with (installed here: {', '.join(sorted(available)) or 'none'})"
            )
