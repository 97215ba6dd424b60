"""Uncertainty and comparisons of evaluation outputs, and sweeps of DVC experiments.

Three jobs share one definition, :data:`HEADLINE` (which per-query column of the evaluate
stage's Parquet, ``PER_QUERY``, averages to which metric of ``metrics/eval.json``):

* :func:`attach_confidence_intervals` adds a 95% group-bootstrap interval to every headline
  metric of an evaluate report (``metrics[dataset][setting]["ci"][metric] = {low, high}``);
* :func:`compare_per_query` pairs two systems' per-query values (same queries) and gives the
  paired-bootstrap difference ``b - a``, its interval and p-value for each headline metric;
* :func:`collect_sweep` turns ``dvc exp show --json`` output into one record per experiment,
  dataset and setting (params + mAP and its interval), the data of the mAP-vs-mix_ratio plot.

Every interval comes from :mod:`hybrid_retrieval.bootstrap` (resampling parallel question
groups, macro average over strata), never from a second implementation.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Collection, Iterable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .bootstrap import bootstrap_ci, paired_bootstrap
from .errors import PipelineError, one_line
from .evaluation import KNOWN_DATASETS, MULTI_MAP_K, MULTI_RECALL_K, PAIR_RECALL_K, PER_QUERY

log = logging.getLogger(__name__)

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

#: Per-query rows are identified by these columns (one row per query and pool).
QUERY_KEY = ("dataset", "qid", "setting", "pool_lang")


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


class _Columns:
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
    columns = _Columns(per_query)
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


# --------------------------------------------------------------------------------------------
# Paired comparison of two evaluation outputs


@dataclass(frozen=True)
class Comparison:
    """``b - a`` for one headline metric of one dataset, paired over the same queries."""

    dataset: str
    setting: str
    metric: str
    a: float
    b: float
    difference: float
    low: float
    high: float
    p_value: float
    p_holm: float          # Holm-adjusted over all rows of the comparison
    groups: int
    queries: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


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
    cols_a, cols_b = _Columns(a_sorted), _Columns(b_sorted)
    raw: list[dict[str, Any]] = []
    for dataset in order:
        for headline in HEADLINE:
            va, groups, strata = cols_a.select(dataset, headline)
            vb, _, _ = cols_b.select(dataset, headline)
            if va.size == 0 or not np.isfinite(va).any():
                continue
            diff = paired_bootstrap(va, vb, groups, strata, resamples=settings.resamples,
                                    seed=settings.seed, confidence=settings.confidence)
            raw.append({"dataset": dataset, "setting": headline.setting,
                        "metric": headline.metric, "a": diff.a, "b": diff.b,
                        "difference": diff.difference, "low": diff.low, "high": diff.high,
                        "p_value": diff.p_value, "groups": diff.groups,
                        "queries": int(np.isfinite(va).sum())})
    adjusted = holm([r["p_value"] for r in raw]) if raw else []
    return [Comparison(p_holm=p, **r) for r, p in zip(raw, adjusted)]


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


# --------------------------------------------------------------------------------------------
# Reading an evaluation output from a file, a Git revision or a DVC experiment


def _written_by(path: str, repo: str | os.PathLike) -> str:
    """``"; stage X writes it (dvc repro X)"`` for an output of ``repo``'s dvc.yaml, else ``""``."""
    import yaml

    try:
        stages = yaml.safe_load((Path(repo) / "dvc.yaml").read_text())["stages"]
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return ""
    wanted = os.path.normpath(os.path.relpath(os.path.abspath(path), os.path.abspath(repo)))
    for name, stage in stages.items():
        for out in stage.get("do", stage).get("outs", []):
            out_path = next(iter(out)) if isinstance(out, dict) else out
            if os.path.normpath(out_path) == wanted:
                return f"; stage '{name}' writes it (dvc repro {name})"
    return ""


def read_output(ref: str, path: str, *, repo: str | os.PathLike = ".") -> bytes:
    """Bytes of ``path`` as of ``ref``: a file (when ``ref`` is an existing path), ``workspace``
    (``repo/path``), or any Git revision / DVC experiment name (via ``dvc.api.open``, which
    also reads DVC-cached outputs such as ``metrics/eval_per_query.parquet``)."""
    if os.path.isfile(ref):
        return Path(ref).read_bytes()
    if ref.endswith((".parquet", ".json")):
        # A path, not a revision: say which file is missing and which stage writes it.
        raise PipelineError(f"{ref}: file not found{_written_by(ref, repo)}")
    if ref == "workspace":
        full = Path(repo) / path
        if not full.is_file():
            raise PipelineError(f"{full}: file not found (workspace)")
        return full.read_bytes()
    import dvc.api   # imported here: dvc is slow to import and only this path needs it
    try:
        with dvc.api.open(path, repo=str(repo), rev=ref, mode="rb") as handle:
            return handle.read()
    except Exception as exc:  # noqa: BLE001 - dvc raises many types; report them as one line
        raise PipelineError(f"cannot read '{path}' at revision/experiment '{ref}' of "
                            f"{repo}: {type(exc).__name__}: {one_line(exc)} (is '{ref}' a "
                            f"file, 'workspace', a Git revision or an experiment name? Is "
                            f"the output in the DVC cache?)") from None


def read_per_query(ref: str, path: str = "metrics/eval_per_query.parquet", *,
                   repo: str | os.PathLike = ".") -> pa.Table:
    """The ``PER_QUERY`` table of ``ref`` (see :func:`read_output`), schema-checked."""
    from .io import conform
    data = read_output(ref, path, repo=repo)
    try:
        table = pq.read_table(io.BytesIO(data))
    except (pa.ArrowInvalid, OSError) as exc:
        raise PipelineError(f"{ref}:{path}: not a readable Parquet file "
                            f"({one_line(exc)})") from None
    return conform(table, PER_QUERY, what=f"{ref}:{path}")


