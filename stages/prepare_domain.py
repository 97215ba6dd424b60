"""Stage prepare_domain: Debian Reference + Administrator's Handbook -> pseudo query/passage pairs.

Writes ``data/domain/pairs.parquet`` (schema DOMAIN_PAIRS: heading and Inverse Cloze Task pairs,
monolingual and, with ``domain.cross_lingual``, cross-lingual through the po4a paragraph
alignment) and ``data/domain/stats.json`` (alignment coverage, paragraph/block/pair counts and
every filter's drops per language pair, paragraphs dropped by language identification per book
and language). No text of the Debian domain test sets (``--eval-dir``: FAQ-R, Install-R) may
appear in the pairs: leaking pairs are dropped and counted, and the stage fails if any is left.
See :mod:`hybrid_retrieval.domain`.
"""

from __future__ import annotations

import argparse

from hybrid_retrieval.domain import build_domain_pairs, read_domain_config
from hybrid_retrieval.io import write_json, write_parquet
from hybrid_retrieval.leakage import FaqLeakageGuard
from hybrid_retrieval.schemas import DOMAIN_PAIRS, SCHEMA_VERSION
from hybrid_retrieval.config import read_section
from hybrid_retrieval.sources import DataConfig
from hybrid_retrieval.stage import load_params, run_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--eval-dir", action="append", required=True,
                        help="a domain test set's folder (questions.parquet, candidates.parquet) "
                        "that no pair may leak (repeatable: Debian FAQ-R, Install-R)")
    parser.add_argument("--out", default="data/domain/pairs.parquet")
    parser.add_argument("--stats", default="data/domain/stats.json")
    args = parser.parse_args()

    params = load_params(args.params)
    data = read_section(DataConfig, params, "data", args.params)
    config = read_domain_config(params, args.params)
    guard = FaqLeakageGuard.from_dirs(args.eval_dir, min_chars=config.leakage_min_chars)

    table, stats = build_domain_pairs(config, data.mirror, data.download_dir, guard)
    write_parquet(table, args.out, schema=DOMAIN_PAIRS, version=SCHEMA_VERSION)
    write_json(stats, args.stats)

    totals = stats["totals"]
    mono = ", ".join(f"{lang} {n}" for lang, n in totals["mono_by_language"].items())
    for book, by_lang in stats["paragraphs"].items():
        aligned = stats["alignment"][book]
        print(f"  {book}: " + "; ".join(
            f"{lang} {c.get('usable', 0)} usable, {c.get('untranslated', 0)} English copies, "
            f"{c.get('not_declared_language', 0)} other-language, "
            f"{aligned[lang]['chapters_aligned']}/{aligned[lang]['chapters_total']} aligned"
            for lang, c in by_lang.items()))
    left_out = ", ".join(f"{k} ({n})" for k, n in stats["below_min_paragraphs"].items())
    print(f"prepare_domain: {totals['rows']} pairs ({totals['kind'].get('mono', 0)} mono: {mono}; "
          f"{totals['kind'].get('cross', 0)} cross; methods {totals['method']}); "
          f"below domain.min_paragraphs: {left_out or 'none'}; "
          f"{stats['leakage_dropped']} evaluation-set leaks dropped -> {args.out}")


if __name__ == "__main__":
    run_stage(main)
