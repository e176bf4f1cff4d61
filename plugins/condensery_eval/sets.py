"""Reading an existing distilled set for ``condensery eval``: condensery ``.safetensors``
files, folders written by ``condensery export``, or ImageFolder-style folders of images.
Nothing is ever unpickled.

Whatever the source, the result is a SyntheticSet in the *task's* normalised space: a set
saved under another normalisation is converted, and image files are scaled to [0, 1] and
then normalised with the dataset's mean/std.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from condensery import SyntheticSet, Task, UserError
from condensery.api.files import read_safetensors
from condensery.task_space import check_set, class_index, to_task_space

#: what ``condensery export`` writes beside ``train/``: the format, its record, large labels
FORMAT = "condensery.export/1"
INFO = "set.json"
LABELS = "labels.safetensors"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def load_set(path: str | Path, task: Task, zca: Any = None) -> SyntheticSet:
    """The set at ``path`` in the task's space; ``zca`` is the real data's whitening, if any."""
    path = Path(path)
    if path.is_dir():
        if is_export(path):  # written by `condensery export`: labels, lr and metadata come back from set.json
            syn = read_export(path, task)
            check_set(syn, task, path)
        else:
            syn = load_image_folder(_split_folder(path, task), task)
            syn.metadata["method"] = path.name
        if zca is not None:  # files hold pixels; the task's real data is whitened after normalising
            syn.images = zca.transform(syn.images)
    elif path.suffix == ".safetensors" or path.is_file():
        if path.is_file() and path.suffix != ".safetensors":
            raise UserError(f"'{path}' is neither a .safetensors set nor a folder of class subfolders of images")
        syn = SyntheticSet.load(path)
        check_set(syn, task, path)
        whitened = bool(syn.metadata.get("zca"))
        if whitened and zca is None:
            raise UserError(f"'{path}' was distilled in ZCA-whitened space; evaluate it with data.zca=true as in its recipe")
        if zca is not None and not whitened:
            raise UserError(f"'{path}' holds unwhitened images but the recipe whitens the data; set data.zca=false")
        syn = syn if whitened else to_task_space(syn, task)
    else:
        raise UserError(f"synthetic set '{path}' does not exist; give a .safetensors file or an ImageFolder folder")
    return syn


def _split_folder(root: Path, task: Task) -> Path:
    """``ROOT/train`` when ROOT is a dataset-style folder (only ``train/`` and ``test/``), else ROOT."""
    subs = {p.name for p in root.iterdir() if p.is_dir()}
    if "train" in subs and subs <= {"train", "test"} and "train" not in task.class_names:
        return root / "train"
    return root


def load_image_folder(root: Path, task: Task) -> SyntheticSet:
    """``ROOT/<class>/*.png|jpg``: class folders named like the dataset's classes or numbered."""
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    if not folders:
        raise UserError(f"'{root}' has no class subfolders; lay it out as {root}/<class>/<image>.png")
    classes = class_index([f.name for f in folders], task, root)
    images, labels = [], []
    for folder, k in zip(folders, classes):
        for f in sorted(folder.iterdir()):
            if f.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            images.append(read_pixels(f, task))
            labels.append(k)
    if not images:
        raise UserError(f"'{root}' has class folders but no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    x = torch.stack(images)
    mean = torch.tensor(task.mean)[None, :, None, None]
    std = torch.tensor(task.std)[None, :, None, None]
    return SyntheticSet(
        (x - mean) / std, torch.tensor(labels, dtype=torch.long),
        metadata={"method": root.name, "source": "imagefolder", "num_classes": task.num_classes,
                  "class_names": task.class_names, "mean": task.mean, "std": task.std},
    )


def read_pixels(f: Path, task: Task) -> torch.Tensor:
    """One image file as float ``[C,H,W]`` in [0, 1], in the task's channels and size (else a UserError)."""
    from PIL import Image, UnidentifiedImageError

    c, h, w = task.image_shape
    if c not in (1, 3):
        raise UserError(f"image folders need 1- or 3-channel datasets; '{task.dataset}' has {c} channels")
    try:
        with Image.open(f) as im:
            im = im.convert("L" if c == 1 else "RGB")
            if im.size != (w, h):
                raise UserError(f"'{f}' is {im.size[0]}x{im.size[1]}, but '{task.dataset}' images are "
                                f"{w}x{h}; resize the set to {w}x{h}")
            arr = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8)
    except (UnidentifiedImageError, OSError) as exc:
        raise UserError(f"'{f}' is not a readable image ({exc})") from None
    return arr.view(h, w, c).permute(2, 0, 1).float() / 255.0


def is_export(root: Path) -> bool:
    """Whether ``root`` was written by ``condensery export`` (``set.json`` beside ``train/``)."""
    return (root / INFO).is_file() and (root / "train").is_dir()


def read_export(root: Path, task: Task) -> SyntheticSet:
    """A folder written by ``export_set``, in the task's normalised space (before any ZCA)."""
    path = root / INFO
    try:
        rec = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"'{path}' is not valid JSON ({exc}); export the set again") from None
    if not isinstance(rec, dict) or rec.get("format") != FORMAT:
        raise UserError(f"'{path}' is not a condensery export ({FORMAT}); remove it to read '{root}' as a plain image folder")
    files = rec.get("files") or []
    if not files:
        raise UserError(f"'{path}' lists no files; export the set again")
    folder_names = sorted({Path(f).parent.name for f in files})
    index = dict(zip(folder_names, class_index(folder_names, task, root / "train")))
    lo, hi = (rec.get("pixel_range") or [0.0, 1.0])[:2]
    images = []
    for rel in files:
        f = root / rel
        if not f.is_file():
            raise UserError(f"'{f}' is listed in {INFO} but missing; export the set again")
        images.append(read_pixels(f, task))
    x = torch.stack(images) * (hi - lo) + lo
    mean = torch.tensor(task.mean)[None, :, None, None]
    std = torch.tensor(task.std)[None, :, None, None]
    hard = torch.tensor([index[Path(f).parent.name] for f in files], dtype=torch.long)
    labels = hard
    if rec.get("labels") == LABELS:
        if not (root / LABELS).is_file():
            raise UserError(f"'{root / LABELS}' is listed in {INFO} but missing; export the set again")
        labels = read_safetensors(root / LABELS)[0].get("labels")
        if labels is None or labels.dim() != 2 or len(labels) != len(files):
            raise UserError(f"'{root / LABELS}': labels must be [{len(files)}, K]; export the set again")
        labels = labels.float()
    elif rec.get("labels") is not None:
        labels = torch.tensor(rec["labels"], dtype=torch.float32)
        if labels.dim() != 2 or len(labels) != len(files):
            raise UserError(f"'{path}': labels must be [{len(files)}, K]; export the set again")
    metadata = dict(rec.get("metadata") or {})
    metadata.update(mean=task.mean, std=task.std, exported_from=rec.get("source"), source="export")
    metadata.pop("zca", None)
    stages = rec.get("stages")
    return SyntheticSet(  # an image's folder is its class (``classes`` when the set had them)
        (x - mean) / std, labels, rec.get("lr"),
        None if stages is None else torch.tensor(stages, dtype=torch.long), rec.get("stage_lrs"), metadata,
        None if rec.get("classes") is None else hard,
    )
