"""Benchmark: the DVC pipeline itself - no-op ``dvc repro`` / ``dvc status`` wall time, and the
peak memory and wall time of every stage on a tiny but complete run.

Nothing is run in the repository: the working tree's pipeline (``dvc.yaml``, ``params.yaml``,
``stages/``, ``hybrid_retrieval/``) is copied into a scratch folder (no git, ``core.no_scm``),
``params.yaml`` is shrunk (:data:`TINY`: a 40-question SQuAD subset, two languages per
evaluation set, 2 training steps, ...; the batch shapes - ``train.batch_size``/``max_length``,
``evaluate.batch_tokens`` - stay the real ones, so the per-stage peaks are the real ones for
training and evaluation) and the whole pipeline is built with ``dvc repro``. Every stage process
records its own peak resident memory (``VmHWM``) and wall time at exit, through a
``sitecustomize`` hook on ``PYTHONPATH``; ``dvc.yaml`` is not changed. Then ``dvc repro`` (a
no-op: everything is up to date) and ``dvc status`` are each timed ``--repeats`` times.

    python benchmarks/bench_pipeline.py --workdir /tmp/bench_pipe --out pipeline.json

``--repo-status DIR`` also times ``dvc status`` in DIR (read-only, but it takes DVC's repo lock
for about a second: only do it while no ``dvc repro`` is starting there).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
STAGE_LOG = "BENCH_STAGE_LOG"

#: params.yaml overrides of the tiny pipeline (dotted keys). Batch shapes are kept.
TINY = {
    "prepare.max_questions": 40,
    "eval_data.xquad_r_languages": ["de", "en"],
    "eval_data.mlqa_r_languages": ["de", "en"],
    "eval_data.faq_languages": ["de", "en"],
    "domain.languages": ["de", "en"],
    "domain.max_mono_pairs_per_language": 60,
    "domain.max_cross_pairs_per_language": 60,
    "mt_quality.max_pairs": 4,
    "train.steps": 2,
    "train.warmup_steps": 0,
    "train.checkpoint_every": 0,
    "evaluate.datasets": ["debian-faq-r"],
    "evaluate.max_length": 128,   # FAQ answers run to ~150 tokens; the batches stay 8192 tokens
}

#: Written next to a ``sitecustomize.py``: a stage process appends its peak RSS at exit.
HOOK = '''
import atexit, json, os, sys, time
_started = time.time()
def _bench_record():
    if not any("stages/" in a for a in sys.argv[:1]):
        return
    peak = 0.0
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
    except OSError:
        pass
    args = sys.argv[1:]
    extra = args[args.index("--lang") + 1] if "--lang" in args else None
    with open(os.environ["%s"], "a") as fh:
        fh.write(json.dumps({"script": os.path.basename(sys.argv[0]), "item": extra,
                             "out": args[args.index("--out") + 1] if "--out" in args else None,
                             "peak_rss_mb": round(peak, 1),
                             "wall_s": round(time.time() - _started, 2)}) + "\\n")
atexit.register(_bench_record)
''' % STAGE_LOG


def working_tree_files(repo: Path) -> list[str]:
    """Tracked and untracked-but-not-ignored files of ``repo`` (its working-tree versions)."""
    done = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=repo,
                          capture_output=True, text=True, check=True)
    return [f for f in done.stdout.split("\0") if f]


def _set(tree: dict, dotted: str, value) -> None:
    *parents, leaf = dotted.split(".")
    for key in parents:
        tree = tree[key]
    if leaf not in tree:
        raise KeyError(f"params.yaml has no '{dotted}' (bench_pipeline.TINY is out of date)")
    tree[leaf] = value


def make_scratch(repo: Path, dest: Path, overrides: dict) -> None:
    """Copy the pipeline's files into ``dest`` (no outputs, no lock) with tiny params."""
    keep = ("dvc.yaml", "params.yaml", "pyproject.toml", ".dvcignore", ".dvc/config",
            ".dvc/plots/")
    for name in working_tree_files(repo):
        if name.startswith(("stages/", "hybrid_retrieval/")) or name.startswith(keep):
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(repo / name, target)
    config = dest / ".dvc" / "config"
    config.write_text(config.read_text().rstrip() + "\n    no_scm = true\n")
    params = yaml.safe_load((dest / "params.yaml").read_text())
    mirror = params["data"]["mirror"]
    params["data"]["mirror"] = str((repo / mirror).resolve())  # relative to the real repo
    for key, value in overrides.items():
        _set(params, key, value)
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def dvc(args: list[str], cwd: Path, env: dict | None = None) -> tuple[float, subprocess.CompletedProcess]:
    env = dict(os.environ if env is None else env)
    # the stages run "python ...": this interpreter's
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, env=env,
                          capture_output=True, text=True)
    return time.perf_counter() - started, done


