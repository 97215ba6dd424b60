"""Issue 15's outcome table: the best candidate, our rows beside the paper's, the gap row."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from hybrid_retrieval.outcome import COLUMNS, best_arm, differences_markdown, outcome_markdown
from hybrid_retrieval.seed_arms import ArmScore


def _outcome(multi: float, bias: float = 300.0) -> dict[str, dict[str, ArmScore]]:
    def score(value: float) -> ArmScore:
        return ArmScore(value, value - 0.01, value + 0.01, value, 0.002, 3, 100)
    columns = dict(zip(COLUMNS, (score(0.8), score(0.7), score(multi), score(bias))))
    return {"xquad-r": columns, "mlqa-r": dict(columns)}


def test_best_is_the_highest_mean_multi_map_and_ties_go_to_the_first() -> None:
    outcomes = {"d": _outcome(0.52), "p": _outcome(0.60), "ph": _outcome(0.60)}
    assert best_arm(outcomes, ["d", "p", "ph"]) == "p"
    assert best_arm(outcomes, ["d", "missing"]) == "d"
    with pytest.raises(ValueError, match="none of the candidate arms"):
        best_arm(outcomes, ["x"])


def test_table_has_our_rows_the_paper_rows_and_the_gap_to_labse() -> None:
    table = outcome_markdown([("default", _outcome(0.52)), ("best", _outcome(0.60, 250.0))],
                             ["xquad-r", "mlqa-r"])
    lines = table.strip().splitlines()
    assert lines[0].startswith("| model | XQuAD-R mono | XQuAD-R cross | XQuAD-R multi | "
                               "XQuAD-R bias | MLQA-R mono")
    assert lines[3].startswith("| best | 0.800 [0.790, 0.810] | 0.700 [0.690, 0.710] | "
                               "0.600 [0.590, 0.610] | 250 [250, 250] |")
    assert lines[5] == ("| LaBSE, hybrid batches (Elmahdy et al. 2024 (arXiv 2408.10536), "
                        "Table 1) | 0.817 | 0.767 | 0.682 | 221.1 | 0.686 | 0.681 | 0.579 | "
                        "195.0 |")
    # best - LaBSE: mAP gaps, bias difference (lower is better for us)
    assert lines[6] == ("| best - LaBSE, hybrid batches | -0.017 | -0.067 | -0.082 | +29 | "
                        "+0.114 | +0.019 | +0.021 | +55 |")


def test_differences_table_has_a_cell_per_dataset_and_setting_with_both_intervals() -> None:
    def row(dataset: str, setting: str, difference: float, seeds: list[float]) -> dict:
        return {"dataset": dataset, "setting": setting, "metric": "map",
                "difference": difference, "low": difference - 0.002,
                "high": difference + 0.002, "seed_differences": seeds,
                "seed_low": min(seeds) - 0.01, "seed_high": max(seeds) + 0.01}
    record = {"rows": [row("xquad-r", "mono", 0.004, [0.001, 0.004, 0.007]),
                       row("xquad-r", "multi", 0.021, [0.022, 0.017, 0.022]),
                       {**row("xquad-r", "multi", 0.5, [0.5]), "metric": "map@20"}]}
    table = differences_markdown([("(ph) - default", record)], ["xquad-r", "mlqa-r"])
    lines = table.strip().splitlines()
    assert lines[0] == ("| B - A | XQuAD-R mono | XQuAD-R cross | XQuAD-R multi | MLQA-R mono "
                        "| MLQA-R cross | MLQA-R multi |")
    cells = [c.strip() for c in lines[2].strip("|").split("|")]
    assert cells[0] == "(ph) - default"
    # mono: the seed interval reaches below 0, so not bold; multi: both exclude 0, bold
    assert cells[1] == "+0.004 [+0.002, +0.006] {-0.009, +0.017} 3/3"
    assert cells[2] == "-"  # no cross row: a dash, never a made-up number
    assert cells[3] == "**+0.021** [+0.019, +0.023] {+0.007, +0.032} 3/3"
    assert cells[4:] == ["-", "-", "-"]
    assert differences_markdown([], ["xquad-r"]) == ""


def test_the_default_role_goes_to_the_arm_params_yaml_runs() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    import outcome_table  # noqa: PLC0415 - a script, not a package module

    config = {"arms": {"d": {"params": {"parallel_ratio": 0}},
                       "ph": {"params": {"parallel_ratio": 0.2,
                                         "parallel.holdout_languages": ["el", "vi"]}}}}
    params = {"parallel_ratio": 0.2, "parallel": {"holdout_languages": ["el", "vi"]}}
    assert outcome_table._role(config, "ph", params) == "default"
    assert outcome_table._role(config, "d", params) == "previous default"
    assert outcome_table._role(config, "d", {**params, "parallel_ratio": 0.0}) == "default"
