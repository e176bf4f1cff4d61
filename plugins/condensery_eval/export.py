"""``condensery export SET DIR``: a distilled set as an ImageFolder of PNG files.

Layout written (what torchvision's ``ImageFolder``, and most published distilled sets, use)::

    DIR/train/<class name>/<index>.png   8-bit PNG (grey or RGB), de-normalised pixels
    DIR/set.json                         what PNG files cannot hold (see below)

``<index>`` is the image's position in the set, zero-padded so that file order is set
order. Class folders are the set's class names, or the class numbers ``0..K-1`` when a
name is not a safe folder name. The images are de-normalised with the set's own mean/std;
a set distilled in ZCA-whitened space is first de-whitened, which needs the very
whitening of its run (``--recipe``), so without it the export is refused.

PNG holds pixels in [0, 1]; distilled pixels often lie outside. By default they are
clipped (the images then are ordinary images, which any tool can normalise like real
data) and the share clipped is reported. ``--keep-range`` instead maps the set's own
range ``[lo, hi]`` (which contains [0, 1]) onto 0..255 and records it; ``condensery eval``
undoes it, a tool of your own must compute ``lo + (hi - lo) * pixel``.

``set.json`` keeps the rest, so nothing is lost silently: the source set and its method,
the learned lr (and stage lrs / stages of sequential sets), the label kind, the soft or
regression labels (soft-label sets are filed under each image's argmax class; the full
labels are only here, or in ``labels.safetensors`` beside it when they exceed a million
numbers), the pixel range, the files in set order and the set's metadata.
``condensery eval DIR`` reads all of it back (``sets.read_export``).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from condensery import SyntheticSet, Task, UserError, open_task
from condensery.outputs import claim_output

from .sets import FORMAT, INFO, LABELS

#: the hidden mark of a folder an export is being written into (``condensery.outputs``)
WRITING = ".export.json"
#: soft / regression labels larger than this many numbers go to LABELS instead of set.json
MAX_JSON_LABELS = 1_000_000


def resolve_set_path(path: str | Path) -> Path:
    """A ``.safetensors`` set, or a run directory holding ``synthetic.safetensors``."""
    path = Path(path)
    if path.is_dir():
        if (path / "synthetic.safetensors").is_file():
            return path / "synthetic.safetensors"
        raise UserError(f"'{path}' is a folder without synthetic.safetensors; give a .safetensors set or a run directory")
    return path


def _safe_folder_names(names: list[str]) -> bool:
    """Whether every class name can be a folder name on any file system, distinct from the others."""
    bad = set('/\\:*?"<>|\0')
    ok = all(n and n == n.strip() and n not in (".", "..") and not (set(n) & bad) for n in names)
    return ok and len({n.lower() for n in names}) == len(names)


def _unit_pixels(syn: SyntheticSet, mean: list[float], std: list[float]) -> torch.Tensor:
    c = syn.images.shape[1]
    if len(mean) != c or len(std) != c:
        raise UserError(f"the set's normalisation has {len(mean)} channels, its images {c}")
    m = torch.tensor(mean, dtype=torch.float64)[None, :, None, None]
    s = torch.tensor(std, dtype=torch.float64)[None, :, None, None]
    return syn.images.detach().cpu().double() * s + m


def _undo_zca(syn: SyntheticSet, recipe: str | None, overrides: list[str], registry: Any) -> tuple[torch.Tensor, Any]:
    """The set's images in normalised (unwhitened) space, from its run's whitening."""
    if recipe is None:
        raise UserError("the set was distilled in ZCA-whitened space; pass --recipe (its run's recipe.yaml) so "
                        "export can undo the whitening, which the set does not store")
    _, ctx = open_task(recipe, registry, overrides=overrides)
    zca = getattr(ctx.data, "zca", None)
    if zca is None:
        raise UserError(f"the set was distilled in ZCA-whitened space but recipe '{recipe}' does not whiten; "
                        "pass the recipe of the run that made it (data.zca: true)")
    want = (syn.metadata.get("zca") or {}).get("sha1") if isinstance(syn.metadata.get("zca"), dict) else None
    if want and want != zca.info()["sha1"]:
        raise UserError(f"recipe '{recipe}' whitens differently from the set's run (ZCA sha1 differs); "
                        "pass the recipe of the run that made it")
    return zca.inverse(syn.images.detach().to(ctx.device).float()).cpu(), ctx.task


def export_set(set_path: str | Path, out_dir: str | Path, *, recipe: str | None = None, overrides: list[str] | None = None,
               force: bool = False, keep_range: bool = False, registry: Any = None) -> dict[str, Any]:
    """Write the set at ``set_path`` to ``out_dir`` in the ImageFolder layout; returns the ``set.json`` record."""
    from PIL import Image

    src = resolve_set_path(set_path)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"'{out}' is a file; give a folder to export into")
    claim_output(out, "export", force=force, reads=[src], flag="DIRECTORY")  # another export's is replaced
    syn = SyntheticSet.load(src).detach_cpu()
    overrides = list(overrides or [])
    task: Task | None = None
    zca_record = syn.metadata.get("zca")
    if zca_record:
        images, task = _undo_zca(syn, recipe, overrides, registry)
        syn.images = images
    elif recipe is not None and not (syn.metadata.get("mean") and syn.metadata.get("std")):
        task = open_task(recipe, registry, overrides=overrides)[1].task
    mean, std = syn.metadata.get("mean"), syn.metadata.get("std")
    if not (mean and std):
        if task is None:
            raise UserError(f"'{src}' records no mean/std, so its pixels cannot be de-normalised; pass --recipe "
                            "(the recipe it was distilled with)")
        mean, std = task.mean, task.std
    n, c, h, w = syn.images.shape
    if c not in (1, 3):
        raise UserError(f"'{src}' has {c}-channel images; PNG export needs 1 (grey) or 3 (RGB) channels")

    pixels = _unit_pixels(syn, list(mean), list(std))
    outside = float(((pixels < 0) | (pixels > 1)).double().mean())
    lo, hi = (min(0.0, float(pixels.min())), max(1.0, float(pixels.max()))) if keep_range else (0.0, 1.0)
    q = ((pixels - lo) / (hi - lo) * 255).round().clamp(0, 255).to(torch.uint8)

    k = syn.num_classes
    names = list(task.class_names) if task is not None and not syn.metadata.get("class_names") else syn.class_names
    folders = names if _safe_folder_names(names) else [str(i) for i in range(k)]
    hard = syn.hard_labels.long()
    if n and (int(hard.min()) < 0 or int(hard.max()) >= len(folders)):
        raise UserError(f"'{src}' has class labels outside 0..{len(folders) - 1}; the set is damaged")
    big_labels = syn.soft and syn.labels.numel() > MAX_JSON_LABELS
    width = len(str(max(n - 1, 0)))
    files = [f"train/{folders[int(y)]}/{i:0{width}d}.png" for i, y in enumerate(hard)]

    record: dict[str, Any] = {
        "format": FORMAT, "source": str(src), "method": syn.metadata.get("method"),
        "matcher": syn.metadata.get("matcher"), "recipe": syn.metadata.get("recipe"), "num_images": n,
        "image_shape": [c, h, w], "num_classes": k, "class_names": names,
        "folders": "class names" if folders == names else "class numbers (a class name is not a safe folder name)",
        "mean": list(mean), "std": list(std),
        "pixel_range": [lo, hi], "pixels": "range kept: pixel = lo + (hi - lo) * png / 255" if keep_range
        else "clipped to [0, 1]: pixel = png / 255",
        "outside_unit_range": round(outside, 6),
        "zca": {**zca_record, "undone": True} if zca_record else None,
        "label_kind": syn.label_kind, "lr": syn.lr, "stage_lrs": syn.stage_lrs,
        "files": files,
        "labels": (LABELS if big_labels else syn.labels.float().tolist()) if syn.soft else None,
        "classes": None if syn.classes is None else syn.classes.long().tolist(),
        "stages": None if syn.stages is None else syn.stages.long().tolist(),
        "metadata": syn.metadata,
    }

    tmp = out.parent / f".{out.name}.export-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        for folder in sorted(set(folders[int(y)] for y in hard)):
            (tmp / "train" / folder).mkdir(parents=True, exist_ok=True)
        arr = q.permute(0, 2, 3, 1).numpy()
        for i, rel in enumerate(files):
            Image.fromarray(arr[i, :, :, 0] if c == 1 else arr[i]).save(tmp / rel)  # uint8: L or RGB
        if big_labels:
            from safetensors.torch import save_file

            save_file({"labels": syn.labels.float().contiguous()}, str(tmp / LABELS))
        (tmp / INFO).write_text(json.dumps(record, indent=1, default=str))
        out.mkdir(parents=True, exist_ok=True)
        # marks the folder an export while train/ is replaced, so a killed export is resumed, not refused
        (out / WRITING).write_text(json.dumps({"format": FORMAT, "state": "writing"}))
        (out / INFO).unlink(missing_ok=True)  # first: a folder without set.json is no finished export
        (out / LABELS).unlink(missing_ok=True)
        if (out / "train").exists():
            shutil.rmtree(out / "train")
        os.replace(tmp / "train", out / "train")
        if big_labels:
            os.replace(tmp / LABELS, out / LABELS)
        os.replace(tmp / INFO, out / INFO)  # last: a folder with set.json is a finished export
        (out / WRITING).unlink()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return record
