"""CI attachment, the compare command and the sweep collector (issue 7).

The bootstrap itself (known difference found, a null difference's CI covering 0 in ~95% of
seeds) is tested in ``tests/test_bootstrap.py``; here: that the evaluate report gets an
interval for every headline metric (``hybrid_retrieval/report_intervals.py``), that
``scripts/compare.py`` finds a planted difference in two per-query Parquet files and prints it
in the documented format (``paired_comparison.py``, ``revision_outputs.py``), and that
``scripts/collect_sweep.py`` turns ``dvc exp show --json`` output (a fake one, and one from a
scratch DVC repo with two tiny experiments) into ``metrics/sweep.json`` and a PNG
(``sweep.py``).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from hybrid_retrieval.errors import PipelineError
from hybrid_retrieval.evaluation import PER_QUERY, EvalDataset, evaluate_dataset
from hybrid_retrieval.headline import HEADLINE, BootstrapSettings
from hybrid_retrieval.io import read_json, write_parquet
from hybrid_retrieval.paired_comparison import compare_per_query, holm, restrict_languages
from hybrid_retrieval.report_intervals import attach_confidence_intervals
from hybrid_retrieval.revision_outputs import read_per_query
from hybrid_retrieval.sweep import check_comparable, collect_experiments, sweep_records

ROOT = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(f"script_{name}", ROOT / f"scripts/{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def random_dataset(groups: int = 30, langs=("de", "en", "zh"), seed: int = 0):
    """Parallel groups with noisy topic embeddings: imperfect, varied per-query values."""
    rng = np.random.default_rng(seed)
    topics = rng.normal(size=(groups, 16))
    lang_axis = {lang: rng.normal(size=16) for lang in langs}
    q_rows, c_rows = [], []
    for lang in langs:
        for g in range(groups):
            c_rows.append((f"{lang}:c{g}", lang, f"a{g} {lang}",
                           topics[g] + 0.8 * lang_axis[lang] + rng.normal(0, 1.0, 16)))
            q_rows.append((f"{lang}:q{g}", f"g{g}", lang, f"q{g} {lang}", [f"{lang}:c{g}"],
                           topics[g] + 0.8 * lang_axis[lang] + rng.normal(0, 1.0, 16)))
    norm = lambda v: v / np.linalg.norm(v)  # noqa: E731
    data = EvalDataset(
        name="xquad-r", qid=[r[0] for r in q_rows], group_id=[r[1] for r in q_rows],
        question_lang=[r[2] for r in q_rows], question_text=[r[3] for r in q_rows],
        gold_cids=[r[4] for r in q_rows], cid=[r[0] for r in c_rows],
        candidate_lang=[r[1] for r in c_rows], candidate_text=[r[2] for r in c_rows])
    q = np.array([norm(r[5]) for r in q_rows], dtype=np.float32)
    c = np.array([norm(r[3]) for r in c_rows], dtype=np.float32)
    return evaluate_dataset(data, q, c)


# ------------------------------------------------------------------------------ CI attachment

def test_every_headline_metric_gets_an_interval_around_it() -> None:
    result = random_dataset()
    report = {"xquad-r": result.summary, "run": {"wall_s": 1.0}}
    out = attach_confidence_intervals(report, result.per_query, BootstrapSettings(300, 7))
    assert out["run"] == {"wall_s": 1.0} and "ci" not in report["xquad-r"]["mono"]   # a copy
    for h in HEADLINE:
        setting = out["xquad-r"][h.setting]
        ci = setting["ci"][h.metric]
        assert ci["low"] <= setting[h.metric] <= ci["high"], (h, ci)
        assert ci["high"] > ci["low"]                      # varied values: a real interval
    assert out["bootstrap"] == {"resamples": 300, "seed": 7, "confidence": 0.95,
                                "unit": "group_id", "groups": {"xquad-r": 30}}
    again = attach_confidence_intervals(report, result.per_query, BootstrapSettings(300, 7))
    assert again == out                                    # seeded
    other = attach_confidence_intervals(report, result.per_query, BootstrapSettings(300, 8))
    assert other["xquad-r"]["mono"]["ci"] != out["xquad-r"]["mono"]["ci"]


def test_metrics_from_another_run_are_refused() -> None:
    result = random_dataset()
    report = {"xquad-r": json.loads(json.dumps(result.summary))}
    report["xquad-r"]["cross"]["map"] += 0.01
    with pytest.raises(PipelineError, match=r"cross map.*different runs"):
        attach_confidence_intervals(report, result.per_query, BootstrapSettings(50, 0))


# ----------------------------------------------------------------------------- compare command

def per_query_pair(tmp_path: Path) -> tuple[Path, Path, pa.Table]:
    """System A from random embeddings; B = A with +0.1 mono AP (clipped rows excluded)."""
    a = random_dataset(groups=60).per_query
    ap = a.column("ap").to_numpy().copy()
    mono = np.array(a.column("setting").to_pylist()) == "mono"
    keep = ~mono | (ap <= 0.9)                      # so that +0.1 stays a valid AP everywhere
    a = a.filter(pa.array(keep))
    ap = a.column("ap").to_numpy().copy()
    mono = np.array(a.column("setting").to_pylist()) == "mono"
    ap[mono] += 0.1
    b = a.set_column(a.schema.get_field_index("ap"), "ap", pa.array(ap))
    write_parquet(a, tmp_path / "a.parquet", schema=PER_QUERY)
    # B's rows in another order: compare must pair by query, not by position
    write_parquet(b.take(np.random.default_rng(1).permutation(b.num_rows)),
                  tmp_path / "b.parquet", schema=PER_QUERY)
    return tmp_path / "a.parquet", tmp_path / "b.parquet", a


def test_compare_finds_a_planted_difference(tmp_path: Path, capsys) -> None:
    path_a, path_b, _ = per_query_pair(tmp_path)
    load_script("compare").main([str(path_a), str(path_b), "--resamples", "500", "--seed", "3",
                                 "--json-out", str(tmp_path / "diff.json")])
    out = capsys.readouterr().out
    rows = {(r["setting"], r["metric"]): r for r in read_json(tmp_path / "diff.json")["rows"]}
    assert len(rows) == len(HEADLINE)
    mono = rows[("mono", "map")]
    assert mono["difference"] == pytest.approx(0.1, abs=1e-9)      # every mono AP + 0.1
    assert mono["low"] > 0.09 and mono["high"] < 0.11 + 1e-9
    assert mono["p_value"] == pytest.approx(1 / 501) and mono["p_holm"] <= 8 / 501
    for key in [("cross", "map"), ("multi", "map"), ("multi", "rank_distance")]:
        assert rows[key]["difference"] == 0 and rows[key]["p_value"] == 1.0
        assert rows[key]["low"] == rows[key]["high"] == 0
    assert rows[("mono", "recall@1")]["difference"] == 0             # recall untouched
    # printed format: A/B header, method line, Markdown table with one row per metric
    lines = out.splitlines()
    assert lines[0] == f"A = {path_a}" and lines[1] == f"B = {path_b}"
    assert "paired group bootstrap" in lines[2] and "500 resamples, seed 3" in lines[2]
    assert lines[4] == "| dataset | setting | metric | A | B | B - A | 95% CI | p | p (Holm) |"
    table = [line for line in lines[6:] if line.startswith("| xquad-r")]
    assert len(table) == len(HEADLINE)
    assert table[0].startswith("| xquad-r | mono | map | ") and "| +0.1000 | [+0.10" in table[0]
    assert table[0].endswith("| 0.002 | 0.016 |")


def test_compare_script_language_group_json(tmp_path: Path, capsys) -> None:
    path_a, path_b, _ = per_query_pair(tmp_path)                   # languages de, en, zh
    load_script("compare").main([str(path_a), str(path_b), "--resamples", "50",
                                 "--languages", "zh", "de", "ko", "--label", "B vs A",
                                 "--json-out", str(tmp_path / "diff.json")])
    assert capsys.readouterr().out.startswith("languages: de ko zh (mono/cross: query and pool")
    saved = read_json(tmp_path / "diff.json")
    assert saved["label"] == "B vs A" and saved["languages"] == ["de", "ko", "zh"]
    assert saved["languages_by_dataset"] == {"xquad-r": ["de", "zh"]}
    mono = next(r for r in saved["rows"] if (r["setting"], r["metric"]) == ("mono", "map"))
    assert mono["difference"] == pytest.approx(0.1)


def test_compare_null_difference_covers_zero(tmp_path: Path) -> None:
    a = random_dataset(groups=60, seed=0).per_query
    ap = a.column("ap").to_numpy()
    noise = np.random.default_rng(5).normal(0, 0.05, ap.size)        # zero-mean jitter
    b = a.set_column(a.schema.get_field_index("ap"), "ap", pa.array(ap + noise))
    rows = {(r.setting, r.metric): r for r in compare_per_query(a, b, BootstrapSettings(400, 1))}
    for setting in ("mono", "cross", "multi"):
        r = rows[(setting, "map")]
        assert r.low <= 0 <= r.high and r.p_value > 0.05, r


def test_compare_refuses_different_queries(tmp_path: Path) -> None:
    _, _, a = per_query_pair(tmp_path)
    with pytest.raises(PipelineError, match=r"only in a.*max_groups"):
        compare_per_query(a, a.slice(0, a.num_rows - 3), BootstrapSettings(10, 0))


def test_holm_adjustment() -> None:
    assert holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert holm([0.5, 0.5]) == [1.0, 1.0]


def test_read_per_query_from_a_file_and_bad_references(tmp_path: Path) -> None:
    path_a, _, a = per_query_pair(tmp_path)
    assert read_per_query(str(path_a)).num_rows == a.num_rows
    (tmp_path / "metrics").mkdir()
    shutil.copy(path_a, tmp_path / "metrics/eval_per_query.parquet")
    assert read_per_query("workspace", repo=tmp_path).num_rows == a.num_rows
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(PipelineError, match="not a readable Parquet"):
        read_per_query(str(tmp_path / "bad.parquet"))
    with pytest.raises(PipelineError, match="file not found"):
        read_per_query("workspace", "metrics/nope.parquet", repo=tmp_path)
    # A missing file given as A/B is named as a missing file with the stage that writes it, not
    # taken for a Git revision (issue 12).
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  evaluate_base:\n    cmd: x\n    outs:\n"
        "      - metrics/base_per_query.parquet:\n          cache: false\n")
    missing = str(tmp_path / "metrics/base_per_query.parquet")
    with pytest.raises(PipelineError) as error:
        read_per_query(missing, repo=tmp_path)
    assert str(error.value) == (f"{missing}: file not found; stage 'evaluate_base' writes it "
                                f"(dvc repro evaluate_base)")
    with pytest.raises(PipelineError, match="other.parquet: file not found$"):
        read_per_query(str(tmp_path / "other.parquet"), repo=tmp_path)


def test_a_missing_file_names_the_foreach_item_that_writes_it(tmp_path: Path) -> None:
    """As dvc.yaml's ``evaluate`` stage: a ``foreach`` over a mapping, ``${item.<field>}`` paths."""
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  evaluate:\n    foreach:\n      base: {prefix: base}\n"
        "      trained: {prefix: eval}\n    do:\n      cmd: x --out ${item.prefix}\n"
        "      outs:\n        - metrics/${item.prefix}_per_query.parquet:\n"
        "            cache: false\n")
    for prefix, stage in (("base", "evaluate@base"), ("eval", "evaluate@trained")):
        missing = str(tmp_path / f"metrics/{prefix}_per_query.parquet")
        with pytest.raises(PipelineError) as error:
            read_per_query(missing, repo=tmp_path)
        assert str(error.value) == f"{missing}: file not found; stage '{stage}' writes it " \
                                   f"(dvc repro {stage})"


