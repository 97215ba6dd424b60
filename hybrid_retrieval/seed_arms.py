"""Metrics of an experiment arm trained with several seeds, per language and per language group.

An *arm* is one recipe (params) run with several training seeds; each seed's evaluation wrote a
per-query table (:data:`hybrid_retrieval.evaluation.PER_QUERY`). For one dataset, setting and
metric column (e.g. XQuAD-R, ``multi``, ``ap_at_20``: the XTREME-R score, LAReQA mAP@20 of the
multilingual pool as XTREME-R computes it: AP@20 per question, mean per language, mean over
languages), :func:`arm_scores` gives per language and per group of languages:

* ``estimate``: the metric of the seed-averaged per-query values (the same questions in every
  seed, so averaging per question first is the same as averaging the seeds' metrics);
* ``low`` / ``high``: a 95% group-bootstrap interval of that seed-averaged metric (questions
  resampled by parallel group, :func:`bootstrap.bootstrap_ci`): question uncertainty;
* ``seed_mean`` / ``seed_sd`` / ``seeds``: the metric of each seed separately, its mean and
  sample standard deviation (0 for one seed): training-seed uncertainty.

A group's metric is the macro mean over its languages (each language one stratum).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.stats import t as student_t

from .bootstrap import bootstrap_ci
from .errors import PipelineError
from .headline import HEADLINE, BootstrapSettings, PerQueryColumns
from .paired_comparison import align_per_query, restrict_languages


@dataclass(frozen=True)
class ArmScore:
    """One arm's metric on one set of languages (see the module docstring)."""

    estimate: float
    low: float
    high: float
    seed_mean: float
    seed_sd: float
    seeds: int
    queries: int

    def as_dict(self) -> dict[str, float | int]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def seed_matrix(per_seed: Sequence[pa.Table], dataset: str, setting: str, column: str
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(values (seeds, queries), group ids, languages)`` of one dataset and setting, queries
    in the first seed's order; every seed must hold the same queries (else an error naming the
    seed)."""
    first_keys = None
    rows = []
    for i, table in enumerate(per_seed):
        mask = pc.and_(pc.equal(table.column("dataset"), dataset),
                       pc.equal(table.column("setting"), setting))
        part = table.filter(mask)
        keys = part.column("qid").to_pylist()
        if first_keys is None:
            first_keys = keys
            order = np.arange(len(keys))
            groups = np.array(part.column("group_id").to_pylist(), dtype=object)
            langs = np.array(part.column("lang").to_pylist(), dtype=object)
        else:
            position = {k: j for j, k in enumerate(keys)}
            if set(position) != set(first_keys):
                raise PipelineError(f"seed {i} of the arm has other {dataset} {setting} queries "
                                    f"than seed 0 ({len(keys)} vs {len(first_keys)}), expected "
                                    f"the same evaluation set for every seed")
            order = np.array([position[k] for k in first_keys])
        values = part.column(column).to_numpy(zero_copy_only=False).astype(np.float64)
        rows.append(values[order])
    if first_keys is None:
        raise PipelineError("an arm needs at least one seed's per-query table")
    return np.stack(rows), groups, langs


def arm_scores(per_seed: Sequence[pa.Table], dataset: str, languages: Mapping[str, Sequence[str]],
               settings: BootstrapSettings, *, setting: str = "multi",
               column: str = "ap_at_20") -> dict[str, ArmScore]:
    """``languages``: row name -> its languages (one language, or a group); the arm's
    :class:`ArmScore` per row. Rows whose languages the dataset lacks are left out."""
    values, groups, langs = seed_matrix(per_seed, dataset, setting, column)
    averaged = np.nanmean(values, axis=0) if len(values) > 1 else values[0]
    scores = {}
    for name, members in languages.items():
        rows = np.flatnonzero(np.isin(langs, list(members)))
        if not len(rows):
            continue
        ci = bootstrap_ci(averaged[rows], groups[rows], langs[rows], resamples=settings.resamples,
                          seed=settings.seed, confidence=settings.confidence)
        per_seed_metric = [float(np.nanmean([np.nanmean(seed[rows][langs[rows] == lang])
                                             for lang in dict.fromkeys(langs[rows])]))
                           for seed in values]
        scores[name] = ArmScore(ci.estimate, ci.low, ci.high, float(np.mean(per_seed_metric)),
                                float(np.std(per_seed_metric, ddof=1)) if len(values) > 1
                                else 0.0, len(values), len(rows))
    return scores


def headline_scores(per_seed: Sequence[pa.Table], dataset: str,
                    settings: BootstrapSettings, languages: Sequence[str] | None = None
                    ) -> dict[str, ArmScore]:
    """``"<setting> <metric>"`` -> :class:`ArmScore` of every headline metric
    (:data:`HEADLINE`) of one dataset, macro-averaged exactly as ``metrics/eval.json`` does
    (over languages, language pairs or query languages), optionally within ``languages``
    (:func:`paired_comparison.restrict_languages`). Headlines without values are left out."""
    if languages:
        per_seed = [restrict_languages(t, languages) for t in per_seed]
    mean = PerQueryColumns(average_per_query(per_seed))
    seeds = [PerQueryColumns(t) for t in per_seed]
    scores = {}
    for headline in HEADLINE:
        values, groups, strata = mean.select(dataset, headline)
        if not np.isfinite(values).any():
            continue
        ci = bootstrap_ci(values, groups, strata, resamples=settings.resamples,
                          seed=settings.seed, confidence=settings.confidence)
        # one resample is enough: only each seed's point estimate is kept
        per_seed_metric = [bootstrap_ci(*cols.select(dataset, headline), resamples=1).estimate
                           for cols in seeds]
        scores[f"{headline.setting} {headline.metric}"] = ArmScore(
            ci.estimate, ci.low, ci.high, float(np.mean(per_seed_metric)),
            float(np.std(per_seed_metric, ddof=1)) if len(seeds) > 1 else 0.0, len(seeds),
            int(np.isfinite(values).sum()))
    return scores


def seed_interval(differences: Sequence[float], confidence: float = 0.95
                  ) -> tuple[float, float, float] | None:
    """``(mean, low, high)``: Student-t interval of the mean of per-seed differences (each
    seed's B - A, paired by seed), the training-seed uncertainty of an effect; ``None`` for
    fewer than two seeds."""
    values = np.asarray([d for d in differences if d is not None], dtype=np.float64)
    if len(values) < 2:
        return None
    mean = float(values.mean())
    half = float(student_t.ppf(0.5 + confidence / 2, len(values) - 1)
                 * values.std(ddof=1) / np.sqrt(len(values)))
    return mean, mean - half, mean + half


def average_per_query(per_seed: Sequence[pa.Table], names: Sequence[str] | None = None
                      ) -> pa.Table:
    """One ``PER_QUERY`` table whose metric columns are the mean over the seeds' tables (the
    same queries in each, :func:`paired_comparison.align_per_query`), so that a paired
    comparison of two multi-seed arms compares their seed-averaged metrics."""
    if not per_seed:
        raise PipelineError("an arm needs at least one seed's per-query table")
    names = list(names or [f"seed {i}" for i in range(len(per_seed))])
    first = per_seed[0]
    if len(per_seed) == 1:
        return first
    aligned = [align_per_query(first, table, names=(names[0], name))
               for table, name in zip(per_seed[1:], names[1:])]
    base = aligned[0][0]
    columns = {h.column for h in HEADLINE}
    for column in sorted(columns):
        stacked = np.stack([base.column(column).to_numpy(zero_copy_only=False)
                            .astype(np.float64)] +
                           [b.column(column).to_numpy(zero_copy_only=False).astype(np.float64)
                            for _, b in aligned])
        present = np.isfinite(stacked).sum(axis=0)
        # a query without a value in any seed (e.g. rank_distance with one gold) stays null
        mean = np.where(present > 0, np.nansum(stacked, axis=0) / np.maximum(present, 1), np.nan)
        index = base.schema.get_field_index(column)
        base = base.set_column(index, base.schema.field(column),
                               pa.array(mean, type=base.schema.field(column).type,
                                        mask=np.isnan(mean)))
    return base
