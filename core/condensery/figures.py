"""Pictures of a run: ``grid.png`` (the set, one labelled row per class) and ``curves.png``
(every logged loss against its step, from ``logs/steps.jsonl``).

Both are written atomically (a temp file in the same folder, then a rename) and import their
drawing libraries (PIL, matplotlib) only when called, so importing this module costs nothing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .api.files import atomic_path
from .outputs import PNG_METADATA, PNG_SOFTWARE

if TYPE_CHECKING:
    import torch

#: padding between cells, around the grid and around a row's class name, in pixels
PAD = 2
LABEL_MARGIN = 6
MAX_NAME = 24  # characters of a class name shown; longer names are cut with "..."


def _mark() -> Any:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Software", PNG_SOFTWARE)
    return info


def _atomic_save(path: Path, save: Any) -> Path:
    """Call ``save(tmp)`` on a temp file next to ``path`` and rename it into place."""
    with atomic_path(path) as tmp:  # one temp file per process writing it
        save(tmp)
    return path


# -- grid.png -------------------------------------------------------------------------------

def _display(images: torch.Tensor, mean: Sequence[float] | None, std: Sequence[float] | None) -> tuple[torch.Tensor, bool]:
    """Images in [0, 1] for display and whether they are vectors shown as grey strips."""
    import torch

    x = images.detach().float().cpu()
    n, c, h, w = x.shape
    if mean is not None and std is not None and len(mean) == c and len(std) == c:
        x = x * torch.tensor(std, dtype=x.dtype)[None, :, None, None] + torch.tensor(mean, dtype=x.dtype)[None, :, None, None]
        normalised = True
    else:  # no (matching) normalisation stored: stretch the set's range to [0, 1]
        normalised = False
    if c not in (1, 3):  # vectors stored as [d,1,1] (e.g. multi-index): one grey strip each
        x = (x - x.min()) / (x.max() - x.min()).clamp_min(1e-12)
        return x.permute(0, 2, 3, 1).reshape(n, 1, 1, h * w * c), True
    if not normalised:
        x = (x - x.min()) / (x.max() - x.min()).clamp_min(1e-12)
    return x.clamp(0, 1), False


def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # scalable (Pillow >= 10.1 with FreeType)
    except TypeError:
        return ImageFont.load_default()


def _name(class_names: Sequence[Any] | None, k: int) -> str:
    name = str(class_names[k]) if class_names is not None and 0 <= k < len(class_names) else str(k)
    return name if len(name) <= MAX_NAME else name[: MAX_NAME - 3] + "..."


def save_grid(
    images: torch.Tensor, labels: torch.Tensor, mean: Sequence[float] | None, std: Sequence[float] | None,
    path: Path, max_per_class: int = 10, min_cell: int = 32, class_names: Sequence[Any] | None = None,
    max_classes: int = 100,
) -> Path:
    """One row per class, its name first, then up to ``max_per_class`` of its images.

    Images are shown in display space (``mean``/``std`` undone) and upscaled with nearest
    neighbour so each cell is at least ``min_cell`` pixels on its short side; soft labels are
    rowed by their argmax. Vectors stored as ``[d,1,1]`` are shown as one grey strip each.
    Past ``max_classes`` classes the picture shows the first ones and says so.
    """
    import numpy as np
    from PIL import Image, ImageDraw

    labels = labels.detach().cpu()
    if labels.dim() == 2:
        labels = labels.argmax(dim=1)
    shown, strips = _display(images, mean, std)
    n, c, h, w = shown.shape
    if strips:  # a strip is scaled on each axis: at least min_cell tall, elements at least 1 px wide
        sy, sx = max(1, math.ceil(min_cell / h)), max(1, math.ceil(min_cell / w))
    else:
        sy = sx = max(1, math.ceil(min_cell / max(1, min(h, w))))
    ch, cw = h * sy, w * sx
    arr = (shown.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    arr = arr.repeat(sy, axis=1).repeat(sx, axis=2)  # nearest-neighbour upscale

    all_classes = [int(k) for k in labels.unique(sorted=True)]
    classes = all_classes[:max_classes]
    rows = [np.flatnonzero(labels.numpy() == k)[:max_per_class] for k in classes]
    per_row = max(1, max((len(r) for r in rows), default=1))

    font = _font(max(10, min(16, ch // 2)))
    names = [_name(class_names, k) for k in classes]
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    widths = [probe.textbbox((0, 0), s, font=font)[2] for s in names]
    label_w = max(widths, default=0) + 2 * LABEL_MARGIN
    note = f"first {len(classes)} of {len(all_classes)} classes" if len(classes) < len(all_classes) else None
    note_h = 20 if note else 0

    row_h = ch + PAD
    width = label_w + per_row * (cw + PAD) + PAD
    height = PAD + len(classes) * row_h + note_h
    mode = "L" if c == 1 else "RGB"
    canvas = np.full((height, width) if c == 1 else (height, width, 3), 255, dtype=np.uint8)
    for i, idx in enumerate(rows):
        top = PAD + i * row_h
        for j, k in enumerate(idx):
            left = label_w + PAD + j * (cw + PAD)
            cell = arr[k]
            canvas[top:top + ch, left:left + cw] = cell[:, :, 0] if c == 1 else cell
    img = Image.fromarray(canvas, mode=mode)
    draw = ImageDraw.Draw(img)
    black = 0 if c == 1 else (0, 0, 0)
    for i, s in enumerate(names):
        box = draw.textbbox((0, 0), s, font=font)
        y = PAD + i * row_h + (ch - (box[3] - box[1])) // 2 - box[1]
        draw.text((LABEL_MARGIN, y), s, fill=black, font=font)
    if note:
        draw.text((LABEL_MARGIN, height - note_h + 3), note, fill=black, font=_font(12))
    return _atomic_save(Path(path), lambda tmp: img.save(tmp, format="PNG", pnginfo=_mark()))


def grid_path_for(set_path: str | Path) -> Path:
    """Where ``condensery generate`` puts a set's grid: ``SET.safetensors`` -> ``SET.png``."""
    p = Path(set_path)
    return p.with_name(p.name + ".png") if p.suffix == ".png" else p.with_suffix(".png")