# ------------------------------------------------------------------------------ sweep collector

def fake_report(mix: float) -> dict:
    """An eval.json with CIs whose mono mAP rises and cross mAP falls with mix_ratio."""
    def setting(value: float) -> dict:
        return {"map": value, "ci": {"map": {"low": value - 0.02, "high": value + 0.02}}}
    return {"xquad-r": {"mono": setting(0.7 + 0.1 * mix), "cross": setting(0.6 - 0.1 * mix),
                        "multi": setting(0.4)},
            "debian-faq-r": {"mono": setting(0.5), "cross": setting(0.4), "multi": setting(0.2)},
            "run": {"wall_s": 1}, "bootstrap": {"resamples": 1000}}


def exp_node(rev: str, name: str | None, mix: float | None, steps: int = 100,
             error: dict | None = None) -> dict:
    """One commit/experiment as ``dvc exp show --json`` (DVC 3) prints it."""
    data = {"rev": rev, "timestamp": None, "deps": {}, "outs": {}, "meta": {},
            "params": {"params.yaml": {"data": {
                "seed": 13, "mix_ratio": mix, "domain_ratio": 0.2,
                "train": {"steps": steps}, "evaluate": {"max_groups": 200}}}},
            "metrics": {} if mix is None else {
                "metrics/eval.json": {"data": fake_report(mix)},
                "dvclive/metrics.json": {"data": {"step": steps - 1}}}}
    return {"rev": rev, "name": name, "data": data, "error": error, "experiments": None}


