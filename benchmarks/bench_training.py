"""Benchmark: our training step vs Sentence Transformers' MultipleNegativesRankingLoss training.

Same base encoder, the same hybrid batches (rows drawn by our sampler), batch size, maximum
sequence length, number of steps, AdamW (lr 3e-5, wd 0.01, fused), frozen word embeddings and
precision. Variants, each in its own process (so peak RSS is that variant's alone):

* ``ours``: the building blocks of :func:`hybrid_retrieval.training.train` (``tokenize`` with
  dynamic padding, ``DualEncoder``, ``InfoNCELoss``), timed per phase;
* ``st``: ``SentenceTransformer`` + ``MultipleNegativesRankingLoss(scale=20)`` driven by the same
  hand-written loop (``model.preprocess``, the loss's forward, backward, optimizer), timed per phase;
* ``st-trainer``: ``SentenceTransformerTrainer`` with that loss on the same rows, timed as a whole
  (what a Sentence Transformers user would run; no phase breakdown).

The first step of each loop variant is an untimed warm-up; step times are medians. Example::

    python benchmarks/bench_training.py --steps 6 --batch-size 32 --max-length 64 --out bench.json
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

VARIANTS = ("ours", "st", "st-trainer")
PHASES = ("tokenize", "forward", "backward", "optimizer")


def rss_mb() -> float:
    """Peak resident set size of this process so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def training_rows(spec: dict) -> tuple[list[list[str]], list[list[str]]]:
    """Query and passage texts (prefixed) of ``steps + 1`` hybrid batches."""
    from hybrid_retrieval.sampler import HybridBatchSampler
    from hybrid_retrieval.shards import read_shards

    table = read_shards(spec["shards"])
    sampler = HybridBatchSampler.from_table(table, batch_size=spec["batch_size"], mix_ratio=0.5,
                                            seed=0)
    queries, passages = table.column("query").to_pylist(), table.column("passage").to_pylist()
    plans = list(itertools.islice(sampler.plans(0), spec["steps"] + 1))
    return ([["query: " + queries[i] for i in p.indices] for p in plans],
            [["passage: " + passages[i] for i in p.indices] for p in plans])


def config_for(spec: dict):
    from hybrid_retrieval.training import TrainConfig

    return TrainConfig(seed=0, mix_ratio=0.5, steps=spec["steps"], batch_size=spec["batch_size"],
                       max_length=spec["max_length"], precision=spec["precision"], device="cpu")


def timed_loop(step_fn, batches, optimizer, parameters) -> dict[str, list[float]]:
    """Run ``step_fn(queries, passages) -> (loss, seconds tokenising, seconds forward)`` per batch,
    then backward and an optimizer step; per-phase seconds of every step but the first."""
    import torch

    times: dict[str, list[float]] = {phase: [] for phase in PHASES}
    for number, (queries, passages) in enumerate(batches):
        loss, tokenize_s, forward_s = step_fn(queries, passages)
        started = time.perf_counter()
        loss.backward()
        backward_s = time.perf_counter() - started
        started = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        optimizer_s = time.perf_counter() - started
        if number:  # the first step warms up allocators and kernels
            for phase, seconds in zip(PHASES, (tokenize_s, forward_s, backward_s, optimizer_s)):
                times[phase].append(seconds)
    return times


def run_ours(spec: dict, batches) -> dict:
    import torch

    from hybrid_retrieval.encoder import load_encoder
    from hybrid_retrieval.losses import InfoNCELoss
    from hybrid_retrieval.training import (DualEncoder, _autocast, build_optimizer, prepare_model,
                                           resolve_precision, tokenize)

    config, device = config_for(spec), torch.device("cpu")
    model, tokenizer = load_encoder(spec["base_encoder"], device)
    loaded = rss_mb()
    trainable = prepare_model(model, freeze_word_embeddings=True)
    optimizer = build_optimizer(model, config, device)
    dual, criterion = DualEncoder(model), InfoNCELoss(0.05)
    precision = resolve_precision(spec["precision"], device)

    def step(queries, passages):
        started = time.perf_counter()
        # Prefixes are already in the texts.
        query_batch = tokenize(tokenizer, queries, "", spec["max_length"], device)
        passage_batch = tokenize(tokenizer, passages, "", spec["max_length"], device)
        tokenized = time.perf_counter()
        with _autocast(device, precision):
            query_embeddings, passage_embeddings = dual(query_batch, passage_batch)
        loss = criterion(query_embeddings, passage_embeddings)
        return loss, tokenized - started, time.perf_counter() - tokenized

    times = timed_loop(step, zip(*batches), optimizer, trainable)
    return {"precision": precision, "rss_after_load_mb": loaded, "times": times}


def load_st(spec: dict):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(spec["base_encoder"], device="cpu")
    model.max_seq_length = spec["max_length"]
    model[0].auto_model.get_input_embeddings().weight.requires_grad_(False)
    return model


