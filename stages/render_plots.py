"""Render the default run's plot data to small PNGs for the README (``metrics/plots/``).

Inputs are the files the pipeline writes (dvclive's training TSVs, the evaluate stages'
cross-lingual and per-language records); a missing input skips its figure with a warning, so
the stage also runs before training has been done. Outputs::

    training.png        loss and batch kinds per step
    heatmap_base.png    cross-lingual mAP matrix, base encoder
    heatmap_eval.png    cross-lingual mAP matrix, trained encoder
    language_bias.png   multilingual-pool rank distance per language, base vs trained
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Sequence

from hybrid_retrieval.io import read_json
from hybrid_retrieval.plots import (heatmap_figure, language_bias_figure, save,
                                    training_figure)
from hybrid_retrieval.stage import run_stage

log = logging.getLogger("render_plots")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-dir", default="dvclive/plots/metrics/train")
    parser.add_argument("--base-prefix", default="metrics/base")
    parser.add_argument("--eval-prefix", default="metrics/eval")
    parser.add_argument("--out", default="metrics/plots")
    args = parser.parse_args(argv)

    out = Path(args.out)
    written = []
    if (Path(args.train_dir) / "loss.tsv").is_file():
        written.append(save(training_figure(args.train_dir), out / "training.png"))
    else:
        log.warning("%s/loss.tsv missing: no training figure", args.train_dir)
    per_language = {}
    for label, prefix in (("base encoder", args.base_prefix), ("trained", args.eval_prefix)):
        cross = Path(f"{prefix}_cross_lingual.json")
        if cross.is_file():
            name = Path(prefix).name
            written.append(save(heatmap_figure(read_json(cross), f"Cross-lingual mAP, {label} "
                                               f"(row: query language, column: pool)"),
                                out / f"heatmap_{name}.png"))
        else:
            log.warning("%s missing: no heatmap", cross)
        records = Path(f"{prefix}_per_language.json")
        if records.is_file():
            per_language[label] = read_json(records)
    if per_language:
        written.append(save(language_bias_figure(per_language), out / "language_bias.png"))
    print(f"render_plots: {len(written)} figures -> {', '.join(map(str, written))}")


if __name__ == "__main__":
    run_stage(main)
