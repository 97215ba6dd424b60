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

import pyarrow.compute as pc

from hybrid_retrieval.errors import PipelineError
from hybrid_retrieval.headline import BootstrapSettings
from hybrid_retrieval.io import read_json, write_json
from hybrid_retrieval.language_groups import group_members, groups_from_supervision
from hybrid_retrieval.revision_outputs import read_per_query
from hybrid_retrieval.seed_arms import arm_scores
from hybrid_retrieval.stage import load_params, run_stage

BEGIN, END = "<!-- research:begin -->", "<!-- research:end -->"


def arm_files(name: str, spec: dict[str, Any], seeds: Sequence[int], root: Path) -> list[str]:
    """The per-query files of one arm that exist (trained arms: one per finished seed)."""
    if "files" in spec:
        return [f for f in spec["files"] if Path(f).is_file()]
    return [str(p) for seed in seeds
            if (p := root / name / f"s{seed}_per_query.parquet").is_file()]


def language_rows(config: dict[str, Any], root: Path, low_resource: Sequence[str],
                  dataset_languages: Sequence[str]) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Rows of the table (each low-resource language, then each group of the dataset's
    languages) and the group label of every language, from the ``groups_from`` arm."""
    arm = config["groups_from"]
    labels = sorted((root / arm).glob("s*_train_languages.json"))
    if not labels:
        raise PipelineError(f"{root / arm}/s*_train_languages.json: none found; run the arm "
                            f"'{arm}' and 'python scripts/run_arms.py collect' first")
    groups = groups_from_supervision(dataset_languages, read_json(labels[0])["supervision"])
    rows = {lang: [lang] for lang in low_resource if lang in dataset_languages}
    low = [lang for lang in low_resource if lang in dataset_languages]
    rows["low-resource (all)"] = low
    for label, members in group_members({k: v for k, v in groups.items() if k in low}).items():
        rows[f"low-resource, {label}"] = members
    for label, members in group_members(groups).items():
        rows[f"all, {label}"] = members
    return rows, groups


def markdown(records: dict[str, dict[str, dict[str, float]]], labels: dict[str, str],
             rows: dict[str, list[str]], groups: dict[str, str], seeds: dict[str, int]) -> str:
    """The README table: rows x arms, ``estimate [low, high]`` (+- seed sd where > 1 seed)."""
    arms = [a for a in labels if a in records]
    header = "| | " + " | ".join(
        f"{labels[a]} (" + ("untrained" if seeds[a] == 0 else
                            f"{seeds[a]} seed{'s' * (seeds[a] != 1)}") + ")" for a in arms) + " |"
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


def update_readme(readme: Path, block: str) -> None:
    text = readme.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        raise PipelineError(f"{readme}: markers {BEGIN} / {END} not found")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{BEGIN}\n{block}{END}{tail}", encoding="utf-8")


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

    from run_arms import load_config  # noqa: PLC0415 - the sibling script's one reader

    config, root = load_config(args.config), Path(args.arms_dir)
    params = load_params(args.params)
    settings = BootstrapSettings(args.resamples, 13, 0.95)
    tables = {name: [read_per_query(f, repo=".") for f in files]
              for name, spec in config["arms"].items()
              if (files := arm_files(name, spec, config["seeds"], root))}
    if not tables:
        raise PipelineError("no arm has per-query files yet")
    some = next(iter(tables.values()))[0]
    dataset = config["dataset"]
    languages = sorted(set(some.filter(pc.equal(some.column("dataset"), dataset))
                           .column("lang").to_pylist()))
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
    table = markdown(records, labels, rows, groups, seeds)
    print(table, end="")
    if args.update:
        update_readme(Path(args.update), table)
    print(f"research_answer: {len(records)} arms x {len(rows)} rows -> {args.out}, {args.figure}")


if __name__ == "__main__":
    run_stage(main)
