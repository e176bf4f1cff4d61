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
from contextlib import nullcontext
from pathlib import Path
from typing import Any, TypeVar

import torch

from .compiling import Compiler
from .errors import UserError
from .runtime_options import RuntimeOptions

T = TypeVar("T")


#: autocast dtype of each ``mixed_precision`` setting (None: full precision)
AUTOCAST_DTYPES = {"no": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class Runtime:
    """Device, precision, processes and seeding for one run.

    Precision is per run, not per process: Accelerate keeps ``mixed_precision`` in a
    process-wide singleton that cannot change once set, while tests, benchmarks and
    ``condensery eval`` run several recipes in one process. So the Accelerator is always
    created at full precision (devices, processes, trackers) and the run's precision is
    applied the way Accelerate applies it underneath: ``torch.autocast`` for the forward
    pass, and a ``torch.amp.GradScaler`` for fp16 loss scaling (bf16 needs none).
    """

    def __init__(self, options: RuntimeOptions, seed: int, announce: bool = True,
                 project_dir: str | Path | None = None) -> None:
        from accelerate import Accelerator
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
        self.dtype = AUTOCAST_DTYPES[options.mixed_precision]
        self.compiler = Compiler(options.compile, options.compile_mode)
        trackers = list(options.log_with) if project_dir is not None else []
        self.log_with = trackers  # trackers need a run directory to write under
        self.accelerator = Accelerator(
            cpu=cpu, mixed_precision="no", log_with=trackers or None,
            project_dir=str(Path(project_dir) / "trackers") if trackers else None,
        )
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
        if self.dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def compiled(self, net: torch.nn.Module, fn: Any = None, *, passes: int | None = None) -> Any:
        """``net``'s forward (or ``fn(net, *args)``) through ``torch.compile`` when ``runtime.compile``
        asks for it (``auto``: when ``passes``, the caller's expected passes, is large); else the eager call.

        First-order passes only: a compiled network cannot sit inside a double backward. A network
        the compiler cannot handle runs eager after one warning line (``condensery.api.compiling``).
        """
        return self.compiler.compiled(net, fn, passes=passes)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A fresh loss scaler for one optimisation loop: active for fp16, a pass-through otherwise.

        Use ``scaler.scale(loss).backward()``, then ``scaler.step(opt)`` and ``scaler.update()``;
        disabled, these are exactly ``loss.backward()`` and ``opt.step()``.
        """
        return loss_scaler(self.options.mixed_precision, self.device.type)

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

    def close(self) -> None:
        """Leave the process group before the interpreter exits.

        Why: a gloo group still alive at exit can abort the process ("terminate called without
        an active exception", exit 134) after the run's work is done; seen once in ~10 two-process
        test runs. Local to each process, so no barrier (a failing rank must not hang the rest).
        """
        if self.num_processes > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()

    def say(self, message: str) -> None:
        """A status line from the main process only (none with ``--quiet``)."""
        if self.is_main and self.announce:
            print(message, file=sys.stderr, flush=True)


def loss_scaler(mixed_precision: str, device_type: str) -> torch.amp.GradScaler:
    """``torch.amp.GradScaler`` for ``device_type``, enabled only for fp16 (bf16 has fp32's range)."""
    return torch.amp.GradScaler(device_type, enabled=mixed_precision == "fp16")


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
