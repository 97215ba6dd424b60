"""Experiment arms run with several training seeds: their config, files, language sets and
paired comparisons.

An arms file (``experiments/research_question.yaml``, ``experiments/parallel_supervision.yaml``)
names ``seeds``, the ``dataset`` of the headline score, the arm whose language labels define the
groups (``groups_from``), the ``arms`` (an untrained arm lists committed per-query ``files``; a
trained arm lists the ``params`` overrides of its ``dvc exp run``) and, optionally,
``comparisons`` (``{a: <arm>, b: <arm>, label: ...}``: B - A). Collected runs live in
``<arms dir>/<arm>/s<seed>_per_query.parquet`` and ``s<seed>_train_languages.json``.

:func:`compare_arms` gives, for every comparison and every language set (:func:`language_sets`:
the low-resource languages, each group of them, every language, each group of all), the paired
bootstrap of the two arms' seed-averaged per-query metrics (question uncertainty) and, per seed
both arms ran, that seed's own point difference with a t-interval over them (training-seed
uncertainty, :func:`~hybrid_retrieval.seed_arms.seed_interval`).
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

import pyarrow as pa
import yaml

from .errors import PipelineError
from .headline import BootstrapSettings
from .io import read_json
from .language_groups import group_members, groups_from_supervision
from .paired_comparison import compare_per_query, languages_by_dataset, restrict_languages
from .revision_outputs import read_per_query
from .seed_arms import average_per_query, seed_interval

log = logging.getLogger(__name__)

#: The language set of every language (no restriction) in :func:`language_sets`.
ALL_LANGUAGES = "all languages"


def load_config(path: str | Path) -> dict[str, Any]:
    """The arms file; every trained arm (one with ``params``) needs ``seeds``."""
    try:
        config = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PipelineError(f"{path}: arms file not found") from None
    if not isinstance(config, dict) or not isinstance(config.get("arms"), dict):
        raise PipelineError(f"{path}: expected a mapping with 'arms'")
    for i, comparison in enumerate(config.get("comparisons") or []):
        missing = [k for k in ("a", "b") if comparison.get(k) not in config["arms"]]
        if missing:
            raise PipelineError(f"{path}: comparisons[{i}] field(s) {missing} must name an arm "
                                f"of 'arms' ({', '.join(config['arms'])})")
    return config


def trained_arms(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The arms that are trained (``params``), in file order."""
    return {name: arm for name, arm in config["arms"].items() if "params" in arm}