def fake_exp_show(steps_of_b: int = 100) -> list:
    baseline = exp_node("a" * 40, "main", 0.5)
    baseline["experiments"] = [
        {"name": "mix0", "executor": {"state": "success"},
         "revs": [exp_node("b" * 40, "mix0", 0.0, steps=steps_of_b)]},
        {"name": "mix1", "executor": {"state": "success"},
         "revs": [exp_node("c" * 40, "mix1", 1.0)]},
        {"name": "queued", "executor": {"state": "queued"},
         "revs": [exp_node("d" * 40, "queued", None)]},
        {"name": "broken", "executor": {"state": "failed"},
         "revs": [exp_node("e" * 40, "broken", 0.25, error={"msg": "failed"})]},
    ]
    return [exp_node("workspace", None, 0.5), baseline]


def test_collect_sweep_script_on_fake_exp_show(tmp_path: Path, capsys) -> None:
    (tmp_path / "exp.json").write_text(json.dumps(fake_exp_show()))
    load_script("collect_sweep").main([
        "--exp-show-json", str(tmp_path / "exp.json"), "--out", str(tmp_path / "sweep.json"),
        "--png", str(tmp_path / "plots/sweep.png")])
    records = read_json(tmp_path / "sweep.json")
    assert "3 experiments (main, mix0, mix1)" in capsys.readouterr().out
    assert len(records) == 3 * 2 * 3                    # experiments x datasets x settings
    assert all(set(r) == set(records[0]) for r in records)          # dvc plots: equal keys
    mono = [r for r in records if r["key"] == "xquad-r/mono"]
    assert [r["mix_ratio"] for r in mono] == [0.0, 0.5, 1.0]        # line order
    assert [r["map"] for r in mono] == pytest.approx([0.7, 0.75, 0.8])
    assert mono[0]["map_low"] == pytest.approx(0.68) and mono[0]["map_high"] == pytest.approx(0.72)
    assert mono[1]["experiment"] == "main" and mono[1]["is_commit"]
    assert mono[0]["train_steps"] == 100 and mono[0]["max_groups"] == 200
    assert (tmp_path / "plots/sweep.png").read_bytes()[:8] == PNG_MAGIC
    assert check_comparable(records) == []


