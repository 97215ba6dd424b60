"""The tiny pipeline end to end: a second `dvc repro` is a no-op, and the experiment keys
(`mix_ratio`, `domain_ratio`) make only `train` and `evaluate@trained` stale - never translation,
shard building or the base-encoder evaluation `evaluate@base` (issues 3 and 5)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from reliability_support import copy_workspace, dvc, needs_mirror

EXPERIMENT_STAGES = {"train", "evaluate@trained"}


def _stale_stages(workspace: Path) -> set[str]:
    status = json.loads(dvc(workspace, "status", "--json").stdout or "{}")
    return set(status)


@needs_mirror
def test_tiny_pipeline_builds_every_output_and_second_repro_is_a_no_op(tiny_pipeline: Path) -> None:
    for output in ("data/squad/train.parquet", "data/translated/pt.parquet",
                   "data/shards/parallel/manifest.json", "data/shards/domain/manifest.json",
                   "models/encoder/config.json", "metrics/mt.json", "metrics/base.json",
                   "metrics/eval.json"):
        assert (tiny_pipeline / output).is_file(), output
    metrics = json.loads((tiny_pipeline / "metrics/eval.json").read_text())
    assert set(metrics["xquad-r"]) >= {"mono", "cross", "multi"}
    assert 0.0 <= metrics["xquad-r"]["multi"]["map"] <= 1.0
    assert _stale_stages(tiny_pipeline) == set()
    again = dvc(tiny_pipeline, "repro")
    assert "Running stage" not in again.stdout


@needs_mirror
@pytest.mark.parametrize("key, value", [("mix_ratio", 0.0), ("mix_ratio", 1.0),
                                        ("domain_ratio", 0.0), ("parallel_ratio", 0.0)])
def test_experiment_keys_make_only_train_and_evaluate_stale(tiny_pipeline: Path, tmp_path: Path,
                                                            key: str, value: float) -> None:
    workspace = copy_workspace(tiny_pipeline, tmp_path / "ws")
    params = yaml.safe_load((workspace / "params.yaml").read_text())
    assert params[key] != value, "the change must be a real change"
    params[key] = value
    (workspace / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    # `dvc status` lists the stages whose own inputs changed: train (evaluate@trained follows
    # from its output, which only changes once train has run).
    assert _stale_stages(workspace) == {"train"}
    # What `dvc repro` would run now: train (and evaluate@trained after it), nothing upstream.
    dry = dvc(workspace, "repro", "--dry")
    planned = {line.split("'")[1] for line in dry.stdout.splitlines()
               if line.startswith("Running stage")}
    assert "train" in planned and planned <= EXPERIMENT_STAGES, dry.stdout


@needs_mirror
def test_a_fresh_clone_of_the_finished_pipeline_is_up_to_date(tiny_pipeline: Path,
                                                              tmp_path: Path) -> None:
    """What `dvc exp run --queue` does: a git clone of the commit, outputs checked out of the DVC
    cache, git-ignored local caches (translation cache, checkpoints) absent. Nothing may be stale,
    else every queued experiment reruns that stage (it once reran build_shards, whose input
    folder held the translation cache)."""
    assert any((tiny_pipeline / "data/cache/translate").iterdir()), "the tiny run fills the cache"
    source = copy_workspace(tiny_pipeline, tmp_path / "src")
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]
    subprocess.run([*git, "add", "-A"], cwd=source, check=True)
    subprocess.run([*git, "commit", "-qm", "finished run"], cwd=source, check=True)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(source), str(clone)], check=True)
    assert not (clone / "data/cache").exists()
    dvc(clone, "cache", "dir", str(source / ".dvc/cache"))
    dvc(clone, "checkout")
    assert _stale_stages(clone) == set()
