"""DSA's two definitions: condensery's (the default, unchanged) and the DSA authors' ("paper").

The paper variant follows VICO-UoE/DatasetCondensation ``utils.py``: ``rand_crop`` shifts by
whole pixels in ``[-int(W*0.125+0.5), +that]`` with zero fill, ``rand_cutout`` zeroes exactly
``int(W*0.5+0.5)`` pixels a side (clamped at the borders), ``rand_scale`` / ``rand_rotate``
call ``affine_grid`` / ``grid_sample`` with PyTorch's default ``align_corners=False``.
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from condensery.api.errors import UserError
from condensery.data import DSA, AugParams
from condensery.data.augment import DSA_OPS

from .conftest import digits_recipe

#: sum(out * ramp) of the default variant on a fixed input and draw (float64 of the float32
#: output): offering other variants must leave the default's numbers exactly as they are
DEFAULT_CHECKSUMS = {
    "color": -1229.4448509408742,
    "crop": -142.7112256000692,
    "cutout": -183.60179878973645,
    "flip": -187.35373064175852,
    "scale": -202.0142557737493,
    "rotate": -176.98542684899965,
}


def _checksum(dsa: DSA) -> float:
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    ramp = torch.linspace(-1, 2, 32 * 32 * 3).view(1, 3, 32, 32).double()
    out = dsa.apply(x, dsa.sample(2, torch.Generator().manual_seed(1)), torch.tensor([0, 0, 1, 1]))
    return float((out.double() * ramp).sum())


@pytest.mark.parametrize("op", DSA_OPS)
def test_the_default_variant_is_unchanged(op):
    assert DSA().variant == "condensery"
    for dsa in (DSA([op]), DSA([op], variant="condensery")):
        assert _checksum(dsa) == pytest.approx(DEFAULT_CHECKSUMS[op], rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("op", DSA_OPS)
def test_both_variants_draw_the_same_random_numbers(op):
    """Same generator, same op sequence and generator state: a paired comparison of the variants."""
    ga, gb = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    a, b = DSA(), DSA(variant="paper")
    for _ in range(10):
        pa, pb = a.sample(4, ga), b.sample(4, gb)
        assert pa.op == pb.op
    assert torch.equal(ga.get_state(), gb.get_state())
    # colour and flip are the same op in both definitions
    x = torch.randn(4, 3, 16, 16)
    if op in ("color", "flip"):
        p = DSA([op]).sample(4, torch.Generator().manual_seed(0))
        assert torch.equal(DSA([op]).apply(x, p, torch.arange(4)), DSA([op], variant="paper").apply(x, p, torch.arange(4)))


def _cutout(center_px: tuple[int, int], size: int = 32, variant: str = "paper") -> torch.Tensor:
    """The paper variant's cutout of an all-ones image with its centre at whole pixel ``center_px``."""
    dsa = DSA(["cutout"], variant=variant)
    hole = int(size * 0.5 + 0.5)
    span = size + 1 - hole % 2  # centres are drawn from [0, span)
    u = torch.tensor([[(c + 0.5) / span for c in center_px]])
    return dsa.apply(torch.ones(1, 3, size, size), AugParams("cutout", {"center": u}, 1))


def test_paper_cutout_zeroes_exactly_16x16_pixels_inside_a_32px_image():
    for cy, cx in [(16, 16), (8, 8), (24, 24), (10, 20)]:  # hole rows cy-8 .. cy+7: inside
        out = _cutout((cy, cx))
        for ch in range(3):
            assert int((out[0, ch] == 0).sum()) == 256
        assert torch.equal((out[0, 0] == 0).nonzero()[:, 0].unique(), torch.arange(cy - 8, cy + 8))
        assert torch.equal((out[0, 0] == 0).nonzero()[:, 1].unique(), torch.arange(cx - 8, cx + 8))
    # condensery's default cuts |y - cy| <= 8: 17x17
    assert int((_cutout((16, 16), variant="condensery")[0, 0] == 0).sum()) == 17 * 17


