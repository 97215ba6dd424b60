"""Issue 8.3: killed stages resume. Translation resumes without retranslating what was finished;
training resumes from its last checkpoint and ends with the weights and metrics of an
uninterrupted run. Both are killed with SIGKILL inside a real ``dvc repro`` and finished by the
next ``dvc repro``.

Library-level tests of the same guarantees: tests/test_training.py
``test_resume_after_sigkill_gives_the_uninterrupted_weights`` (150 steps killed at a checkpoint:
identical weights, summary and loss curve; a checkpoint of another configuration is not
resumed), tests/test_translation.py ``test_translate_texts_dedupes_sorts_and_resumes`` (an
interrupted engine: the rerun translates only the unfinished sentences) and
``test_convert_and_translate_stages_end_to_end`` (a rerun with a full cache translates nothing).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from reliability_support import (copy_workspace, dvc, hook_env, lock_outs, tree_digest,
                                 wait_and_kill, write_params)

pytestmark = pytest.mark.slow


def _set(workspace: Path, section: str, **values) -> None:
    params = yaml.safe_load((workspace / "params.yaml").read_text())
    params[section].update(values)
    write_params(workspace / "params.yaml", params)


def _killed_repro(workspace: Path, target: str, marker: Path, **hook) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "dvc", "repro", target], cwd=workspace,
                            env=hook_env(marker, **hook), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    wait_and_kill(marker, proc)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode != 0, out + err


def test_translate_killed_mid_way_resumes_without_retranslating(tiny_pipeline: Path,
                                                                tmp_path: Path) -> None:
    workspace = copy_workspace(tiny_pipeline, tmp_path / "ws")
    translated, cache = workspace / "data/translated", workspace / "data/cache/translate"
    shutil.rmtree(cache)
    _set(workspace, "translate", cache_chunk=10)  # 90 distinct segments: 9 chunks

    _killed_repro(workspace, "translate@pt", tmp_path / "paused", HR_HOOK_PAUSE_AFTER_CHUNKS="3")
    assert not (translated / "pt.parquet").exists()  # deleted by dvc, not half-written
    assert not (translated / "pt.stats.json").exists()
    assert len(list(cache.glob("en-pt/*/part-*.parquet"))) == 3

    done = dvc(workspace, "repro", "translate@pt")
    assert "90 distinct segments (30 cached, 60 translated" in done.stdout, done.stdout
    stats = json.loads((translated / "pt.stats.json").read_text())
    assert (stats["cached_segments"], stats["translated_segments"]) == (30, 60)
    # The resumed translation is the uninterrupted one, byte for byte.
    assert tree_digest(translated / "pt.parquet") == \
        tree_digest(tiny_pipeline / "data/translated/pt.parquet")
    assert json.loads(dvc(workspace, "status", "translate@pt", "--json").stdout) == {}


def _without_timing(metrics: dict) -> dict:
    train = {k: v for k, v in metrics["train"].items()
             if k not in ("seconds_per_step", "pairs_per_second", "resumed_from_step")}
    return {**metrics, "train": train}


def test_train_killed_under_dvc_resumes_to_the_uninterrupted_weights(tiny_pipeline: Path,
                                                                     tmp_path: Path) -> None:
    """Killed while writing its step-2 checkpoint; the next ``dvc repro`` resumes from step 1
    and ends with the model, curves and metrics of the uninterrupted run of ``tiny_pipeline``
    (which wrote no checkpoints: ``checkpoint_every`` is bookkeeping, not a result)."""
    workspace = copy_workspace(tiny_pipeline, tmp_path / "ws")
    _set(workspace, "train", checkpoint_every=1, keep_checkpoints=1)
    checkpoints = workspace / "checkpoints/train"

    _killed_repro(workspace, "train", tmp_path / "paused",
                  HR_HOOK_PAUSE_RENAME="step-0000002.pt")
    assert [p.name for p in checkpoints.glob("step-*.pt")] == ["step-0000001.pt"]
    assert not (workspace / "models/encoder").exists()
    # The curves were live: the two steps done are there, as the first rows of the whole curve,
    # and DVC does not take the killed run's outputs for a result.
    live_loss = (workspace / "dvclive/plots/metrics/train/loss.tsv").read_text().splitlines()
    whole_loss = (tiny_pipeline / "dvclive/plots/metrics/train/loss.tsv").read_text().splitlines()
    assert len(live_loss) == 3 and live_loss == whole_loss[:3]  # header + steps 0 and 1
    assert "train" in json.loads(dvc(workspace, "status", "train", "--json").stdout)

    done = dvc(workspace, "repro", "train")
    assert "resumed at step 1" in done.stdout, done.stdout
    assert list(checkpoints.glob("*")) == []  # checkpoints and the killed temp folder removed
    assert tree_digest(workspace / "models/encoder/model.safetensors") == \
        tree_digest(tiny_pipeline / "models/encoder/model.safetensors")
    summary = json.loads((workspace / "models/encoder/training.json").read_text())["summary"]
    assert summary == json.loads(
        (tiny_pipeline / "models/encoder/training.json").read_text())["summary"]
    assert lock_outs(workspace)["train:dvclive/plots/metrics"] == \
        lock_outs(tiny_pipeline)["train:dvclive/plots/metrics"]  # the whole loss curve
    metrics = json.loads((workspace / "dvclive/metrics.json").read_text())
    assert metrics["train"]["resumed_from_step"] == 1
    assert _without_timing(metrics) == _without_timing(
        json.loads((tiny_pipeline / "dvclive/metrics.json").read_text()))
