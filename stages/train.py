"""Stage train: hybrid-batch InfoNCE fine-tuning of the base encoder -> models/encoder/.

One process: ``python stages/train.py``; several: ``torchrun --nproc_per_node N stages/train.py``.
A killed run resumes from its last checkpoint (``--checkpoints``) when started again.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from hybrid_retrieval.errors import PipelineError
from hybrid_retrieval.io import read_json, write_json
from hybrid_retrieval.language_groups import trained_supervision
from hybrid_retrieval.leakage import read_forbidden_texts
from hybrid_retrieval.sampler import BatchMixture, drawn_shard_dirs
from hybrid_retrieval.shards import MANIFEST, shard_sources
from hybrid_retrieval.stage import load_params, run_stage
from hybrid_retrieval.training import TrainConfig, train




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--shards", action="append",
                        help="shard folder (repeatable); default data/shards/parallel")
    parser.add_argument("--base-encoder", default="models/base_encoder")
    parser.add_argument("--out", default="models/encoder")
    parser.add_argument("--live", default="dvclive", help="dvclive folder")
    parser.add_argument("--checkpoints", default="checkpoints/train")
    parser.add_argument("--languages-out", default=None,
                        help="JSON: language -> what trained it (language groups, from the "
                        "shard manifests of the sources sampled)")
    parser.add_argument("--forbidden", action="append", default=[],
                        help="Parquet file whose 'text' column must not occur in training (repeatable)")
    args = parser.parse_args()

    params = load_params(args.params)
    config = TrainConfig.from_params(params, args.params)
    shard_dirs = args.shards or ["data/shards/parallel"]
    for shard_dir in shard_dirs:
        if not Path(shard_dir).is_dir():
            raise PipelineError(f"{shard_dir}: shard folder not found (stage build_shards)")
    sources_by_dir = {shard_dir: shard_sources(shard_dir) for shard_dir in shard_dirs}
    sources = sorted({source for found in sources_by_dir.values() for source in found})
    # P(mono), P(each source), language sampling: one validated mixture (top-level ratios).
    mixture = BatchMixture.from_params(params, args.params, sources)
    shard_dirs = drawn_shard_dirs(sources_by_dir, mixture.source_ratios)
    drawn = None if mixture.source_ratios is None else \
        {source: p for source, p in mixture.source_ratios.items() if p > 0}
    forbidden = read_forbidden_texts(args.forbidden)
    result = train(config, shard_dirs, args.base_encoder, args.out,
                   checkpoint_dir=args.checkpoints, live_dir=args.live, forbidden_texts=forbidden,
                   source_ratios=drawn if drawn is None or len(drawn) > 1 else None)
    s, t = result.summary, result.timing
    if args.languages_out and os.environ.get("RANK", "0") == "0":
        supervision = trained_supervision([read_json(Path(d) / MANIFEST) for d in shard_dirs],
                                          s["source_ratios"])
        write_json({"source_ratios": s["source_ratios"], "supervision": supervision},
                   args.languages_out)
    if os.environ.get("RANK", "0") == "0":  # under torchrun, one summary line
        print(f"train: {s['steps']} steps x {s['world_size']} rank(s) ({s['precision']}), "
              f"{s['pairs_seen']} pairs "
              f"({s['mono_batches']} mono / {s['cross_batches']} cross batches, "
              f"{s['fallback_batches']} fallbacks), loss {s['first_loss']:.4f} -> "
              f"{s['final_loss']:.4f}, {t['seconds_per_step']:.2f} s/step"
              f"{', resumed at step %d' % t['resumed_from_step'] if t['resumed_from_step'] else ''}"
              f" -> {args.out}")


if __name__ == "__main__":
    run_stage(main)
