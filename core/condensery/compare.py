"""The comparison users read: synthetic minus random, with a 95 % confidence interval.

An arm's mean ± std says how much its networks vary, not how sure the *difference* is.
Network r of the synthetic arm and network r of the random arm are paired by default
(same initialisation, batch order and augmentation draws; the random arm also draws its
own real images per network), so the difference is estimated per pair and its interval is
Student's t over the paired networks. Results written before pairing existed (no
``paired`` flag) get Welch's unpaired interval instead, and say so. When several
distillation seeds are pooled (``condensery report``), the interval is a two-level
bootstrap over seeds and, within each seed, over networks, so it covers the luck of the
distillation as well as of the training.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = [
    "comparisons", "describe_comparison", "result_lines", "paired_interval", "welch_interval",
    "pooled_interval"
]

LEVEL = 0.95  #: the confidence level of every interval condensery reports


def t_quantile(q: float, df: int) -> float:
    """The ``q`` quantile of Student's t with ``df`` degrees of freedom."""
    from scipy.stats import t

    return float(t.ppf(q, df))


def paired_interval(diffs: Sequence[float], level: float = LEVEL) -> tuple[float, float, float]:
    """(mean, low, high) of the mean of paired differences: t over the pairs (two-sided)."""
    n = len(diffs)
    mean = statistics.fmean(diffs)
    if n < 2:
        return mean, math.nan, math.nan
    half = t_quantile(0.5 + level / 2, n - 1) * statistics.stdev(diffs) / math.sqrt(n)
    return mean, mean - half, mean + half


def welch_interval(a: Sequence[float], b: Sequence[float], level: float = LEVEL) -> tuple[float, float, float]:
    """(mean, low, high) of ``mean(a) - mean(b)`` for unpaired samples (Welch-Satterthwaite df)."""
    mean = statistics.fmean(a) - statistics.fmean(b)
    if len(a) < 2 or len(b) < 2:
        return mean, math.nan, math.nan
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return mean, mean, mean
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = t_quantile(0.5 + level / 2, max(df, 1.0)) * se
    return mean, mean - half, mean + half