def test_collect_sweep_keeps_only_the_named_experiments(tmp_path: Path, capsys) -> None:
    (tmp_path / "exp.json").write_text(json.dumps(fake_exp_show()))
    collect = load_script("collect_sweep").main
    base = ["--exp-show-json", str(tmp_path / "exp.json"), "--out", str(tmp_path / "sweep.json"),
            "--png", ""]
    collect(base + ["--names", "mix1"])
    assert "2 experiments (main, mix1)" in capsys.readouterr().out
    assert {r["experiment"] for r in read_json(tmp_path / "sweep.json")} == {"main", "mix1"}
    with pytest.raises(PipelineError, match=r"no finished experiment named \['broken'\]"):
        collect(base + ["--names", "mix1", "broken"])


def test_collector_skips_unfinished_and_flags_incomparable_points() -> None:
    exps = collect_experiments(fake_exp_show(steps_of_b=50), include_workspace=True)
    assert [e.name for e in exps] == ["workspace", "main", "mix0", "mix1"]
    warnings = check_comparable(sweep_records(exps))
    assert len(warnings) == 1 and "train_steps (100, 50)" in warnings[0]
    with pytest.raises(PipelineError, match="list of commits"):
        collect_experiments({"not": "a list"})


# ------------------------------------------------- the same on a scratch DVC repo (end to end)