# -- curves.png -----------------------------------------------------------------------------

def read_steps(path: Path) -> list[dict[str, Any]]:
    """The rows of a ``steps.jsonl``; a line that does not parse (a killed run's last) is skipped."""
    rows: list[dict[str, Any]] = []
    try:
        text = Path(path).read_text(errors="replace")
    except FileNotFoundError:
        return rows
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and isinstance(row.get("stage"), str) and isinstance(row.get("step"), int | float):
            rows.append(row)
    return rows


Segments = list[list[tuple[float, float]]]


def loss_curves(rows: list[dict[str, Any]]) -> dict[str, dict[str, Segments]]:
    """``{stage: {metric: [[(step, value), ...], ...]}}`` of every stage that logs a loss.

    A stage's metrics are plotted when their name says ``loss`` or they are fractional values
    logged alongside a loss (its parts, e.g. ``ce`` and ``bn``); integer counters (``batch``,
    ``subset``, ``resumed``) are not. Where the step goes back, a new segment starts: the next
    batch of a stage that restarts its steps per batch, or a resumed attempt appending after
    the one that was killed. Nothing logged is dropped.
    """
    series: dict[str, dict[str, Segments]] = {}
    for row in rows:
        stage, step = row["stage"], float(row["step"])
        for key, value in row.items():
            if key in ("stage", "step", "time_s", "step_s") or isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if not math.isfinite(value):
                continue
            segments = series.setdefault(stage, {}).setdefault(key, [])
            if not segments or step <= segments[-1][-1][0]:
                segments.append([])
            segments[-1].append((step, float(value)))
    out: dict[str, dict[str, Segments]] = {}
    for stage, metrics in series.items():
        if not any("loss" in k.lower() for k in metrics):
            continue
        kept = {k: segs for k, segs in metrics.items()
                if "loss" in k.lower() or any(v != int(v) for seg in segs for _, v in seg)}
        if kept:
            out[stage] = kept
    return out


def save_curves(steps_path: Path, path: Path, title: str | None = None) -> Path | None:
    """Plot every logged loss of ``steps_path`` against its step into ``path``; None (nothing
    written) when the log holds no loss."""
    rows = read_steps(steps_path)
    curves = loss_curves(rows)
    if not curves:
        return None
    from matplotlib.figure import Figure  # no pyplot: no global state, the Agg canvas of savefig

    resumes: dict[str, list[float]] = {}
    for row in rows:
        if row.get("resumed") and row["stage"] in curves:
            resumes.setdefault(row["stage"], []).append(float(row["step"]))

    fig = Figure(figsize=(7.0, 0.6 + 2.8 * len(curves)), layout="constrained")
    axes = fig.subplots(len(curves), 1, squeeze=False)[:, 0]
    for ax, (stage, metrics) in zip(axes, curves.items(), strict=True):
        values = [v for segs in metrics.values() for seg in segs for _, v in seg]
        for i, (name, segs) in enumerate(metrics.items()):
            few = sum(len(seg) for seg in segs) <= 40
            for j, seg in enumerate(segs):  # one colour per metric, every segment in it
                xs, ys = zip(*seg, strict=True)
                ax.plot(xs, ys, color=f"C{i}", label=name if j == 0 else None, marker="o" if few else None,
                        markersize=3, linewidth=1.2 if len(segs) == 1 else 0.8)
        for i, s in enumerate(resumes.get(stage, [])):
            ax.axvline(s, color="grey", linestyle=":", linewidth=1, label="resumed" if i == 0 else None)
        positive = all(v > 0 for v in values)
        if positive and max(values) / min(values) >= 20:
            ax.set_yscale("log")
        pieces = max(len(segs) for segs in metrics.values())
        restarts = f"  ({pieces} segments: the step restarts per batch or resumed attempt)" if pieces > 1 else ""
        ax.set_title(f"stage: {stage}{restarts}", fontsize=10)
        ax.set_xlabel("step")
        ax.set_ylabel("value" + (" (log)" if ax.get_yscale() == "log" else ""))
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8, loc="best")
    fig.suptitle(f"{title + ': ' if title else ''}losses by step (logs/steps.jsonl)", fontsize=11)
    return _atomic_save(Path(path), lambda tmp: fig.savefig(tmp, format="png", dpi=100, metadata=PNG_METADATA))


def write_curves(run_dir: Path) -> Path | None:
    """``RUN_DIR/curves.png`` from ``RUN_DIR/logs/steps.jsonl`` (None when it logs no loss)."""
    run_dir = Path(run_dir)
    return save_curves(run_dir / "logs" / "steps.jsonl", run_dir / "curves.png", title=run_dir.name)
