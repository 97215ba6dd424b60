"""Sweeps of DVC experiments: ``dvc exp show --json`` -> one record per experiment and setting.

* input: the parsed output of ``dvc exp show --json`` (DVC 3 layout: commits with their
  experiments, each with params and metrics);
* output: the finished experiments (and commits) that have ``metrics/eval.json``
  (:func:`collect_experiments`), flattened into one record per experiment, dataset and setting
  with its params, mAP and the mAP's interval (:func:`sweep_records`: ``metrics/sweep.json``,
  the data of the mAP-vs-mix_ratio plot), and warnings for points that differ in more than the
  swept params (:func:`check_comparable`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from .errors import PipelineError
from .evaluation import KNOWN_DATASETS
from .headline import SETTINGS

log = logging.getLogger(__name__)

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
