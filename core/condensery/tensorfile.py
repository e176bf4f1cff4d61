"""Reading ``.safetensors`` files with the project's error rule: a bad file is one line."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from .api.errors import UserError


def read_safetensors(path: str | os.PathLike[str], what: str = "",
                     device: str = "cpu") -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Every tensor of ``path`` and its metadata; an unreadable file is a ``UserError`` naming it.

    ``what`` prefixes the file in the message (e.g. ``"teacher "``). Callers check that the
    file exists themselves, since only they know the fix to suggest.
    """
    try:
        with safe_open(str(path), framework="pt", device=device) as f:
            metadata = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise UserError(f"{what}'{Path(path)}' is not a readable .safetensors file ({exc})") from None
    return tensors, metadata
