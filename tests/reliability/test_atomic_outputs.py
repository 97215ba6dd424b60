"""Issue 8.2: atomic outputs. Every stage writes into a temporary folder beside its output and
renames it into place at the end; a stage killed with SIGKILL leaves its previous output intact
(or, under ``dvc repro``, which deletes a stage's outputs before running it, absent), never
partial, and ``dvc repro`` then completes.

The mechanism is :func:`hybrid_retrieval.io.atomic_path` (temporary folder
``.<name>.<pid>.<random>.tmp`` in the output's folder; the next writer of the same output
removes the temporary folders of dead processes). Unit tests: tests/test_io.py
``test_atomic_path_keeps_previous_output_on_failure``, ``test_atomic_path_replaces_a_folder``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hybrid_retrieval.io import atomic_path, remove_stale_temporaries
from reliability_support import (ROOT, copy_workspace, dvc, hook_env, lock_outs, tree_digest,
                                 wait_and_kill, write_params)


@pytest.mark.slow
def test_every_stage_output_is_renamed_from_a_temporary_folder_beside_it(
        tiny_pipeline_again: tuple[Path, Path]) -> None:
    """All outputs of all stages of dvc.yaml (from dvc.lock), in a real ``dvc repro``: each was
    put in place by a rename from ``.<name>.<pid>.<random>.tmp/<name>`` in its own folder (or
    lies inside a folder put in place that way)."""
    workspace, log = tiny_pipeline_again
    renames = [line.split("\t") for line in log.read_text().splitlines()]
    placed = {}
    for script, src, dst in renames:
        src, dst = Path(src), Path(dst)
        temp = src.parent
        if (src.name == dst.name and temp.parent == dst.parent
                and temp.name.startswith(f".{dst.name}.") and temp.name.endswith(".tmp")):
            placed[dst] = script
    missing = []
    for key in lock_outs(workspace):
        stage, out = key.split(":", 1)
        path = workspace / out
        if not any(path == dst or dst in path.parents for dst in placed):
            missing.append(key)
    assert missing == [], f"outputs not written through a temporary folder: {missing}"
    # and nothing was left behind
    assert list(workspace.rglob(".*.tmp")) == []


def _shard_settings(folder: Path) -> tuple[int, int]:
    manifest = json.loads((folder / "manifest.json").read_text())
    return manifest["rows_per_shard"], len(manifest["shards"])


@pytest.mark.slow
def test_sigkill_before_the_rename_leaves_the_previous_output_then_repro_completes(
        tiny_pipeline: Path, tmp_path: Path) -> None:
    """build_shards is killed when its new shard folder is completely written but not yet
    renamed: run by hand, the previous folder is intact; run by ``dvc repro`` (which deletes
    the output first), it is absent. Either way ``dvc repro`` then completes, the temporary
    folders are cleaned up and ``dvc status`` of the stage is clean."""
    workspace = copy_workspace(tiny_pipeline, tmp_path / "ws")
    shards = workspace / "data/shards/parallel"
    before = tree_digest(shards)
    assert _shard_settings(shards) == (50, 3)  # 120 rows
    params = yaml.safe_load((workspace / "params.yaml").read_text())
    params["shards"]["rows_per_shard"] = 40
    write_params(workspace / "params.yaml", params)

    # 1. By hand.
    marker = tmp_path / "paused"
    env = hook_env(marker, HR_HOOK_PAUSE_RENAME="parallel")
    stage = yaml.safe_load((workspace / "dvc.yaml").read_text())["stages"]["build_shards"]
    proc = subprocess.Popen(stage["cmd"], shell=True, cwd=workspace, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_and_kill(marker, proc)
    proc.communicate(timeout=60)
    assert tree_digest(shards) == before  # the previous output, untouched
    temps = list(shards.parent.glob(".parallel.*.tmp"))
    assert len(temps) == 1 and _shard_settings(temps[0] / "parallel") == (40, 3)

    # 2. Under dvc repro.
    marker.unlink()
    proc = subprocess.Popen([sys.executable, "-m", "dvc", "repro", "build_shards"],
                            cwd=workspace, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    wait_and_kill(marker, proc)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode != 0, out + err
    assert not shards.exists() or tree_digest(shards) == before
    # This writer removed the first one's temporary folder (a dead pid) and left its own.
    assert [p.name for p in shards.parent.glob(".parallel.*.tmp")] != [temps[0].name]
    assert len(list(shards.parent.glob(".parallel.*.tmp"))) == 1

    # (Only the killed stage: everything downstream reruns because the shards really changed.)
    dvc(workspace, "repro", "build_shards")
    assert _shard_settings(shards) == (40, 3)
    assert list(shards.parent.glob(".parallel.*.tmp")) == []
    status = dvc(workspace, "status", "build_shards", "--json")
    assert json.loads(status.stdout) == {}, status.stdout


def test_a_killed_writers_temporary_folder_is_removed_by_the_next_writer(tmp_path: Path):
    """SIGKILL inside ``atomic_path``: no output, a temporary folder, which the next writer
    of the same output removes (its pid is dead); a live writer's is left alone."""
    out = tmp_path / "table.json"
    code = ("import os, sys; sys.path.insert(0, sys.argv[1]); "
            "from hybrid_retrieval.io import atomic_path\n"
            "with atomic_path(sys.argv[2]) as tmp:\n"
            "    tmp.write_text('half')\n"
            "    os.kill(os.getpid(), 9)\n")
    done = subprocess.run([sys.executable, "-c", code, str(ROOT), str(out)], check=False)
    assert done.returncode == -9
    stale = list(tmp_path.glob(".table.json.*.tmp"))
    assert len(stale) == 1 and not out.exists()
    with atomic_path(out) as tmp:
        assert not stale[0].exists()  # the dead writer's temporary folder is gone...
        assert remove_stale_temporaries(out) == [] and tmp.parent.is_dir()  # ...a live one's not
        tmp.write_text("whole")
    assert out.read_text() == "whole"
    assert list(tmp_path.glob(".table.json.*.tmp")) == []
