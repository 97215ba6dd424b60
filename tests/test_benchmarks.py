"""benchmarks/run.py --quick end to end on tiny local inputs: the JSON it writes has every section,
the machine facts and the goal verdicts (the numbers themselves are not checked)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import torch

from hybrid_retrieval.io import write_parquet
from hybrid_retrieval.schemas import EVAL_CANDIDATES, EVAL_QUESTIONS, SHARD
from hybrid_retrieval.shards import pair_kind, write_shards

REPO = Path(__file__).resolve().parents[1]
WORDS = ["capital", "France", "Paris", "city", "river", "Debian", "package", "install",
         "Hauptstadt", "Stadt", "Fluss", "Paket", "question", "answer", "largest", "north"]


def write_eval_dir(root: Path) -> Path:
    """xquad-r and mlqa-r folders: 2 languages, 6 parallel paragraphs of 2 sentences, 1 question
    per paragraph (cids ``lang:pNNNN:sNN`` as prepare_eval writes them)."""
    for name in ("xquad-r", "mlqa-r"):
        questions, candidates = [], []
        for lang in ("en", "de"):
            for p in range(6):
                for s in range(2):
                    words = " ".join(WORDS[(p * 3 + s + k) % len(WORDS)] for k in range(8))
                    candidates.append({"cid": f"{lang}:p{p:04d}:s{s:02d}", "lang": lang,
                                       "text": f"{lang} {words} {p}.", "context": "ctx"})
                questions.append({"qid": f"{lang}-{p}", "group_id": f"g{p}", "lang": lang,
                                  "text": f"{lang} {WORDS[p]} {WORDS[p + 1]} {p}?",
                                  "gold_cids": [f"{lang}:p{p:04d}:s00"]})
        folder = root / name
        write_parquet(pa.Table.from_pylist(questions, schema=EVAL_QUESTIONS),
                      folder / "questions.parquet", schema=EVAL_QUESTIONS)
        write_parquet(pa.Table.from_pylist(candidates, schema=EVAL_CANDIDATES),
                      folder / "candidates.parquet", schema=EVAL_CANDIDATES)
    return root


def write_shard_dir(folder: Path) -> Path:
    rows = []
    for i in range(64):
        words = " ".join(WORDS[(i + k) % len(WORDS)] for k in range(6))
        for q in ("en", "pt"):
            for p in ("en", "pt"):
                rows.append({"pair_id": f"id{i}", "query_lang": q, "passage_lang": p,
                             "query": f"{q} {words[:20]} {i}?", "passage": f"{p} {words} {i}.",
                             "source": "qa", "kind": pair_kind(q, p)})
    write_shards(pa.Table.from_pylist(rows, schema=SHARD), folder, rows_per_shard=512)
    return folder


def test_quick_run_writes_the_json_structure(tmp_path: Path, tiny_encoder_dir: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks/run.py"), "--quick", "--tiny-models",
         "--out", str(out), "--workdir", str(tmp_path / "work"),
         "--encoder", str(tiny_encoder_dir), "--eval-dir", str(write_eval_dir(tmp_path / "eval")),
         "--shards", str(write_shard_dir(tmp_path / "shards")), "--train-threads", "1"],
        capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())

    machine = result["machine"]
    for key in ("cpu_model", "logical_cores", "ram_gib", "gpu", "isa", "libraries"):
        assert key in machine
    assert machine["libraries"]["torch"] and machine["libraries"]["ctranslate2"]
    assert {"start", "after_translation", "after_evaluation"} <= set(result["load_average"])
    assert result["mode"] == "quick" and result["wall_s"] > 0

    for section in ("translation", "training", "evaluation"):
        assert "error" not in result[section], result[section]
    assert result["pipeline"] == {"skipped": "not in --quick mode"}

    greedy = result["translation"]["marian_opus_mt_shape"]
    assert {"hf-dynamic-int8-t1", "ct2-int8", "ct2-int8-tuned"} <= set(greedy)
    for row in greedy.values():
        assert row["tokens_per_second_median"] > 0 and row["peak_rss_mb_max"] > 0
        assert row["x_hf_dynamic_int8"] > 0
    assert set(result["translation"]["scaling"]["ct2-int8-tuned"]["seconds"]) == {"1x", "2x", "4x"}

    training = result["training"]["results"]
    modes = training["ablation"]["modes"]
    assert {"st-fp32", "st-bf16", "ours-fp32", "ours-bf16", "ours-bf16-joint",
            "ours-bf16-chunked"} <= set(modes)
    assert all(m["pairs_per_s"] > 0 for m in modes.values())
    assert set(training["ablation"]["optimizer"]) == {"fused", "foreach", "for-loop"}
    assert set(training["scaling"]["batch_sizes"]) == {"4", "8", "16"}

    evaluation = result["evaluation"]
    assert set(evaluation["full_evaluation"]) == {"fp32-t2", "bf16-t2", "fp32-t1", "bf16-t1"}
    for row in evaluation["full_evaluation"].values():
        assert row["wall_s_extrapolated"] > 0 and 0 <= row["retrieval_share"] <= 1
    quality = evaluation["bf16_quality"]
    assert quality["questions"] > 0 and set(quality["map"]) == {"fp32", "bf16"}
    assert evaluation["scaling"]["retrieval"]["exponent"] is not None
    assert evaluation["profile"]["bf16"]["top_ops"]

    assert {"translation_ct2_ahead_of_both_peers", "training_1.2x_st_equal_settings",
            "evaluation_under_12_min"} <= set(result["verdicts"])
    assert all(isinstance(g["met"], bool) for g in result["verdicts"].values())
    goals = result["goals"]  # issue 12: flat, on whatever CPU the test meets
    assert set(goals) == {"isa", "translate_ct2_vs_hf_fp32", "translate_ct2_vs_hf_int8",
                          "train_vs_sentence_transformers", "eval_two_sets_minutes",
                          "experiment_minutes", "noop_repro_seconds", "repro_minutes"}
    assert goals["isa"] == torch.backends.cpu.get_cpu_capability()
    assert set(result["goal_sources"]) == set(goals)
    assert result["table"] and all(len(row) == 5 for row in result["table"])
    assert "GOAL" in done.stdout


def test_the_tuned_ct2_engine_never_forces_an_isa_the_cpu_lacks() -> None:
    """Issue 12: ``CT2_FORCE_CPU_ISA=AVX512`` was hard-coded and failed on AVX2-only CPUs."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench_translation import ct2_cpu_isa

    avx512 = "flags\t: fpu sse avx2 avx512f avx512bw avx512vl avx512dq\n"
    avx2_only = "flags\t: fpu sse avx avx2 fma\n"
    assert ct2_cpu_isa({}, avx512) == {"CT2_FORCE_CPU_ISA": "AVX512"}
    assert ct2_cpu_isa({}, avx2_only) == {}
    assert ct2_cpu_isa({}, "") == {}
    simulated = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
    assert ct2_cpu_isa(simulated, avx512) == {"CT2_FORCE_CPU_ISA": "AVX2"}
    assert ct2_cpu_isa({"ONEDNN_MAX_CPU_ISA": "AVX2"}, avx512) == {"CT2_FORCE_CPU_ISA": "AVX2"}
