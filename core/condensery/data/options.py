"""Options of the component kinds and of the core's own dataset sources, importing no torch.

A recipe section is validated against its component's options before any component module
is imported (``recipe.resolve``), so the options live apart from the components: this module
needs only pydantic. ``condensery.SynthesizerOptions`` and ``condensery.DatasetOptions`` are
these classes; ``components`` and ``data.source`` re-export them, and the dataset sources in
``data.sources`` / ``data.huggingface`` use the classes below as their ``Options``.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from ..api.options import Options

#: the ops ``DSA`` draws from (``dsa_ops`` options list a subset of them)
DSA_OPS = ("color", "crop", "cutout", "flip", "scale", "rotate")


class SynthesizerOptions(Options):
    """Options every synthesizer accepts, on top of its own."""

    #: whether the synthesizer takes the recipe's ``synthesizer.matcher`` (its class's
    #: ``uses_matcher``), stated with the options so that section is checked before the
    #: synthesizer's module is imported; None: only the class says (checked once it is imported)
    uses_matcher: ClassVar[bool | None] = None

    ipc: int = Field(1, ge=1, description="images per class")


class DatasetOptions(Options):
    """Options every dataset accepts, on top of its own."""

    val_fraction: float = Field(0.1, ge=0.0, lt=1.0, description="share of train carved out for validation")
    cache: bool = Field(True, description="cache decoded tensors on disk (file-based datasets)")
    normalize: bool = Field(True, description="standardise each channel with the train mean/std")
    zca: bool = Field(False, description="ZCA-whiten after normalisation (fitted on the train split)")
    zca_eps: float = Field(0.1, gt=0, description="eigenvalue regulariser of the ZCA whitening")
    classes: list[int | str] | None = Field(
        None, description="keep only these classes (indices or names), relabelled 0..k-1 in this order"
    )
    train_per_class: int | None = Field(
        None, ge=1, description="keep at most this many training images per class (first ones, fixed)"
    )


# -- the core's dataset sources (``data.sources``, ``data.huggingface``) ---------------------
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
