"""Teacher files: one format for every plugin that writes or reads a trained teacher network.

A teacher is a ``.safetensors`` file: the plain ``state_dict`` in the body and, as JSON in
the header under ``condensery_teacher``, ``{"model": SPEC, **info}`` with ``SPEC`` the
``{"name": ..., **options}`` that ``RunContext.build_model`` rebuilds it from. So a teacher written by
one component (DWA's squeeze, the soft-label evaluator's cache) is usable by any other
(``bnstats`` matcher, soft-label ``teacher.path``) without restating its architecture. A
bare state dict (no header, e.g. one a user converted) loads wherever the model is known.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from .api.context import RunContext
from .api.errors import UserError
from .api.files import atomic_path, read_safetensors

__all__ = ["save_teacher", "read_teacher", "load_teacher", "load_teacher_into"]

#: the safetensors metadata key of the JSON header
TEACHER_KEY = "condensery_teacher"


def save_teacher(path: str | os.PathLike[str], model: nn.Module, spec: dict[str, Any], **info: Any) -> Path:
    """Write ``model``'s state_dict with ``{"model": spec, **info}`` in the header, atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    header = json.dumps({"model": spec, **info}, default=str)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={TEACHER_KEY: header})
    return path


def _teacher_file(path: str | os.PathLike[str]) -> Path:
    """``path`` with ``~`` and ``$VARS`` expanded; a missing file is a ``UserError``."""
    path = Path(os.path.expandvars(os.path.expanduser(str(path))))
    if not path.is_file():
        raise UserError(f"teacher '{path}' does not exist; give a teacher .safetensors (written by condensery, "
                        "or a state dict)")
    return path


def read_teacher(path: str | os.PathLike[str], device: str = "cpu") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The state_dict and header of a teacher file (``{}`` for a bare state dict).

    A missing or unreadable file, or a header that is not a JSON object with a model spec,
    is a one-line ``UserError``.
    """
    return _read(_teacher_file(path), device)


def _read(path: Path, device: str = "cpu") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``read_teacher`` of a path already checked by ``_teacher_file``."""
    tensors, metadata = read_safetensors(path, "teacher ", device=device)
    raw = metadata.get(TEACHER_KEY)
    if raw is None:
        return tensors, {}
    try:
        header = json.loads(raw)
    except ValueError:
        header = None
    spec = header.get("model") if isinstance(header, dict) else None
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise UserError(f"teacher '{path}' has a damaged '{TEACHER_KEY}' header (not a JSON object with a model "
                        "spec); write the teacher again")
    return tensors, header


def load_teacher_into(model: nn.Module, path: str | os.PathLike[str],
                      spec: dict[str, Any] | None = None) -> dict[str, Any]:
    """Load the teacher file into ``model`` (built as ``spec``; strict, then eval mode and
    frozen) and return its header."""
    path = _teacher_file(path)
    tensors, header = _read(path, device=str(next(model.parameters()).device))
    _fill(model, spec, tensors, path, header)
    return header


def load_teacher(path: str | os.PathLike[str], ctx: RunContext, spec: dict[str, Any] | None = None,
                 default: dict[str, Any] | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """The frozen eval-mode teacher on ``ctx.device``, and its header.

    Built as ``spec`` when given (a recipe that names the model), else as the header's model,
    else as ``default`` (the model a bare state dict is assumed to be); with none of them
    the file cannot be rebuilt, a ``UserError``.
    """
    path = _teacher_file(path)
    tensors, header = _read(path)
    spec = spec or header.get("model") or default
    if spec is None:
        raise UserError(f"teacher '{path}' is a bare state dict without the '{TEACHER_KEY}' header naming its "
                        "model; write it with condensery.teachers.save_teacher")
    model = ctx.build_model(spec)
    return _fill(model, spec, tensors, path, header), header


def _fill(model: nn.Module, spec: dict[str, Any] | None, tensors: dict[str, torch.Tensor], path: Path,
          header: dict[str, Any]) -> nn.Module:
    """``model`` with the teacher's weights (strict), in eval mode with frozen parameters."""
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        written = f" (written for model {header['model']})" if header.get("model") else ""
        into = f"model {spec}" if spec else "the teacher model"
        raise UserError(f"teacher '{path}'{written} does not fit {into} ({first}); "
                        "set the teacher's model to its architecture") from None
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model
