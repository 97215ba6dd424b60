"""Stage evaluate: an encoder folder + data/eval/<dataset>/ -> LAReQA metrics (mono, cross, multi).

Writes three JSON files, all only after every dataset is evaluated (a failure writes none):
``--out`` (dataset -> setting -> metric, plus a ``run`` key with wall time and texts/s),
``--plots-out`` (flat per-language records for ``dvc plots``, one bar per ``key``) and
``--cross-out`` (the query-language x pool-language mAP matrix, for a heatmap) and, when asked,
``--per-query-out`` (Parquet, one row per query and pool: the input of bootstrap intervals).
Every headline metric of ``--out`` carries a group-bootstrap interval
(``evaluate.bootstrap_samples`` resamples of parallel question groups, ``bootstrap_seed``; 0
resamples = none). ``evaluate.max_groups`` > 0 evaluates a seeded subset of whole paragraphs
(``subset_seed``), for CPU-sized sweeps: such numbers compare only with the same subset.
``evaluate.precision`` (optional, default ``auto``): ``bf16`` encodes under bfloat16 autocast
(LayerNorm, softmax, pooling and scoring stay fp32), ``fp32`` without it, ``auto`` picks bf16
where the hardware computes it natively and a probe measures it faster (AVX512-BF16/AMX CPU,
bf16 CUDA GPU; :mod:`hybrid_retrieval.precision`), else fp32. On an AVX512-BF16 CPU bf16 encodes
~2.5x faster and moved every full-set mAP by <= 0.0012; on an AVX2 CPU it is emulated and ~6x
slower, so a forced ``bf16`` there warns. The effective precision, ISA, CPU and library versions
go into the ``run`` block of ``--out``.
``--encoder muse`` evaluates Google's multilingual USE v3 instead of a folder, with the same
protocol (:mod:`hybrid_retrieval.muse`: bundled weights, numpy on the CPU, no prefixes; the
prefix, max_length, batch_tokens, device and precision settings do not apply to it); the package
and the sha256 of its weight files go into ``run.muse``.
"""

from __future__ import annotations

import argparse
import logging
from typing import Sequence

import torch

from hybrid_retrieval.encoder import load_encoder, max_input_tokens, resolve_device
from hybrid_retrieval.errors import PipelineError
from hybrid_retrieval.config import read_section
from hybrid_retrieval.evaluation import (PER_QUERY, EvaluateConfig, evaluate_encode_fns,
                                         hf_encode_fns, load_eval_dataset, subset_groups)
from hybrid_retrieval.headline import BootstrapSettings
from hybrid_retrieval.io import write_json, write_parquet
from hybrid_retrieval.muse import MUSE_ENCODER, encode_muse, load_muse, muse_provenance
from hybrid_retrieval.resources import check_inference_memory
from hybrid_retrieval.precision import autocast, machine_facts, resolve_precision
from hybrid_retrieval.report_intervals import attach_confidence_intervals
from hybrid_retrieval.stage import load_params, run_stage

log = logging.getLogger("evaluate")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--encoder", default="models/base_encoder",
                        help=f"an encoder folder, or '{MUSE_ENCODER}' (multilingual USE v3)")
    parser.add_argument("--eval-dir", default="data/eval")
    parser.add_argument("--out", default="metrics/base.json")
    parser.add_argument("--plots-out", default="metrics/base_per_language.json")
    parser.add_argument("--cross-out", default="metrics/base_cross_lingual.json")
    parser.add_argument("--per-query-out", default=None,
                        help="optional Parquet of per-query AP/recall (for bootstrap CIs)")
    args = parser.parse_args(argv)

    settings = read_section(EvaluateConfig, load_params(args.params), "evaluate", args.params)
    device = resolve_device(settings.device)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    muse = args.encoder == MUSE_ENCODER
    if not muse:
        # Before anything is loaded: batches that cannot fit fail now (evaluate.batch_tokens).
        check_inference_memory(batch_tokens=settings.batch_tokens,
                               max_length=settings.max_length, encoder=args.encoder,
                               device=device)
    # Read and check every dataset before the (slower) model load.
    datasets = [subset_groups(load_eval_dataset(args.eval_dir, name), settings.max_groups,
                              settings.subset_seed) for name in settings.datasets]
    if muse:
        # numpy BLAS threads, not torch's: evaluate.threads, or 0 for mUSE's default (1)
        threads = load_muse(threads=settings.threads or None).threads

        def encode_questions(texts: Sequence[str], desc: str):
            return encode_muse(texts, progress_desc=desc)
        encode_candidates = encode_questions
        device, precision, extra = torch.device("cpu"), "fp32", {"muse": muse_provenance()}
    else:
        model, tokenizer = load_encoder(args.encoder, device)
        limit = max_input_tokens(model.config)
        if limit is not None and settings.max_length > limit:
            raise PipelineError(f"{args.params}: 'evaluate.max_length' is {settings.max_length}, "
                                f"but {args.encoder} takes at most {limit} tokens")
        encode_questions, encode_candidates = hf_encode_fns(
            model, tokenizer, query_prefix=settings.query_prefix,
            passage_prefix=settings.passage_prefix, max_length=settings.max_length,
            batch_tokens=settings.batch_tokens, device=device)
        precision, extra = resolve_precision(settings.precision, device), {}
        threads = torch.get_num_threads()

    with autocast(device, precision):  # embed() pools in fp32; retrieval scores fp32 embeddings
        report = evaluate_encode_fns(encode_questions, encode_candidates, datasets)
    report.run.update({"encoder": args.encoder, "device": str(device), "threads": threads,
                       "max_groups": settings.max_groups,
                       **machine_facts(device, precision, measured=not muse), **extra})
    metrics = {**report.metrics, "run": report.run}
    if settings.bootstrap_samples:
        metrics = attach_confidence_intervals(metrics, report.per_query, BootstrapSettings(
            settings.bootstrap_samples, settings.bootstrap_seed))
    write_json(metrics, args.out)
    write_json(report.per_language, args.plots_out)
    write_json(report.cross_matrix, args.cross_out)
    if args.per_query_out:
        write_parquet(report.per_query, args.per_query_out, schema=PER_QUERY)
    summary = ", ".join(f"{name} mono/cross/multi mAP {m['mono']['map']}/{m['cross']['map']}/"
                        f"{m['multi']['map']}" for name, m in report.metrics.items())
    print(f"evaluate: {args.encoder}: {summary} in {report.run['wall_s']:.1f} s "
          f"({precision}, {report.run['isa']}) -> {args.out}")


if __name__ == "__main__":
    run_stage(main)
