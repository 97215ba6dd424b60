"""Benchmark: evaluation speed (fp32 vs bf16 autocast encoding), the retrieval step's share, and
what bf16 does to the metric.

Everything runs in this process on the real encoder and the real evaluation tables:

* **encoding speed**: a fixed-seed sample of ``--sample`` distinct texts from each of XQuAD-R
  questions, XQuAD-R candidates, MLQA-R questions and MLQA-R candidates is encoded exactly as
  the evaluate stage does (:func:`encode_texts`, its prefixes, ``max_length`` and
  ``batch_tokens``), in fp32 and under bf16 autocast, with ``--threads`` and with 1 torch
  thread (on a shared, oversubscribed machine 1 thread can beat 2), alternating, ``--repeats``
  times (medians).
  The full-set encoding time is **extrapolated** from the padded tokens/s of each sample and the
  padded tokens of the full set under the same token-budget batching (the model is
  compute-bound, so time follows padded tokens); it is labelled ``extrapolated`` in the output;
* **retrieval**: :func:`evaluate_dataset` on the *full* sets with random unit embeddings (its
  cost depends on the set sizes, not on the values), timed;
* **bf16 quality**: the questions and candidate sentences of ``--quality-paragraphs`` parallel
  XQuAD-R paragraphs (all languages, a self-contained LAReQA instance: every gold of every
  kept question is in the pool) are encoded in fp32 and bf16; reported: the largest
  |cos(fp32) - cos(bf16)| over all question x candidate scores, and the mono/cross/multi mAP of
  each precision on that subset;
* **scaling**: encoding time of 2x/4x/8x ``--sample`` XQuAD-R candidates, and retrieval time
  on 1/4, 1/2 and all XQuAD-R paragraphs (questions and candidates both grow: quadratic);
* **profile**: ``torch.profiler`` over one encoding of a sample in fp32 and in bf16 (with the
  fastest thread count), the top operators by self CPU time (where the time goes).

    python benchmarks/bench_evaluation.py --sample 64 --repeats 3 --out eval.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hybrid_retrieval.encoder import (encode_texts, load_encoder,  # noqa: E402
                                      token_budget_batches)
from hybrid_retrieval.evaluation import EvalDataset, evaluate_dataset, load_eval_dataset  # noqa: E402
from hybrid_retrieval.stage import load_params  # noqa: E402
from peak_memory import peak_rss_mb  # noqa: E402

DATASETS = ("xquad-r", "mlqa-r")
PRECISIONS = ("fp32", "bf16")
GOAL_S = 12 * 60


def config_name(precision: str, threads: int) -> str:
    return f"{precision}-t{threads}"



def precision_context(precision: str):
    """bf16: autocast around the forward (LayerNorm, softmax and pooling stay in fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type="cpu", dtype=torch.bfloat16)


def settings_from(params_path: Path) -> dict:
    cfg = load_params(str(params_path))["evaluate"]
    return {k: cfg[k] for k in ("query_prefix", "passage_prefix", "max_length", "batch_tokens")}


def padded_tokens(tokenizer, texts: list[str], prefix: str, max_length: int,
                  batch_tokens: int) -> tuple[int, int]:
    """(real tokens, padded tokens) of the distinct ``texts`` under the stage's batching."""
    distinct = list(dict.fromkeys(texts))
    ids = tokenizer([prefix + t for t in distinct], truncation=True, max_length=max_length,
                    return_attention_mask=False, return_token_type_ids=False)["input_ids"]
    lengths = np.array([len(row) for row in ids])
    padded = sum(len(b) * int(lengths[b].max()) for b in token_budget_batches(lengths, batch_tokens))
    return int(lengths.sum()), int(padded)


def encode(model, tokenizer, texts, prefix, settings, precision) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    with precision_context(precision):
        out = encode_texts(model, tokenizer, texts, prefix=prefix,
                           max_length=settings["max_length"],
                           batch_tokens=settings["batch_tokens"], device="cpu")
    return out, time.perf_counter() - started


