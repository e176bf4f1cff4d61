"""Options of the built-in dataset sources, and the augmentation ops, importing no torch.

A recipe's data section is validated against these before any source module is imported
(the registrations in ``condensery.builtins`` name them), so a typo in ``data`` fails
without torch. Each source module (``digits``, ``cifar``, ...) uses its class as ``Options``.
"""

from __future__ import annotations

from pydantic import Field

from ..api.options import DatasetOptions

#: the ops ``DSA`` draws from (``dsa_ops`` options list a subset of them)
DSA_OPS = ("color", "crop", "cutout", "flip", "scale", "rotate")


class DigitsOptions(DatasetOptions):
    test_fraction: float = Field(0.2, gt=0.0, lt=1.0)


class RootOptions(DatasetOptions):
    root: str = Field(..., description="folder holding the dataset files")


class ImageFolderOptions(RootOptions):
    image_size: int | None = Field(None, ge=1, description="resize to this square size (needed when sizes differ)")
    workers: int = Field(2, ge=0, description="decoding processes")


class TensorsOptions(DatasetOptions):
    train: str = Field(..., description=".safetensors with 'images' [N,C,H,W] and 'labels' [N]")
    test: str = Field(..., description=".safetensors with 'images' [N,C,H,W] and 'labels' [N]")
    class_names: list[str] | None = None


class HuggingFaceOptions(DatasetOptions):
    path: str = Field(..., description="local folder written by datasets' save_to_disk, or a .parquet file / folder of them")
    test_path: str | None = Field(None, description="the test split's own save_to_disk folder or parquet file(s), "
                                                    "when path holds only the training split")
    train_split: str = Field("train", description="name of the training split")
    test_split: str = Field("test", description="name of the test split")
    image_column: str | None = Field(None, description="column of the images (default: 'image' or 'img')")
    label_column: str | None = Field(None, description="column of the class labels (default: 'label' or 'labels')")
    class_names: list[str] | None = Field(None, description="class names (default: the ClassLabel feature's names)")
    image_size: int | None = Field(None, ge=1, description="resize to this square size (needed when sizes differ)")
