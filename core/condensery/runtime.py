"""Runtime: the Accelerate ``Accelerator``, processes, seeding and named random streams.

Every source of randomness is a ``torch.Generator`` derived from the recipe seed and a
stream name, so adding a random draw in one component never shifts another's numbers --
and, because no stream depends on the process index, a run split over N processes draws
exactly what the single-process run draws.

Splitting work: ``split(items, label)`` hands this process a contiguous share of ``items``
(and records it, so the run directory shows who did what); ``gather(results)`` puts the
shares back together, in process order, on every process; ``sum_`` / ``sum_grads`` add
tensors over processes (e.g. the gradients of a loss that is a sum over classes). With one
process all of these are no-ops, so the same code runs on one CPU, one GPU or many.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterable, Sequence
from typing import Any, Literal, TypeVar

import torch
from pydantic import Field, field_validator

from .errors import UserError
from .options import Options

T = TypeVar("T")


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

    def __init__(self, options: RuntimeOptions, seed: int, announce: bool = True) -> None:
        from accelerate import Accelerator
        from accelerate.state import AcceleratorState
        from accelerate.utils import set_seed

        self.options = options
        self.seed = seed
        self.announce = announce
        self.shares: list[dict[str, Any]] = []
        if options.threads:
            torch.set_num_threads(options.threads)
        # Accelerate takes the multi-CPU (gloo) path only when told it is on the CPU.
        cpu = options.cpu or not torch.cuda.is_available()
        if cpu and options.mixed_precision == "fp16":
            raise UserError(
                "runtime.mixed_precision fp16 needs a GPU (this run is on the CPU, where it would "
                "silently do nothing); use bf16, or --set runtime.mixed_precision=no"
            )
        # The precision is process-wide state in Accelerate; a second run in one process
        # (tests, benchmarks) may ask for another one. The process group is kept.
        AcceleratorState._reset_state(reset_partial_state=False)
        self.accelerator = Accelerator(cpu=cpu, mixed_precision=options.mixed_precision)
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

    # -- splitting work over processes -------------------------------------------------
    def split(self, items: Iterable[T], label: str = "work") -> list[T]:
        """This process's contiguous share of ``items``; the share is logged under ``label``.

        Shares differ in length by at most one (earlier processes take the extra item), so
        ``gather`` of per-item results restores the original order.
        """
        items = list(items)
        n, i = self.num_processes, self.process_index
        share = share_of(items, n, i)
        self.shares.append({"label": label, "items": [_jsonable(x) for x in share], "of": len(items)})
        if self.num_processes > 1 and self.announce:
            shown = ", ".join(str(_jsonable(x)) for x in share) or "(none)"
            print(f"[process {i}/{n}] {label}: {shown}", file=sys.stderr, flush=True)
        return share

    def gather(self, objects: Sequence[T]) -> list[T]:
        """Every process's ``objects`` concatenated in process order, on every process."""
        if self.num_processes == 1:
            return list(objects)
        from accelerate.utils import gather_object

        return list(gather_object(list(objects)))

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Add ``tensor`` over processes, in place (identity with one process)."""
        if self.num_processes > 1:
            torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.SUM)
        return tensor

    def sum_grads(self, tensors: Iterable[torch.Tensor]) -> None:
        """Add the ``.grad`` of ``tensors`` over processes in one flat all-reduce.

        A tensor without a gradient on this process counts as zeros, so a process that
        worked on none of the classes still takes part.
        """
        if self.num_processes == 1:
            return
        tensors = list(tensors)
        for t in tensors:
            if t.grad is None:
                t.grad = torch.zeros_like(t)
        flat = torch.cat([t.grad.reshape(-1) for t in tensors])
        self.sum_(flat)
        offset = 0
        for t in tensors:
            n = t.numel()
            t.grad.copy_(flat[offset : offset + n].view_as(t.grad))
            offset += n

    def broadcast_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Overwrite ``tensor`` on every process with the main process's copy, in place."""
        if self.num_processes > 1:
            torch.distributed.broadcast(tensor, src=0)
        return tensor

    def wait(self) -> None:
        """Barrier: every process reaches this line before any goes on."""
        if self.num_processes > 1:
            self.accelerator.wait_for_everyone()

    def say(self, message: str) -> None:
        """A status line from the main process only (none with ``--quiet``)."""
        if self.is_main and self.announce:
            print(message, file=sys.stderr, flush=True)


def make_generator(seed: int, *stream: Any) -> torch.Generator:
    key = ":".join(str(s) for s in (seed, *stream)).encode()
    derived = int.from_bytes(hashlib.sha256(key).digest()[:8], "little") & ((1 << 63) - 1)
    return torch.Generator().manual_seed(derived)


def share_of(items: Sequence[T], processes: int, index: int) -> list[T]:
    """Process ``index``'s contiguous share of ``items`` split over ``processes``."""
    k = len(items)
    start = index * (k // processes) + min(index, k % processes)
    return list(items[start : start + k // processes + (1 if index < k % processes else 0)])


def _jsonable(x: Any) -> Any:
    """A share item as JSON: numbers and text stay, tensors become lists, the rest text."""
    if isinstance(x, (bool, int, float, str)) or x is None:
        return x
    if torch.is_tensor(x):
        return x.tolist()
    if isinstance(x, (tuple, list)):
        return [_jsonable(v) for v in x]
    return str(x)