def timed(args: list[str], cwd: Path, repeats: int) -> dict:
    """Median wall time of ``dvc <args>`` over ``repeats`` runs (after one untimed run)."""
    dvc(args, cwd)  # warm the state database and the file-system cache
    seconds, last = [], None
    for _ in range(repeats):
        s, last = dvc(args, cwd)
        seconds.append(s)
    return {"command": "dvc " + " ".join(args), "median_s": round(statistics.median(seconds), 3),
            "all_s": [round(s, 3) for s in seconds], "returncode": last.returncode,
            "output_tail": (last.stdout + last.stderr).strip().splitlines()[-3:]}


def stage_name(record: dict) -> str:
    script = record["script"].removesuffix(".py")
    if script == "translate" and record.get("item"):
        return f"translate@{record['item']}"
    if script == "evaluate":
        return "evaluate@base" if "base" in (record.get("out") or "") else "evaluate@trained"
    return script


def run(workdir: Path | None, repeats: int, repo: Path = REPO, overrides: dict | None = None,
        repo_status: Path | None = None) -> dict:
    own = workdir is None
    scratch = Path(tempfile.mkdtemp(prefix="bench_pipe_")) if own else workdir
    try:
        if scratch.exists() and any(scratch.iterdir()):
            shutil.rmtree(scratch)
        scratch.mkdir(parents=True, exist_ok=True)
        make_scratch(repo, scratch, TINY if overrides is None else overrides)
        hook = scratch / ".bench_hook"
        hook.mkdir()
        (hook / "sitecustomize.py").write_text(HOOK)
        log = scratch / ".bench_hook" / "stages.jsonl"
        env = dict(os.environ, **{STAGE_LOG: str(log), "TOKENIZERS_PARALLELISM": "false",
                                  "PYTHONPATH": os.pathsep.join(
                                      [str(hook), str(scratch), os.environ.get("PYTHONPATH", "")])})
        env.pop("DVC_SITE_CACHE_DIR", None)
        build_s, done = dvc(["repro"], scratch, env)
        if done.returncode:
            raise RuntimeError(f"tiny pipeline build failed:\n{(done.stdout + done.stderr)[-3000:]}")
        stages = {}
        for line in log.read_text().splitlines():
            record = json.loads(line)
            stages[stage_name(record)] = {"peak_rss_mb": record["peak_rss_mb"],
                                          "wall_s": record["wall_s"]}
        result = {
            "tiny_params": TINY if overrides is None else overrides,
            "build_s": round(build_s, 1),
            "stages": stages,
            "noop_repro": timed(["repro"], scratch, repeats),
            "status": timed(["status"], scratch, repeats),
            "goal_noop_s": 5.0,
        }
        result["noop_repro"]["meets_goal"] = result["noop_repro"]["median_s"] < 5.0
        if repo_status is not None:
            result["repo_status"] = timed(["status"], repo_status, repeats)
        return result
    finally:
        if own:
            shutil.rmtree(scratch, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, help="scratch folder (emptied; default: a temp one)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--repo-status", type=Path, help="also time 'dvc status' in this repo")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = run(args.workdir, args.repeats, repo_status=args.repo_status)
    print(f"{'stage':<22}{'peak RSS MB':>12}{'wall s':>9}")
    for name, row in result["stages"].items():
        print(f"{name:<22}{row['peak_rss_mb']:>12.0f}{row['wall_s']:>9.1f}")
    print(f"no-op dvc repro {result['noop_repro']['median_s']:.2f} s, dvc status "
          f"{result['status']['median_s']:.2f} s (tiny build {result['build_s']:.0f} s)")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