FAKE_TRAIN = '''import json, yaml
p = yaml.safe_load(open("params.yaml"))
open("model.txt", "w").write(str(p["mix_ratio"]))
'''
FAKE_EVALUATE = '''import json, numpy as np, pyarrow as pa
from hybrid_retrieval.evaluation import EvalDataset, evaluate_dataset, PER_QUERY
from hybrid_retrieval.headline import BootstrapSettings
from hybrid_retrieval.io import write_json, write_parquet
from hybrid_retrieval.report_intervals import attach_confidence_intervals
mix = float(open("model.txt").read())
rng = np.random.default_rng(0)
langs, groups = ["de", "en"], 12
topics = rng.normal(size=(groups, 8))
qid, grp, ql, gold, cid, cl, q, c = [], [], [], [], [], [], [], []
for lang in langs:
    for g in range(groups):
        cid.append(f"{lang}:c{g}"); cl.append(lang); c.append(topics[g] + rng.normal(0, 1, 8))
        qid.append(f"{lang}:q{g}"); grp.append(f"g{g}"); ql.append(lang); gold.append([cid[-1]])
        q.append(topics[g] + rng.normal(0, 1, 8) * (1.5 - mix))   # mix_ratio 1: less noise
norm = lambda m: (m / np.linalg.norm(m, axis=1, keepdims=True)).astype(np.float32)
data = EvalDataset("xquad-r", qid, grp, ql, qid, gold, cid, cl, cid)
result = evaluate_dataset(data, norm(np.array(q)), norm(np.array(c)))
write_json(attach_confidence_intervals({"xquad-r": result.summary}, result.per_query,
                                       BootstrapSettings(100, 1)), "metrics/eval.json")
write_parquet(result.per_query, "metrics/eval_per_query.parquet", schema=PER_QUERY)
'''
DVC_YAML = '''stages:
  train:
    cmd: {python} train.py
    deps: [train.py]
    params: [mix_ratio]
    outs: [model.txt]
  evaluate:
    cmd: {python} evaluate.py
    deps: [evaluate.py, model.txt]
    outs: [metrics/eval_per_query.parquet]
    metrics:
      - metrics/eval.json:
          cache: false
'''


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("dvc") is None and not (Path(sys.executable).parent / "dvc")
                    .exists(), reason="dvc not installed")
