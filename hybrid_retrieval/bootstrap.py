"""Bootstrap confidence intervals and paired differences over parallel question groups.

LAReQA questions come in parallel groups (one question per language sharing an id), and a
metric is a macro-average over strata (languages, or ordered language pairs) of per-query values
(AP, Recall@k, ...). Questions of one group are not independent, so we resample *groups* with
replacement (every query of a drawn group enters with the group's draw count), recompute the
macro-averaged statistic, and read the 2.5 / 97.5 percentiles (percentile bootstrap).

A paired comparison of two systems on the same queries uses the *same* resampled groups for
both, and its two-sided p-value is the share of resampled differences at least as far from the
observed difference as the observed difference is from 0 (the null distribution obtained by
shifting the bootstrap distribution to 0): ``p = (1 + #{|d* - d| >= |d|}) / (1 + resamples)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

#: Resamples processed at once: bounds memory to about chunk x queries float64 values.
RESAMPLE_CHUNK = 64


@dataclass(frozen=True)
class ConfidenceInterval:
    """A statistic with its percentile-bootstrap interval."""

    estimate: float
    low: float
    high: float
    confidence: float
    resamples: int
    groups: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


@dataclass(frozen=True)
class PairedDifference:
    """``b - a`` on the same queries, with its bootstrap interval and two-sided p-value."""

    a: float
    b: float
    difference: float
    low: float
    high: float
    p_value: float
    confidence: float
    resamples: int
    groups: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _prepare(values: np.ndarray, groups: np.ndarray, strata: np.ndarray | None):
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[None, :]
    n = values.shape[1]
    groups = np.asarray(groups)
    strata = np.zeros(n, dtype=np.int64) if strata is None else np.asarray(strata)
    if groups.shape != (n,) or strata.shape != (n,):
        raise ValueError(f"values ({n} queries), groups {groups.shape} and strata "
                         f"{strata.shape} must have one entry per query")
    _, group_index = np.unique(groups, return_inverse=True)
    _, stratum_index = np.unique(strata, return_inverse=True)
    order = np.argsort(stratum_index, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(stratum_index[order]) != 0])
    return values[:, order], group_index[order], starts


def _macro_mean(values: np.ndarray, weights: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Macro mean over strata of the weighted mean within each stratum; NaN values are skipped.

    ``values`` (systems, queries) sorted by stratum, ``weights`` (resamples, queries).
    Returns (resamples, systems). A stratum with zero total weight is left out of the macro mean.
    """
    present = ~np.isnan(values)                                   # (S, n)
    filled = np.where(present, values, 0.0)
    weighted = np.einsum("rn,sn->rsn", weights, filled)           # (R, S, n)
    mass = np.einsum("rn,sn->rsn", weights, present.astype(np.float64))
    sums = np.add.reduceat(weighted, starts, axis=2)              # (R, S, strata)
    masses = np.add.reduceat(mass, starts, axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_stratum = sums / masses
    return np.nanmean(np.where(masses > 0, per_stratum, np.nan), axis=2)


def _resampled_statistics(values: np.ndarray, group_index: np.ndarray, starts: np.ndarray,
                          resamples: int, seed: int) -> np.ndarray:
    """(resamples, systems) statistics over group-bootstrap resamples."""
    n_groups = int(group_index.max()) + 1
    rng = np.random.default_rng(seed)
    out = []
    for begin in range(0, resamples, RESAMPLE_CHUNK):
        size = min(RESAMPLE_CHUNK, resamples - begin)
        counts = rng.multinomial(n_groups, np.full(n_groups, 1.0 / n_groups), size=size)
        out.append(_macro_mean(values, counts[:, group_index].astype(np.float64), starts))
    return np.concatenate(out, axis=0)


def bootstrap_ci(values: np.ndarray, groups: np.ndarray, strata: np.ndarray | None = None, *,
                 resamples: int = 1000, seed: int = 0,
                 confidence: float = 0.95) -> ConfidenceInterval:
    """Percentile-bootstrap interval of the macro-over-strata mean of per-query ``values``.

    ``values`` (queries,) per-query metric (NaN = no golds, skipped); ``groups`` (queries,)
    the parallel-question id of each query (the resampling unit); ``strata`` (queries,) the
    language (or language pair) each query is averaged within, ``None`` for a plain mean.
    """
    vals, group_index, starts = _prepare(values, groups, strata)
    estimate = float(_macro_mean(vals, np.ones((1, vals.shape[1])), starts)[0, 0])
    stats = _resampled_statistics(vals, group_index, starts, resamples, seed)[:, 0]
    tail = (1 - confidence) / 2 * 100
    low, high = np.nanpercentile(stats, [tail, 100 - tail])
    return ConfidenceInterval(estimate, float(low), float(high), confidence, resamples,
                              int(group_index.max()) + 1)


def paired_bootstrap(values_a: np.ndarray, values_b: np.ndarray, groups: np.ndarray,
                     strata: np.ndarray | None = None, *, resamples: int = 1000, seed: int = 0,
                     confidence: float = 0.95) -> PairedDifference:
    """Difference ``b - a`` of two systems' macro means on the same queries, paired by resample.

    ``values_a``/``values_b`` are per-query metrics in the same query order; ``groups`` and
    ``strata`` as in :func:`bootstrap_ci`.
    """
    a, b = np.asarray(values_a, dtype=np.float64), np.asarray(values_b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"values_a {a.shape} and values_b {b.shape} must be the same queries")
    vals, group_index, starts = _prepare(np.stack([a, b]), groups, strata)
    point = _macro_mean(vals, np.ones((1, vals.shape[1])), starts)[0]
    stats = _resampled_statistics(vals, group_index, starts, resamples, seed)
    diffs = stats[:, 1] - stats[:, 0]
    observed = float(point[1] - point[0])
    tail = (1 - confidence) / 2 * 100
    low, high = np.nanpercentile(diffs, [tail, 100 - tail])
    extreme = int(np.sum(np.abs(diffs - observed) >= abs(observed)))
    return PairedDifference(float(point[0]), float(point[1]), observed, float(low), float(high),
                            (1 + extreme) / (1 + resamples), confidence, resamples,
                            int(group_index.max()) + 1)
