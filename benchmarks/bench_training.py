"""Benchmark: our training step vs Sentence Transformers' MultipleNegativesRankingLoss training.

Same base encoder, the same hybrid batches (rows drawn by our sampler), batch size, maximum
sequence length, number of steps, AdamW (lr 3e-5, wd 0.01, fused), frozen word embeddings and
precision. Variants, each in its own process (so peak RSS is that variant's alone):

* ``ours``: the building blocks of :func:`hybrid_retrieval.training.train` (``tokenize`` with
  dynamic padding, ``DualEncoder``, ``InfoNCELoss``), timed per phase;
* ``st``: ``SentenceTransformer`` + ``MultipleNegativesRankingLoss(scale=20)`` driven by the same
  hand-written loop (``model.preprocess``, the loss's forward, backward, optimizer), timed per phase;
* ``st-trainer``: ``SentenceTransformerTrainer`` with that loss on the same rows, timed as a whole
  (what a Sentence Transformers user would run; no phase breakdown);
* ``ours-chunked``: ``ours`` with each side's rows sorted by length and encoded in
  ``--chunks`` slices, each padded to its own longest text (:func:`embed_chunked`): the same
  loss over the same in-batch negatives, fewer padded tokens;
* ``ablation``: one process, both models, every mode of :data:`ABLATION_MODES` (ST fp32/bf16,
  ours fp32/bf16, joint padding, chunked) run in turn on the *same* batch at every step (the
  order rotates), so the ratios between modes are paired and survive a loaded machine; plus
  fused vs foreach vs for-loop AdamW on the trainable parameters (optimizer step alone);
* ``scaling``: ``ours`` (bf16, separate padding) at batch sizes ``--scaling-batches``,
  alternating, steps/s and pairs/s.

The first step of each loop variant is an untimed warm-up; step times are medians. Example::

    python benchmarks/bench_training.py --steps 6 --batch-size 32 --max-length 64 --out bench.json
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from peak_memory import peak_rss_mb

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

VARIANTS = ("ours", "ours-chunked", "st", "st-trainer", "ablation", "scaling")
PHASES = ("tokenize", "forward", "backward", "optimizer")
#: (name, model, precision, padding); padding: "separate" (each side to its own longest row),
#: "joint" (both sides to the longest row of either), "chunked" (sorted slices, :func:`embed_chunked`).
ABLATION_MODES = (
    ("st-fp32", "st", "fp32", "separate"),
    ("st-bf16", "st", "bf16", "separate"),
    ("ours-fp32", "ours", "fp32", "separate"),
    ("ours-bf16-joint", "ours", "bf16", "joint"),
    ("ours-bf16", "ours", "bf16", "separate"),
    ("ours-bf16-chunked", "ours", "bf16", "chunked"),
    ("ours-fp32-chunked", "ours", "fp32", "chunked"),
)



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


#: smaller slices cost more in per-operator overhead than their padding saves
MIN_CHUNK_ROWS = 8


def embed_chunked(model, batch: dict, chunks: int):
    """:func:`hybrid_retrieval.encoder.embed` of ``batch`` in ``chunks`` slices of rows sorted by
    length, each cut to its own longest row; rows come back in the input order.

    The same embeddings as one padded forward (padding is masked out of attention and pooling),
    with fewer padded positions in every matrix product.
    """
    import torch

    from hybrid_retrieval.encoder import embed

    chunks = min(chunks, len(batch["attention_mask"]) // MIN_CHUNK_ROWS)
    if chunks <= 1:
        return embed(model, batch)
    lengths = batch["attention_mask"].sum(dim=1)
    order = torch.argsort(lengths, descending=True, stable=True)
    parts = []
    for rows in torch.tensor_split(order, chunks):
        width = int(lengths[rows].max())
        parts.append(embed(model, {k: v[rows, :width] for k, v in batch.items()}))
    inverse = torch.empty_like(order)
    inverse[order] = torch.arange(len(order))
    return torch.cat(parts)[inverse]


def run_ours(spec: dict, batches) -> dict:
    import torch

    from hybrid_retrieval.encoder import load_encoder
    from hybrid_retrieval.losses import InfoNCELoss
    from hybrid_retrieval.encoder import DualEncoder, tokenize
    from hybrid_retrieval.precision import autocast as _autocast, resolve_precision
    from hybrid_retrieval.training import build_optimizer, prepare_model

    config, device = config_for(spec), torch.device("cpu")
    model, tokenizer = load_encoder(spec["base_encoder"], device)
    loaded = peak_rss_mb()
    trainable = prepare_model(model, freeze_word_embeddings=True)
    optimizer = build_optimizer(model, config, device)
    dual, criterion = DualEncoder(model), InfoNCELoss(0.05)
    precision = resolve_precision(spec["precision"], device)
    chunks = spec.get("chunks", 1)

    def step(queries, passages):
        started = time.perf_counter()
        # Prefixes are already in the texts.
        query_batch = tokenize(tokenizer, queries, "", spec["max_length"], device)
        passage_batch = tokenize(tokenizer, passages, "", spec["max_length"], device)
        tokenized = time.perf_counter()
        with _autocast(device, precision):
            if chunks > 1:
                query_embeddings = embed_chunked(model, query_batch, chunks)
                passage_embeddings = embed_chunked(model, passage_batch, chunks)
            else:
                query_embeddings, passage_embeddings = dual(query_batch, passage_batch)
        loss = criterion(query_embeddings, passage_embeddings)
        return loss, tokenized - started, time.perf_counter() - tokenized

    times = timed_loop(step, zip(*batches), optimizer, trainable)
    return {"precision": precision, "chunks": chunks, "rss_after_load_mb": loaded, "times": times}


def load_st(spec: dict):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(spec["base_encoder"], device="cpu")
    model.max_seq_length = spec["max_length"]
    model[0].auto_model.get_input_embeddings().weight.requires_grad_(False)
    return model


def run_st(spec: dict, batches) -> dict:
    import torch
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from hybrid_retrieval.precision import autocast as _autocast, resolve_precision
    from hybrid_retrieval.training import build_optimizer

    config, device = config_for(spec), torch.device("cpu")
    model = load_st(spec)
    loaded = peak_rss_mb()
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

    from hybrid_retrieval.precision import resolve_precision

    precision = resolve_precision(spec["precision"], torch.device("cpu"))
    model = load_st(spec)
    loaded = peak_rss_mb()
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


def run_ablation(spec: dict, batches) -> dict:
    """Every mode of :data:`ABLATION_MODES` on the same batch at each step, order rotating."""
    import torch
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from hybrid_retrieval.encoder import load_encoder
    from hybrid_retrieval.losses import InfoNCELoss
    from hybrid_retrieval.encoder import tokenize
    from hybrid_retrieval.precision import autocast as _autocast
    from hybrid_retrieval.training import build_optimizer, prepare_model

    config, device = config_for(spec), torch.device("cpu")
    ours, tokenizer = load_encoder(spec["base_encoder"], device)
    ours_trainable = prepare_model(ours, freeze_word_embeddings=True)
    ours_optimizer = build_optimizer(ours, config, device)
    st = load_st(spec)
    st.train()
    st_trainable = [p for p in st.parameters() if p.requires_grad]
    st_optimizer = build_optimizer(st, config, device)
    mnrl, info_nce = MultipleNegativesRankingLoss(st, scale=1 / 0.05), InfoNCELoss(0.05)
    chunks, max_length = spec.get("chunks", 4), spec["max_length"]
    chosen = tuple(m for m in ABLATION_MODES if m[0] in spec.get("modes", [m[0] for m in ABLATION_MODES]))

    def loss_of(model_kind, precision, padding, queries, passages):
        if model_kind == "st":
            features = [st.preprocess(queries), st.preprocess(passages)]
            with _autocast(device, precision):
                return mnrl(features, None)
        if padding == "joint":
            both = tokenize(tokenizer, queries + passages, "", max_length, device)
            query_batch = {k: v[:len(queries)] for k, v in both.items()}
            passage_batch = {k: v[len(queries):] for k, v in both.items()}
        else:
            query_batch = tokenize(tokenizer, queries, "", max_length, device)
            passage_batch = tokenize(tokenizer, passages, "", max_length, device)
        with _autocast(device, precision):
            n = chunks if padding == "chunked" else 1
            return info_nce(embed_chunked(ours, query_batch, n),
                            embed_chunked(ours, passage_batch, n))

    seconds: dict[str, list[float]] = {mode[0]: [] for mode in chosen}
    for number, (queries, passages) in enumerate(zip(*batches)):
        shift = number % len(chosen)
        for name, model_kind, precision, padding in chosen[shift:] + chosen[:shift]:
            optimizer, trainable = ((st_optimizer, st_trainable) if model_kind == "st"
                                    else (ours_optimizer, ours_trainable))
            started = time.perf_counter()
            loss = loss_of(model_kind, precision, padding, queries, passages)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if number:  # step 0 warms up every mode
                seconds[name].append(time.perf_counter() - started)
    modes = {}
    for name, model_kind, precision, padding in chosen:
        median = statistics.median(seconds[name])
        modes[name] = {"model": model_kind, "precision": precision, "padding": padding,
                       "step_s": median, "step_s_all": [round(x, 3) for x in seconds[name]],
                       "pairs_per_s": spec["batch_size"] / median}
    for row in modes.values():
        for ref in ("st-fp32", "st-bf16"):
            if ref in modes:
                row["x_" + ref.replace("-", "_")] = modes[ref]["step_s"] / row["step_s"]
    return {"modes": modes, "chunks": chunks,
            "optimizer": optimizer_variants(ours_trainable, config)}


def optimizer_variants(parameters, config, repeats: int = 7) -> dict:
    """Seconds of one AdamW step on ``parameters`` (random gradients): fused, foreach, for-loop."""
    import torch

    for p in parameters:
        p.grad = torch.randn_like(p) * 1e-3
    kinds = {"fused": {"fused": True}, "foreach": {"foreach": True},
             "for-loop": {"foreach": False}}
    optimizers = {k: torch.optim.AdamW(parameters, lr=config.learning_rate,
                                       weight_decay=config.weight_decay, **kw)
                  for k, kw in kinds.items()}
    seconds = {k: [] for k in kinds}
    for repeat in range(repeats + 1):
        for kind, optimizer in optimizers.items():
            started = time.perf_counter()
            optimizer.step()
            if repeat:
                seconds[kind].append(time.perf_counter() - started)
    for p in parameters:
        p.grad = None
    return {k: {"step_ms": 1000 * statistics.median(v)} for k, v in seconds.items()}


def run_scaling(spec: dict, batches) -> dict:
    """Training steps/s of ``ours`` (separate padding, resolved precision) per batch size."""
    import torch

    from hybrid_retrieval.encoder import load_encoder
    from hybrid_retrieval.losses import InfoNCELoss
    from hybrid_retrieval.encoder import DualEncoder, tokenize
    from hybrid_retrieval.precision import autocast as _autocast, resolve_precision
    from hybrid_retrieval.training import build_optimizer, prepare_model

    config, device = config_for(spec), torch.device("cpu")
    model, tokenizer = load_encoder(spec["base_encoder"], device)
    trainable = prepare_model(model, freeze_word_embeddings=True)
    optimizer = build_optimizer(model, config, device)
    dual, criterion = DualEncoder(model), InfoNCELoss(0.05)
    precision = resolve_precision(spec["precision"], device)
    sizes = spec["scaling_batches"]
    queries, passages = [q for b in batches[0] for q in b], [p for b in batches[1] for p in b]
    seconds: dict[int, list[float]] = {size: [] for size in sizes}
    for repeat in range(spec["steps"] + 1):
        for size in sizes if repeat % 2 == 0 else sizes[::-1]:
            offset = (repeat * max(sizes)) % max(1, len(queries) - size)
            started = time.perf_counter()
            query_batch = tokenize(tokenizer, queries[offset:offset + size], "",
                                   spec["max_length"], device)
            passage_batch = tokenize(tokenizer, passages[offset:offset + size], "",
                                     spec["max_length"], device)
            with _autocast(device, precision):
                loss = criterion(*dual(query_batch, passage_batch))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if repeat:
                seconds[size].append(time.perf_counter() - started)
    rows = {str(size): {"step_s": statistics.median(v), "steps_per_s": 1 / statistics.median(v),
                        "pairs_per_s": size / statistics.median(v)}
            for size, v in seconds.items()}
    return {"precision": precision, "batch_sizes": rows}


def worker(variant: str, spec: dict) -> dict:
    import torch

    torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    if variant == "scaling":  # enough rows for the largest batch at every step
        spec = {**spec, "batch_size": max(spec["scaling_batches"])}
    batches = training_rows(spec)
    if variant == "ours-chunked":
        spec = {**spec, "chunks": spec.get("chunks", 4)}
    result = {"ours": run_ours, "ours-chunked": run_ours, "st": run_st,
              "st-trainer": run_st_trainer, "ablation": run_ablation,
              "scaling": run_scaling}[variant](spec, batches)
    result["peak_rss_mb"] = peak_rss_mb()
    if variant in ("ablation", "scaling"):
        return result
    if "times" in result:
        medians = {phase: statistics.median(v) for phase, v in result.pop("times").items()}
        result["phase_s"] = medians
        result["step_s"] = sum(medians.values())
    step_s = result.get("step_s") or result["step_s_mean_incl_warmup"]
    result["pairs_per_s"] = spec["batch_size"] / step_s
    return result


def run(spec: dict, variants: list[str]) -> dict:
    """Each variant in its own process; ``{variant: result}`` (``st-trainer`` skipped without
    accelerate, with a note in the result)."""
    results = {}
    for variant in variants:
        if variant == "st-trainer" and importlib.util.find_spec("accelerate") is None:
            results[variant] = {"skipped": "SentenceTransformerTrainer needs accelerate "
                                           "(pip install accelerate==1.15.0)"}
            continue
        done = subprocess.run([sys.executable, __file__, "--worker", variant, "--spec",
                               json.dumps(spec)], capture_output=True, text=True, check=False)
        lines = [l for l in done.stdout.splitlines() if l.startswith("RESULT ")]
        if done.returncode or not lines:
            raise RuntimeError(f"{variant} failed:\n{done.stderr[-3000:]}")
        results[variant] = json.loads(lines[-1][len("RESULT "):])
    return results


def print_results(spec: dict, results: dict) -> None:
    print(f"batch {spec['batch_size']}, max_length {spec['max_length']}, {spec['steps']} timed "
          f"steps, {spec['threads']} threads, load average {os.getloadavg()[0]:.1f}")
    print(f"{'variant':<13} {'prec':<5} {'pairs/s':>8} {'s/step':>7} "
          + " ".join(f"{p:>9}" for p in PHASES) + f" {'RSS load':>9} {'RSS peak':>9}")
    for variant, r in results.items():
        if "pairs_per_s" not in r:
            continue
        phases = r.get("phase_s", {})
        print(f"{variant:<13} {r['precision']:<5} {r['pairs_per_s']:8.2f} "
              f"{r.get('step_s', r.get('step_s_mean_incl_warmup')):7.2f} "
              + " ".join(f"{phases[p]:9.3f}" if p in phases else f"{'-':>9}" for p in PHASES)
              + f" {r['rss_after_load_mb']:8.0f}M {r['peak_rss_mb']:8.0f}M")
    if "ablation" in results:
        print("ablation (same batches, one process, paired):")
        for name, row in results["ablation"]["modes"].items():
            print(f"  {name:<19} {row['pairs_per_s']:7.2f} pairs/s  "
                  + "  ".join(f"x{row[k]:.2f} {k[2:]}" for k in ("x_st_fp32", "x_st_bf16")
                              if k in row))
        print("  AdamW step: " + ", ".join(f"{k} {v['step_ms']:.0f} ms" for k, v in
                                           results["ablation"]["optimizer"].items()))
    if "scaling" in results:
        print("scaling: " + ", ".join(f"batch {b}: {r['steps_per_s']:.3f} steps/s "
                                      f"({r['pairs_per_s']:.1f} pairs/s)"
                                      for b, r in results["scaling"]["batch_sizes"].items()))


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
    parser.add_argument("--chunks", type=int, default=4, help="slices of ours-chunked")
    parser.add_argument("--scaling-batches", default="16,32,64")
    parser.add_argument("--variants", default="ours,ours-chunked,st,ablation,scaling",
                        help=f"some of {','.join(VARIANTS)}")
    parser.add_argument("--out", help="write the results as JSON here")
    parser.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        print("RESULT " + json.dumps(worker(args.worker, json.loads(args.spec))))
        return

    spec = {"base_encoder": args.base_encoder, "shards": args.shards, "steps": args.steps,
            "batch_size": args.batch_size, "max_length": args.max_length,
            "precision": args.precision, "threads": args.threads, "chunks": args.chunks,
            "scaling_batches": [int(x) for x in args.scaling_batches.split(",")]}
    try:
        results = run(spec, args.variants.split(","))
    except RuntimeError as exc:
        sys.exit(str(exc))
    print_results(spec, results)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            json.dump({"spec": spec, "results": results}, fh, indent=2)


if __name__ == "__main__":
    main()