def quality_subset(data: EvalDataset, paragraphs: int, seed: int = 13) -> EvalDataset:
    """The questions and candidates of ``paragraphs`` parallel paragraphs (cid ``lang:pNNNN:sNN``)."""
    def paragraph(cid: str) -> str:
        parts = cid.split(":")
        return parts[1] if len(parts) == 3 else cid

    keys = sorted({paragraph(c) for c in data.cid})
    chosen = set(random.Random(seed).sample(keys, min(paragraphs, len(keys))))
    keep_c = [i for i, c in enumerate(data.cid) if paragraph(c) in chosen]
    kept_cids = {data.cid[i] for i in keep_c}
    keep_q = [i for i, golds in enumerate(data.gold_cids)
              if golds and all(g in kept_cids for g in golds)]
    pick = lambda values, rows: [values[i] for i in rows]  # noqa: E731
    return EvalDataset(
        name=f"{data.name} subset", qid=pick(data.qid, keep_q),
        group_id=pick(data.group_id, keep_q), question_lang=pick(data.question_lang, keep_q),
        question_text=pick(data.question_text, keep_q), gold_cids=pick(data.gold_cids, keep_q),
        cid=pick(data.cid, keep_c), candidate_lang=pick(data.candidate_lang, keep_c),
        candidate_text=pick(data.candidate_text, keep_c))


