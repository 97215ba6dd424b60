"""Issue 15's outcome: our best recipe beside the hybrid-batch paper's XLM-R and LaBSE rows.

Reads the arms file's ``outcome`` section (``experiments/parallel_supervision.yaml``: the
``datasets``, the untrained ``base`` arm, the ``default`` arm and the ``candidates`` for the
best recipe) and each arm's collected per-query files (``scripts/run_arms.py collect``).
The best recipe is the candidate with the highest mean multi mAP over the datasets
(seed-averaged). Writes::

    metrics/outcome.json                      every arm: mono / cross / multi mAP, bias per dataset
    metrics/plots/outcome_per_language.png    multi mAP per language: base vs default vs best
    README.md                                 the table between the outcome markers, and the
                                              arms' paired differences (run_arms.py compare's
                                              files) between the outcome-differences markers
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Sequence

from hybrid_retrieval.arms import (ALL_LANGUAGES, arm_files, comparison_name, load_config,
                                   matches_params, runs_label)
from hybrid_retrieval.errors import PipelineError
from hybrid_retrieval.evaluation import DATASET_TITLES
from hybrid_retrieval.headline import BootstrapSettings
from hybrid_retrieval.io import read_json, write_json
from hybrid_retrieval.outcome import arm_outcome, best_arm, differences_markdown, outcome_markdown
from hybrid_retrieval.paired_comparison import languages_by_dataset
from hybrid_retrieval.revision_outputs import read_per_query
from hybrid_retrieval.seed_arms import arm_scores
from hybrid_retrieval.stage import load_params, run_stage
from hybrid_retrieval.tables import rewrite_block

BEGIN, END = "<!-- outcome:begin -->", "<!-- outcome:end -->"
DIFF_BEGIN, DIFF_END = "<!-- outcome-differences:begin -->", "<!-- outcome-differences:end -->"


def _comparisons(config: dict[str, Any], root: Path) -> list[tuple[str, dict[str, Any]]]:
    """The arms file's comparisons over all languages that ``run_arms.py compare`` wrote."""
    found = []
    for comparison in config.get("comparisons") or []:
        name = comparison_name(comparison["a"], comparison["b"], ALL_LANGUAGES)
        path = root / "comparisons" / f"{name}.json"
        if path.is_file():
            found.append((comparison.get("label") or f"{comparison['b']} - {comparison['a']}",
                          read_json(path)))
    return found


def _role(config: dict[str, Any], arm: str, params: dict[str, Any]) -> str:
    """``default`` for the arm ``params.yaml`` runs, else ``previous default``."""
    runs_here = matches_params(config["arms"][arm].get("params", {}), params)
    return "default" if runs_here else "previous default"


def _label(config: dict[str, Any], arm: str, seeds: int, role: str) -> str:
    return f"{role}: {config['arms'][arm]['label']} ({runs_label(config, arm, seeds)})"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="experiments/parallel_supervision.yaml")
    parser.add_argument("--arms-dir", default="metrics/arms")
    parser.add_argument("--out", default="metrics/outcome.json")
    parser.add_argument("--figure", default="metrics/plots/outcome_per_language.png")
    parser.add_argument("--update", default=None, help="README.md to rewrite between markers")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--params", default="params.yaml",
                        help="the workspace's params: which arm is the default")
    args = parser.parse_args(argv)

    config, root = load_config(args.config), Path(args.arms_dir)
    params = load_params(args.params)
    spec = config.get("outcome")
    if not isinstance(spec, dict):
        raise PipelineError(f"{args.config}: expected an 'outcome' section with datasets, "
                            f"base, default and candidates")
    settings = BootstrapSettings(args.resamples, 13, 0.95)
    wanted = dict.fromkeys([spec["base"], spec["default"], *spec["candidates"]])
    tables = {arm: [read_per_query(f, repo=".") for f in files.values()]
              for arm in wanted if (files := arm_files(arm, config, root))}
    missing = [a for a in (spec["base"], spec["default"]) if a not in tables]
    if missing:
        raise PipelineError(f"arm(s) {missing} have no per-query files under {root} (run them "
                            f"and 'python scripts/run_arms.py collect --config {args.config}')")
    outcomes = {arm: arm_outcome(t, spec["datasets"], settings) for arm, t in tables.items()}
    best = best_arm(outcomes, spec["candidates"])
    # base, the reference default, the arm params.yaml runs now (if another), the best
    roles = {spec["base"]: "base", spec["default"]: _role(config, spec["default"], params)}
    current = next((arm for arm in spec["candidates"] if arm in tables
                    and _role(config, arm, params) == "default"), None)
    if current is not None and current not in roles:
        roles[current] = "default"
    roles.pop(best, None)
    roles[best] = "best" + (" = default" if best == current else "")
    labels = {arm: _label(config, arm, len(tables[arm]), role) for arm, role in roles.items()}

    dataset = spec["datasets"][0]
    some = tables[spec["base"]][0]
    languages = languages_by_dataset(some)[dataset]
    per_language = {arm: {lang: s.as_dict() for lang, s in arm_scores(
        tables[arm], dataset, {lang: [lang] for lang in languages}, settings,
        column="ap").items()} for arm in roles}
    write_json({"datasets": spec["datasets"], "best": best, "roles": roles, "labels": labels,
                "resamples": settings.resamples,
                "arms": {arm: {d: {c: s.as_dict() for c, s in cols.items()}
                               for d, cols in outcome.items()}
                         for arm, outcome in outcomes.items()},
                "per_language": {"dataset": dataset, "metric": "multi map",
                                 "arms": per_language}}, args.out)
    from hybrid_retrieval.plots import research_figure, save  # noqa: PLC0415 - matplotlib
    save(research_figure(per_language, labels, {lang: [lang] for lang in languages},
                         ylabel="multi mAP (multilingual pool)",
                         title=f"{DATASET_TITLES.get(dataset, dataset)}: multi mAP per query "
                               f"language (95% CI)"),
         Path(args.figure))
    table = outcome_markdown([(labels[a], outcomes[a]) for a in roles], spec["datasets"])
    differences = differences_markdown(_comparisons(config, root), spec["datasets"])
    print(table + "\n" + differences, end="")
    if args.update:
        rewrite_block(args.update, table, BEGIN, END)
        if differences:
            rewrite_block(args.update, differences, DIFF_BEGIN, DIFF_END)
    print(f"outcome_table: best = {best} of {list(tables)} -> {args.out}, {args.figure}")


if __name__ == "__main__":
    run_stage(main)
