"""The core's own registrations: the data and models services (no methods live in the core).

The built-in dataset sources (``condensery.data``) and networks (``condensery.models``) are
registered through the ``condensery`` entry-point group like every other plugin's (entry
point ``core``), and by reference (``"module:Name"``, with their torch-free options classes)
so that loading this imports neither torch nor timm. Figures (``condensery.figures``) are no
component kind: the engine draws them for every run, whatever the plugins.
"""

from __future__ import annotations

from typing import Any

from .api.hookspecs import hookimpl

_DATASETS = {  # name -> (source, its options in the light data.options module)
    "digits": ("digits:Digits", "DigitsOptions"), "mnist": ("torchvision_arrays:MNIST", "RootOptions"),
    "fashion-mnist": ("torchvision_arrays:FashionMNIST", "RootOptions"), "cifar10": ("cifar:CIFAR10", "RootOptions"),
    "cifar100": ("cifar:CIFAR100", "RootOptions"), "imagefolder": ("image_folder:ImageFolder", "ImageFolderOptions"),
    "tensors": ("tensors:Tensors", "TensorsOptions"), "huggingface": ("huggingface:HuggingFace", "HuggingFaceOptions"),
}
_MODELS = {  # name -> its options in models.options
    "convnet": "ConvNetOptions", "convnet_d4": "ConvNetD4Options", "convnet_bn": "ConvNetBNOptions",
    "resnet18": "TimmOptions",
}


class TimmModel:
    """Model factory for one timm name; imports the model code only when a network is built."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.__doc__ = f"timm model '{name}' (its family's small-image stem at 64 px or less)"

    def __call__(self, num_classes: int, in_chans: int, img_size: int, **options: Any) -> Any:
        from .models.factory import create_timm_model

        return create_timm_model(self.name, num_classes, in_chans, img_size, **options)


@hookimpl
def register_datasets(register) -> None:
    for name, (target, options) in _DATASETS.items():
        register(name, f"condensery.data.{target}", options=f"condensery.data.options:{options}")


@hookimpl
def register_models(register) -> None:
    for name, options in _MODELS.items():
        register(name, TimmModel(name), options=f"condensery.models.options:{options}")
