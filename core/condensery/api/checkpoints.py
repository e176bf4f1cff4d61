"""Atomic, pickle-free checkpoints: tensors in ``.safetensors``, the rest as JSON in its header.

A synthesizer's loop saves through ``resumable.LoopCheckpoint``, which adds the optimizer and
matcher state, the step and a configuration fingerprint on top of this store.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .errors import UserError
from .files import atomic_path

__all__ = ["CheckpointStore"]


class CheckpointStore:
    """Named checkpoints in one folder; a write is a temp file then a rename."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.safetensors"

    def save(self, name: str, tensors: dict[str, torch.Tensor], meta: dict[str, Any] | None = None) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.path(name)
        data = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
        with atomic_path(path) as tmp:  # on disk before the rename makes it the checkpoint
            save_file(data, str(tmp), metadata={"meta": json.dumps(meta or {})})
        return path

    def load(self, name: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
        """The tensors and meta of checkpoint ``name``, or None if there is none.

        A leftover temporary file (a write cut off by a kill) is never read: the previous
        checkpoint under the real name is still whole.
        """
        path = self.path(name)
        if not path.is_file():
            return None
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = json.loads((f.metadata() or {}).get("meta", "{}"))
                tensors = {k: f.get_tensor(k) for k in f.keys()}
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise UserError(f"checkpoint '{path}' is damaged ({first}); pass --force to start the run over") from None
        return tensors, meta

    def exists(self, name: str) -> bool:
        return self.path(name).is_file()
