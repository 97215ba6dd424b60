"""Stage build_shards: SQuAD train + its translations -> data/shards/parallel/ (every language pair)."""

from __future__ import annotations

import argparse
from pathlib import Path

from hybrid_retrieval.errors import PipelineError
from hybrid_retrieval.io import read_parquet
from hybrid_retrieval.schemas import SQUAD_TRAIN, TRANSLATED
from hybrid_retrieval.config import read_section
from hybrid_retrieval.shards import ShardsConfig, build_parallel_pairs, write_shards
from hybrid_retrieval.stage import load_params, run_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--squad", default="data/squad/train.parquet")
    parser.add_argument("--translated", nargs="*", default=["data/translated"],
                        help="<lang>.parquet translation files, or folders whose *.parquet files "
                             "are all used (default: data/translated)")
    parser.add_argument("--out", default="data/shards/parallel")
    args = parser.parse_args()

    shards = read_section(ShardsConfig, load_params(args.params), "shards", args.params)

    paths: list[Path] = []
    for item in map(Path, args.translated):
        if item.is_dir():
            paths += sorted(item.glob("*.parquet"))
        elif item.is_file():
            paths.append(item)
        else:
            raise PipelineError(f"{item}: translation file or folder not found (stage translate)")
    translated, names = {}, {}
    for path in paths:
        if path.stem in translated:
            raise PipelineError(f"{path}: a second translation into '{path.stem}'")
        translated[path.stem] = read_parquet(path, schema=TRANSLATED, nonempty=True)
        names[path.stem] = str(path)
    squad = read_parquet(args.squad, schema=SQUAD_TRAIN, nonempty=True)
    table, stats = build_parallel_pairs(squad, translated, include_title=shards.include_title,
                                        squad_name=args.squad, translated_names=names)
    manifest = write_shards(table, args.out, shards.rows_per_shard,
                            row_group_size=shards.row_group_size)
    counts = ", ".join(f"{key.split(':', 1)[1]} {n}" for key, n in manifest["pair_counts"].items())
    print(f"build_shards: {manifest['rows']} rows ({counts}; {stats['blank']} blank texts "
          f"skipped) in {len(manifest['shards'])} shards -> {args.out}")


if __name__ == "__main__":
    run_stage(main)
