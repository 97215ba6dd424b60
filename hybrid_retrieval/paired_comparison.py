"""Paired comparison of two evaluation runs on the same queries: ``b - a`` per headline metric.

* input: two per-query tables (:data:`hybrid_retrieval.evaluation.PER_QUERY`, e.g. read with
  :func:`hybrid_retrieval.revision_outputs.read_per_query`) of the same evaluation queries,
  optionally restricted to one language group (:func:`restrict_languages`);
* output: one :class:`Comparison` per dataset and headline metric
  (:data:`hybrid_retrieval.headline.HEADLINE`): the paired-bootstrap difference, its interval,
  its two-sided p-value and the Holm-adjusted p over all rows (:func:`compare_per_query`), and
  their Markdown table (:func:`format_comparison`), as ``scripts/compare.py`` prints it.

The difference comes from :func:`hybrid_retrieval.bootstrap.paired_bootstrap` (the same
resampled parallel question groups for both runs).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Collection, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .bootstrap import PairedDifference, paired_bootstrap
from .errors import PipelineError
from .evaluation import KNOWN_DATASETS
from .headline import HEADLINE, BootstrapSettings, PerQueryColumns

#: Per-query rows are identified by these columns (one row per query and pool).
QUERY_KEY = ("dataset", "qid", "setting", "pool_lang")


@dataclass(frozen=True)
class Comparison(PairedDifference):
    """The paired difference ``b - a`` of one headline metric of one dataset, with the Holm
    p-value over all rows of its comparison and the number of queries it pairs."""

    dataset: str
    setting: str
    metric: str
    p_holm: float          # Holm-adjusted over all rows of the comparison
    queries: int

    #: The keys of :meth:`as_dict`, in order: a row of ``compare.py --json-out`` (resamples and
    #: confidence are the same for every row and stored once, beside the rows).
    ROW = ("dataset", "setting", "metric", "a", "b", "difference", "low", "high", "p_value",
           "p_holm", "groups", "queries")

    def as_dict(self) -> dict[str, Any]:
        values = asdict(self)
        return {key: values[key] for key in self.ROW}


def align_per_query(a: pa.Table, b: pa.Table, *, names: tuple[str, str] = ("a", "b")
                    ) -> tuple[pa.Table, pa.Table]:
    """``a`` and ``b`` sorted by :data:`QUERY_KEY`, so that row i of each is the same query.

    Raises :class:`PipelineError` unless both tables hold exactly the same (query, pool) rows
    with the same group and stratum: a paired comparison needs the same evaluation queries
    (same datasets, same ``evaluate.max_groups`` subset).
    """
    order = [(k, "ascending") for k in QUERY_KEY]
    a_sorted, b_sorted = a.sort_by(order), b.sort_by(order)
    same = a_sorted.num_rows == b_sorted.num_rows and all(
        a_sorted.column(k).equals(b_sorted.column(k)) for k in QUERY_KEY)
    if not same:
        def keys(table: pa.Table) -> set[tuple]:
            return set(zip(*(table.column(k).to_pylist() for k in QUERY_KEY)))
        a_keys, b_keys = keys(a_sorted), keys(b_sorted)
        only_a, only_b = a_keys - b_keys, b_keys - a_keys
        example = min(only_a or only_b) if (only_a or only_b) else "duplicated rows"
        raise PipelineError(
            f"{names[0]} has {a_sorted.num_rows} per-query rows and {names[1]} has "
            f"{b_sorted.num_rows}; {len(only_a)} only in {names[0]}, {len(only_b)} only in "
            f"{names[1]} (e.g. {example}): a paired comparison needs the same evaluation "
            f"queries (same evaluate.datasets and evaluate.max_groups)")
    for column in ("group_id", "stratum"):
        if not a_sorted.column(column).equals(b_sorted.column(column)):
            raise PipelineError(f"{names[0]} and {names[1]} disagree on '{column}' for the same "
                                f"queries: they come from different evaluation data")
    return a_sorted, b_sorted


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1)."""
    p = np.asarray(p_values, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    adjusted = np.empty_like(p)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[index]))
        adjusted[index] = running
    return adjusted.tolist()


def restrict_languages(per_query: pa.Table, languages: Collection[str]) -> pa.Table:
    """The rows of a ``PER_QUERY`` table inside one language group.

    mono and cross rows are kept when both the query language and the pool language are in
    ``languages`` (a cross pair that mixes groups belongs to neither); multi rows when the
    query language is (their pool is every language). Macro averages are then over the
    languages / ordered pairs of the group only.
    """
    wanted = pa.array(sorted(set(languages)), pa.string())
    in_query = pc.is_in(per_query.column("lang"), value_set=wanted)
    in_pool = pc.or_(pc.equal(per_query.column("setting"), "multi"),
                     pc.is_in(per_query.column("pool_lang"), value_set=wanted))
    return per_query.filter(pc.and_(in_query, in_pool))


