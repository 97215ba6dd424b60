"""Stage prepare_eval: XQuAD-R, MLQA-R and the Debian FAQ -> LAReQA-style evaluation tables.

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
from hybrid_retrieval.errors import PipelineError
from hybrid_retrieval.io import atomic_path, write_json, write_parquet
from hybrid_retrieval.schemas import EVAL_CANDIDATES, EVAL_QUESTIONS, SCHEMA_VERSION
from hybrid_retrieval.stage import load_params, require, run_stage, section

log = logging.getLogger("prepare_eval")

DATASETS = ("xquad-r", "mlqa-r", "debian-faq-r")
LANGUAGE_PARAMS = {"xquad-r": "xquad_r_languages", "mlqa-r": "mlqa_r_languages",
                   "debian-faq-r": "faq_languages"}


def _string_list(cfg: dict[str, Any], key: str, allowed: list[str]) -> list[str]:
    values = require(cfg, key, list, where="eval_data")
    unknown = [v for v in values if v not in allowed]
    if unknown or not values or len(set(values)) != len(values):
        problem = f"unknown {unknown}" if unknown else "empty or repeated values"
        raise PipelineError(f"params.yaml: 'eval_data.{key}' is {values!r} ({problem}), "
                            f"expected distinct values from {allowed}")
    return values


def read_config(params: dict[str, Any]) -> dict[str, Any]:
    """Validated settings of the ``eval_data`` section (plus ``data.mirror``/``download_dir``)."""
    data, cfg = section(params, "data"), section(params, "eval_data")
    config: dict[str, Any] = {
        "mirror": require(data, "mirror", str, where="data"),
        "download_dir": require(data, "download_dir", str, where="data"),
        "datasets": _string_list(cfg, "datasets", list(DATASETS)),
    }
    allowed = {"xquad-r": list(lareqa.LAREQA_LANGUAGES["xquad-r"]),
               "mlqa-r": list(lareqa.LAREQA_LANGUAGES["mlqa-r"]),
               "debian-faq-r": list(debian_faq.FAQ_FOLDERS)}
    for dataset in config["datasets"]:
        key = LANGUAGE_PARAMS[dataset]
        config[key] = _string_list(cfg, key, allowed[dataset])
    if "debian-faq-r" in config["datasets"]:
        config["faq_max_passage_words"] = require(cfg, "faq_max_passage_words", (int, float),
                                                  where="eval_data", low=10, high=10_000)
        config["faq_max_copied_share"] = require(cfg, "faq_max_copied_share", (int, float),
                                                 where="eval_data", low=0, high=1)
        chapters = require(cfg, "faq_skip_chapters", list, where="eval_data")
        if not all(isinstance(c, str) for c in chapters):
            raise PipelineError(f"params.yaml: 'eval_data.faq_skip_chapters' is {chapters!r}, "
                                f"expected a list of chapter names (file stems, e.g. faqinfo)")
        config["faq_skip_chapters"] = tuple(chapters)
    return config


def build(config: dict[str, Any]) -> dict[str, tuple[Any, Any, dict[str, dict[str, int]]]]:
    """Read every configured dataset: name -> (questions table, candidates table, counts)."""
    built = {}
    for dataset in config["datasets"]:
        key = LANGUAGE_PARAMS[dataset]
        if dataset == "debian-faq-r":
            parts = debian_faq.read_faq(
                config[key], config["mirror"], config["download_dir"],
                max_words=config["faq_max_passage_words"],
                skip_chapters=config["faq_skip_chapters"],
                max_copied_share=config["faq_max_copied_share"], param=f"eval_data.{key}")
            counts = {part.lang: part.stats for part in parts}
        else:
            parts = lareqa.read_lareqa(dataset, config[key], config["mirror"],
                                       config["download_dir"], param=f"eval_data.{key}")
            counts = {part.lang: part.stats.as_dict() for part in parts}
        questions, candidates = lareqa.to_tables(parts)
        built[dataset] = (questions, candidates, counts)
    return built


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", default="data/eval")
    args = parser.parse_args()

    config = read_config(load_params(args.params))
    built = build(config)

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
