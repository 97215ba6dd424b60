"""Fixtures of the reliability tests; the helpers are in reliability_support.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from reliability_support import MIRROR, dvc, hook_env, make_workspace, tiny_params


@pytest.fixture(scope="session")
def tiny_pipeline(tmp_path_factory: pytest.TempPathFactory, tiny_encoder_dir: Path) -> Path:
    """A DVC project after a complete ``dvc repro`` of the tiny pipeline. Read-only."""
    if not (MIRROR / "squad-v1.1").is_dir():
        pytest.skip(f"data mirror {MIRROR} not present")
    workspace = make_workspace(tmp_path_factory.mktemp("pipeline") / "a",
                               tiny_params(tiny_encoder_dir))
    dvc(workspace, "repro")
    return workspace


@pytest.fixture(scope="session")
def tiny_pipeline_again(tmp_path_factory: pytest.TempPathFactory, tiny_encoder_dir: Path,
                        tiny_pipeline: Path) -> tuple[Path, Path]:
    """A second, independent ``dvc repro`` of the tiny pipeline (another folder, same params),
    with every ``os.replace`` of every stage logged (hooks/pause.py): (workspace, log file)."""
    root = tmp_path_factory.mktemp("pipeline_again")
    workspace = make_workspace(root / "b", tiny_params(tiny_encoder_dir))
    log = root / "renames.tsv"
    dvc(workspace, "repro", env=hook_env(HR_HOOK_LOG=str(log)))
    return workspace, log
