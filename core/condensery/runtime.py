"""Runtime: the Accelerate ``Accelerator``, seeding and named random streams.

Every source of randomness is a ``torch.Generator`` derived from the recipe seed and a
stream name, so adding a random draw in one component never shifts another's numbers.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

import torch
from pydantic import Field, field_validator

from .options import Options


class RuntimeOptions(Options):
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
    cpu: bool = Field(False, description="force the CPU even when a GPU is present")
    checkpoint_every: int = Field(200, ge=1, description="steps between checkpoints of long stages")
    threads: int | None = Field(None, ge=1, description="CPU threads for torch (default: torch's choice)")

    @field_validator("mixed_precision", mode="before")
    @classmethod
    def _yaml_no(cls, v: Any) -> Any:
        # YAML 1.1 reads a bare `no` as False
        return "no" if v is False else v


class Runtime:
    """Device, precision, processes and seeding for one run."""

    def __init__(self, options: RuntimeOptions, seed: int) -> None:
        from accelerate import Accelerator
        from accelerate.utils import set_seed

        self.options = options
        self.seed = seed
        if options.threads:
            torch.set_num_threads(options.threads)
        self.accelerator = Accelerator(cpu=options.cpu, mixed_precision=options.mixed_precision)
        set_seed(seed)

    @property
    def device(self) -> torch.device:
        return self.accelerator.device

    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process

    @property
    def num_processes(self) -> int:
        return self.accelerator.num_processes

    @property
    def process_index(self) -> int:
        return self.accelerator.process_index

    def autocast(self):
        """Mixed-precision context for forward passes (a no-op at full precision)."""
        return self.accelerator.autocast()

    def generator(self, *stream: Any) -> torch.Generator:
        """A CPU generator for the named stream, seeded from the recipe seed."""
        return make_generator(self.seed, *stream)


def make_generator(seed: int, *stream: Any) -> torch.Generator:
    key = ":".join(str(s) for s in (seed, *stream)).encode()
    derived = int.from_bytes(hashlib.sha256(key).digest()[:8], "little") & ((1 << 63) - 1)
    return torch.Generator().manual_seed(derived)