@pytest.mark.parametrize("cy, cx", [(0, 16), (32, 16), (0, 0), (32, 32), (3, 30)])
def test_paper_cutout_is_clamped_at_the_border(cy, cx):
    def rows(c: int) -> int:  # the authors' hole c-8 .. c+7 clamped to 0 .. 31
        return min(31, c + 7) - max(0, c - 8) + 1

    out = _cutout((cy, cx))
    assert int((out[0, 1] == 0).sum()) == rows(cy) * rows(cx)
    assert rows(0) == rows(32) == 8


def test_paper_cutout_holes_are_16x16_or_clamped_for_random_draws():
    dsa = DSA(["cutout"], variant="paper")
    p = dsa.sample(500, torch.Generator().manual_seed(0))
    out = dsa.apply(torch.ones(500, 1, 32, 32), p, torch.arange(500))
    zero = out[:, 0] == 0
    r, c = zero.any(2).sum(1), zero.any(1).sum(1)
    assert torch.equal(zero.sum((1, 2)), r * c)  # one rectangle each
    assert int(r.max()) == int(c.max()) == 16 and int(r.min()) >= 8 and int(c.min()) >= 8
    assert abs(float((r * c == 256).float().mean()) - (17 / 33) ** 2) < 0.06  # centre 8..24 of 0..32 on both axes


def _shifted(x: torch.Tensor, ty: int, tx: int) -> torch.Tensor:
    """``out[i, j] = x[i + ty, j + tx]`` with zero fill: a torch.roll whose wrapped pixels are zeroed."""
    out = torch.roll(x, shifts=(-ty, -tx), dims=(2, 3))
    h, w = x.shape[2:]
    if ty > 0:
        out[:, :, h - ty:] = 0
    elif ty < 0:
        out[:, :, :-ty] = 0
    if tx > 0:
        out[:, :, :, w - tx:] = 0
    elif tx < 0:
        out[:, :, :, :-tx] = 0
    return out


def test_paper_crop_shifts_by_whole_pixels_with_zero_fill():
    dsa = DSA(["crop"], variant="paper")
    x = torch.randn(1, 3, 32, 32)
    s = int(32 * 0.125 + 0.5)
    assert s == 4
    for ty in range(-s, s + 1):
        for tx in range(-s, s + 1):
            u = torch.tensor([[(tx + s + 0.5) / (2 * s + 1), (ty + s + 0.5) / (2 * s + 1)]])
            out = dsa.apply(x, AugParams("crop", {"offset": u}, 1))
            assert torch.equal(out, _shifted(x, ty, tx)), (ty, tx)


def test_paper_crop_random_draws_are_whole_pixel_shifts_in_range_per_group():
    dsa = DSA(["crop"], variant="paper")
    x = torch.randn(1, 2, 32, 32).repeat(6, 1, 1, 1)
    candidates = {(ty, tx): _shifted(x[:1], ty, tx) for ty in range(-4, 5) for tx in range(-4, 5)}
    gen = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(40):
        out = dsa.apply(x, dsa.sample(3, gen), torch.tensor([0, 0, 1, 1, 2, 2]))
        for g in range(3):
            assert torch.equal(out[2 * g], out[2 * g + 1])  # siamese: a group shares its shift
            hit = [k for k, v in candidates.items() if torch.equal(out[2 * g:2 * g + 1], v)]
            assert len(hit) == 1
            seen.add(hit[0])
    assert {t for k in seen for t in k} == set(range(-4, 5))  # both extremes are drawn


def test_paper_crop_of_8px_digits_shifts_by_at_most_one_pixel():
    dsa = DSA(["crop"], variant="paper")
    x = torch.randn(1, 1, 8, 8)
    p = dsa.sample(200, torch.Generator().manual_seed(0))
    out = dsa.apply(x.expand(200, 1, 8, 8), p, torch.arange(200))
    allowed = [_shifted(x, ty, tx) for ty in (-1, 0, 1) for tx in (-1, 0, 1)]
    assert all(any(torch.equal(o[None], a) for a in allowed) for o in out)


