"""Fixtures of the reliability tests; the helpers are in reliability_support.py.

The two tiny pipelines are built once per test run (``build_once``, tests/conftest.py), each by
whichever xdist worker needs it first, so the two ``dvc repro`` runs can proceed side by side.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from reliability_support import MIRROR, dvc, hook_env, make_workspace, tiny_params


def _require_mirror() -> None:
    """Skip a test that needs the tiny pipeline when the data mirror is absent."""
    if not (MIRROR / "squad-v1.1").is_dir():
        pytest.skip(f"data mirror {MIRROR} not present")


@pytest.fixture(scope="session")
def tiny_pipeline(build_once: Callable, tiny_encoder_dir: Path) -> Path:
    """A DVC project after a complete ``dvc repro`` of the tiny pipeline. Read-only."""
    _require_mirror()

    def build(root: Path) -> Path:
        workspace = make_workspace(root / "a", tiny_params(tiny_encoder_dir))
        dvc(workspace, "repro")
        return workspace
    return build_once("pipeline", build)


@pytest.fixture(scope="session")
def tiny_pipeline_again(build_once: Callable, tiny_encoder_dir: Path) -> tuple[Path, Path]:
    """A second, independent ``dvc repro`` of the tiny pipeline (another folder, same params),
    with every ``os.replace`` of every stage logged (hooks/pause.py): (workspace, log file)."""
    _require_mirror()

    def build(root: Path) -> tuple[Path, Path]:
        workspace = make_workspace(root / "b", tiny_params(tiny_encoder_dir))
        log = root / "renames.tsv"
        dvc(workspace, "repro", env=hook_env(HR_HOOK_LOG=str(log)))
        return workspace, log
    return build_once("pipeline_again", build)
