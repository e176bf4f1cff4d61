"""Built-in dataset sources. None of them downloads anything.

MNIST-style files and image folders are read with torchvision's dataset classes
(``download=False``); CIFAR python batches with a restricted unpickler that admits only
numpy arrays. A missing file becomes a one-line error that shows the expected layout.

One module per source family (``digits``, ``torchvision_arrays``, ``cifar``, ``image_folder``,
``tensors``; shared file helpers in ``files``); this module re-exports them, the path the
built-in registrations and plugins use.
"""

from __future__ import annotations

from ..api.data import DatasetOptions, DatasetSource, RawSplits  # noqa: F401  (DatasetOptions: its old home)
from .cifar import _CIFAR, CIFAR10, CIFAR100, _SafeUnpickler, read_cifar_batch  # noqa: F401
from .digits import Digits, _stratified_mask  # noqa: F401
from .files import _expand, _fingerprint_files, _not_found  # noqa: F401
from .image_folder import ImageFolder, _name_undecodable, decode_all  # noqa: F401
from .options import DigitsOptions, ImageFolderOptions, RootOptions, TensorsOptions  # noqa: F401
from .tensors import Tensors  # noqa: F401
from .torchvision_arrays import MNIST, FashionMNIST, _to_nchw, _TorchvisionArrays  # noqa: F401
