"""Confidence intervals attached to an evaluate report (``metrics/{base,eval}.json``).

* input: the report the evaluate stage builds (dataset -> setting -> metric) and the same run's
  per-query table (:data:`hybrid_retrieval.evaluation.PER_QUERY`);
* output: a copy of the report with ``metrics[dataset][setting]["ci"][metric] = {low, high}``
  for every headline metric (:data:`hybrid_retrieval.headline.HEADLINE`) and a top-level
  ``bootstrap`` block saying how the intervals were drawn.

Every interval comes from :func:`hybrid_retrieval.bootstrap.bootstrap_ci` (resampling parallel
question groups, macro average over strata), never from a second implementation.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pyarrow as pa

from .bootstrap import bootstrap_ci
from .errors import PipelineError
from .evaluation import KNOWN_DATASETS
from .headline import HEADLINE, BootstrapSettings, PerQueryColumns


def _round(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 6)


def attach_confidence_intervals(metrics: dict[str, Any], per_query: pa.Table,
                                settings: BootstrapSettings) -> dict[str, Any]:
    """A copy of an evaluate report with a bootstrap interval for every headline metric.

    ``metrics`` maps dataset -> setting -> metric (as the evaluate stage builds it; other
    top-level keys such as ``run`` are kept as they are); ``per_query`` is the same run's
    ``PER_QUERY`` table. Each interval is a seeded percentile bootstrap over parallel question
    groups (``group_id``), macro-averaged over ``stratum`` exactly as the metric is. Adds
    ``metrics[dataset][setting]["ci"][metric] = {"low": .., "high": ..}`` and a top-level
    ``bootstrap`` block (resamples, seed, confidence, groups per dataset).

    Raises :class:`PipelineError` when a bootstrap point estimate disagrees with the reported
    metric (per-query file and metrics from different runs).
    """
    out = json.loads(json.dumps(metrics))        # deep copy, JSON types only
    columns = PerQueryColumns(per_query)
    groups_per_dataset: dict[str, int] = {}
    for dataset, by_setting in out.items():
        if dataset not in KNOWN_DATASETS:
            continue
        for headline in HEADLINE:
            reported = by_setting.get(headline.setting, {}).get(headline.metric)
            if reported is None:
                continue
            values, groups, strata = columns.select(dataset, headline)
            if not np.isfinite(values).any():
                raise PipelineError(f"per-query table has no {dataset}/{headline.setting} "
                                    f"'{headline.column}' values for the reported "
                                    f"{headline.metric} {reported}")
            ci = bootstrap_ci(values, groups, strata, resamples=settings.resamples,
                              seed=settings.seed, confidence=settings.confidence)
            tolerance = 1e-6 * max(1.0, abs(reported))
            if abs(ci.estimate - reported) > tolerance:
                raise PipelineError(
                    f"{dataset} {headline.setting} {headline.metric}: the per-query values "
                    f"average to {ci.estimate:.6f} but the report says {reported}; the "
                    f"per-query table and the metrics come from different runs")
            by_setting[headline.setting].setdefault("ci", {})[headline.metric] = {
                "low": _round(ci.low), "high": _round(ci.high)}
            groups_per_dataset[dataset] = max(groups_per_dataset.get(dataset, 0), ci.groups)
    out["bootstrap"] = {"resamples": settings.resamples, "seed": settings.seed,
                        "confidence": settings.confidence, "unit": "group_id",
                        "groups": groups_per_dataset}
    return out
