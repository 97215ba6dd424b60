"""README "Answer to the research question": rows from the manifests' groups, arms x seeds."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import yaml

from hybrid_retrieval.evaluation import PER_QUERY
from hybrid_retrieval.io import write_parquet

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import research_answer  # noqa: E402

LANGS = ["ar", "en", "hi", "vi"]


def _per_query(path: Path, level: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    rows = []
    for group in range(30):
        for lang in LANGS:
            value = float(np.clip(level + rng.normal(0, 0.1), 0, 1))
            rows.append({"dataset": "xquad-r", "qid": f"{lang}:{group}", "group_id": str(group),
                         "lang": lang, "setting": "multi", "pool_lang": "all", "stratum": lang,
                         "ap": value, "recall": value, "recall_k": 10, "ap_at_20": value,
                         "rank_distance": 10.0})
    write_parquet(pa.Table.from_pylist(rows, schema=PER_QUERY), path, schema=PER_QUERY)


def test_table_json_and_figure_from_committed_files(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    _per_query(tmp_path / "base.parquet", 0.3, 0)
    for seed in (13, 14):
        _per_query(tmp_path / f"arms/d/s{seed}_per_query.parquet", 0.5, seed)
    (tmp_path / "arms/d/s13_train_languages.json").write_text(json.dumps(
        {"supervision": {"en": ["qa"], "ar": ["domain-aligned", "domain-mono"],
                         "vi": ["domain-mono"]}}))
    (tmp_path / "rq.yaml").write_text(yaml.safe_dump({
        "seeds": [13, 14], "dataset": "xquad-r", "groups_from": "d",
        "arms": {"base": {"label": "base e5", "files": ["base.parquet"]},
                 "d": {"label": "default", "params": {}}}}))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"low_resource_languages":
                                                          ["ar", "el", "hi", "vi"]}))
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{research_answer.BEGIN}\nold\n{research_answer.END}\nrest\n")
    research_answer.main(["--config", "rq.yaml", "--arms-dir", "arms", "--out", "answer.json",
                          "--figure", "answer.png", "--update", str(readme),
                          "--resamples", "50"])
    answer = json.loads((tmp_path / "answer.json").read_text())
    assert answer["groups"] == {"ar": "domain-aligned", "en": "qa", "hi": "none",
                                "vi": "domain-mono"}
    assert [row["name"] for row in answer["rows"]] == ["ar", "hi", "vi", "low-resource (all)",
                                    "low-resource, domain-aligned", "low-resource, domain-mono",
                                    "low-resource, none", "all, qa", "all, domain-aligned",
                                    "all, domain-mono", "all, none"]  # el: not in the data
    assert answer["seeds"] == {"base": 0, "d": 2}  # 0: untrained
    d = answer["arms"]["d"]["low-resource (all)"]
    assert d["seeds"] == 2 and d["low"] <= d["estimate"] <= d["high"] and d["seed_sd"] >= 0
    assert abs(answer["arms"]["base"]["hi"]["estimate"] - 0.3) < 0.06
    text = readme.read_text()
    assert "old" not in text and "| ar (domain-aligned) |" in text and "default (2 seeds)" in text
    assert "base e5 (untrained)" in text
    assert (tmp_path / "answer.png").stat().st_size > 1000


def test_comparisons_table_shows_bold_differences_and_seed_agreement(tmp_path: Path) -> None:
    root = tmp_path / "arms"
    (root / "comparisons").mkdir(parents=True)
    row = {"dataset": "xquad-r", "setting": "multi", "metric": "map@20", "difference": -0.028,
           "low": -0.032, "high": -0.025, "seed_differences": [-0.03, -0.02, -0.034],
           "seed_low": -0.045, "seed_high": -0.011}
    shaky = {**row, "seed_differences": [-0.03, -0.06, 0.006], "seed_low": -0.1,
             "seed_high": 0.05}
    other = {"dataset": "mlqa-r", "setting": "multi", "metric": "map@20", "difference": 0.004,
             "low": -0.002, "high": 0.01, "seed_differences": [0.004]}
    (root / "comparisons/c-vs-b-low-resource.json").write_text(json.dumps(
        {"languages": ["ar", "hi"], "rows": [row, other]}))
    (root / "comparisons/c-vs-b-all-languages.json").write_text(json.dumps(
        {"languages": None, "rows": [shaky]}))
    config = {"comparisons": [{"a": "b", "b": "c", "label": "(c) - (b)"},
                              {"a": "b", "b": "e"}]}           # e - b: no file, no row
    table = research_answer.comparison_markdown(config, root)
    lines = table.strip().splitlines()
    assert lines[0] == "| B - A | languages | XQuAD-R | MLQA-R |"
    assert lines[2] == ("| (c) - (b) | low-resource (all) | **-0.028** [-0.032, -0.025] "
                        "{-0.045, -0.011} 3/3 | +0.004 [-0.002, +0.010] |")  # one seed: no { }
    # the question CI excludes 0 but the seeds do not agree: not bold
    assert lines[3] == ("| (c) - (b) | all languages | -0.028 [-0.032, -0.025] {-0.100, +0.050} "
                        "2/3 |  |")
    assert len(lines) == 4