# --------------------------------------------------------------------------------------------
# Sweeps: dvc exp show --json -> one record per experiment, dataset and setting

#: Params recorded per experiment (dotted paths into params.yaml); missing ones become null.
SWEEP_PARAMS = ("mix_ratio", "domain_ratio", "seed", "train.steps", "evaluate.max_groups",
                "evaluate.datasets")


@dataclass(frozen=True)
class ExperimentResult:
    """One finished experiment (or commit) of ``dvc exp show``: its params and eval report."""

    name: str
    rev: str
    baseline: str         # the commit it was run on (its own rev for a commit)
    is_commit: bool
    params: dict[str, Any]
    metrics: dict[str, Any]


def _dig(tree: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return None
        tree = tree[part]
    return tree


def _nodes(exp_show: Any) -> Iterable[tuple[dict[str, Any], str, bool]]:
    """(node, baseline rev, is_commit) for every commit and experiment of the JSON.

    DVC 3 layout: a list of commits ``{rev, name, data, error, experiments}``, where
    ``experiments`` is a list of ``{revs: [ {rev, name, data, error, ...} ], name, executor}``.
    """
    if not isinstance(exp_show, list):
        raise PipelineError(f"dvc exp show --json: expected a list of commits, got "
                            f"{type(exp_show).__name__}")
    for commit in exp_show:
        base = commit.get("rev", "")
        yield commit, base, True
        for exp in commit.get("experiments") or []:
            for node in exp.get("revs") or []:
                yield node, base, False


def collect_experiments(exp_show: Any, *, metrics_file: str = "metrics/eval.json",
                        params_file: str = "params.yaml",
                        include_workspace: bool = False) -> list[ExperimentResult]:
    """Finished experiments (and commits) of ``dvc exp show --json`` that have ``metrics_file``.

    Queued, running and failed experiments (no data, an error, or no metrics yet) are left
    out with a log line. The workspace row is left out unless ``include_workspace``.
    """
    results: list[ExperimentResult] = []
    for node, base, is_commit in _nodes(exp_show):
        rev = node.get("rev", "")
        name = node.get("name") or (rev if rev == "workspace" else rev[:7])
        if rev == "workspace" and not include_workspace:
            continue
        data = node.get("data") or {}
        if node.get("error") or data.get("error"):
            log.info("sweep: skipping %s (error: %s)", name, node.get("error") or data["error"])
            continue
        metrics = (_dig(data, "metrics") or {}).get(metrics_file, {}).get("data")
        if not metrics:
            log.info("sweep: skipping %s (no %s: queued, running or failed)", name,
                     metrics_file)
            continue
        params_tree = (_dig(data, "params") or {}).get(params_file, {}).get("data") or {}
        params = {p: _dig(params_tree, p) for p in SWEEP_PARAMS}
        results.append(ExperimentResult(name=name, rev=rev, baseline=base,
                                        is_commit=is_commit, params=params, metrics=metrics))
    return results


def sweep_records(experiments: Sequence[ExperimentResult]) -> list[dict[str, Any]]:
    """Flat records (one per experiment, dataset, setting) for ``metrics/sweep.json``.

    Each record has the experiment's params (``mix_ratio``, ``domain_ratio``, ``train_steps``,
    ...), ``dataset``, ``setting``, ``map``, ``map_low``, ``map_high`` (null where the report
    has no interval) and ``key`` = ``dataset/setting``. Records are sorted by dataset,
    setting, domain_ratio and mix_ratio, so ``dvc plots`` draws lines in mix_ratio order.
    """
    records = []
    for exp in experiments:
        for dataset in KNOWN_DATASETS:
            by_setting = exp.metrics.get(dataset)
            if not isinstance(by_setting, dict):
                continue
            for setting in SETTINGS:
                values = by_setting.get(setting) or {}
                ci = (values.get("ci") or {}).get("map") or {}
                records.append({
                    "experiment": exp.name, "rev": exp.rev[:12], "is_commit": exp.is_commit,
                    "mix_ratio": exp.params.get("mix_ratio"),
                    "domain_ratio": exp.params.get("domain_ratio"),
                    "seed": exp.params.get("seed"),
                    "train_steps": exp.params.get("train.steps"),
                    "max_groups": exp.params.get("evaluate.max_groups"),
                    "dataset": dataset, "setting": setting, "key": f"{dataset}/{setting}",
                    "map": values.get("map"), "map_low": ci.get("low"),
                    "map_high": ci.get("high"),
                    "n_queries": values.get("n_queries")})

    def order(r: dict[str, Any]) -> tuple:
        num = lambda v: (v is None, v if isinstance(v, (int, float)) else 0)  # noqa: E731
        return (KNOWN_DATASETS.index(r["dataset"]), SETTINGS.index(r["setting"]),
                num(r["domain_ratio"]), num(r["train_steps"]), num(r["max_groups"]),
                num(r["mix_ratio"]), r["experiment"])
    return sorted(records, key=order)


def check_comparable(records: Sequence[dict[str, Any]]) -> list[str]:
    """Warnings for a sweep whose points differ in more than the swept params.

    Points evaluated on different subsets (``max_groups``) or trained for different step
    counts do not belong on one line; the plot keeps them apart, but say so.
    """
    warnings = []
    for field in ("train_steps", "max_groups", "seed"):
        seen = sorted({str(r[field]) for r in records})
        if len(seen) > 1:
            warnings.append(f"experiments differ in {field} ({', '.join(seen)}): their points "
                            f"are not comparable with each other")
    return warnings