def pooled_interval(
    seeds: Sequence[tuple[Sequence[float], Sequence[float], bool]], level: float = LEVEL,
    resamples: int = 10_000, seed: int = 0,
) -> tuple[float, float, float]:
    """(mean, low, high) of the difference pooled over distillation seeds.

    ``seeds`` holds per distillation seed ``(synthetic values, random values, paired)``. The
    point estimate is the mean over seeds of each seed's mean difference; the interval is
    the percentile interval of a two-level bootstrap: seeds drawn with replacement, then
    each drawn seed's networks (pairs together when paired, each arm on its own otherwise).
    Seeded, so the same runs always give the same interval.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    per_seed = []  # bootstrap distribution of each seed's mean difference, [S, B]
    point = []
    for syn, rnd, paired in seeds:
        s, r = np.asarray(syn, dtype=float), np.asarray(rnd, dtype=float)
        point.append(s.mean() - r.mean())
        if paired:
            idx = rng.integers(0, len(s), size=(resamples, len(s)))
            per_seed.append((s[idx] - r[idx]).mean(axis=1))
        else:
            si = rng.integers(0, len(s), size=(resamples, len(s)))
            ri = rng.integers(0, len(r), size=(resamples, len(r)))
            per_seed.append(s[si].mean(axis=1) - r[ri].mean(axis=1))
    dist = np.stack(per_seed)
    pick = rng.integers(0, len(seeds), size=(resamples, len(seeds)))
    stats = dist[pick, np.arange(resamples)[:, None]].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(stats, [tail, 100 - tail])
    return float(np.mean(point)), float(low), float(high)


def _get(r: Any, key: str, default: Any = None) -> Any:
    if isinstance(r, dict):
        return r.get(key, default)
    if key in ("evaluator", "model", "set", "mean", "std", "runs", "values"):
        return getattr(r, key)
    return r.extra.get(key, default)


def is_paired(syn: Any, rnd: Any) -> bool:
    """Both arms were trained paired, network for network (and have the same count)."""
    return bool(_get(syn, "paired")) and bool(_get(rnd, "paired")) \
        and len(_get(syn, "values") or []) == len(_get(rnd, "values") or [])


def _interval(a: Sequence[float], b: Sequence[float], paired: bool) -> tuple[tuple[float, float, float], str]:
    if paired:
        return paired_interval([x - y for x, y in zip(a, b)]), f"t over {len(a)} paired networks"
    return welch_interval(a, b), f"Welch t over {len(a)} + {len(b)} unpaired networks"


def compare(syn: Any, rnd: Any) -> dict[str, Any]:
    """The comparison of one (evaluator, model) pair of arms (Result objects or their JSON)."""
    a, b = list(_get(syn, "values") or [_get(syn, "mean")]), list(_get(rnd, "values") or [_get(rnd, "mean")])
    paired = is_paired(syn, rnd)
    (diff, low, high), how = _interval(a, b, paired)
    out: dict[str, Any] = {
        "evaluator": _get(syn, "evaluator"), "model": _get(syn, "model"),
        "synthetic": statistics.fmean(a), "random": statistics.fmean(b),
        "difference": diff, "ci95": None if math.isnan(low) else [low, high],
        "interval": how if not math.isnan(low) else "one network per arm: no interval",
        "networks": len(a), "paired": paired,
        "includes_zero": None if math.isnan(low) else bool(low <= 0 <= high),
    }
    if _get(syn, "arm") is not None:
        out["arm"] = _get(syn, "arm")
    if _get(rnd, "random_draws") is not None:  # "one": the interval misses the luck of the draw
        out["random_draws"] = _get(rnd, "random_draws")
    for arm, r in (("synthetic", syn), ("random", rnd)):
        if _get(r, "lr") is not None:
            out[f"lr_{arm}"] = _get(r, "lr")
            out[f"lr_{arm}_source"] = _get(r, "lr_source", "fixed")
    va, vb = _get(syn, "val_values"), _get(rnd, "val_values")
    if va and vb:
        (vd, vlow, vhigh), _ = _interval(va, vb, paired and len(va) == len(vb))
        out["val_difference"] = vd
        out["val_ci95"] = None if math.isnan(vlow) else [vlow, vhigh]
    return out


def comparisons(results: Iterable[Any]) -> list[dict[str, Any]]:
    """Synthetic minus random accuracy for every (evaluator, model, arm) that has both arms,
    in order. Results that state another ``metric`` (e.g. a diversity score) are not accuracies
    and are left out."""
    groups: dict[tuple, dict[str, Any]] = {}
    for r in results:
        if _get(r, "metric") not in (None, "accuracy"):
            continue
        key = (_get(r, "evaluator"), _get(r, "model"), _get(r, "arm"))
        groups.setdefault(key, {})[_get(r, "set") or "synthetic"] = r
    return [compare(g["synthetic"], g["random"]) for g in groups.values() if "synthetic" in g and "random" in g]


def describe_comparison(c: dict[str, Any]) -> str:
    """``+12.30 points [9.10, 15.50]`` (or without the interval), for status lines and tables."""
    text = f"{100 * c['difference']:+.2f}"
    if c.get("ci95"):
        low, high = c["ci95"]
        text += f" [{100 * low:+.2f}, {100 * high:+.2f}]"
        if c.get("includes_zero"):
            text += " (includes 0)"
    return text


def result_lines(results: Iterable[Any], compared: Iterable[dict[str, Any]]) -> list[str]:
    """The status lines of a finished evaluation: each arm's mean ± std, then each paired
    difference with its interval (what ``run`` and ``eval`` print)."""
    lines = [f"  {_get(r, 'evaluator'):<12} {_get(r, 'model'):<10} {_get(r, 'set'):<9} "
             f"{100 * _get(r, 'mean'):6.2f} ± {100 * (_get(r, 'std') or 0.0):.2f} % ({_get(r, 'runs')} runs)"
             for r in results]
    for c in compared:
        arm = f" ({c['arm']})" if c.get("arm") not in (None, "method") else ""
        lines.append(f"  {c['evaluator'] + arm:<12} {c['model']:<10} synthetic − random {describe_comparison(c)} points, "
                     f"95 % CI ({c['interval']})")
    return lines
