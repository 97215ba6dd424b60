"""The headline metrics of an evaluate report and the per-query columns they average.

One definition, :data:`HEADLINE`, says which column of the evaluate stage's per-query Parquet
(:data:`hybrid_retrieval.evaluation.PER_QUERY`) averages, macro over ``stratum``, to which metric
of ``metrics/eval.json`` (``metrics[dataset][setting][metric]``). Both users of the bootstrap
read it: :mod:`hybrid_retrieval.report_intervals` (an interval per metric of one run) and
:mod:`hybrid_retrieval.paired_comparison` (the difference of two runs).

* input: a ``PER_QUERY`` table; :class:`PerQueryColumns` extracts the columns the bootstrap needs
  once and selects one dataset's rows of one headline metric as numpy arrays;
* :class:`BootstrapSettings`: the resamples, seed and confidence level every interval uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from .errors import PipelineError
from .evaluation import MULTI_MAP_K, MULTI_RECALL_K, PAIR_RECALL_K

#: The ``setting`` values of PER_QUERY and the setting keys of an evaluate report, in order.
SETTINGS = ("mono", "cross", "multi")


@dataclass(frozen=True)
class Headline:
    """A summary metric of ``metrics/eval.json`` and the per-query column it averages."""

    setting: str   # mono | cross | multi (the ``setting`` column of PER_QUERY)
    metric: str    # key under metrics[dataset][setting]
    column: str    # PER_QUERY column averaged (macro over ``stratum``)


#: The headline metrics (LAReQA settings; XTREME-R's mAP@20; recall; language bias).
HEADLINE: tuple[Headline, ...] = (
    Headline("mono", "map", "ap"),
    Headline("mono", f"recall@{PAIR_RECALL_K}", "recall"),
    Headline("cross", "map", "ap"),
    Headline("cross", f"recall@{PAIR_RECALL_K}", "recall"),
    Headline("multi", "map", "ap"),
    Headline("multi", f"map@{MULTI_MAP_K}", "ap_at_20"),
    Headline("multi", f"recall@{MULTI_RECALL_K}", "recall"),
    Headline("multi", "rank_distance", "rank_distance"),
)


@dataclass(frozen=True)
class BootstrapSettings:
    """Resamples, seed and confidence level of every interval (``evaluate.bootstrap_*``)."""

    resamples: int = 1000
    seed: int = 13
    confidence: float = 0.95

    def __post_init__(self) -> None:
        if self.resamples < 1:
            raise PipelineError(f"params.yaml: 'evaluate.bootstrap_samples' is "
                                f"{self.resamples}, expected >= 1")
        if not 0 < self.confidence < 1:
            raise PipelineError(f"confidence is {self.confidence}, expected a value in (0, 1)")


class PerQueryColumns:
    """The PER_QUERY columns the bootstrap needs, as numpy arrays (extracted once)."""

    def __init__(self, table: pa.Table) -> None:
        def array(name: str) -> np.ndarray:
            return table.column(name).to_numpy(zero_copy_only=False)
        self.dataset, self.setting = array("dataset"), array("setting")
        self.group_id, self.stratum = array("group_id"), array("stratum")
        self.values = {h.column: array(h.column).astype(np.float64) for h in HEADLINE}

    def select(self, dataset: str, headline: Headline
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(values, groups, strata) of one dataset's rows of one setting; nulls are NaN."""
        rows = np.flatnonzero((self.dataset == dataset) & (self.setting == headline.setting))
        return self.values[headline.column][rows], self.group_id[rows], self.stratum[rows]