def with_overrides(params: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``params`` with ``-S`` overrides (dotted key -> value) applied, as ``dvc exp
    run`` would; a key that ``params`` lacks raises :class:`PipelineError` naming it."""
    result = copy.deepcopy(dict(params))
    for key, value in overrides.items():
        *parents, leaf = key.split(".")
        node: Any = result
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or leaf not in node:
            raise PipelineError(f"override {key!r} names no key of the params file")
        node[leaf] = value
    return result


def matches_params(overrides: Mapping[str, Any], params: Mapping[str, Any]) -> bool:
    """Whether every ``-S`` override equals ``params``' value (0 == 0.0): an arm whose
    overrides match ``params.yaml`` is what the workspace runs."""
    try:
        return with_overrides(params, overrides) == params
    except PipelineError:
        return False


def experiment_name(arm: str, seed: int) -> str:
    return f"rq-{arm}-s{seed}"


def arm_files(name: str, config: Mapping[str, Any], root: Path) -> dict[int, str]:
    """Seed -> per-query file of one arm, for the files that exist (an untrained arm's
    committed files are keyed 0, 1, ...)."""
    spec = config["arms"][name]
    if "files" in spec:
        return {i: f for i, f in enumerate(spec["files"]) if Path(f).is_file()}
    return {seed: str(p) for seed in config["seeds"]
            if (p := root / name / f"s{seed}_per_query.parquet").is_file()}


def arm_groups(config: Mapping[str, Any], root: Path, languages: Sequence[str]
               ) -> dict[str, str]:
    """Each of ``languages`` -> what trained it in the ``groups_from`` arm (from its collected
    ``s<seed>_train_languages.json``, written from the shard manifests)."""
    arm = config["groups_from"]
    labels = sorted((root / arm).glob("s*_train_languages.json"))
    if not labels:
        raise PipelineError(f"{root / arm}/s*_train_languages.json: none found; run the arm "
                            f"'{arm}' and 'python scripts/run_arms.py collect' first")
    return groups_from_supervision(languages, read_json(labels[0])["supervision"])


def language_sets(low_resource: Sequence[str], groups: Mapping[str, str]
                  ) -> dict[str, list[str]]:
    """Named sets of languages: the low-resource ones present in ``groups``, each group of
    them, then each group of all ``groups`` (``"all, <label>"``)."""
    low = [lang for lang in low_resource if lang in groups]
    sets = {"low-resource (all)": low}
    for label, members in group_members({k: v for k, v in groups.items() if k in low}).items():
        sets[f"low-resource, {label}"] = members
    for label, members in group_members(groups).items():
        sets[f"all, {label}"] = members
    return sets


def set_slug(name: str) -> str:
    """A language-set name in a file name: ``low-resource, none`` -> ``low-resource-none``."""
    words = name.replace("(all)", "").replace(",", " ").split()
    return "-".join(words) or "all"


def comparison_name(a: str, b: str, set_name: str) -> str:
    """The record (and file stem) of comparison B - A on one language set."""
    return f"{b}-vs-{a}-{set_slug(set_name)}"


def runs_label(config: Mapping[str, Any], arm: str, seeds: int) -> str:
    """``untrained`` for an arm of committed files, else ``<n> seed(s)``."""
    if "files" in config["arms"][arm]:
        return "untrained"
    return f"{seeds} seed{'s' * (seeds != 1)}"


def _differences(a: pa.Table, b: pa.Table, settings: BootstrapSettings,
                 languages: Sequence[str] | None, names: tuple[str, str]) -> list[dict[str, Any]]:
    return [r.as_dict() for r in compare_per_query(a, b, settings, names=names,
                                                   languages=languages)]


def _point(seed_rows: Sequence[dict[str, Any]], row: Mapping[str, Any]) -> float | None:
    """The difference of ``row``'s dataset, setting and metric in one seed's rows."""
    for other in seed_rows:
        if all(other[k] == row[k] for k in ("dataset", "setting", "metric")):
            return round(other["difference"], 6)
    return None


def compare_arms(config: Mapping[str, Any], low_resource: Sequence[str], root: Path,
                 settings: BootstrapSettings, involving: Sequence[str] = ()
                 ) -> dict[str, dict[str, Any]]:
    """``"<b>-vs-<a>-<set slug>"`` -> comparison record (``compare.py --json-out`` fields plus
    ``seeds`` and, per row, ``seed_differences``) for every comparison and language set (only
    the comparisons with an arm in ``involving``, if given)."""
    comparisons = [c for c in config.get("comparisons") or []
                   if not involving or {c["a"], c["b"]} & set(involving)]
    arms = {c[k] for c in comparisons for k in ("a", "b")}
    tables = {name: {seed: read_per_query(f, repo=".") for seed, f in
                     arm_files(name, config, root).items()} for name in arms}
    records: dict[str, dict[str, Any]] = {}
    for comparison in comparisons:
        a_name, b_name = comparison["a"], comparison["b"]
        a_runs, b_runs = tables[a_name], tables[b_name]
        if not a_runs or not b_runs:  # not run yet: the other comparisons still can be
            log.warning("comparison %s - %s skipped: arm '%s' has no collected run in %s",
                        b_name, a_name, a_name if not a_runs else b_name, root)
            continue
        untrained = {k for k in (a_name, b_name) if "files" in config["arms"][k]}
        if not untrained:  # two trained arms: only the seeds both ran, paired by seed
            common = [s for s in b_runs if s in a_runs]
            a_runs = {s: a_runs[s] for s in common}
            b_runs = {s: b_runs[s] for s in common}
        if not a_runs or not b_runs:
            log.warning("comparison %s - %s skipped: no seed both arms ran", b_name, a_name)
            continue
        a_mean = average_per_query(list(a_runs.values()), [f"{a_name} s{s}" for s in a_runs])
        b_mean = average_per_query(list(b_runs.values()), [f"{b_name} s{s}" for s in b_runs])
        languages = sorted(set(a_mean.column("lang").to_pylist()))
        sets = {ALL_LANGUAGES: None,
                **language_sets(low_resource, arm_groups(config, root, languages))}
        # an untrained arm's one file pairs with every seed of the other arm
        seeds = [s for s in b_runs if s in a_runs or a_name in untrained]
        for set_name, members in sets.items():
            rows = _differences(a_mean, b_mean, settings, members, (a_name, b_name))
            point = BootstrapSettings(1, settings.seed, settings.confidence)  # point values only
            per_seed = [_differences(a_runs.get(s, next(iter(a_runs.values()))), b_runs[s],
                                     point, members, (f"{a_name} s{s}", f"{b_name} s{s}"))
                        for s in seeds]
            for row in rows:
                row["seed_differences"] = [_point(seed_rows, row) for seed_rows in per_seed]
                interval = seed_interval(row["seed_differences"], settings.confidence)
                if interval:
                    row["seed_mean"], row["seed_low"], row["seed_high"] = (
                        round(v, 6) for v in interval)
            scope = restrict_languages(a_mean, members) if members else a_mean
            records[comparison_name(a_name, b_name, set_name)] = {
                "a": a_name, "b": b_name, "label": comparison.get("label"),
                "a_seeds": sorted(a_runs), "b_seeds": sorted(b_runs), "seeds": seeds,
                "language_set": set_name, "languages": members,
                "languages_by_dataset": languages_by_dataset(scope),
                "resamples": settings.resamples, "seed": settings.seed,
                "confidence": settings.confidence, "rows": rows}
    return records
