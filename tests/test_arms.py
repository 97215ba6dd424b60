"""Arms run with several seeds: language sets from the groups, paired comparisons per seed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from hybrid_retrieval.arms import (ALL_LANGUAGES, compare_arms, language_sets, load_config,
                                   set_slug, with_overrides)
from hybrid_retrieval.errors import PipelineError
from hybrid_retrieval.evaluation import PER_QUERY
from hybrid_retrieval.headline import BootstrapSettings
from hybrid_retrieval.io import write_parquet
from hybrid_retrieval.stage import load_params

LANGS = ["ar", "en", "hi", "vi"]


def _per_query(path: Path, level: dict[str, float], seed: int) -> None:
    """XQuAD-R multi rows, 40 groups x LANGS, AP around ``level[lang]``."""
    rng = np.random.default_rng(seed)
    rows = []
    for group in range(40):
        for lang in LANGS:
            value = float(np.clip(level[lang] + rng.normal(0, 0.05), 0, 1))
            rows.append({"dataset": "xquad-r", "qid": f"{lang}:{group}", "group_id": str(group),
                         "lang": lang, "setting": "multi", "pool_lang": "all", "stratum": lang,
                         "ap": value, "recall": value, "recall_k": 10, "ap_at_20": value,
                         "rank_distance": 10.0})
    write_parquet(pa.Table.from_pylist(rows, schema=PER_QUERY), path, schema=PER_QUERY)


def test_language_sets_follow_the_groups_and_slugs_are_file_names() -> None:
    groups = {"ar": "domain-aligned", "en": "qa", "hi": "none", "vi": "domain-aligned"}
    sets = language_sets(["ar", "el", "hi", "vi"], groups)
    assert sets == {"low-resource (all)": ["ar", "hi", "vi"],   # el: no such language here
                    "low-resource, domain-aligned": ["ar", "vi"], "low-resource, none": ["hi"],
                    "all, qa": ["en"], "all, domain-aligned": ["ar", "vi"], "all, none": ["hi"]}
    assert [set_slug(n) for n in sets] == ["low-resource", "low-resource-domain-aligned",
                                          "low-resource-none", "all-qa", "all-domain-aligned",
                                          "all-none"]
    assert set_slug(ALL_LANGUAGES) == "all-languages"


def _arms(tmp_path: Path) -> dict:
    (tmp_path / "arms/b").mkdir(parents=True)
    (tmp_path / "arms/b/s13_train_languages.json").write_text(json.dumps(
        {"supervision": {"en": ["qa"], "ar": ["domain-aligned"]}}))
    base = {"ar": 0.5, "en": 0.6, "hi": 0.5, "vi": 0.5}
    for seed in (13, 14):
        _per_query(tmp_path / f"arms/b/s{seed}_per_query.parquet", base, seed)
        # arm c: +0.1 on ar only, different noise per seed
        _per_query(tmp_path / f"arms/c/s{seed}_per_query.parquet", {**base, "ar": 0.6},
                   seed + 100)
    return {"seeds": [13, 14], "dataset": "xquad-r", "groups_from": "b",
            "arms": {"b": {"label": "b", "params": {}}, "c": {"label": "c", "params": {}},
                     "e": {"label": "e", "params": {}}},
            "comparisons": [{"a": "b", "b": "c", "label": "c - b"}, {"a": "b", "b": "e"}]}


def test_compare_arms_pairs_seed_averages_and_gives_each_seeds_difference(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = _arms(tmp_path)
    records = compare_arms(config, ["ar", "hi", "vi"], tmp_path / "arms",
                           BootstrapSettings(200, 13, 0.95))
    # e has no run: its comparison is skipped, c - b has every language set
    assert sorted(records) == ["c-vs-b-all-domain-aligned", "c-vs-b-all-languages",
                               "c-vs-b-all-none", "c-vs-b-all-qa", "c-vs-b-low-resource",
                               "c-vs-b-low-resource-domain-aligned", "c-vs-b-low-resource-none"]
    aligned = records["c-vs-b-low-resource-domain-aligned"]
    assert aligned["languages"] == ["ar"] and aligned["seeds"] == [13, 14]
    row = next(r for r in aligned["rows"] if r["metric"] == "map@20")
    assert abs(row["difference"] - 0.1) < 0.03 and row["low"] > 0.05
    assert len(row["seed_differences"]) == 2 and all(d > 0.05 for d in row["seed_differences"])
    # the seed-averaged difference is the mean of the seeds' own differences
    assert row["difference"] == pytest.approx(np.mean(row["seed_differences"]), abs=1e-5)
    assert row["seed_mean"] == pytest.approx(row["difference"], abs=1e-5)
    assert row["seed_low"] <= row["seed_mean"] <= row["seed_high"]  # t-interval over 2 seeds
    none = next(r for r in records["c-vs-b-low-resource-none"]["rows"]
                if r["metric"] == "map@20")
    assert none["low"] < 0 < none["high"]                       # hi: no effect planted
    # a trained arm with fewer seeds is compared on the seeds both ran only
    (tmp_path / "arms/c/s14_per_query.parquet").unlink()
    one_seed = compare_arms(config, ["ar"], tmp_path / "arms", BootstrapSettings(20, 13, 0.95))
    assert one_seed["c-vs-b-low-resource"]["seeds"] == [13]
    assert one_seed["c-vs-b-low-resource"]["a_seeds"] == [13]
    only_e = compare_arms(config, ["ar"], tmp_path / "arms",
                          BootstrapSettings(20, 13, 0.95), involving=["e"])
    assert only_e == {}                                         # e - b only, and e has no run
    everything = records["c-vs-b-all-languages"]
    assert everything["languages"] is None and everything["languages_by_dataset"] == {
        "xquad-r": LANGS}


def test_a_comparison_naming_an_unknown_arm_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "rq.yaml"
    config.write_text("seeds: [13]\narms: {b: {params: {}}}\ncomparisons: [{a: b, b: x}]\n")
    with pytest.raises(PipelineError, match=r"comparisons\[0\] field\(s\) \['b'\] must name"):
        load_config(config)


REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("arms_file", sorted((REPO / "experiments").glob("*.yaml")),
                         ids=lambda path: path.name)
def test_committed_arms_stay_distinct_runs_under_the_current_params(arms_file: Path) -> None:
    """An arm that leaves a key to params.yaml changes meaning when the default does (arm p
    became arm ph when the default took holdout [el, vi]): every trained arm must resolve to
    its own run."""
    params = load_params(REPO / "params.yaml")
    config = load_config(arms_file)
    resolved = {arm: json.dumps(with_overrides(params, spec["params"]), sort_keys=True)
                for arm, spec in config["arms"].items() if "params" in spec}
    assert len(set(resolved.values())) == len(resolved), resolved.keys()
