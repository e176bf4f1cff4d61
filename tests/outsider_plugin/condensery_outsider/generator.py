"""``class-means``: every generated image of a class is the class's mean image, plus optional noise."""

import torch
from condensery import Generator, SyntheticSet
from condensery.api.files import read_safetensors
from safetensors.torch import save_file

from .options import ClassMeansOptions


class ClassMeans(Generator):
    Options = ClassMeansOptions

    def __init__(self, config, means):
        super().__init__(config)
        self.means = means

    def requires_data(self, ipc, options):
        return False

    def generate(self, ipc, seed=0, ctx=None, options=None):
        o = options or self.Options()
        labels = torch.arange(len(self.means)).repeat_interleave(ipc)
        noise = torch.randn((len(labels), *self.means.shape[1:]), generator=torch.Generator().manual_seed(seed))
        return SyntheticSet(self.means[labels] + o.noise * noise, labels)

    def save_weights(self, folder):
        save_file({"means": self.means.contiguous()}, str(folder / "means.safetensors"))
        return {}

    @classmethod
    def load(cls, folder, config):
        tensors, _ = read_safetensors(folder / "means.safetensors")
        return cls(config, tensors["means"])
