"""Batched, differentiable augmentation on the device.

``DSA`` is differentiable siamese augmentation (Zhao & Bilen, 2021), reimplemented: one op
per call drawn from color / crop / cutout / flip / scale / rotate, with parameters drawn per
*group*. Passing the same ``AugParams`` to the real and the synthetic batch gives both the
identical transform ("siamese"); giving each class its own group lets class-wise matching
run as one vectorised call. ``crop_flip`` is the standard pad-crop + flip used by
evaluators. Everything works on normalised images and keeps gradients to the pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

DSA_OPS = ("color", "crop", "cutout", "flip", "scale", "rotate")


@dataclass
class AugParams:
    """One op and its per-group random parameters (each tensor has a leading group dim)."""

    op: str
    values: dict[str, torch.Tensor]
    groups: int


class DSA:
    """Differentiable siamese augmentation with the DSA paper's default strengths."""

    def __init__(
        self,
        ops: tuple[str, ...] | list[str] = DSA_OPS,
        crop: float = 0.125,
        cutout: float = 0.5,
        scale: float = 1.2,
        rotate: float = 15.0,
        brightness: float = 1.0,
        saturation: float = 2.0,
        contrast: float = 0.5,
    ) -> None:
        unknown = set(ops) - set(DSA_OPS)
        if unknown:
            from ..errors import UserError

            raise UserError(f"unknown DSA op(s) {sorted(unknown)}; valid ops: {', '.join(DSA_OPS)}")
        self.ops = tuple(ops)
        self.crop, self.cutout, self.scale, self.rotate = crop, cutout, scale, rotate
        self.brightness, self.saturation, self.contrast = brightness, saturation, contrast

    def sample(self, groups: int, generator: torch.Generator, device: torch.device | str = "cpu") -> AugParams:
        """Draw one op and its parameters for ``groups`` independent groups."""
        op = self.ops[int(torch.randint(len(self.ops), (1,), generator=generator))]

        def r(*shape: int) -> torch.Tensor:
            return torch.rand(groups, *shape, generator=generator).to(device)

        if op == "color":
            v = {"brightness": (r() - 0.5) * self.brightness, "saturation": r() * self.saturation,
                 "contrast": r() + self.contrast}
        elif op == "crop":
            v = {"shift": (r(2) * 2 - 1) * self.crop}  # fraction of the image, x and y
        elif op == "cutout":
            v = {"center": r(2)}
        elif op == "flip":
            v = {"flip": (r() < 0.5).float()}
        elif op == "scale":
            v = {"scale": r(2) * (self.scale - 1.0 / self.scale) + 1.0 / self.scale}
        else:
            v = {"angle": (r() - 0.5) * 2 * self.rotate * math.pi / 180}
        return AugParams(op, v, groups)

    def apply(self, x: torch.Tensor, params: AugParams, group_of: torch.Tensor | None = None) -> torch.Tensor:
        """Apply ``params`` to ``x``; ``group_of[i]`` picks sample i's group (default: all group 0)."""
        n = x.shape[0]
        if group_of is None:
            group_of = torch.zeros(n, dtype=torch.long, device=x.device)
        v = {k: t.to(x.device)[group_of] for k, t in params.values.items()}
        if params.op == "color":
            x = x + v["brightness"].view(n, 1, 1, 1)
            m = x.mean(dim=1, keepdim=True)
            x = (x - m) * v["saturation"].view(n, 1, 1, 1) + m
            m = x.mean(dim=(1, 2, 3), keepdim=True)
            return (x - m) * v["contrast"].view(n, 1, 1, 1) + m
        if params.op == "flip":
            f = v["flip"].view(n, 1, 1, 1)
            return f * x.flip(3) + (1 - f) * x
        if params.op == "cutout":
            return _cutout(x, v["center"], self.cutout)
        theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
        if params.op == "crop":
            theta[:, 0, 0] = theta[:, 1, 1] = 1
            theta[:, :, 2] = v["shift"] * 2
        elif params.op == "scale":
            theta[:, 0, 0] = v["scale"][:, 0]
            theta[:, 1, 1] = v["scale"][:, 1]
        else:
            a = v["angle"]
            theta[:, 0, 0], theta[:, 0, 1] = torch.cos(a), -torch.sin(a)
            theta[:, 1, 0], theta[:, 1, 1] = torch.sin(a), torch.cos(a)
        return _affine(x, theta)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Augment with independent parameters per sample (evaluation-time use)."""
        p = self.sample(x.shape[0], generator, x.device)
        return self.apply(x, p, torch.arange(x.shape[0], device=x.device))


def _affine(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    grid = F.affine_grid(theta, list(x.shape), align_corners=True)
    return F.grid_sample(x, grid, align_corners=True)


def _cutout(x: torch.Tensor, center: torch.Tensor, ratio: float) -> torch.Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = (center[:, 0] * (h + 1 - ch % 2)).long().view(n, 1, 1)
    cx = (center[:, 1] * (w + 1 - cw % 2)).long().view(n, 1, 1)
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    hole = ((ys - cy).abs() <= ch // 2) & ((xs - cx).abs() <= cw // 2)
    return x * (~hole).unsqueeze(1).to(x.dtype)


def crop_flip(x: torch.Tensor, generator: torch.Generator, pad: int = 4, flip: bool = True) -> torch.Tensor:
    """Random pad-and-crop by whole pixels plus horizontal flip, per sample, batched."""
    n, _, h, w = x.shape
    out = x
    if pad > 0:
        padded = F.pad(x, (pad, pad, pad, pad))
        dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
        dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
        rows = (dy.view(n, 1) + torch.arange(h, device=x.device)).view(n, 1, h, 1).expand(n, x.shape[1], h, w + 2 * pad)
        out = padded.gather(2, rows)
        cols = (dx.view(n, 1) + torch.arange(w, device=x.device)).view(n, 1, 1, w).expand(n, x.shape[1], h, w)
        out = out.gather(3, cols)
    if flip:
        f = (torch.rand(n, generator=generator) < 0.5).to(x.device).view(n, 1, 1, 1).to(x.dtype)
        out = f * out.flip(3) + (1 - f) * out
    return out
