"""Stage prepare_squad: SQuAD v1.1 train -> data/squad/train.parquet (question + answer sentence)."""

from __future__ import annotations

import argparse
import logging

from hybrid_retrieval import sources, squad
from hybrid_retrieval.io import write_parquet
from hybrid_retrieval.schemas import SCHEMA_VERSION, SQUAD_TRAIN
from hybrid_retrieval.config import read_section
from hybrid_retrieval.stage import load_params, run_stage

log = logging.getLogger("prepare_squad")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", default="data/squad/train.parquet")
    args = parser.parse_args()

    params = load_params(args.params)
    data = read_section(sources.DataConfig, params, "data", args.params)
    prepare = read_section(squad.SubsetConfig, params, "prepare", args.params)

    train_path = sources.locate("squad-v1.1/train-v1.1.json", data.mirror, data.download_dir)
    dev_path = sources.locate("squad-v1.1/dev-v1.1.json", data.mirror, data.download_dir)
    # XQuAD (our evaluation set) is built from SQuAD *dev* articles: train must not share any
    # (neither a title nor a paragraph).
    squad.assert_disjoint(train_path, dev_path)

    table = squad.read_squad(train_path)
    subset = squad.sample_questions(table, prepare.max_questions, prepare.seed)
    write_parquet(subset, args.out, schema=SQUAD_TRAIN, version=SCHEMA_VERSION)
    print(f"prepare_squad: {subset.num_rows} of {table.num_rows} questions "
          f"({len(set(subset.column('title').to_pylist()))} articles) -> {args.out}")


if __name__ == "__main__":
    run_stage(main)
