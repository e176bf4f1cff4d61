"""The core's own registrations: datasets and models (no methods live in the core).

Registered through the ``condensery`` entry-point group like every other plugin.
"""

from __future__ import annotations

from .data import sources
from .hookspecs import hookimpl
from .models.factory import model_factory


@hookimpl
def register_datasets(register) -> None:
    register("digits", sources.Digits)
    register("mnist", sources.MNIST)
    register("fashion-mnist", sources.FashionMNIST)
    register("cifar10", sources.CIFAR10)
    register("cifar100", sources.CIFAR100)
    register("imagefolder", sources.ImageFolder)
    register("tensors", sources.Tensors)


@hookimpl
def register_models(register) -> None:
    for name in ("convnet", "convnet_d4", "convnet_bn", "resnet18"):
        register(name, model_factory(name))
