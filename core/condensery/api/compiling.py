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

``auto`` compiles a network when its caller expects at least ``AUTO_MIN_PASSES`` passes
through it: a first compile costs 10-40 s on a CPU core, and a pass of a quickstart-sized
network saves milliseconds, so only long stages pay (BENCHMARKS.md has the measurements).

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

#: ``auto`` compiles a network when its caller expects at least this many passes through it
AUTO_MIN_PASSES = 2000


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
        """Whether a network with ``passes`` expected passes is compiled under this setting."""
        if self.setting == "yes":
            return True
        if self.setting == "auto":
            return passes is not None and passes >= AUTO_MIN_PASSES
        return False

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
        return _Guarded(self, label, functools.partial(wrapper, net), eager)

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
