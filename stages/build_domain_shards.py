"""Stage build_domain_shards: data/domain/pairs.parquet -> data/shards/domain/ (training shards).

Same Parquet format and manifest as the parallel shards (``shards.write_shards``), source
``domain``, kind ``mono``/``cross``, rows sorted by (query_lang, passage_lang, pair_id) so a
rerun is byte-identical. The leakage check against the Debian domain test sets (FAQ-R, Install-R) runs again on the rows written (a
cheap guard where the training data is made).
"""

from __future__ import annotations

import argparse

from hybrid_retrieval.domain import domain_shard_table, read_domain_config
from hybrid_retrieval.io import read_parquet
from hybrid_retrieval.leakage import FaqLeakageGuard
from hybrid_retrieval.schemas import DOMAIN_PAIRS
from hybrid_retrieval.config import read_section
from hybrid_retrieval.shards import ShardsConfig, write_shards
from hybrid_retrieval.stage import load_params, run_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--pairs", default="data/domain/pairs.parquet")
    parser.add_argument("--eval-dir", action="append", required=True,
                        help="a domain test set's folder no row may leak (repeatable)")
    parser.add_argument("--out", default="data/shards/domain")
    args = parser.parse_args()

    params = load_params(args.params)
    shards = read_section(ShardsConfig, params, "shards", args.params)
    config = read_domain_config(params, args.params)

    table = domain_shard_table(read_parquet(args.pairs, schema=DOMAIN_PAIRS))
    guard = FaqLeakageGuard.from_dirs(args.eval_dir, min_chars=config.leakage_min_chars)
    guard.assert_clean(table, what=args.pairs)
    manifest = write_shards(table, args.out, shards.rows_per_shard,
                            row_group_size=shards.row_group_size)
    kinds = {kind: table.column("kind").to_pylist().count(kind) for kind in ("mono", "cross")}
    print(f"build_domain_shards: {manifest['rows']} rows ({kinds['mono']} mono, {kinds['cross']} "
          f"cross, {len(manifest['pair_counts'])} language pairs) in {len(manifest['shards'])} "
          f"shards -> {args.out}")


if __name__ == "__main__":
    run_stage(main)
