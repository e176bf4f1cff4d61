"""Writing the run directory: atomic JSON/YAML files and the image grid."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
import yaml


def write_atomic(path: Path, text: str) -> None:
    """Write text so a reader never sees half a file, even after a crash: temp file, fsync, rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_json(path: Path, data: Any) -> None:
    write_atomic(path, json.dumps(data, indent=2, default=str) + "\n")


def write_yaml(path: Path, data: Any) -> None:
    write_atomic(path, yaml.safe_dump(data, sort_keys=False))


def save_grid(
    images: torch.Tensor, labels: torch.Tensor, mean: list[float], std: list[float], path: Path,
    max_per_class: int = 10, min_cell: int = 32,
) -> None:
    """One row per class, up to ``max_per_class`` images each, in display space."""
    from PIL import Image
    from torchvision.utils import make_grid

    images = images.detach().float().cpu()
    if images.shape[1] not in (1, 3):  # vectors stored as [d,1,1] (e.g. multi-index): one grey strip each
        n, c, h, w = images.shape
        v = images * torch.tensor(std)[None, :, None, None] + torch.tensor(mean)[None, :, None, None]
        v = (v - v.min()) / (v.max() - v.min()).clamp_min(1e-12)
        images, mean, std = v.permute(0, 2, 3, 1).reshape(n, 1, 1, h * w * c), [0.0], [1.0]
    labels = labels.detach().cpu()
    if labels.dim() == 2:
        labels = labels.argmax(dim=1)
    m = torch.tensor(mean)[None, :, None, None]
    s = torch.tensor(std)[None, :, None, None]
    shown = (images * s + m).clamp(0, 1)
    classes = labels.unique(sorted=True)
    per_class = min(max_per_class, max(int((labels == c).sum()) for c in classes))
    c, h, w = shown.shape[1:]
    cells = []
    for k in classes:
        row = shown[labels == k][:per_class]
        pad = torch.ones(per_class - len(row), c, h, w)
        cells.append(torch.cat([row, pad]))
    grid = make_grid(torch.cat(cells), nrow=per_class, padding=1, pad_value=1.0)
    arr = (grid.permute(1, 2, 0).numpy() * 255).round().astype("uint8")
    img = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
    scale = max(1, min_cell // max(h, 1))
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    img.save(tmp, format="PNG")
    os.replace(tmp, path)
