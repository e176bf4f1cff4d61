"""The MGDD meta generator: a small class-conditional residual refiner, size-agnostic.

``X = X0 + G(X0 | class, ipc)``: the generator takes the initial class-balanced real images
``X0`` and refines them. It is built from diffusers blocks (a tiny ``UNet2DModel``, random
init, never downloaded) and works on any dataset shape:

- images of any size are resized (bilinear, antialiased) to a square *working resolution*
  and back, so one generator serves 8x8 digits and 32x32 CIFAR;
- images of any channel count pass through a per-channel-count pair of 1x1 *channel
  adapters* (``c -> working channels -> c``), created on demand; a new adapter starts as
  "replicate grey" in and "mean of channels" out, so a meta-trained refiner sees a familiar
  input on a dataset with another channel count;
- the class enters as a *prototype* (mean of the class's initial images at 4x4 in the
  working space) through a linear map into the UNet's time-embedding space
  (``class_embed_type="identity"``): a learned per-class-index table could not transfer to
  unseen classes, a prototype can;
- the size enters as the UNet timestep ``100·log2(ipc)``, a sinusoidal code defined for any
  ipc, so sizes never seen in training still get a sensible embedding;
- the residual has zero mean per image and channel (a constant channel shift is nearly invisible
  to the instance-normalised feature networks of the loss, so it drifted unchecked);
- optionally (``gradient_input``) the UNet also reads the matcher-loss gradient at X0,
  normalised per image: the draw-specific information a refiner of X0 alone lacks (README);
- the UNet's last convolution starts at zero: an untrained generator is the identity, i.e.
  the random real subset, and every step of training departs from that baseline;
- optionally (``refine_steps`` T > 0) the refinement is *unrolled*: T steps
  ``x <- x - s_t * d_t + U(x, d_t)``, where ``d_t`` is Adam's direction for the matcher-loss
  gradients seen so far, ``s_t`` a learned step size per step and ``U`` the UNet's centred
  correction. Untrained it is T steps of Adam at ``refine_lr`` from X0; meta-training learns
  the schedule and the correction (README: why).

GroupNorm normalises per image, so the output for one image does not depend on how many
images are generated with it (apart from the shared prototype and size code).

The network is a diffusers ``ModelMixin`` + ``ConfigMixin``: its constructor arguments are
its config, ``save_pretrained`` writes them with the weights (safetensors), and the core's
``save_generator`` adds the type ``mgdd``, the task and the recipe it was last adapted to,
then renames the folder into place. ``MGDDGenerator`` (the registered ``mgdd`` type) is
what ``condensery generate`` calls; loading never unpickles.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from condensery import UserError
from condensery.api.files import read_safetensors
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin

from .options import ArchitectureOptions

WEIGHTS = "diffusion_pytorch_model.safetensors"  # what save_pretrained writes
#: constructor arguments, i.e. the network's part of config.json
INIT_KEYS = ("unet_options", "context_pool", "channel_counts", "gradient_input", "refine_steps", "refine_lr")
# ``grad_fn(x, t)``: the raw matcher-loss gradient at ``x`` for unrolled step ``t``
GradientFn = Callable[[torch.Tensor, int], torch.Tensor]


def unet_config(working_channels: int, resolution: int, channels: list[int] | tuple[int, ...],
                layers_per_block: int = 1) -> dict[str, Any]:
    """A tiny attention-free ``UNet2DModel`` config with a vector class embedding."""
    channels = tuple(int(c) for c in channels)
    groups = math.gcd(*channels, 8)
    return {
        "sample_size": resolution, "in_channels": working_channels, "out_channels": working_channels,
        "block_out_channels": channels, "layers_per_block": layers_per_block,
        "down_block_types": ["DownBlock2D"] * len(channels), "up_block_types": ["UpBlock2D"] * len(channels),
        "norm_num_groups": groups, "add_attention": False, "class_embed_type": "identity",
    }


class MetaGenerator(ModelMixin, ConfigMixin):
    """``forward(x0, labels, ipc) -> x0 + residual``; see the module docstring."""

    @register_to_config
    def __init__(self, unet_options: dict[str, Any], context_pool: int = 4, channel_counts: list[int] | None = None,
                 gradient_input: bool = False, refine_steps: int = 0, refine_lr: float = 0.1) -> None:
        super().__init__()
        from diffusers import UNet2DModel

        if gradient_input and refine_steps:
            raise ValueError("gradient_input and refine_steps exclude each other (the unrolled refiner reads its own directions)")
        unet = dict(unet_options)  # not named "unet": a config key would shadow the submodule
        self.unet = UNet2DModel(**unet)
        self.gradient_input = gradient_input
        self.refine_steps = int(refine_steps)
        self.refine_lr = float(refine_lr)
        # with gradient input (or unrolled) the UNet reads [image, loss gradient / direction] stacked
        self.working_channels = int(unet["in_channels"]) // (2 if self.reads_gradient else 1)
        if self.refine_steps:  # learned step sizes refine_lr * exp(log_step_scale), 1x at the start
            self.log_step_scale = nn.Parameter(torch.zeros(self.refine_steps))
        self.resolution = int(unet["sample_size"])
        self.context_pool = context_pool
        emb = int(unet["block_out_channels"][0]) * 4  # diffusers' time-embedding width
        self.context = nn.Linear(self.working_channels * context_pool * context_pool, emb)
        self.adapters_in = nn.ModuleDict()
        self.adapters_out = nn.ModuleDict()
        with torch.no_grad():  # start as the identity: the refiner adds nothing yet
            self.unet.conv_out.weight.zero_()
            self.unet.conv_out.bias.zero_()
        for c in channel_counts or [self.working_channels]:
            self.add_channels(c)

    @property
    def reads_gradient(self) -> bool:
        return self.gradient_input or self.refine_steps > 0

    def step_sizes(self) -> torch.Tensor:
        """The unrolled refiner's step sizes (log scale: one optimiser step changes them by a ratio)."""
        return self.refine_lr * self.log_step_scale.exp()

    @property
    def channel_counts(self) -> list[int]:
        return sorted(int(k) for k in self.adapters_in)

    def add_channels(self, c: int) -> bool:
        """Create the adapters for ``c``-channel images if missing; True if created."""
        key = str(c)
        if key in self.adapters_in:
            return False
        w = self.working_channels
        a_in, a_out = nn.Conv2d(c, w, 1), nn.Conv2d(w, c, 1)
        with torch.no_grad():
            for conv, n_in in ((a_in, c), (a_out, w)):
                conv.bias.zero_()
                if c == w:
                    conv.weight.copy_(torch.eye(w)[:, :, None, None])
                else:  # in: every working channel the mean of the inputs; out: the mean back
                    conv.weight.fill_(1.0 / n_in)
        device = self.context.weight.device
        self.adapters_in[key] = a_in.to(device)
        self.adapters_out[key] = a_out.to(device)
        self.register_to_config(channel_counts=self.channel_counts)  # config.json rebuilds these adapters
        return True

    def prototypes(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Per image, the mean of its class's working-space images pooled to ``p x p``, flat."""
        pooled = F.adaptive_avg_pool2d(z.float(), self.context_pool).flatten(1)
        k = int(labels.max()) + 1
        sums = torch.zeros(k, pooled.shape[1], device=z.device).index_add_(0, labels, pooled)
        counts = torch.bincount(labels, minlength=k).clamp_min(1).float().unsqueeze(1)
        return (sums / counts)[labels]

    def to_working(self, x: torch.Tensor) -> torch.Tensor:
        """Images of any size and channel count -> the working resolution and channels."""
        r = self.resolution
        if x.shape[2:] != (r, r):
            x = F.interpolate(x, size=(r, r), mode="bilinear", antialias=True, align_corners=False)
        return self.adapters_in[str(x.shape[1])](x)

    def forward(self, x0: torch.Tensor, labels: torch.Tensor, ipc: int, grad: torch.Tensor | None = None,
                grad_fn: GradientFn | None = None) -> torch.Tensor:
        """``x0 + residual`` (one shot), or the unrolled refinement when ``refine_steps`` > 0.

        ``grad``: the normalised loss gradient at X0 (``gradient_input``); ``grad_fn(x, t)``:
        the raw loss gradient at ``x`` for step ``t`` (unrolled; a fresh feature draw per step).
        """
        c = x0.shape[1]
        if str(c) not in self.adapters_in:
            raise UserError(f"the generator has no adapter for {c}-channel images; adapt it to this dataset first (mode: adapt)")
        cond = self.context(self.prototypes(self.to_working(x0), labels))
        if self.refine_steps:
            if grad_fn is None:
                raise ValueError("this generator refines in steps along the loss gradient; pass grad_fn= "
                                 "(condensery_mgdd.generation.gradient_fn)")
            return self.unroll(x0, cond, ipc, grad_fn)
        if self.gradient_input and grad is None:
            raise ValueError("this generator refines with the loss gradient at X0; pass grad= (condensery_mgdd.synthesizer.loss_gradient)")
        return x0 + self.residual(x0, cond, self.size_code(x0, ipc), grad).to(x0.dtype)

    def size_code(self, x: torch.Tensor, ipc: int, offset: float = 0.0) -> torch.Tensor:
        return torch.full((x.shape[0],), 100.0 * math.log2(max(int(ipc), 1)) + offset, device=x.device)

    def residual(self, x: torch.Tensor, cond: torch.Tensor, t: torch.Tensor, extra: torch.Tensor | None) -> torch.Tensor:
        """The UNet's centred residual for ``x`` (and its second input ``extra``), at ``x``'s size."""
        h, w = x.shape[2:]
        r = self.resolution
        z = self.to_working(x)
        if extra is not None:
            z = torch.cat([z, self.to_working(extra.to(x.dtype))], dim=1)
        # float32 from here: under bf16 autocast the UNet's output is bf16, and the CPU has no bf16
        # kernel for antialiased resampling; the residual joins float32 images anyway
        res = self.adapters_out[str(x.shape[1])](self.unet(z, t, class_labels=cond).sample).float()
        # zero-mean per image and channel: instance-normalised feature networks (the krr matcher's)
        # barely see a constant channel shift, so without this the residual drifted there freely
        # (-0.43 on two channels of CIFAR-10 after meta-training + adaptation); centring it did
        # not change the adapted set's accuracy (docs/results.md, MGDD), it only removes the drift
        res = res - res.mean(dim=(2, 3), keepdim=True)
        if (h, w) != (r, r):
            res = F.interpolate(res, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
        return res

    def unroll(self, x0: torch.Tensor, cond: torch.Tensor, ipc: int, grad_fn: GradientFn) -> torch.Tensor:
        """T learned steps from X0: Adam's direction (betas 0.9 / 0.999) times a learned size, plus U.

        The gradients are inputs, not differentiated through (first order, as learned optimizers
        are usually trained): what training shapes is the step schedule and the correction.
        """
        x = x0.float()
        m = torch.zeros_like(x)
        v = torch.zeros_like(x)
        sizes = self.step_sizes()
        b1, b2, eps = 0.9, 0.999, 1e-8
        for t in range(self.refine_steps):
            g = grad_fn(x.detach(), t).float()
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            direction = (m / (1 - b1 ** (t + 1))) / ((v / (1 - b2 ** (t + 1))).sqrt() + eps)
            code = self.size_code(x, ipc, 1000.0 * t / self.refine_steps)
            x = x - sizes[t] * direction + self.residual(x, cond, code, direction)
        return x.to(x0.dtype)


def build_generator(options: ArchitectureOptions, channels: int) -> MetaGenerator:
    """A fresh generator from the synthesizer's ``architecture`` options, with adapters for ``channels``."""
    grad = bool(options.gradient_input)
    steps = int(options.refine_steps)
    cfg = unet_config(options.working_channels * (2 if grad or steps else 1), options.resolution,
                      options.block_out_channels, options.layers_per_block)
    cfg["out_channels"] = options.working_channels
    return MetaGenerator(cfg, options.context_pool, [channels], gradient_input=grad, refine_steps=steps,
                         refine_lr=options.refine_lr)


# -- the folder on disk ------------------------------------------------------------------
def network_from_folder(folder: Path, config: dict[str, Any]) -> MetaGenerator:
    """The network of a generator folder: built from its config, weights through safetensors only."""
    weights = folder / WEIGHTS
    if not weights.is_file():
        raise UserError(f"'{folder}' lacks {WEIGHTS}; the generator folder is incomplete")
    net = MetaGenerator.from_config({k: config[k] for k in INIT_KEYS})
    state, _ = read_safetensors(weights)
    missing, unexpected = net.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise UserError(f"'{weights}' does not match its config.json (missing {missing[:3]}, unexpected {unexpected[:3]})")
    return net
