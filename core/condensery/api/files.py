"""Files the house way: written so nobody ever reads half of one, read without unpickling.

``atomic_path`` is the one way to write: temp sibling, fsync, rename. Every writer of the run directory, the caches and the artifacts (JSON, YAML, safetensors,
PNG) goes through ``atomic_path``: a kill at any moment leaves either the old file or the
new one, never a torn one, and the temporary name is unique per process so two processes
writing the same path never share a temporary file. The temporary file of a writer that was
killed is removed by the next successful write of the same path. ``read_safetensors`` is
the one way to read tensors: a bad file is one ``UserError`` line, never a traceback.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import UserError

if TYPE_CHECKING:
    import torch

__all__ = ["atomic_path", "write_atomic", "write_json", "write_yaml", "read_safetensors"]


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write; on success fsync it and rename it over ``path``.

    On an exception the temporary file is removed and ``path`` is left as it was; an
    ``OSError`` that names no file (a full disk during a write) is raised naming ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _remove_orphans(path)
    except OSError as exc:
        if exc.filename is None:  # a failed write names no file: name the one the user asked for
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    finally:
        if tmp.exists():
            tmp.unlink()


def _remove_orphans(path: Path) -> None:
    """Delete temporary siblings of ``path`` left by processes that no longer run."""
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        pid = stale.name[len(path.name) + 2:-4]
        if pid.isdigit() and not _alive(int(pid)):
            stale.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (one of another user's counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def write_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (``atomic_path``)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | Path, data: Any) -> None:
    """``data`` as indented JSON (anything else as text), written atomically."""
    write_atomic(path, json.dumps(data, indent=2, default=str) + "\n")


def write_yaml(path: str | Path, data: Any) -> None:
    """``data`` as YAML in its own key order, written atomically."""
    import yaml

    write_atomic(path, yaml.safe_dump(data, sort_keys=False))


def read_safetensors(path: str | os.PathLike[str], what: str = "",
                     device: str = "cpu") -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Every tensor of ``path`` and its metadata; an unreadable file is a ``UserError`` naming it.

    ``what`` prefixes the file in the message (e.g. ``"teacher "``). Callers check that the
    file exists themselves, since only they know the fix to suggest.
    """
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt", device=device) as f:
            metadata = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise UserError(f"{what}'{Path(path)}' is not a readable .safetensors file ({exc})") from None
    return tensors, metadata