def run(encoder: Path, eval_dir: Path, params: Path, *, sample: int, repeats: int,
        quality_paragraphs: int, threads: int, datasets=DATASETS, slow_s: float = 10.0) -> dict:
    """All measurements (see the module docstring); a configuration whose first encoding of a
    sample takes more than ``slow_s`` seconds is not repeated."""
    torch.set_num_threads(threads)
    settings = settings_from(params)
    model, tokenizer = load_encoder(encoder, "cpu")
    loaded_rss = peak_rss_mb()
    data = {name: load_eval_dataset(eval_dir, name) for name in datasets}
    rng = random.Random(13)

    # Groups: (dataset, side) -> sample texts, prefix, full-set token counts.
    groups = {}
    for name, d in data.items():
        for side, texts, prefix in (("questions", d.question_text, settings["query_prefix"]),
                                    ("candidates", d.candidate_text, settings["passage_prefix"])):
            distinct = list(dict.fromkeys(texts))
            chosen = rng.sample(distinct, min(sample, len(distinct)))
            real, padded = padded_tokens(tokenizer, distinct, prefix, settings["max_length"],
                                         settings["batch_tokens"])
            s_real, s_padded = padded_tokens(tokenizer, chosen, prefix, settings["max_length"],
                                             settings["batch_tokens"])
            groups[f"{name}/{side}"] = {"texts": chosen, "prefix": prefix,
                                        "full_distinct": len(distinct), "full_tokens": real,
                                        "full_padded_tokens": padded, "sample_tokens": s_real,
                                        "sample_padded_tokens": s_padded}

    configs = [(p, t) for t in sorted({threads, 1}, reverse=True) for p in PRECISIONS]
    for precision in PRECISIONS:  # untimed warm-up
        encode(model, tokenizer, ["warm-up"], "query: ", settings, precision)
    seconds = {(g, config_name(*c)): [] for g in groups for c in configs}
    for repeat in range(repeats):
        for key, group in groups.items():
            for precision, n_threads in configs if repeat % 2 == 0 else configs[::-1]:
                done = seconds[(key, config_name(precision, n_threads))]
                if done and done[0] > slow_s:
                    continue  # starved (2 threads on a busy machine): one measurement is enough
                torch.set_num_threads(n_threads)
                _, s = encode(model, tokenizer, group["texts"], group["prefix"], settings,
                              precision)
                seconds[(key, config_name(precision, n_threads))].append(s)
    torch.set_num_threads(threads)

    names = [config_name(*c) for c in configs]
    speed, extrapolated = {}, {c: {name: 0.0 for name in data} for c in names}
    for key, group in groups.items():
        name = key.split("/")[0]
        row = {k: group[k] for k in ("full_distinct", "full_tokens", "full_padded_tokens",
                                     "sample_padded_tokens")}
        row["sample_texts"] = len(group["texts"])
        for config in names:
            median = statistics.median(seconds[(key, config)])
            padded_per_s = group["sample_padded_tokens"] / median
            full_s = group["full_padded_tokens"] / padded_per_s
            row[config] = {"sample_s_median": round(median, 3),
                           "sample_s_all": [round(s, 3) for s in seconds[(key, config)]],
                           "texts_per_s": round(len(group["texts"]) / median, 1),
                           "padded_tokens_per_s": round(padded_per_s, 1),
                           "full_encode_s_extrapolated": round(full_s, 3)}
            extrapolated[config][name] += full_s
        speed[key] = row

    retrieval = {}
    for name, d in data.items():
        q, c = random_embeddings(len(d.qid), len(d.cid))
        started = time.perf_counter()
        evaluate_dataset(d, q, c)
        retrieval[name] = round(time.perf_counter() - started, 4)

    totals = {}
    for config in names:
        encode_s = sum(extrapolated[config].values())
        total = encode_s + sum(retrieval.values())
        totals[config] = {
            "per_dataset_s_extrapolated": {
                name: round(extrapolated[config][name] + retrieval[name], 1) for name in data},
            "encode_s_extrapolated": round(encode_s, 3),
            "retrieval_s_measured": round(sum(retrieval.values()), 3),
            "wall_s_extrapolated": round(total, 3),
            "retrieval_share": round(sum(retrieval.values()) / max(total, 1e-9), 4),
            "texts_per_s": round(sum(g["full_distinct"] for g in groups.values())
                                 / max(encode_s, 1e-9), 1),
            "meets_goal_12_min": total < GOAL_S,
        }
    base = config_name("fp32", threads)
    for config in names:
        totals[config]["speedup_vs_" + base] = round(
            totals[base]["wall_s_extrapolated"] / max(totals[config]["wall_s_extrapolated"],
                                                      1e-9), 3)

    quality = None
    if quality_paragraphs and "xquad-r" in data:
        subset = quality_subset(data["xquad-r"], quality_paragraphs)
        emb, maps, times = {}, {}, {}
        for precision in PRECISIONS:
            q, tq = encode(model, tokenizer, subset.question_text, settings["query_prefix"],
                           settings, precision)
            c, tc = encode(model, tokenizer, subset.candidate_text, settings["passage_prefix"],
                           settings, precision)
            emb[precision], times[precision] = (q, c), tq + tc
            summary = evaluate_dataset(subset, q, c).summary
            maps[precision] = {s: summary[s]["map"] for s in ("mono", "cross", "multi")}
        scores = {p: emb[p][0] @ emb[p][1].T for p in PRECISIONS}
        diff = {s: round(abs(maps["bf16"][s] - maps["fp32"][s]), 6) for s in maps["fp32"]}
        quality = {"questions": len(subset.qid), "candidates": len(subset.cid),
                   "paragraphs": quality_paragraphs,
                   "max_abs_cos_diff": float(np.abs(scores["fp32"] - scores["bf16"]).max()),
                   "min_embedding_cos_fp32_bf16": float(min(
                       (emb["fp32"][i] * emb["bf16"][i]).sum(axis=1).min() for i in (0, 1))),
                   "map": maps, "map_abs_diff": diff,
                   "max_map_abs_diff": max(diff.values()),
                   "bf16_ok_under_0.002_map": max(diff.values()) < 0.002,
                   "encode_s": {p: round(t, 2) for p, t in times.items()}}
    best = min(names, key=lambda c: totals[c]["wall_s_extrapolated"])
    precision, n_threads = best.split("-t")[0], int(best.split("-t")[1])
    torch.set_num_threads(n_threads)
    scale = scaling(model, tokenizer, data, settings, sample, repeats, precision,
                    retrieval["xquad-r"]) if "xquad-r" in data else None
    prof = {p: profile(model, tokenizer, groups, settings, p) for p in PRECISIONS}
    torch.set_num_threads(threads)
    return {"settings": {**settings, "threads": threads, "sample_per_group": sample,
                         "repeats": repeats, "encoder": str(encoder)},
            "encoding": speed, "retrieval_s_full_sets": retrieval,
            "full_evaluation": totals, "fastest": best, "bf16_quality": quality,
            "scaling": scale, "profile": prof,
            "peak_rss_mb": round(peak_rss_mb(), 1), "rss_after_load_mb": round(loaded_rss, 1),
            "goal_s": GOAL_S}


def random_embeddings(n_q: int, n_c: int, dim: int = 384) -> tuple[np.ndarray, np.ndarray]:
    gen = np.random.default_rng(0)
    q = gen.standard_normal((n_q, dim)).astype(np.float32)
    c = gen.standard_normal((n_c, dim)).astype(np.float32)
    return (q / np.linalg.norm(q, axis=1, keepdims=True),
            c / np.linalg.norm(c, axis=1, keepdims=True))


