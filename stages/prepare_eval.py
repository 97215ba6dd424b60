"""Stage prepare_eval: XQuAD-R, MLQA-R, Debian FAQ-R and Install-R -> LAReQA-style evaluation tables.

Writes ``data/eval/<dataset>/{questions,candidates}.parquet`` and ``data/eval/stats.json`` (the
counts per dataset and language). The whole output folder is built in a temporary folder and
renamed into place only when every dataset has been read, so a failure leaves the previous
output untouched.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from hybrid_retrieval import debian_faq, lareqa
from hybrid_retrieval.config import read_section
from hybrid_retrieval.io import atomic_path, write_json, write_parquet
from hybrid_retrieval.schemas import EVAL_CANDIDATES, EVAL_QUESTIONS, SCHEMA_VERSION
from hybrid_retrieval.sources import DataConfig
from hybrid_retrieval.stage import load_params, run_stage

log = logging.getLogger("prepare_eval")


def build(data: DataConfig, config: lareqa.EvalDataConfig
          ) -> dict[str, tuple[Any, Any, dict[str, dict[str, int]]]]:
    """Read every configured dataset: name -> (questions table, candidates table, counts)."""
    built = {}
    for dataset in config.datasets:
        param = f"eval_data.{lareqa.LANGUAGE_PARAMS[dataset]}"
        if dataset in lareqa.DEBIAN_SETS:
            faq = dataset == "debian-faq-r"
            parts = debian_faq.read_faq(
                config.languages(dataset), data.mirror, data.download_dir,
                max_words=config.faq_max_passage_words,
                skip_chapters=config.faq_skip_chapters if faq else (),
                max_copied_share=config.faq_max_copied_share, param=param,
                corpus=debian_faq.FAQ_CORPUS if faq else debian_faq.INSTALL_GUIDE_CORPUS)
            counts = {part.lang: part.stats for part in parts}
        else:
            parts = lareqa.read_lareqa(dataset, config.languages(dataset), data.mirror,
                                       data.download_dir, param=param)
            counts = {part.lang: part.stats.as_dict() for part in parts}
        questions, candidates = lareqa.to_tables(parts)
        built[dataset] = (questions, candidates, counts)
    return built


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", default="data/eval")
    args = parser.parse_args()

    params = load_params(args.params)
    data = read_section(DataConfig, params, "data", args.params)
    built = build(data, lareqa.EvalDataConfig.from_params(params, args.params))

    stats: dict[str, Any] = {}
    with atomic_path(args.out) as tmp:
        for dataset, (questions, candidates, counts) in built.items():
            write_parquet(questions, tmp / dataset / "questions.parquet", schema=EVAL_QUESTIONS,
                          version=SCHEMA_VERSION)
            write_parquet(candidates, tmp / dataset / "candidates.parquet",
                          schema=EVAL_CANDIDATES, version=SCHEMA_VERSION)
            stats[dataset] = {"questions": questions.num_rows, "candidates": candidates.num_rows,
                              "languages": counts}
        write_json(stats, tmp / "stats.json")

    for dataset, entry in stats.items():
        for lang, counts in entry["languages"].items():
            extras = ", ".join(f"{k} {v}" for k, v in counts.items()
                               if k not in ("questions", "candidates") and v)
            print(f"  {dataset:13s} {lang}: {counts['questions']:5d} questions "
                  f"{counts['candidates']:5d} candidates" + (f" ({extras})" if extras else ""))
    summary = ", ".join(f"{d} {e['questions']} questions / {e['candidates']} candidates"
                        for d, e in stats.items())
    print(f"prepare_eval: {summary} -> {Path(args.out)}")


if __name__ == "__main__":
    run_stage(main)
