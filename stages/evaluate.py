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
"""

from __future__ import annotations

import argparse
import logging
from typing import Sequence

import torch

from hybrid_retrieval.encoder import load_encoder, max_input_tokens, resolve_device
from hybrid_retrieval.errors import PipelineError
from hybrid_retrieval.evaluation import (KNOWN_DATASETS, PER_QUERY, evaluate_encoder,
                                         load_eval_dataset, subset_groups)
from hybrid_retrieval.experiments import BootstrapSettings, attach_confidence_intervals
from hybrid_retrieval.io import write_json, write_parquet
from hybrid_retrieval.resources import check_inference_memory
from hybrid_retrieval.precision import autocast, machine_facts, resolve_precision
from hybrid_retrieval.stage import load_params, require, run_stage, section

log = logging.getLogger("evaluate")

PRECISIONS = ("auto", "fp32", "bf16")  # fp16 autocast is CUDA-only; not offered here


def read_settings(params_path: str) -> dict:
    """The validated ``evaluate:`` section of the params file."""
    cfg = section(load_params(params_path), "evaluate", params_path)
    datasets = require(cfg, "datasets", list, where="evaluate")
    if not datasets or not all(isinstance(d, str) for d in datasets):
        raise PipelineError(f"{params_path}: 'evaluate.datasets' is {datasets!r}, expected a "
                            f"non-empty list of names from {list(KNOWN_DATASETS)}")
    unknown = [d for d in datasets if d not in KNOWN_DATASETS]
    if unknown:
        raise PipelineError(f"{params_path}: unknown dataset {unknown[0]!r} in "
                            f"'evaluate.datasets', expected some of {list(KNOWN_DATASETS)}")
    if len(set(datasets)) != len(datasets):
        raise PipelineError(f"{params_path}: 'evaluate.datasets' lists a dataset twice: "
                            f"{datasets}")
    precision = cfg.get("precision", "auto")
    if precision not in PRECISIONS:
        raise PipelineError(f"{params_path}: 'evaluate.precision' is {precision!r}, expected one "
                            f"of {list(PRECISIONS)}")
    device = require(cfg, "device", str, where="evaluate")
    if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
        raise PipelineError(f"{params_path}: 'evaluate.device' is {device!r}, expected 'auto', "
                            f"'cpu', 'cuda' or 'cuda:N'")
    return {
        "datasets": datasets,
        "query_prefix": require(cfg, "query_prefix", str, where="evaluate"),
        "passage_prefix": require(cfg, "passage_prefix", str, where="evaluate"),
        "max_length": require(cfg, "max_length", int, where="evaluate", low=2),
        "batch_tokens": require(cfg, "batch_tokens", int, where="evaluate", low=1),
        "device": device,
        "threads": require(cfg, "threads", int, where="evaluate", low=0),
        "max_groups": require(cfg, "max_groups", int, where="evaluate", low=0),
        "subset_seed": require(cfg, "subset_seed", int, where="evaluate"),
        "bootstrap_samples": require(cfg, "bootstrap_samples", int, where="evaluate", low=0),
        "bootstrap_seed": require(cfg, "bootstrap_seed", int, where="evaluate"),
        "precision": precision,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--encoder", default="models/base_encoder")
    parser.add_argument("--eval-dir", default="data/eval")
    parser.add_argument("--out", default="metrics/base.json")
    parser.add_argument("--plots-out", default="metrics/base_per_language.json")
    parser.add_argument("--cross-out", default="metrics/base_cross_lingual.json")
    parser.add_argument("--per-query-out", default=None,
                        help="optional Parquet of per-query AP/recall (for bootstrap CIs)")
    args = parser.parse_args(argv)

    settings = read_settings(args.params)
    device = resolve_device(settings["device"])
    if settings["threads"]:
        torch.set_num_threads(settings["threads"])
    # Before anything is loaded: batches that cannot fit fail now, naming evaluate.batch_tokens.
    check_inference_memory(batch_tokens=settings["batch_tokens"],
                           max_length=settings["max_length"], encoder=args.encoder, device=device)
    # Read and check every dataset before the (slower) model load.
    datasets = [subset_groups(load_eval_dataset(args.eval_dir, name), settings["max_groups"],
                              settings["subset_seed"]) for name in settings["datasets"]]
    model, tokenizer = load_encoder(args.encoder, device)
    limit = max_input_tokens(model.config)
    if limit is not None and settings["max_length"] > limit:
        raise PipelineError(f"{args.params}: 'evaluate.max_length' is {settings['max_length']}, "
                            f"but {args.encoder} takes at most {limit} tokens")

    precision = resolve_precision(settings["precision"], device)
    with autocast(device, precision):  # embed() pools in fp32; retrieval scores fp32 embeddings
        report = evaluate_encoder(
            model, tokenizer, datasets, query_prefix=settings["query_prefix"],
            passage_prefix=settings["passage_prefix"], max_length=settings["max_length"],
            batch_tokens=settings["batch_tokens"], device=device)
    report.run.update({"encoder": args.encoder, "device": str(device),
                       "threads": torch.get_num_threads(), "max_groups": settings["max_groups"],
                       **machine_facts(device, precision)})
    metrics = {**report.metrics, "run": report.run}
    if settings["bootstrap_samples"]:
        metrics = attach_confidence_intervals(metrics, report.per_query, BootstrapSettings(
            settings["bootstrap_samples"], settings["bootstrap_seed"]))
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
