"""The research question's arms: queue commands and collection of finished runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import run_arms  # noqa: E402

from hybrid_retrieval.arms import matches_params  # noqa: E402

CONFIG = {"seeds": [13, 14], "arms": {
    "base": {"label": "base e5", "files": ["metrics/base_per_query.parquet"]},
    "b": {"label": "QA only", "params": {"domain_ratio": 0}},
    "e": {"label": "high-resource", "params": {"domain.cross_lingual": False,
                                               "domain.languages": ["en", "de"]}},
    "d": {"label": "default", "params": {}},
    "p": {"label": "parallel", "params": {"parallel_ratio": 0.2,
                                          "parallel.holdout_languages": ["el", "vi"]}}}}
WORKSPACE = {"seed": 13, "domain_ratio": 0.2, "parallel_ratio": 0.0,
             "domain": {"cross_lingual": True}, "parallel": {"holdout_languages": []}}


def test_one_queued_experiment_per_trained_arm_and_seed_with_yaml_values() -> None:
    commands = run_arms.queue_commands(CONFIG)
    assert len(commands) == 8  # 4 trained arms x 2 seeds; untrained arms are not run
    assert commands[0] == ["dvc", "exp", "run", "--queue", "-n", "rq-b-s13", "-S", "seed=13",
                           "-S", "domain_ratio=0"]
    e14 = commands[3]
    assert e14[5] == "rq-e-s14" and "domain.cross_lingual=false" in e14
    assert "domain.languages=[en, de]" in e14


def test_collect_copies_the_default_arm_from_the_workspace(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics/eval_per_query.parquet").write_bytes(b"PAR1 stand-in")
    (tmp_path / "metrics/train_languages.json").write_text(json.dumps({"supervision": {}}))
    monkeypatch.chdir(tmp_path)
    found = run_arms.collect(CONFIG, tmp_path / "arms", WORKSPACE, repo=str(tmp_path))
    assert found == ["d seed 13 <- workspace"]  # no experiments exist: only the workspace run
    assert (tmp_path / "arms/d/s13_per_query.parquet").read_bytes() == b"PAR1 stand-in"
    assert (tmp_path / "arms/d/s13_train_languages.json").is_file()

    # Once the parallel recipe is the default, the workspace run is arm p's seed 13, not d's.
    default_p = {**WORKSPACE, "parallel_ratio": 0.2,
                 "parallel": {"holdout_languages": ["el", "vi"]}}
    pinned = {**CONFIG, "arms": {**CONFIG["arms"],
                                 "d": {"label": "d", "params": {"parallel_ratio": 0}}}}
    found = run_arms.collect(pinned, tmp_path / "arms2", default_p, repo=str(tmp_path))
    assert found == ["p seed 13 <- workspace"]
    assert run_arms.collect(pinned, tmp_path / "arms3", default_p, repo=str(tmp_path),
                            arms=["d"]) == []  # only the arms asked for


def test_matches_params_compares_dotted_overrides_with_the_params_tree() -> None:
    assert matches_params({"seed": 13, "domain.cross_lingual": True}, WORKSPACE)
    assert not matches_params({"seed": 14}, WORKSPACE)
    assert not matches_params({"domain.cross_lingual": False}, WORKSPACE)
    assert not matches_params({"train.steps": 1000}, WORKSPACE)  # key absent
    assert matches_params({"parallel_ratio": 0}, WORKSPACE)  # 0 == 0.0