def test_two_dvc_experiments_collected_and_compared(tmp_path: Path, capsys) -> None:
    dvc = shutil.which("dvc") or str(Path(sys.executable).parent / "dvc")
    repo = tmp_path / "repo"
    repo.mkdir()

    def run(*cmd: str) -> str:
        proc = subprocess.run(cmd, cwd=repo, capture_output=True, text=True)
        assert proc.returncode == 0, (cmd, proc.stdout, proc.stderr)
        return proc.stdout
    (repo / "train.py").write_text(FAKE_TRAIN)
    (repo / "evaluate.py").write_text(FAKE_EVALUATE)
    (repo / "dvc.yaml").write_text(DVC_YAML.format(python=sys.executable))
    (repo / "params.yaml").write_text("mix_ratio: 0.5\n")
    (repo / "metrics").mkdir()
    run("git", "init", "-q")
    run("git", "config", "user.email", "t@example.com")
    run("git", "config", "user.name", "t")
    run(dvc, "init", "-q")
    run("git", "add", "-A")
    run("git", "commit", "-qm", "pipeline")
    run(dvc, "exp", "run", "-S", "mix_ratio=0", "-n", "mix0")
    run(dvc, "exp", "run", "-q", "-S", "mix_ratio=1", "-n", "mix1")
    (repo / "exp.json").write_text(run(dvc, "exp", "show", "--json"))

    load_script("collect_sweep").main(["--exp-show-json", str(repo / "exp.json"),
                                       "--out", str(repo / "sweep.json"), "--png", ""])
    records = read_json(repo / "sweep.json")
    assert sorted({r["experiment"] for r in records}) == ["mix0", "mix1"]
    assert {r["mix_ratio"] for r in records} == {0, 1}
    assert all(r["map_low"] <= r["map"] <= r["map_high"] for r in records)
    load_script("compare").main(["mix0", "mix1", "--repo", str(repo), "--resamples", "200"])
    out = capsys.readouterr().out
    assert "A = mix0:metrics/eval_per_query.parquet" in out
    mono = next(line for line in out.splitlines() if line.startswith("| xquad-r | mono | map"))
    assert float(mono.split("|")[6]) > 0                  # mix 1 = less query noise: better


def test_compare_restricted_to_a_language_group() -> None:
    a = random_dataset(groups=40, langs=("de", "en", "th", "zh"), seed=2).per_query
    ap = a.column("ap").to_numpy().copy()
    th = np.array([lang == "th" or pool == "th" for lang, pool in
                   zip(a.column("lang").to_pylist(), a.column("pool_lang").to_pylist())])
    ap[th] = np.minimum(ap[th] + 0.2, 1.0)                            # only Thai rows improve
    b = a.set_column(a.schema.get_field_index("ap"), "ap", pa.array(ap))
    group = restrict_languages(a, ["de", "en", "zh"])
    assert set(group.column("lang").to_pylist()) == {"de", "en", "zh"}
    pools = {(s, p) for s, p in zip(group.column("setting").to_pylist(),
                                    group.column("pool_lang").to_pylist())}
    assert ("multi", "all") in pools and not any(p == "th" for _, p in pools)
    assert group.num_rows == 40 * (3 * 3 + 3)          # 3 mono + 6 cross pools and multi, x3 langs
    settings = BootstrapSettings(200, 0)
    without = {(r.setting, r.metric): r for r in
               compare_per_query(a, b, settings, languages=["de", "en", "zh"])}
    assert without[("mono", "map")].difference == 0 and without[("cross", "map")].difference == 0
    with_th = {(r.setting, r.metric): r for r in compare_per_query(a, b, settings)}
    assert with_th[("cross", "map")].difference > 0 and with_th[("cross", "map")].low > 0
    only_th = {(r.setting, r.metric): r for r in compare_per_query(a, b, settings,
                                                                  languages=["th"])}
    assert set(only_th) == {("mono", "map"), ("mono", "recall@1"), ("multi", "map"),
                            ("multi", "map@20"), ("multi", "recall@10"),
                            ("multi", "rank_distance")}          # no cross pair inside {th}
