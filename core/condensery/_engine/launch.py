"""``condensery run --processes N``: start N local processes of the same run and wait.

This does what ``accelerate launch`` / ``torchrun`` do for one machine, without a config
file: pick a free port on the loopback address, then start ``python -m condensery run ...``
once per rank with the ``torch.distributed`` environment (``MASTER_ADDR``, ``MASTER_PORT``,
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``). Each child's
``Accelerator()`` reads that environment and joins the group (gloo on the CPU, nccl on
GPUs). If one process fails, the others are stopped (they would wait forever for it in
the next collective call) and the launcher exits with the failing process's code.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

LOOPBACK = "127.0.0.1"
DIST_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def in_launched_process() -> bool:
    """True inside a process started by this launcher, ``accelerate launch`` or ``torchrun``."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def free_port() -> int:
    """A TCP port nobody listens on now, on the loopback address only."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def child_env(rank: int, processes: int, port: int, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of rank ``rank``: the torch.distributed variables on loopback."""
    env = dict(os.environ if base is None else base)
    env.update(
        MASTER_ADDR=LOOPBACK, MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(processes),
        LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(processes),
    )
    if "GLOO_SOCKET_IFNAME" not in env and Path("/sys/class/net/lo").exists():
        env["GLOO_SOCKET_IFNAME"] = "lo"  # gloo would otherwise bind the hostname's address
    if "OMP_NUM_THREADS" not in env:
        # share the cores instead of oversubscribing them N times
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // processes))
    return env


def launch(args: list[str], processes: int, poll: float = 0.1, program: list[str] | None = None) -> int:
    """Run ``python -m condensery <args>`` as ``processes`` ranks; return the exit code.

    0 when every rank succeeds; otherwise the code of the first rank that failed.
    ``program`` replaces ``python -m condensery`` (tests).
    """
    port = free_port()
    cmd = [*(program or [sys.executable, "-m", "condensery"]), *args]
    parent = os.getpid()
    procs = [subprocess.Popen(cmd, env=child_env(rank, processes, port), preexec_fn=lambda: die_with_parent(parent))
             for rank in range(processes)]
    code = 0
    try:
        while True:
            codes = [p.poll() for p in procs]
            failed = [c for c in codes if c not in (None, 0)]
            if failed:
                code = failed[0]
                break
            if all(c == 0 for c in codes):
                break
            time.sleep(poll)
    except KeyboardInterrupt:
        code = 130
    finally:
        _stop(procs)
    return _exit_code(code)


def die_with_parent(parent: int) -> None:
    """In a rank, before it runs: ask the kernel for SIGTERM when the launcher dies.

    A SIGKILLed launcher cannot stop its ranks itself; without this they would keep
    running and writing into the run directory. Linux only (elsewhere a no-op).
    """
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the launcher died before the request took effect
        os._exit(1)


def _stop(procs: list[subprocess.Popen], grace: float = 5.0) -> None:
    """Terminate ranks still running (after a failure), then kill those that linger."""
    alive = [p for p in procs if p.poll() is None]
    for p in alive:
        p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for p in alive:
        try:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _exit_code(code: int) -> int:
    # a rank killed by a signal reports -signum; a shell reports 128 + signum
    return 128 - code if code < 0 else code
