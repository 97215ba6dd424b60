"""Results tables: numbers come from the metrics files, published rows are labelled apart."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

from hybrid_retrieval.io import write_json
from hybrid_retrieval.tables import (BEGIN, END, PUBLISHED, comparison_table, map_table,
                                     published_table, replace_block, results_markdown,
                                     sweep_table)

ROOT = Path(__file__).resolve().parents[1]


def report(mono: float) -> dict:
    def setting(values: dict) -> dict:
        return {**values, "ci": {k: {"low": v - 0.01, "high": v + 0.01}
                                 for k, v in values.items()}}
    return {"xquad-r": {"mono": setting({"map": mono, "recall@1": 0.7}),
                        "cross": setting({"map": 0.64, "recall@1": 0.5}),
                        "multi": {**setting({"map": 0.298, "map@20": 0.25, "recall@10": 0.27,
                                             "rank_distance": 1214.6}), "map_micro": 0.3}},
            "run": {"wall_s": 1}, "bootstrap": {"resamples": 1000, "seed": 13}}


PARAMS = {"mix_ratio": 0.5, "domain_ratio": 0.2, "parallel_ratio": 0.2,
          "prepare": {"max_questions": 4000},
          "translate": {"languages": ["pt"], "engine": "bergamot"},
          "train": {"steps": 300, "batch_size": 32}}


def test_map_table_shows_values_with_intervals() -> None:
    text = map_table([("base", report(0.8))], ["xquad-r"])
    lines = text.splitlines()
    assert lines[0] == "| model | XQuAD-R mono | XQuAD-R cross | XQuAD-R multi |"
    assert lines[2] == ("| base | 0.800 [0.790, 0.810] | 0.640 [0.630, 0.650] | "
                        "0.298 [0.288, 0.308] |")


def test_published_numbers_as_quoted() -> None:
    text = published_table()
    xlmr = next(line for line in text.splitlines() if "XLM-R" in line)
    assert "| 0.798 | 0.705 | 0.593 | 0.648 | 0.623 | 0.512 |" in xlmr
    labse = next(line for line in text.splitlines() if "LaBSE" in line)
    assert "| 0.817 | 0.767 | 0.682 | 0.686 | 0.681 | 0.579 |" in labse
    xy = next(line for line in text.splitlines() if "mBERT X-Y" in line)
    assert xy.endswith("| - | - | 0.66 | - | - | 0.49 |")
    assert len(PUBLISHED) == 6


def test_results_section_and_readme_block() -> None:
    sweep = [{"experiment": "mix0", "mix_ratio": 0.0, "domain_ratio": 0.2, "train_steps": 100,
              "max_groups": 200, "dataset": "xquad-r", "setting": s, "map": 0.5,
              "map_low": 0.45, "map_high": 0.55} for s in ("mono", "cross", "multi")]
    text = results_markdown(base=report(0.8), default=report(0.85), params=PARAMS, sweep=sweep)
    assert "| base encoder (no training) | 0.800 [0.790, 0.810]" in text
    assert ("| default run (mix_ratio 0.5, domain_ratio 0.2, parallel_ratio 0.2) | "
            "0.850 [0.840, 0.860]") in text
    assert "1000 resamples, seed 13" in text
    assert "| mix0 | 0.0 | 0.2 | 100 | 200 | 0.500 [0.450, 0.550]" in text
    assert "other models, other training data" in text
    assert "4000 SQuAD v1.1 questions, machine-translated en->pt (bergamot)" in text
    assert "1215" in text                                  # rank distance, 0 decimals
    doc = f"intro\n{BEGIN}\nold numbers\n{END}\noutro\n"
    assert replace_block(doc, "new\n") == f"intro\n{BEGIN}\nnew\n{END}\noutro\n"
    with pytest.raises(ValueError, match="markers"):
        replace_block("no markers", "x")
    assert "No metrics yet" in results_markdown(base=None, default=None)


def test_sweep_table_orders_rows() -> None:
    rows = [{"experiment": name, "mix_ratio": mix, "domain_ratio": 0.2, "train_steps": 100,
             "max_groups": 0, "dataset": "xquad-r", "setting": "mono", "map": mix,
             "map_low": None, "map_high": None} for name, mix in (("b", 1.0), ("a", 0.0))]
    lines = sweep_table(rows).splitlines()
    assert lines[2].startswith("| a | 0.0 |") and lines[3].startswith("| b | 1.0 |")
    assert "| all |" in lines[2]                            # max_groups 0 = full evaluation


def test_results_tables_script_updates_a_readme(tmp_path: Path, capsys) -> None:
    spec = importlib.util.spec_from_file_location("results_tables",
                                                  ROOT / "scripts/results_tables.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(PARAMS))
    write_json(report(0.8), tmp_path / "base.json")
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{BEGIN}\n{END}\n")
    script.main(["--params", str(tmp_path / "params.yaml"), "--base", str(tmp_path / "base.json"),
                 "--eval", str(tmp_path / "none.json"), "--sweep", str(tmp_path / "none.json"),
                 "--comparisons", "--update", str(readme)])
    text = readme.read_text()
    assert "| base encoder (no training) | 0.800" in text and "default run" not in text
    assert text.startswith(f"# x\n{BEGIN}\n") and text.endswith(f"{END}\n")


def comparison(label: str | None, languages: list[str] | None, mono: tuple[float, float, float]
               ) -> dict:
    def row(setting: str, diff: float, low: float, high: float) -> dict:
        return {"dataset": "xquad-r", "setting": setting, "metric": "map", "a": 0.5,
                "b": 0.5 + diff, "difference": diff, "low": low, "high": high}
    return {"a": "qa-only:m.parquet", "b": "HEAD:m.parquet", "label": label,
            "languages": languages, "resamples": 1000, "seed": 13,
            "rows": [row("mono", *mono), row("cross", 0.0, -0.01, 0.01),
                     row("multi", -0.02, -0.03, -0.01)]}


def test_comparison_table_marks_intervals_that_exclude_zero() -> None:
    restricted = comparison("+ domain", ["ar", "ko", "th"], (0.012, 0.004, 0.02))
    restricted["languages_by_dataset"] = {"xquad-r": ["ar", "th"]}      # no ko in XQuAD-R
    table = comparison_table([restricted,
                              comparison(None, None, (0.001, -0.004, 0.006))]).splitlines()
    assert table[0] == "| B - A | languages | dataset | mono mAP | cross mAP | multi mAP |"
    assert table[2] == ("| + domain | ar th | XQuAD-R | **+0.012** [+0.004, +0.020] | "
                        "+0.000 [-0.010, +0.010] | **-0.020** [-0.030, -0.010] |")
    assert table[3].startswith("| HEAD:m.parquet - qa-only:m.parquet | all | XQuAD-R | "
                               "+0.001 [-0.004, +0.006] |")
    text = results_markdown(base=report(0.8), default=None, params=PARAMS,
                            comparisons=[comparison("+ domain", None, (0.01, 0.0, 0.02))])
    assert "**Ablations** (paired bootstrap over parallel questions, 1000 resamples, seed 13" \
        in text and "| + domain | all | XQuAD-R |" in text
