"""``runtime.compile``: first-order network passes through ``torch.compile``, one helper for all.

Why one helper: every matcher and evaluator asks ``ctx.runtime.compiled(net)`` (or
``compiled(net, fn)`` for a function of the network such as ``embed``) and gets either the
eager call -- the very module or ``partial(fn, net)``, so eager runs stay bit-identical -- or
the compiled one. Why it compiles a *function of the network* (``fn(net, *args)``) and not
each network object: dynamo keeps its graphs on the function's code and guards on the
network's class and shapes, not on the object, so the fresh random network of every DM step,
a new gradient-matching network per iteration and a new evaluation network per run reuse the
first graph instead of compiling again (``tests/test_compiling.py`` reads the counters).

Only first-order passes may go through it: AOTAutograd refuses double backward, so a
compiled network cannot sit inside ``autograd.grad(..., create_graph=True)`` (gradient
matching's synthetic side, MTT's unroll); those callers stay eager and say so.

``auto`` compiles a network when the work its caller expects, the passes times the input
elements of its first call, reaches ``AUTO_MIN_WORK``: a cold compile costs 10-30 s on a CPU
core and a pass saves about a third of its eager time, which grows with the input. Measured
(BENCHMARKS.md): a CIFAR-10 evaluation pays after ~100 epochs of 100 images (~30 M
element-passes), DM after ~12 steps of 2,560 real images (~100 M); the quickstart's 8x8 digits
(2-8 M) and a digits evaluation never do. Counting passes alone left the CIFAR-10 CPU DM
recipe eager (1,500 steps), where compiling halves its wall time.

A network the compiler cannot handle (or a machine without a working compiler toolchain)
runs eager after one warning line naming it; the run goes on. Inductor's on-disk cache goes
under ``$CONDENSERY_CACHE/inductor`` so a second run of a recipe loads its kernels instead of
compiling them again. ``$CONDENSERY_COMPILE_BACKEND`` (default ``inductor``) names another
``torch.compile`` backend, e.g. ``eager`` to check what dynamo traces, and how often, without
generating code (the quick tests do).
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

#: ``auto`` never compiles a network with fewer expected passes than this (nothing to amortise over)
AUTO_MIN_PASSES = 100
#: ``auto`` compiles when expected passes x input elements of the first call reach this
AUTO_MIN_WORK = 50_000_000


def _call(net: nn.Module, *args: Any, **kwargs: Any) -> Any:
    """The network's own forward, as a function of the network (what is compiled for ``compiled(net)``)."""
    return net(*args, **kwargs)


def cache_directory() -> Path:
    """Where inductor keeps compiled kernels: ``$CONDENSERY_CACHE/inductor`` (default ``~/.cache/condensery``)."""
    root = Path(os.environ.get("CONDENSERY_CACHE", Path.home() / ".cache" / "condensery"))
    return root / "inductor"


class Compiler:
    """The run's ``compile`` setting and what it compiled: one compiled wrapper per function."""

    def __init__(self, setting: str, mode: str = "default") -> None:
        self.setting = setting
        self.mode = mode
        self.backend = os.environ.get("CONDENSERY_COMPILE_BACKEND", "inductor")
        self._wrappers: dict[Callable, Callable] = {}
        self.failed: dict[str, str] = {}  # label -> the error's first line (warned once)
        if setting != "no":
            # read by inductor when it first compiles; an explicit setting of the user's stays
            os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache_directory()))
            # inductor imports cpp_extension, which logs "No CUDA runtime is found" on every CPU-only machine
            logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)

    def wanted(self, passes: int | None) -> bool:
        """Whether a network with ``passes`` expected passes may be compiled under this setting
        (``auto`` decides for good at the first call, from the input: ``worth_it``)."""
        if self.setting == "yes":
            return True
        if self.setting == "auto":
            return passes is not None and passes >= AUTO_MIN_PASSES
        return False

    @staticmethod
    def worth_it(passes: int, args: tuple[Any, ...]) -> bool:
        """``auto``'s rule: expected passes times the input elements of one call reach ``AUTO_MIN_WORK``."""
        elements = sum(a.numel() for a in args if isinstance(a, torch.Tensor))
        return passes * elements >= AUTO_MIN_WORK

    def compiled(self, net: nn.Module, fn: Callable[..., Any] | None = None, *,
                 passes: int | None = None) -> Callable[..., Any]:
        """``net``'s forward (or ``fn(net, *args)``) as a callable of ``*args``: compiled when wanted.

        Off, it is ``net`` itself (or ``partial(fn, net)``): nothing changes. Only for
        first-order passes (see the module's docstring).
        """
        fn = fn or _call
        eager = net if fn is _call else functools.partial(fn, net)
        label = f"{type(net).__name__}" + ("" if fn is _call else f" ({getattr(fn, '__name__', 'fn')})")
        if not self.wanted(passes) or label in self.failed:
            return eager
        wrapper = self._wrappers.get(fn)
        if wrapper is None:
            try:
                options = {"mode": self.mode} if self.mode != "default" and self.backend == "inductor" else {}
                wrapper = torch.compile(fn, backend=self.backend, **options)
            except Exception as exc:  # noqa: BLE001 - any failure of the compiler means: run eager
                self._fail(label, exc)
                return eager
            self._wrappers[fn] = wrapper
        guarded = _Guarded(self, label, functools.partial(wrapper, net), eager)
        return _AutoChoice(guarded, eager, passes) if self.setting == "auto" else guarded

    def _fail(self, label: str, exc: BaseException) -> None:
        reason = (str(exc).strip().splitlines() or [""])[0][:160]
        self.failed[label] = f"{type(exc).__name__}: {reason}"
        print(f"condensery: warning: torch.compile cannot compile {label} ({self.failed[label]}); "
              "it runs eager", file=sys.stderr, flush=True)


class _Guarded:
    """A compiled call that falls back to the eager one (for good, with one warning) if compiling fails."""

    def __init__(self, compiler: Compiler, label: str, compiled: Callable, eager: Callable) -> None:
        self.compiler, self.label, self.compiled_call, self.eager = compiler, label, compiled, eager

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.label not in self.compiler.failed:
            try:
                return self.compiled_call(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - the eager call below re-raises a genuine error
                self.compiler._fail(self.label, exc)
        return self.eager(*args, **kwargs)


class _AutoChoice:
    """``auto``: the compiled or the eager call, chosen at the first call from the input's size."""

    def __init__(self, compiled: _Guarded, eager: Callable, passes: int) -> None:
        self.compiled_call, self.eager, self.passes = compiled, eager, passes
        self.chosen: Callable | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.chosen is None:
            self.chosen = self.compiled_call if Compiler.worth_it(self.passes, args) else self.eager
        return self.chosen(*args, **kwargs)
