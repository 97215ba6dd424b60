"""Stage translate (DVC foreach over translate.languages): SQuAD train -> data/translated/<lang>.parquet.

Translates the questions, answer sentences and titles of ``data/squad/train.parquet`` from
English into ``--lang`` with the engine prepared by ``convert_nmt``. Distinct sentences are
translated once, in length order; finished chunks go to ``--cache`` (per direction and
model/decoding fingerprint), so a killed run resumes where it stopped. Translations are
checked for the target script; counts and examples go to ``--stats``, and the stage fails,
writing neither output, when more than ``translate.max_bad_share`` of the questions/sentences
fail the check.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hybrid_retrieval.config import read_section
from hybrid_retrieval.errors import PipelineError
from hybrid_retrieval.io import read_parquet, write_json, write_parquet
from hybrid_retrieval.schemas import SCHEMA_VERSION, SQUAD_TRAIN, TRANSLATED
from hybrid_retrieval.stage import load_params, run_stage
from hybrid_retrieval.translation import (DecodingOptions, TranslateSettings, TranslationCache,
                                          load_engine, translate_squad)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--lang", required=True, help="target language code, e.g. pt")
    parser.add_argument("--models", default="models/nmt")
    parser.add_argument("--input", default="data/squad/train.parquet")
    parser.add_argument("--out", help="default: data/translated/<lang>.parquet")
    parser.add_argument("--stats", help="default: data/translated/<lang>.stats.json")
    parser.add_argument("--cache", default="data/cache/translate")
    args = parser.parse_args()
    out = Path(args.out or f"data/translated/{args.lang}.parquet")
    stats_path = Path(args.stats or out.with_suffix(".stats.json"))

    params = load_params(args.params)
    settings = read_section(TranslateSettings, params, "translate", args.params)
    if args.lang not in settings.languages:
        raise PipelineError(f"{args.params}: translate.languages is {list(settings.languages)}, "
                            f"which lacks --lang {args.lang!r}")
    options = read_section(DecodingOptions, params, "translate", args.params)
    chunk_size, min_share = settings.cache_chunk, settings.min_script_share
    max_bad = settings.max_bad_share

    table = read_parquet(args.input, schema=SQUAD_TRAIN, nonempty=True)
    engine = load_engine(args.models, "en", args.lang, options)
    cache = TranslationCache(args.cache, engine)
    result, stats = translate_squad(table, engine, cache=cache, chunk_size=chunk_size,
                                    min_script_share=min_share)
    if stats["bad_share"] > max_bad:  # nothing is written (the cache keeps the translations)
        raise PipelineError(
            f"{out}: {stats['bad_share']:.1%} of the translated questions/sentences are not in "
            f"the {args.lang} script (translate.max_bad_share is {max_bad:.1%}; bad lines "
            f"{stats['bad_script_lines']}); wrong model for the language? examples: "
            f"{stats['bad_examples'][:2]}")
    write_json(stats, stats_path)
    write_parquet(result, out, schema=TRANSLATED, version=SCHEMA_VERSION)
    stale = cache.remove_stale()
    print(f"translate en->{args.lang}: {stats['rows']} rows, {stats['unique_segments']} distinct "
          f"segments ({stats['cached_segments']} cached, {stats['translated_segments']} "
          f"translated at {stats['units_per_second']:.0f} {stats['unit']}/s in "
          f"{stats['seconds']:.1f} s), bad script lines {stats['bad_script_lines']}, "
          f"engine {engine.name} {engine.model} -> {out}"
          + (f" ({len(stale)} stale cache folders removed)" if stale else ""))


if __name__ == "__main__":
    run_stage(main)
