"""Stage mt_quality: chrF++ and BLEU of the translation engine on human translations -> metrics/mt.json.

Test sets (``mt_quality.test_sets``): XQuAD-R questions and sentences, Debian FAQ titles,
Debian Reference paragraphs, NTREX-128 news sentences (``ntrex``), each for the languages it
has, capped at ``mt_quality.max_pairs`` pairs sampled with ``mt_quality.seed``. One row per
direction and test set, with sacrebleu signatures; en->X rows carry the round-trip chrF++ where
X->en was converted. NTREX has two Portuguese references, scored on the same sample as two
en->pt rows: European ``ntrex-por`` (which also gives the pt->en row) and Brazilian
``ntrex-por-BR`` (en->pt only).
"""

from __future__ import annotations

import argparse

from hybrid_retrieval.config import read_section
from hybrid_retrieval.errors import PipelineError
from hybrid_retrieval.io import write_json
from hybrid_retrieval.mt_quality import MtQualityConfig, evaluate
from hybrid_retrieval.sources import DataConfig
from hybrid_retrieval.stage import load_params, run_stage
from hybrid_retrieval.translation import DecodingOptions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--models", default="models/nmt")
    parser.add_argument("--out", default="metrics/mt.json")
    args = parser.parse_args()

    params = load_params(args.params)
    data = read_section(DataConfig, params, "data", args.params)
    config = read_section(MtQualityConfig, params, "mt_quality", args.params)
    options = read_section(DecodingOptions, params, "translate", args.params)
    test_sets = list(config.test_sets)

    rows = evaluate(args.models, options, test_sets, config.max_pairs, config.seed,
                    data.mirror, data.download_dir)
    if not rows:
        raise PipelineError(f"{args.params}: none of mt_quality.test_sets {test_sets} has the "
                            f"languages converted in {args.models}")
    write_json(rows, args.out)
    summary = "; ".join(f"{key} n={r['n']} chrF++ {r['chrf']:.1f} BLEU {r['bleu']:.1f}"
                        + (f" round-trip chrF++ {r['roundtrip_chrf']:.1f}"
                           if "roundtrip_chrf" in r else "")
                        for key, r in rows.items())
    print(f"mt_quality: {len(rows)} rows -> {args.out}: {summary}")


if __name__ == "__main__":
    run_stage(main)
