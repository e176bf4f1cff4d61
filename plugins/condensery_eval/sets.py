"""Reading an existing distilled set for ``condensery eval``: condensery ``.safetensors``
files or ImageFolder-style folders of images. Nothing is ever unpickled.

Whatever the source, the result is a SyntheticSet in the *task's* normalised space: a set
saved under another normalisation is converted, and image files are scaled to [0, 1] and
then normalised with the dataset's mean/std.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from condensery import SyntheticSet, Task, UserError, check_set, class_index, to_task_space

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def load_set(path: str | Path, task: Task, zca: Any = None) -> SyntheticSet:
    """The set at ``path`` in the task's space; ``zca`` is the real data's whitening, if any."""
    path = Path(path)
    if path.is_dir():
        from .export import is_export, read_export

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
