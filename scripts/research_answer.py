"""The research question's table and figure: XTREME-R score per low-resource language and group.

Reads ``experiments/research_question.yaml`` (arms and seeds), each arm's per-query files (an
untrained model's committed ``files``; a trained arm's ``metrics/arms/<arm>/s<seed>_per_query
.parquet``, written by ``scripts/run_arms.py collect``) and the language groups of the
``groups_from`` arm (its ``s<seed>_train_languages.json``: what trained each language, from the
shard manifests). Writes::

    metrics/research_answer.json          every arm x row: estimate, 95% CI, seed mean +- sd
    metrics/plots/research_answer.png     the same as bars with the CIs
    README.md                             the table between the research markers (--update)

The score is XQuAD-R's multilingual-pool mAP@20 (the XTREME-R LAReQA metric), per language
and macro over each group's languages; the CI is a group bootstrap of the seed-averaged
per-question values, the +- the sd over seeds (:mod:`hybrid_retrieval.seed_arms`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Sequence

from hybrid_retrieval.arms import (ALL_LANGUAGES, arm_files, arm_groups, comparison_name,
                                   language_sets, load_config, runs_label)
from hybrid_retrieval.errors import PipelineError
from hybrid_retrieval.evaluation import DATASET_TITLES
from hybrid_retrieval.headline import BootstrapSettings
from hybrid_retrieval.io import read_json, write_json
from hybrid_retrieval.paired_comparison import languages_by_dataset
from hybrid_retrieval.revision_outputs import read_per_query
from hybrid_retrieval.seed_arms import arm_scores
from hybrid_retrieval.stage import load_params, run_stage
from hybrid_retrieval.tables import difference_cell, rewrite_block

BEGIN, END = "<!-- research:begin -->", "<!-- research:end -->"


def language_rows(config: dict[str, Any], root: Path, low_resource: Sequence[str],
                  dataset_languages: Sequence[str]) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Rows of the table (each low-resource language, then the language sets of
    :func:`hybrid_retrieval.arms.language_sets`) and the group label of every language."""
    groups = arm_groups(config, root, dataset_languages)
    rows = {lang: [lang] for lang in low_resource if lang in dataset_languages}
    rows.update(language_sets(low_resource, groups))
    return rows, groups


def markdown(records: dict[str, dict[str, dict[str, float]]], labels: dict[str, str],
             rows: dict[str, list[str]], groups: dict[str, str], runs: dict[str, str]) -> str:
    """The README table: rows x arms, ``estimate [low, high]`` (+- seed sd where > 1 seed)."""
    arms = [a for a in labels if a in records]
    header = "| | " + " | ".join(f"{labels[a]} ({runs[a]})" for a in arms) + " |"
    lines = [header, "|---|" + "---|" * len(arms)]
    for row, members in rows.items():
        name = f"{row} ({groups[row]})" if row in groups else f"{row}: {' '.join(members)}"
        cells = []
        for arm in arms:
            score = records[arm].get(row)
            if score is None:
                cells.append("")
                continue
            sd = f" ± {score['seed_sd']:.3f}" if score["seeds"] > 1 else ""  # sd over seeds
            cells.append(f"{score['estimate']:.3f} [{score['low']:.3f}, {score['high']:.3f}]{sd}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


#: Language sets of the comparisons table (files exist for every set; these are shown).
COMPARISON_SETS = ("low-resource (all)", "low-resource, domain-aligned",
                   "low-resource, domain-mono",
                   "low-resource, none", ALL_LANGUAGES, "all, domain-aligned", "all, none")


def comparison_markdown(config: dict[str, Any], root: Path) -> str:
    """Paired differences B - A of the XTREME-R score (multi mAP@20) per dataset, one row per
    comparison of the arms file and language set, from ``run_arms.py compare``'s files."""
    datasets = list(DATASET_TITLES)
    found = []
    for comparison in config.get("comparisons") or []:
        for set_name in COMPARISON_SETS:
            name = comparison_name(comparison["a"], comparison["b"], set_name)
            path = root / "comparisons" / f"{name}.json"
            if path.is_file():
                found.append((comparison, set_name, read_json(path)))
    if not found:
        return ""
    present = [d for d in datasets if any(r["dataset"] == d for *_, rec in found
                                          for r in rec["rows"])]
    header = ["B - A", "languages"] + [DATASET_TITLES[d] for d in present]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for comparison, set_name, record in found:
        cells = [comparison.get("label") or f"{comparison['b']} - {comparison['a']}",
                 set_name if set_name in (ALL_LANGUAGES, "low-resource (all)") else
                 f"{set_name}: {' '.join(record['languages'])}"]
        for dataset in present:
            row = next((r for r in record["rows"] if r["dataset"] == dataset
                        and r["setting"] == "multi" and r["metric"] == "map@20"), None)
            cells.append("" if row is None else difference_cell(row))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="experiments/research_question.yaml")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--arms-dir", default="metrics/arms")
    parser.add_argument("--out", default="metrics/research_answer.json")
    parser.add_argument("--figure", default="metrics/plots/research_answer.png")
    parser.add_argument("--update", default=None, help="README.md to rewrite between markers")
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args(argv)

    config, root = load_config(args.config), Path(args.arms_dir)
    params = load_params(args.params)
    settings = BootstrapSettings(args.resamples, 13, 0.95)
    tables = {name: [read_per_query(f, repo=".") for f in files.values()]
              for name in config["arms"] if (files := arm_files(name, config, root))}
    if not tables:
        raise PipelineError("no arm has per-query files yet")
    some = next(iter(tables.values()))[0]
    dataset = config["dataset"]
    languages = languages_by_dataset(some)[dataset]
    rows, groups = language_rows(config, root, params["low_resource_languages"], languages)
    records = {name: {row: s.as_dict() for row, s in arm_scores(per_seed, dataset, rows,
                                                               settings).items()}
               for name, per_seed in tables.items()}
    labels = {name: spec["label"] for name, spec in config["arms"].items()}
    seeds = {name: 0 if "files" in config["arms"][name] else len(per_seed)  # 0 = untrained
             for name, per_seed in tables.items()}
    write_json({"dataset": dataset, "metric": "multi ap_at_20 (XTREME-R score)",
                "resamples": settings.resamples, "groups": groups,
                "rows": [{"name": name, "languages": members} for name, members in rows.items()],
                "labels": labels, "seeds": seeds, "arms": records}, args.out)
    from hybrid_retrieval.plots import research_figure, save  # noqa: PLC0415 - matplotlib
    save(research_figure(records, labels, rows), Path(args.figure))
    table = markdown(records, labels, rows, groups,
                     {name: runs_label(config, name, len(per_seed))
                      for name, per_seed in tables.items()})
    differences = comparison_markdown(config, root)
    if differences:
        table += ("\nPaired differences B - A of the XTREME-R score (multi mAP@20) per dataset, "
                  "seed-averaged arms (`python scripts/run_arms.py compare`, "
                  "`metrics/arms/comparisons/`): [ ] 95% question-bootstrap CI of the "
                  "seed-averaged difference, { } 95% t-interval over the seeds' own differences "
                  "(paired by seed), k/n seeds with the same sign; bold: every interval shown "
                  "excludes 0:\n\n" + differences)
    print(table, end="")
    if args.update:
        rewrite_block(args.update, table, BEGIN, END)
    print(f"research_answer: {len(records)} arms x {len(rows)} rows -> {args.out}, {args.figure}")


if __name__ == "__main__":
    run_stage(main)
