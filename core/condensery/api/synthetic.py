"""SyntheticSet: the distilled data, saved as one ``.safetensors`` file.

Tensors (images, labels, optional learned lr, optional per-image stage and class) go in the file body
and everything else (method, recipe, ipc, class names, normalisation, seed, versions) as
JSON in the header metadata, so a set can be inspected and loaded without unpickling.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch.utils.data import Dataset

from .errors import UserError
from .files import atomic_path, read_safetensors

FORMAT = "condensery.synthetic/1"
_META_KEY = "condensery"


@dataclass
class SyntheticSet:
    """Images ``[N,C,H,W]`` in the task's normalised space and labels (hard ``[N]`` or soft ``[N,K]``).

    ``lr`` is a learned training lr (trajectory matching) and ``stages``/``stage_lrs`` the
    per-image subset index and per-stage lr of sequential methods; both optional.
    ``classes`` (``[N]`` long, optional) is the class each image was made for: labels that
    are regression targets (a least-squares solve, ``label_kind == "regression"``) have no
    meaningful argmax, so ``hard_labels`` returns ``classes`` when it is set.
    """

    images: torch.Tensor
    labels: torch.Tensor
    lr: float | None = None
    stages: torch.Tensor | None = None
    stage_lrs: list[float] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    classes: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.images.dim() != 4:
            raise UserError(f"synthetic images must be [N,C,H,W], got shape {tuple(self.images.shape)}")
        n = self.images.shape[0]
        if self.labels.shape[0] != n or self.labels.dim() not in (1, 2):
            raise UserError(
                f"synthetic labels must be [N] or [N,K] with N={n}, got shape {tuple(self.labels.shape)}"
            )
        if self.stages is not None and tuple(self.stages.shape) != (n,):
            raise UserError(f"synthetic stages must be [N] with N={n}, got {tuple(self.stages.shape)}")
        if self.classes is not None and tuple(self.classes.shape) != (n,):
            raise UserError(f"synthetic classes must be [N] with N={n}, got {tuple(self.classes.shape)}")

    # -- views ------------------------------------------------------------------
    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def soft(self) -> bool:
        return self.labels.dim() == 2

    @property
    def hard_labels(self) -> torch.Tensor:
        """Class index per image: ``classes`` when set, else the labels (argmax of soft ones)."""
        if self.classes is not None:
            return self.classes
        return self.labels.argmax(dim=1) if self.soft else self.labels

    @property
    def label_kind(self) -> str:
        """``hard`` (class indices), ``soft`` (probabilities) or ``regression`` (least-squares targets)."""
        if not self.soft:
            return "hard"
        return "regression" if self.metadata.get("label_kind") == "regression" else "soft"

    #: metadata that is part of the evaluation protocol a set declares (the teacher that
    #: labelled it, the solver of its least-squares labels): its random real subset is
    #: judged under the same, so it carries these too
    PROTOCOL_KEYS = ("teacher", "label_solver")

    def protocol_metadata(self) -> dict[str, Any]:
        """The protocol-defining entries of ``metadata``, for the same-size random subset.

        A set that brings a learned lr also passes it on as ``partner_lr``: its random arm
        then chooses its own lr on validation from a grid that includes it, rather than
        training at a fixed lr the partner never had to use.
        """
        out = {k: self.metadata[k] for k in self.PROTOCOL_KEYS if k in self.metadata}
        lr = self.lr if self.lr is not None else (self.stage_lrs[-1] if self.stage_lrs else None)
        if lr is not None:
            out["partner_lr"] = float(lr)
        return out

    @property
    def num_classes(self) -> int:
        if "num_classes" in self.metadata:
            return int(self.metadata["num_classes"])
        return self.labels.shape[1] if self.soft else int(self.labels.max()) + 1

    @property
    def class_names(self) -> list[str]:
        """The class names stored with the set, or ``"0".."K-1"`` when it has none."""
        names = self.metadata.get("class_names")
        if names and len(names) == self.num_classes:
            return [str(n) for n in names]
        return [str(i) for i in range(self.num_classes)]

    def as_dataset(self, transform: Any = None) -> SyntheticDataset:
        """This set as a map-style ``torch.utils.data.Dataset`` for plain PyTorch code.

        Item ``i`` is ``(image [C,H,W], target)``: the class index (long) for hard labels,
        the probability vector for soft labels, the regression target vector for
        least-squares labels. Images stay in the set's space (normalised with ``.mean`` /
        ``.std``; ZCA-whitened if the set was). ``transform`` is applied to each image.
        The view also carries ``lr`` (the learned lr, or None), ``classes`` (names),
        ``soft``, ``label_kind``, ``mean``, ``std``, ``stages`` and ``stage_lrs``.
        """
        return SyntheticDataset(self, transform)

    def to(self, device: torch.device | str) -> SyntheticSet:
        return SyntheticSet(
            self.images.to(device),
            self.labels.to(device),
            self.lr,
            None if self.stages is None else self.stages.to(device),
            self.stage_lrs,
            dict(self.metadata),
            None if self.classes is None else self.classes.to(device),
        )

    def detach_cpu(self) -> SyntheticSet:
        s = self.to("cpu")
        s.images = s.images.detach().float().contiguous()
        s.labels = s.labels.detach().contiguous()
        if s.classes is not None:
            s.classes = s.classes.detach().contiguous()
        return s

    # -- I/O --------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write atomically (temp file, then rename) so a kill never leaves half a file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        s = self.detach_cpu()
        tensors = {"images": s.images, "labels": s.labels}
        if s.stages is not None:
            tensors["stages"] = s.stages.to(torch.int64).contiguous()
        if s.classes is not None:
            tensors["classes"] = s.classes.to(torch.int64).contiguous()
        header = {
            "format": FORMAT,
            "lr": s.lr,
            "stage_lrs": s.stage_lrs,
            "metadata": s.metadata,
        }
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata={_META_KEY: json.dumps(header, default=str)})
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SyntheticSet:
        """Read a set written by ``save``; any malformed file is a one-line ``UserError``."""
        path = Path(path)
        if not path.is_file():
            raise UserError(f"synthetic set '{path}' does not exist; pass the path to a .safetensors file")
        tensors, metadata = read_safetensors(path)
        raw = metadata.get(_META_KEY)
        if raw is None:
            raise UserError(f"'{path}' has no condensery header; it was not written by condensery")
        try:
            header = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise UserError(f"'{path}' has a corrupt condensery header ({exc})") from None
        if header.get("format") != FORMAT:
            raise UserError(f"'{path}' has format {header.get('format')!r}; expected {FORMAT!r}")
        for key in ("images", "labels"):
            if key not in tensors:
                raise UserError(f"'{path}' lacks the '{key}' tensor")
        return cls(
            images=tensors["images"].float(),
            labels=tensors["labels"],
            lr=header.get("lr"),
            stages=tensors.get("stages"),
            stage_lrs=header.get("stage_lrs"),
            metadata=header.get("metadata") or {},
            classes=tensors.get("classes"),
        )


class SyntheticDataset(Dataset):
    """A SyntheticSet as a torch ``Dataset`` (see ``SyntheticSet.as_dataset``).

    ``targets`` holds every item's target (``[N]`` long, or ``[N,K]`` float when ``soft``):
    ``torch.nn.functional.cross_entropy`` takes either kind; regression targets
    (``label_kind == "regression"``) are meant for a squared error on the logits.
    ``lr`` is the learned training lr of the set (None when it has none; a sequential set
    has its per-stage lrs in ``stage_lrs`` and per-image stage in ``stages``).
    """

    def __init__(self, synset: SyntheticSet, transform: Any = None) -> None:
        self.images = synset.images.detach()
        self.soft = synset.soft
        self.label_kind = synset.label_kind
        self.targets = synset.labels.detach().float() if self.soft else synset.hard_labels.detach().long()
        self.lr = None if synset.lr is None else float(synset.lr)
        self.stages = None if synset.stages is None else synset.stages.detach()
        self.stage_lrs = None if synset.stage_lrs is None else list(synset.stage_lrs)
        self.classes = synset.class_names
        self.num_classes = synset.num_classes
        self.mean = synset.metadata.get("mean")
        self.std = synset.metadata.get("std")
        self.metadata = dict(synset.metadata)
        self.transform = transform

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.images[index]
        if self.transform is not None:
            x = self.transform(x)
        return x, self.targets[index]
