"""Batched, differentiable augmentation on the device.

``DSA`` is differentiable siamese augmentation (Zhao & Bilen, 2021), reimplemented: one op
per call drawn from color / crop / cutout / flip / scale / rotate, with parameters drawn per
*group*. Passing the same ``AugParams`` to the real and the synthetic batch gives both the
identical transform ("siamese"); giving each class its own group lets class-wise matching
run as one vectorised call. ``crop_flip`` is the standard pad-crop + flip used by
evaluators. Everything works on normalised images and keeps gradients to the pixels.

``variant`` picks between two definitions of the spatial ops. ``"condensery"`` (the default:
every number in docs/results.md was measured with it) shifts ``crop`` continuously through
a bilinear affine grid, cuts a ``2*(size//2)+1`` square (17x17 at 32 px) and samples every
affine grid with ``align_corners=True``. ``"paper"`` follows the DSA authors' code
(VICO-UoE/DatasetCondensation, ``utils.py``): ``crop`` translates by whole pixels drawn from
``[-int(W*0.125+0.5), +that]`` with zero fill, ``cutout`` zeroes exactly
``int(W*0.5+0.5)`` pixels a side (16x16 at 32 px, clamped at the borders), ``scale`` and
``rotate`` use ``affine_grid`` / ``grid_sample`` with PyTorch's default
``align_corners=False`` (a scale or rotation about the centre samples the same grid under
either convention on square images, so there only crop and cutout differ). Colour and flip
are the same in both. Both variants draw the same random numbers, so the same generator gives
the same op sequence under either. (The authors also seed each class apart, so each class
draws its own op; here one op per call serves all groups, in both variants.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .options import DSA_OPS

#: the definitions ``DSA(variant=...)`` implements (see the module docstring)
DSA_VARIANTS = ("condensery", "paper")


@dataclass
class AugParams:
    """One op and its per-group random parameters (each tensor has a leading group dim)."""

    op: str
    values: dict[str, torch.Tensor]
    groups: int


class DSA:
    """Differentiable siamese augmentation with the DSA paper's default strengths.

    ``variant``: ``"condensery"`` (default, every recorded result) or ``"paper"`` (the DSA
    authors' whole-pixel crop, exact-size cutout and ``align_corners=False``); see the module
    docstring.
    """

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
        variant: str = "condensery",
    ) -> None:
        from ..api.errors import UserError

        unknown = set(ops) - set(DSA_OPS)
        if unknown:
            raise UserError(f"unknown DSA op(s) {sorted(unknown)}; valid ops: {', '.join(DSA_OPS)}")
        if variant not in DSA_VARIANTS:
            raise UserError(f"unknown DSA variant '{variant}'; valid variants: {', '.join(DSA_VARIANTS)}")
        self.ops = tuple(ops)
        self.variant = variant
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
        elif op == "crop" and self.variant == "paper":
            v = {"offset": r(2)}  # uniform in [0, 1), x and y; whole pixels once the size is known
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
        paper = self.variant == "paper"
        if params.op == "cutout":
            return _cutout_exact(x, v["center"], self.cutout) if paper else _cutout(x, v["center"], self.cutout)
        if params.op == "crop" and paper:
            return _shift(x, v["offset"], self.crop)
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
        return _affine(x, theta, align_corners=not paper)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Augment with independent parameters per sample (evaluation-time use)."""
        p = self.sample(x.shape[0], generator, x.device)
        return self.apply(x, p, torch.arange(x.shape[0], device=x.device))


def _affine(x: torch.Tensor, theta: torch.Tensor, align_corners: bool = True) -> torch.Tensor:
    grid = F.affine_grid(theta, list(x.shape), align_corners=align_corners)
    return F.grid_sample(x, grid, align_corners=align_corners)


def _whole(u: torch.Tensor, count: int) -> torch.Tensor:
    """Uniform integers in ``[0, count)`` from uniforms in ``[0, 1)`` (clamped: float32 may round up)."""
    return (u * count).long().clamp(0, count - 1)


def _shift(x: torch.Tensor, offset: torch.Tensor, ratio: float) -> torch.Tensor:
    """The paper's crop: translate by whole pixels, zero fill; ``out[.., i, j] = x[.., i + ty, j + tx]``.

    The shifts are uniform in ``[-s, s]`` with ``s = int(size * ratio + 0.5)`` (4 at 32 px);
    ``offset[:, 0]`` draws x (columns), ``offset[:, 1]`` y (rows). Two gathers from the
    zero-padded batch: vectorised over samples and differentiable w.r.t. the pixels.
    """
    n, c, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    if sx == 0 and sy == 0:
        return x
    tx = _whole(offset[:, 0], 2 * sx + 1) - sx
    ty = _whole(offset[:, 1], 2 * sy + 1) - sy
    padded = F.pad(x, (sx, sx, sy, sy))
    rows = (ty.view(n, 1) + sy + torch.arange(h, device=x.device)).view(n, 1, h, 1).expand(n, c, h, w + 2 * sx)
    out = padded.gather(2, rows)
    cols = (tx.view(n, 1) + sx + torch.arange(w, device=x.device)).view(n, 1, 1, w).expand(n, c, h, w)
    return out.gather(3, cols)


def _cutout(x: torch.Tensor, center: torch.Tensor, ratio: float) -> torch.Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = (center[:, 0] * (h + 1 - ch % 2)).long().view(n, 1, 1)
    cx = (center[:, 1] * (w + 1 - cw % 2)).long().view(n, 1, 1)
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    hole = ((ys - cy).abs() <= ch // 2) & ((xs - cx).abs() <= cw // 2)
    return x * (~hole).unsqueeze(1).to(x.dtype)


def _cutout_exact(x: torch.Tensor, center: torch.Tensor, ratio: float) -> torch.Tensor:
    """The paper's cutout: a hole of exactly ``int(size * ratio + 0.5)`` pixels a side.

    Its centre is a whole pixel in ``[0, size + 1 - hole % 2)``; the hole spans
    ``[centre - hole//2, centre - hole//2 + hole)``, clamped to the image (so at a border
    fewer pixels are cut), as the authors' ``rand_cutout`` does.
    """
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    if ch == 0 or cw == 0:
        return x

    def span(u: torch.Tensor, size: int, hole: int) -> tuple[torch.Tensor, torch.Tensor]:
        start = _whole(u, size + 1 - hole % 2) - hole // 2
        return start.clamp(0, size - 1).view(n, 1, 1), (start + hole - 1).clamp(0, size - 1).view(n, 1, 1)

    y0, y1 = span(center[:, 0], h, ch)
    x0, x1 = span(center[:, 1], w, cw)
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    hole = (ys >= y0) & (ys <= y1) & (xs >= x0) & (xs <= x1)
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