@pytest.mark.parametrize("op", ["scale", "rotate"])
def test_paper_scale_and_rotate_sample_with_align_corners_false(op):
    """The authors call affine_grid / grid_sample without align_corners: PyTorch's default, False.

    Scale and rotation about the centre map output pixel i to ``c + A (i - c)`` with
    ``c = (size - 1) / 2`` under either convention, so on square images the two agree up to
    float rounding; only a rotation of a non-square image differs (the axes are rescaled
    by ``W/H`` vs ``(W-1)/(H-1)``).
    """
    for h, w in [(32, 32), (16, 32)]:
        x = torch.randn(2, 3, h, w)
        if op == "scale":
            p, theta = AugParams("scale", {"scale": torch.tensor([[1.1, 0.9]])}, 1), [[1.1, 0, 0], [0, 0.9, 0]]
        else:
            a = 10 * math.pi / 180
            p = AugParams("rotate", {"angle": torch.tensor([a])}, 1)
            theta = [[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0]]
        theta_t = torch.tensor([theta] * 2, dtype=torch.float)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (torch warns that the default is align_corners=False)
            reference = F.grid_sample(x, F.affine_grid(theta_t, list(x.shape)))
        paper = DSA([op], variant="paper").apply(x, p)
        assert torch.allclose(paper, reference, atol=1e-6)
        ours = DSA([op]).apply(x, p)
        aligned = F.grid_sample(x, F.affine_grid(theta_t, list(x.shape), align_corners=True), align_corners=True)
        assert torch.allclose(ours, aligned, atol=1e-6)
        same = torch.allclose(ours, paper, atol=1e-4)
        assert same == (h == w or op == "scale"), (op, h, w)


@pytest.mark.parametrize("op", DSA_OPS)
def test_paper_variant_passes_gradients_to_the_pixels(op):
    dsa = DSA([op], variant="paper")
    x = torch.randn(8, 3, 16, 16, requires_grad=True)
    gen = torch.Generator().manual_seed(0)
    out = dsa.apply(x, dsa.sample(4, gen), torch.arange(8) % 4)
    (out * torch.randn_like(out)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_paper_crop_gradient_is_the_indicator_of_the_pixels_kept():
    dsa = DSA(["crop"], variant="paper")
    x = torch.randn(1, 1, 32, 32, requires_grad=True)
    u = torch.tensor([[(2 + 4 + 0.5) / 9, (-3 + 4 + 0.5) / 9]])  # tx = 2, ty = -3
    dsa.apply(x, AugParams("crop", {"offset": u}, 1)).sum().backward()
    kept = torch.zeros(32, 32)
    kept[:29, 2:] = 1  # rows i - 3 >= 0 read x[0..28], columns j + 2 <= 31 read x[2..31]
    assert torch.equal(x.grad[0, 0], kept)


def test_unknown_variant_is_refused():
    with pytest.raises(UserError, match="unknown DSA variant 'bogus'"):
        DSA(variant="bogus")


def test_options_expose_the_variant():
    from condensery_eval.options import TrainProtocol
    from condensery_eval.protocol import augmenter
    from condensery_matching.common import dsa_from
    from condensery_matching.options import GradientOptions
    from pydantic import ValidationError

    assert GradientOptions().dsa_variant == "condensery"
    assert dsa_from(GradientOptions()).variant == "condensery"
    assert dsa_from(GradientOptions(dsa_variant="paper")).variant == "paper"
    with pytest.raises(ValidationError):
        GradientOptions(dsa_variant="bogus")
    assert augmenter("dsa").variant == "condensery"
    assert augmenter("dsa-paper").variant == "paper"
    assert TrainProtocol(augment="dsa-paper").augment == "dsa-paper"


RECIPE = digits_recipe("r", synthesizer="{name: pixel, ipc: 1, iterations: 2, matcher: {name: gradient, batch_real: 8}}")


@pytest.mark.parametrize("override, expected", [
    ("synthesizer.matcher.dsa_variant=bogus", "synthesizer.matcher 'gradient': option 'dsa_variant'"),
    ("evaluators.0.augment=dsa-bogus", "evaluators[0] 'hard-label': option 'augment'"),
])
def test_a_bogus_variant_in_a_recipe_is_a_one_line_error(cli, tmp_path, override, expected):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE)
    res = cli("run", str(recipe), "-o", str(tmp_path / "run"), "--quiet", "--set", override)
    lines = [ln for ln in res.err.strip().splitlines() if ln.strip()]
    assert res.code == 2 and len(lines) == 1 and expected in lines[0], res.err
    assert not (tmp_path / "run").exists()
