"""Fixtures of the reliability tests; the helpers are in reliability_support.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from reliability_support import MIRROR, dvc, make_workspace, tiny_params


@pytest.fixture(scope="session")
def tiny_pipeline(tmp_path_factory: pytest.TempPathFactory, tiny_encoder_dir: Path) -> Path:
    """A DVC project after a complete ``dvc repro`` of the tiny pipeline. Read-only."""
    if not (MIRROR / "squad-v1.1").is_dir():
        pytest.skip(f"data mirror {MIRROR} not present")
    workspace = make_workspace(tmp_path_factory.mktemp("pipeline") / "a",
                               tiny_params(tiny_encoder_dir))
    dvc(workspace, "repro")
    return workspace