def languages_by_dataset(per_query: pa.Table) -> dict[str, list[str]]:
    """The query languages each dataset of a ``PER_QUERY`` table has."""
    grouped = per_query.group_by("dataset").aggregate([("lang", "distinct")]).to_pylist()
    return {row["dataset"]: sorted(row["lang_distinct"]) for row in grouped}


def compare_per_query(a: pa.Table, b: pa.Table, settings: BootstrapSettings, *,
                      names: tuple[str, str] = ("a", "b"),
                      datasets: Sequence[str] | None = None,
                      languages: Collection[str] | None = None) -> list[Comparison]:
    """Paired-bootstrap difference ``b - a`` for every headline metric, dataset and setting.

    Both tables have the ``PER_QUERY`` schema and the same queries (:func:`align_per_query`).
    The same resampled groups are used for both systems; p-values are two-sided
    (:func:`hybrid_retrieval.bootstrap.paired_bootstrap`) and also Holm-adjusted over all rows.
    ``languages`` restricts both runs to one language group (:func:`restrict_languages`).
    """
    if languages:
        a, b = restrict_languages(a, languages), restrict_languages(b, languages)
    a_sorted, b_sorted = align_per_query(a, b, names=names)
    present = sorted(set(a_sorted.column("dataset").to_pylist()))
    wanted = [d for d in (datasets or present) if d in present]
    if datasets and len(wanted) != len(datasets):
        missing = sorted(set(datasets) - set(present))
        raise PipelineError(f"dataset(s) {missing} not in the per-query tables (they hold "
                            f"{present})")
    order = [d for d in KNOWN_DATASETS if d in wanted] + [d for d in wanted
                                                          if d not in KNOWN_DATASETS]
    cols_a, cols_b = PerQueryColumns(a_sorted), PerQueryColumns(b_sorted)
    found: list[tuple[dict[str, Any], PairedDifference]] = []
    for dataset in order:
        for headline in HEADLINE:
            va, groups, strata = cols_a.select(dataset, headline)
            vb, _, _ = cols_b.select(dataset, headline)
            if va.size == 0 or not np.isfinite(va).any():
                continue
            diff = paired_bootstrap(va, vb, groups, strata, resamples=settings.resamples,
                                    seed=settings.seed, confidence=settings.confidence)
            found.append(({"dataset": dataset, "setting": headline.setting,
                           "metric": headline.metric, "queries": int(np.isfinite(va).sum())},
                          diff))
    adjusted = holm([diff.p_value for _, diff in found]) if found else []
    return [Comparison(**asdict(diff), **labels, p_holm=p)
            for (labels, diff), p in zip(found, adjusted)]


def _fmt(value: float, metric: str) -> str:
    return f"{value:.1f}" if metric == "rank_distance" else f"{value:.4f}"


def _fmt_diff(value: float, metric: str) -> str:
    return f"{value:+.1f}" if metric == "rank_distance" else f"{value:+.4f}"


def _fmt_p(p: float) -> str:
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def format_comparison(rows: Sequence[Comparison], names: tuple[str, str],
                      settings: BootstrapSettings) -> str:
    """A Markdown table of :func:`compare_per_query` rows, with a header naming A, B and method."""
    pct = round(settings.confidence * 100)
    lines = [
        f"A = {names[0]}",
        f"B = {names[1]}",
        f"B - A, paired group bootstrap over parallel questions ({settings.resamples} "
        f"resamples, seed {settings.seed}); {pct}% percentile CI; two-sided p (resolution "
        f"{1 / (settings.resamples + 1):.1e}), Holm-adjusted over the {len(rows)} rows. "
        f"rank_distance: lower is less language-biased.",
        "",
        f"| dataset | setting | metric | A | B | B - A | {pct}% CI | p | p (Holm) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.dataset} | {r.setting} | {r.metric} | {_fmt(r.a, r.metric)} | "
            f"{_fmt(r.b, r.metric)} | {_fmt_diff(r.difference, r.metric)} | "
            f"[{_fmt_diff(r.low, r.metric)}, {_fmt_diff(r.high, r.metric)}] | "
            f"{_fmt_p(r.p_value)} | {_fmt_p(r.p_holm)} |")
    return "\n".join(lines) + "\n"
