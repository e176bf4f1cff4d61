"""(c) Per-image information: the accuracy drop when each image is left out, and its nearest real images."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from condensery.models import embed, embed_batched

from .sampling import std


class PerImage:
    """Per-image information: a part of ``Analysis``."""

    def chosen_images(self) -> list[int]:
        """Up to ``max_images`` indices, round-robin over classes (first images of each class first)."""
        labels = self.syn.hard_labels.cpu()
        per = [(labels == c).nonzero().flatten().tolist() for c in range(self.k)]
        order = []
        for rank in range(max(map(len, per), default=0)):
            order += [lst[rank] for lst in per if rank < len(lst)]
        return order[: self.o.max_images]

    def per_image(self) -> dict[str, Any]:
        b = self.base()
        full = sum(b["set"]) / len(b["set"])
        if self.real_model is None:
            self.real_run()
        n = len(self.syn)
        rows = []
        d = self.ctx.data
        with torch.no_grad():  # centred features: ReLU features share a large common component
            real = embed_batched(self.real_model.eval(), d.train_x).float()
            centre = real.mean(0, keepdim=True)
            feats_real = F.normalize(real - centre, dim=1)
            feats_syn = F.normalize(embed(self.real_model, self.syn.images).float() - centre, dim=1)
            self.real_model.train()
        sims = feats_syn @ feats_real.T
        top = sims.topk(min(self.o.neighbors, len(d.train_x)), dim=1)
        labels = self.syn.hard_labels
        for i in self.ctx.progress(self.chosen_images(), desc="leave one out"):
            keep = torch.arange(n, device=self.syn.images.device) != i
            accs, _ = self.trained_accs(self.syn.images[keep], self.syn.labels[keep], "set", lr=self.p.set_lr)
            drops = [a - x for a, x in zip(b["set"], accs)]  # paired: same seeds as the full-set runs
            nb = top.indices[i].tolist()
            rows.append({
                "index": i, "label": int(labels[i]), "drop": sum(drops) / len(drops), "drop_std": std(drops),
                "neighbors": nb, "neighbor_labels": d.train_y[nb].tolist(),
                "neighbor_similarity": [round(v, 4) for v in top.values[i].tolist()],
            })
        return {"full_accuracy": full, "images": rows,
                "neighbor_space": "penultimate features of the real-data network, centred on the real mean"}
