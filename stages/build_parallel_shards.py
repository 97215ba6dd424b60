"""Stage build_parallel_shards: NTREX-128 parallel sentences -> data/shards/ntrex/ (training shards).

Every ordered pair X != Y of ``parallel.languages`` minus ``parallel.holdout_languages``, one
row per sentence (query in X, passage in Y, source ``parallel``, kind ``cross``, pair_id the
sentence id ``ntrex:NNNN`` in every pair), sorted by (query_lang, passage_lang, pair_id), in
the Parquet format and manifest of the other shards (``shards.write_shards``), so a rerun is
byte-identical. ``parallel.max_sentences`` > 0 keeps a seeded subset of whole documents. No
query or passage may equal a text of a ``--forbidden`` table (evaluation questions and
candidates), checked here where the training data is made, once per sentence (every query
and passage is one of the sentences read).
"""

from __future__ import annotations

import argparse

from hybrid_retrieval.config import read_section
from hybrid_retrieval.leakage import assert_no_leakage, read_forbidden_texts
from hybrid_retrieval.ntrex import parallel_pairs, read_ntrex, read_parallel_config, \
    select_documents
from hybrid_retrieval.shards import ShardsConfig, write_shards
from hybrid_retrieval.sources import DataConfig
from hybrid_retrieval.stage import load_params, run_stage




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--forbidden", action="append", default=[],
                        help="Parquet file whose 'text' column must not occur in the pairs "
                             "(repeatable)")
    parser.add_argument("--out", default="data/shards/ntrex")
    args = parser.parse_args()

    params = load_params(args.params)
    data = read_section(DataConfig, params, "data", args.params)
    shards = read_section(ShardsConfig, params, "shards", args.params)
    config = read_parallel_config(params, args.params)
    forbidden = read_forbidden_texts(args.forbidden)

    sentences = select_documents(read_ntrex(config.training_languages, data.mirror,
                                            data.download_dir),
                                 config.max_sentences, config.seed)
    # Every query and passage is one of these sentences: checking each once is 10x cheaper.
    assert_no_leakage(sentences, forbidden, columns=("text",),
                      what=f"NTREX-128 sentences for {args.out}")
    table = parallel_pairs(sentences, config.languages, config.holdout_languages)
    manifest = write_shards(table, args.out, shards.rows_per_shard,
                            row_group_size=shards.row_group_size)
    n_sentences = len(set(table.column("pair_id").to_pylist()))
    holdout = ", ".join(config.holdout_languages) or "none"
    print(f"build_parallel_shards: {manifest['rows']} rows ({len(manifest['pair_counts'])} "
          f"language pairs x {n_sentences} sentences; holdout languages: {holdout}) in "
          f"{len(manifest['shards'])} shards -> {args.out}")


if __name__ == "__main__":
    run_stage(main)