def run_st(spec: dict, batches) -> dict:
    import torch
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from hybrid_retrieval.training import _autocast, build_optimizer, resolve_precision

    config, device = config_for(spec), torch.device("cpu")
    model = load_st(spec)
    loaded = rss_mb()
    model.train()
    optimizer = build_optimizer(model, config, device)
    criterion = MultipleNegativesRankingLoss(model, scale=1 / 0.05)
    precision = resolve_precision(spec["precision"], device)
    trainable = [p for p in model.parameters() if p.requires_grad]

    def step(queries, passages):
        started = time.perf_counter()
        features = [model.preprocess(queries), model.preprocess(passages)]
        tokenized = time.perf_counter()
        with _autocast(device, precision):
            loss = criterion(features, None)
        return loss, tokenized - started, time.perf_counter() - tokenized

    times = timed_loop(step, zip(*batches), optimizer, trainable)
    return {"precision": precision, "rss_after_load_mb": loaded, "times": times}


def run_st_trainer(spec: dict, batches) -> dict:
    import torch
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from hybrid_retrieval.training import resolve_precision

    precision = resolve_precision(spec["precision"], torch.device("cpu"))
    model = load_st(spec)
    loaded = rss_mb()
    queries, passages = batches
    dataset = Dataset.from_dict({"anchor": [q for b in queries for q in b],
                                 "positive": [p for b in passages for p in b]})
    with tempfile.TemporaryDirectory() as output_dir:
        args = SentenceTransformerTrainingArguments(
            output_dir=output_dir, max_steps=spec["steps"] + 1,
            per_device_train_batch_size=spec["batch_size"], learning_rate=3e-5,
            weight_decay=0.01, max_grad_norm=1.0, optim="adamw_torch_fused",
            bf16=precision == "bf16", use_cpu=True, save_strategy="no", report_to=[],
            logging_strategy="no", dataloader_drop_last=True, seed=0, disable_tqdm=True)
        trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset,
                                             loss=MultipleNegativesRankingLoss(model, scale=20.0))
        started = time.perf_counter()
        trainer.train()
        total = time.perf_counter() - started
    # No per-step timings: the whole run (warm-up step included) divided by its steps.
    return {"precision": precision, "rss_after_load_mb": loaded,
            "step_s_mean_incl_warmup": total / (spec["steps"] + 1)}


def worker(variant: str, spec: dict) -> dict:
    import torch

    torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    batches = training_rows(spec)
    result = {"ours": run_ours, "st": run_st, "st-trainer": run_st_trainer}[variant](spec, batches)
    result["peak_rss_mb"] = rss_mb()
    if "times" in result:
        medians = {phase: statistics.median(v) for phase, v in result.pop("times").items()}
        result["phase_s"] = medians
        result["step_s"] = sum(medians.values())
    step_s = result.get("step_s") or result["step_s_mean_incl_warmup"]
    result["pairs_per_s"] = spec["batch_size"] / step_s
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-encoder", default="models/base_encoder")
    parser.add_argument("--shards", default="data/shards/parallel")
    parser.add_argument("--steps", type=int, default=6, help="timed steps (plus one warm-up)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--out", help="write the results as JSON here")
    parser.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        print("RESULT " + json.dumps(worker(args.worker, json.loads(args.spec))))
        return

    spec = {"base_encoder": args.base_encoder, "shards": args.shards, "steps": args.steps,
            "batch_size": args.batch_size, "max_length": args.max_length,
            "precision": args.precision, "threads": args.threads}
    results = {}
    variants = args.variants.split(",")
    if "st-trainer" in variants and importlib.util.find_spec("accelerate") is None:
        print("st-trainer skipped: SentenceTransformerTrainer needs accelerate "
              "(pip install accelerate==1.15.0)", file=sys.stderr)
        variants.remove("st-trainer")
    for variant in variants:
        done = subprocess.run([sys.executable, __file__, "--worker", variant, "--spec",
                               json.dumps(spec)], capture_output=True, text=True, check=False)
        lines = [l for l in done.stdout.splitlines() if l.startswith("RESULT ")]
        if done.returncode or not lines:
            sys.exit(f"{variant} failed:\n{done.stderr[-3000:]}")
        results[variant] = json.loads(lines[-1][len("RESULT "):])

    print(f"batch {args.batch_size}, max_length {args.max_length}, {args.steps} timed steps, "
          f"{args.threads} threads, load average {os.getloadavg()[0]:.1f}")
    print(f"{'variant':<11} {'prec':<5} {'pairs/s':>8} {'s/step':>7} "
          + " ".join(f"{p:>9}" for p in PHASES) + f" {'RSS load':>9} {'RSS peak':>9}")
    for variant, r in results.items():
        phases = r.get("phase_s", {})
        print(f"{variant:<11} {r['precision']:<5} {r['pairs_per_s']:8.2f} "
              f"{r.get('step_s', r.get('step_s_mean_incl_warmup')):7.2f} "
              + " ".join(f"{phases[p]:9.3f}" if p in phases else f"{'-':>9}" for p in PHASES)
              + f" {r['rss_after_load_mb']:8.0f}M {r['peak_rss_mb']:8.0f}M")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            json.dump({"spec": spec, "results": results}, fh, indent=2)


if __name__ == "__main__":
    main()