def exponent(seconds: dict[int, float]) -> float:
    """Growth exponent k of time ~ input^k between the smallest and largest input."""
    lo, hi = min(seconds), max(seconds)
    return float(np.log(max(seconds[hi], 1e-9) / max(seconds[lo], 1e-9)) / np.log(hi / lo))


def scaling(model, tokenizer, data, settings, sample, repeats, precision,
            full_retrieval_s: float) -> dict:
    """Encoding at 1x/2x/4x ``sample`` candidates (medians of ``repeats``); retrieval at 1/4 and
    1/2 of the paragraphs (one run each) and all of them (``full_retrieval_s``, measured)."""
    d = data["xquad-r"]
    pool = random.Random(7).sample(list(dict.fromkeys(d.candidate_text)),
                                   min(8 * sample, len(set(d.candidate_text))))
    factors = (1, 2, 4)
    encode_s = {f: [] for f in factors}
    for repeat in range(repeats):
        for f in factors if repeat % 2 == 0 else factors[::-1]:
            _, s = encode(model, tokenizer, pool[:f * len(pool) // 4],
                          settings["passage_prefix"], settings, precision)
            encode_s[f].append(s)
    paragraphs = len({c.split(":")[1] if c.count(":") == 2 else c for c in d.cid})
    retrieval_s, sizes = {}, {}
    for f in factors:
        if f == 4:
            retrieval_s[f], sizes[f] = full_retrieval_s, (len(d.qid), len(d.cid))
            continue
        subset = quality_subset(d, max(1, paragraphs * f // 4), seed=5)
        q, c = random_embeddings(len(subset.qid), len(subset.cid))
        started = time.perf_counter()
        evaluate_dataset(subset, q, c)
        retrieval_s[f], sizes[f] = time.perf_counter() - started, (len(subset.qid), len(subset.cid))
    encode_med = {f: statistics.median(v) for f, v in encode_s.items()}
    return {"precision": precision,
            "encode": {"texts": {f"{f}x": f * len(pool) // 4 for f in factors},
                       "seconds": {f"{f}x": round(encode_med[f], 3) for f in factors},
                       "exponent": round(exponent(encode_med), 2)},
            "retrieval": {"questions_x_candidates": {f"{f}x": sizes[f] for f in factors},
                          "seconds": {f"{f}x": round(retrieval_s[f], 3) for f in factors},
                          "exponent": round(exponent(retrieval_s), 2)}}


def profile(model, tokenizer, groups, settings, precision, top: int = 5) -> dict:
    """Top operators (self CPU time) of encoding the XQuAD-R candidate sample once."""
    from torch.profiler import ProfilerActivity, profile as torch_profile

    key = "xquad-r/candidates" if "xquad-r/candidates" in groups else next(iter(groups))
    group = groups[key]
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        encode(model, tokenizer, group["texts"], group["prefix"], settings, precision)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events) or 1
    return {"what": f"encode {len(group['texts'])} {key} texts, {precision}",
            "top_ops": [{"op": e.key, "self_cpu_share": round(e.self_cpu_time_total / total, 3),
                         "calls": e.count} for e in events[:top]]}


def pipeline_measured(metrics: Path) -> dict | None:
    """The evaluate stage's own timings (``run`` of metrics/base.json), when present."""
    try:
        run_info = json.loads(metrics.read_text())["run"]
    except (OSError, KeyError, ValueError):
        return None
    return {"source": str(metrics), "wall_s": run_info.get("wall_s"),
            "datasets": {k: {f: v.get(f) for f in ("encode_s", "retrieval_s",
                                                   "encoded_texts_per_s")}
                         for k, v in run_info.get("datasets", {}).items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder", type=Path, default=REPO / "models/base_encoder")
    parser.add_argument("--eval-dir", type=Path, default=REPO / "data/eval")
    parser.add_argument("--params", type=Path, default=REPO / "params.yaml")
    parser.add_argument("--sample", type=int, default=64, help="texts per dataset and side")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quality-paragraphs", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--slow-s", type=float, default=10.0,
                        help="do not repeat a configuration whose first run took longer")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = run(args.encoder, args.eval_dir, args.params, sample=args.sample,
                 repeats=args.repeats, quality_paragraphs=args.quality_paragraphs,
                 threads=args.threads, slow_s=args.slow_s)
    for key in ("full_evaluation", "bf16_quality", "scaling", "profile"):
        print(key, json.dumps(result[key], indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
