"""(a) Substitution outside the standard setting: the set mixed with real data, and trained far longer."""

from __future__ import annotations

from typing import Any

import torch

from .sampling import row, summary


class Substitution:
    """Substitution outside the standard setting: a part of ``Analysis``."""

    def substitution(self) -> dict[str, Any]:
        d, b = self.ctx.data, self.base()
        rows = [row("standard protocol", f"{self.p.epochs} epochs", b["set"], b["random"], len(self.syn)),
                row("standard protocol, a fresh random draw per seed", f"{self.p.epochs} epochs", b["set"],
                    self.fresh_draw_accs(), len(self.syn))]
        smallest = min(d.class_count(c) - n for c, n in enumerate(self.counts))
        for m in self.o.mix:
            m = min(m, smallest)
            if m < 1:
                continue
            midx, ridx = self.real_subset(self.counts, ("mix", m), extra=m)
            mx, my = d.train_x[midx], d.train_y[midx]
            real_only, _ = self.trained_accs(mx, my, f"mix-{m}-alone")
            with_set, _ = self.trained_accs(torch.cat([mx, self.syn.images]),
                                            torch.cat([self.labels_like_set(my), self.syn.labels]), f"mix-{m}-set")
            with_real, _ = self.trained_accs(torch.cat([mx, d.train_x[ridx]]),
                                             torch.cat([my, d.train_y[ridx]]), f"mix-{m}-random")
            r = row(f"mixed with {m} real / class", f"{self.p.epochs} epochs", with_set, with_real, len(self.syn))
            r["real_alone"] = summary(real_only)
            rows.append(r)
        long_epochs = max(1, round(self.p.epochs * self.o.long_factor))
        s_long, _ = self.trained_accs(self.syn.images, self.syn.labels, "long-set", epochs=long_epochs, lr=self.p.set_lr)
        r_long, _ = self.trained_accs(*self.run_random_subset(), "long-random", epochs=long_epochs)
        rows.append(row(f"long training (x{self.o.long_factor:g})", f"{long_epochs} epochs", s_long, r_long, len(self.syn)))
        return {"rows": rows}
