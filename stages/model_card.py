"""Stage model_card: the trained encoder + its model card with this run's metrics -> models/release/.

``models/encoder/`` (stage train) already holds a card without metrics; the metrics exist only
after ``evaluate@trained``, and DVC gives every file one producing stage, so the complete card
goes into ``models/release/``: the encoder's files (hard links where possible) plus ``README.md``
with the headline mAP and 95% CIs of ``metrics/eval.json`` beside ``metrics/base.json``.
Copy ``models/release/`` to share or upload the model.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hybrid_retrieval.errors import PipelineError
from hybrid_retrieval.io import read_json
from hybrid_retrieval.model_card import read_card_inputs, render_model_card, write_release
from hybrid_retrieval.model_card_metrics import evaluation_section
from hybrid_retrieval.stage import run_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--encoder", default="models/encoder")
    parser.add_argument("--base-encoder", default="models/base_encoder")
    parser.add_argument("--shards", action="append", required=True,
                        help="shard folder the encoder was trained on (repeatable)")
    parser.add_argument("--metrics", default="metrics/eval.json")
    parser.add_argument("--base-metrics", default="metrics/base.json")
    parser.add_argument("--out", default="models/release")
    args = parser.parse_args()

    training_file = Path(args.encoder) / "training.json"
    if not training_file.is_file():
        raise PipelineError(f"{training_file}: not found (stage train writes it)")
    card = render_model_card(read_json(training_file),
                             **read_card_inputs(args.shards, args.base_encoder),
                             evaluation=evaluation_section(read_json(args.metrics),
                                                           read_json(args.base_metrics)))
    files = write_release(args.encoder, args.out, card)
    print(f"model_card: {files} encoder files + README.md ({len(card.splitlines())} lines) "
          f"-> {args.out}")


if __name__ == "__main__":
    run_stage(main)
