"""Editing a project module makes `dvc status` name exactly the stages whose script imports it
(transitively, as hybrid_retrieval/stage_deps.py walks the imports), on a finished tiny
pipeline: the deps of dvc.yaml are true (tests/test_stage_deps.py checks they are complete)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hybrid_retrieval.stage_deps import stages_importing
from reliability_support import copy_workspace, dvc, needs_mirror


def _stale_stages(workspace: Path) -> set[str]:
    status = json.loads(dvc(workspace, "status", "--json").stdout or "{}")
    return set(status)


@needs_mirror
@pytest.mark.slow
@pytest.mark.parametrize("module", ["hybrid_retrieval/text.py",      # imported by every stage
                                    "hybrid_retrieval/encoder.py",   # train, evaluate*, plots
                                    "hybrid_retrieval/training.py"])  # train only
def test_editing_a_module_makes_exactly_its_importers_stale(tiny_pipeline: Path, tmp_path: Path,
                                                            module: str) -> None:
    workspace = copy_workspace(tiny_pipeline, tmp_path / "ws")
    importers = stages_importing(workspace / "dvc.yaml", module)   # foreach named translate@pt
    assert "train" in importers, importers
    assert _stale_stages(workspace) == set(), "the copy must start up to date"
    with open(workspace / module, "a", encoding="utf-8") as fh:
        fh.write("\n# edited by test_stage_deps_status\n")
    # `dvc status` reports a stage when its own deps changed; it does not propagate staleness
    # to downstream stages (their deps are outputs, unchanged until the upstream stage reruns):
    # after editing training.py only train is listed, not evaluate, which reads train's output.
    # So the stale set is exactly the stages that list the module, i.e. that import it (a stage
    # listing a module it no longer imports would show up here as one too many).
    assert _stale_stages(workspace) == importers
