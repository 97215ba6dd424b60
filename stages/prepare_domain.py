"""Stage prepare_domain: Debian Reference (9 languages) -> pseudo query/passage pairs.

Writes ``data/domain/pairs.parquet`` (schema DOMAIN_PAIRS: heading and Inverse Cloze Task pairs,
monolingual and, with ``domain.cross_lingual``, cross-lingual through the po4a paragraph
alignment) and ``data/domain/stats.json`` (alignment coverage, paragraph/block/pair counts and
every filter's drops per language pair). No text of the Debian FAQ-R evaluation set
(``--faq-dir``) may appear in the pairs: leaking pairs are dropped and counted, and the stage
fails if any is left. See :mod:`hybrid_retrieval.domain`.
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
    parser.add_argument("--faq-dir", default="data/eval/debian-faq-r",
                        help="Debian FAQ-R questions.parquet and candidates.parquet")
    parser.add_argument("--out", default="data/domain/pairs.parquet")
    parser.add_argument("--stats", default="data/domain/stats.json")
    args = parser.parse_args()

    params = load_params(args.params)
    data = read_section(DataConfig, params, "data", args.params)
    config = read_domain_config(params, args.params)
    guard = FaqLeakageGuard.from_dir(args.faq_dir, min_chars=config.leakage_min_chars)

    table, stats = build_domain_pairs(config, data.mirror, data.download_dir, guard)
    write_parquet(table, args.out, schema=DOMAIN_PAIRS, version=SCHEMA_VERSION)
    write_json(stats, args.stats)

    totals = stats["totals"]
    mono = ", ".join(f"{lang} {n}" for lang, n in totals["mono_by_language"].items())
    aligned = ", ".join(f"{lang} {a['chapters_aligned']}/{a['chapters_total']}"
                        for lang, a in stats["alignment"].items() if lang != "en")
    print(f"prepare_domain: {totals['rows']} pairs ({totals['kind'].get('mono', 0)} mono: {mono}; "
          f"{totals['kind'].get('cross', 0)} cross; methods {totals['method']}); chapters "
          f"aligned with English {aligned}; {stats['leakage_dropped']} FAQ-R leaks dropped "
          f"-> {args.out}")


if __name__ == "__main__":
    run_stage(main)
