"""LAReQA readers (XQuAD-R, MLQA-R) and the prepare_eval stage: golds, counts, bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hybrid_retrieval import lareqa, sources
from hybrid_retrieval.errors import PipelineError
from hybrid_retrieval.io import read_parquet
from hybrid_retrieval.schemas import EVAL_CANDIDATES, EVAL_QUESTIONS

ROOT = Path(__file__).resolve().parents[1]
MIRROR = ROOT.parent / "shared" / "data"
needs_mirror = pytest.mark.skipif(not (MIRROR / "xquad-r" / "de.json").is_file(),
                                  reason="data mirror not available")

# Three sentences; the spans leave the separating spaces out, as the LAReQA files do.
CONTEXT = "Paris is big. It has a tower. Rome is old."
BREAKS = [[0, 13], [14, 29], [30, 42]]
SENTENCES = ["Paris is big.", "It has a tower.", "Rome is old."]


def _paragraph(qas: list[dict], **overrides: object) -> dict:
    paragraph = {"context": CONTEXT, "sentences": SENTENCES, "sentence_breaks": BREAKS,
                 "qas": qas}
    paragraph.update(overrides)
    return paragraph


def _qa(qid: str, start: int, text: str = "x") -> dict:
    return {"id": qid, "question": f"Question {qid}?",
            "answers": [{"answer_start": start, "text": text}]}


def _write(tmp_path: Path, paragraphs: list[dict], name: str = "de.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"version": "1.1", "data": [{"title": "T",
                                                            "paragraphs": paragraphs}]}))
    return path


def test_gold_sentence_index_edges() -> None:
    spans = [tuple(b) for b in BREAKS]
    assert [CONTEXT[a:b] for a, b in spans] == SENTENCES
    assert lareqa.gold_sentence_index(spans, 0) == 0           # start of the first sentence
    assert lareqa.gold_sentence_index(spans, 14) == 1          # start of the second
    assert lareqa.gold_sentence_index(spans, 20) == 1          # middle of the second
    assert lareqa.gold_sentence_index(spans, 28) == 1          # its last character
    assert lareqa.gold_sentence_index(spans, 13) == 1          # the space between: next one
    assert lareqa.gold_sentence_index(spans, 41) == 2
    assert lareqa.gold_sentence_index(spans, 42) is None       # after the last sentence


def test_reader_rows_and_counts(tmp_path: Path) -> None:
    path = _write(tmp_path, [
        _paragraph([_qa("q1", 0, "Paris"), _qa("q2", 13, " It"), _qa("q3", 23, "tower. Rome")]),
        # The same paragraph again: deduplicated, its new question points to the first copy.
        _paragraph([_qa("q4", 30, "Rome"), _qa("q1", 0, "Paris")]),
    ])
    read = lareqa.read_lareqa_file(path, "de")
    assert [c["cid"] for c in read.candidates] == ["de:p0000:s00", "de:p0000:s01",
                                                   "de:p0000:s02"]
    assert {c["context"] for c in read.candidates} == {CONTEXT}
    assert [(q["qid"], q["group_id"], q["gold_cids"]) for q in read.questions] == [
        ("de:q1", "q1", ["de:p0000:s00"]), ("de:q2", "q2", ["de:p0000:s01"]),
        ("de:q3", "q3", ["de:p0000:s01"]), ("de:q4", "q4", ["de:p0000:s02"])]
    stats = read.stats
    assert (stats.questions, stats.candidates, stats.paragraphs) == (4, 3, 1)
    assert (stats.duplicate_paragraphs, stats.duplicate_questions) == (1, 1)
    assert (stats.gold_in_gap, stats.gold_not_found, stats.answer_crosses_sentence) == (1, 0, 1)
    assert stats.break_mismatches == 0


def test_duplicate_sentence_texts_keep_their_own_cids(tmp_path: Path) -> None:
    context = "Yes. No. Yes."
    path = _write(tmp_path, [{"context": context, "sentences": ["Yes.", "No.", "Yes."],
                              "sentence_breaks": [[0, 4], [5, 8], [9, 13]],
                              "qas": [_qa("a", 9)]}])
    read = lareqa.read_lareqa_file(path, "en")
    assert [c["text"] for c in read.candidates] == ["Yes.", "No.", "Yes."]
    assert read.questions[0]["gold_cids"] == ["en:p0000:s02"]


def test_answer_after_last_sentence_is_dropped_and_counted(tmp_path: Path) -> None:
    # The third sentence is missing from the segmentation: an answer in it has no gold.
    path = _write(tmp_path, [_paragraph([_qa("q1", 0), _qa("q2", 35)],
                                        sentence_breaks=BREAKS[:2], sentences=SENTENCES[:2])])
    read = lareqa.read_lareqa_file(path, "de")
    assert [q["qid"] for q in read.questions] == ["de:q1"]
    assert read.stats.gold_not_found == 1


def test_missing_sentence_breaks_names_the_field(tmp_path: Path) -> None:
    paragraph = _paragraph([_qa("q1", 0)])
    del paragraph["sentence_breaks"]
    path = _write(tmp_path, [paragraph])
    with pytest.raises(PipelineError, match=r"de\.json.*data\[0\]\.paragraphs\[0\]"
                                            r"\.sentence_breaks' is missing"):
        lareqa.read_lareqa_file(path, "de")


def test_bad_breaks_and_answers_name_the_field(tmp_path: Path) -> None:
    path = _write(tmp_path, [_paragraph([_qa("q1", 0)], sentence_breaks=[[0, 13], [14, 99],
                                                                          [30, 42]])])
    with pytest.raises(PipelineError, match=r"sentence_breaks\[1\]' is \[14, 99\], expected"):
        lareqa.read_lareqa_file(path, "de")
    path = _write(tmp_path, [_paragraph([_qa("q1", 0)], sentence_breaks=BREAKS[:2])])
    with pytest.raises(PipelineError, match=r"has 2 spans .* 3 sentences"):
        lareqa.read_lareqa_file(path, "de")
    path = _write(tmp_path, [_paragraph([_qa("q1", 500)])])
    with pytest.raises(PipelineError, match=r"answers\[0\]\.answer_start' is 500"):
        lareqa.read_lareqa_file(path, "de")


def test_spans_that_disagree_with_sentences_are_rejected(tmp_path: Path) -> None:
    # Inclusive ends (a different convention) shift every sentence by one character.
    path = _write(tmp_path, [_paragraph([_qa("q1", 0)], sentence_breaks=[[0, 12], [14, 28],
                                                                          [30, 41]])])
    with pytest.raises(PipelineError, match=r"disagrees with 'sentences' for 3 of 3"):
        lareqa.read_lareqa_file(path, "de")


def test_malformed_json_names_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, [_paragraph([_qa("q1", 0)])])
    path.write_text(path.read_text()[:60])
    with pytest.raises(PipelineError, match=rf"{path.name}: malformed JSON at line 1"):
        lareqa.read_lareqa_file(path, "de")


def test_unknown_language_names_the_param() -> None:
    with pytest.raises(PipelineError, match=r"'eval_data.xquad_r_languages' has \['xx'\].*'th'"):
        lareqa.read_lareqa("xquad-r", ["de", "xx"], MIRROR, "unused",
                           param="eval_data.xquad_r_languages")
    with pytest.raises(PipelineError, match=r"dataset 'squad'"):
        lareqa.check_languages("squad", ["en"], "eval_data.datasets")


@needs_mirror
def test_real_xquad_r_german() -> None:
    path = sources.locate("xquad-r/de.json", MIRROR, ROOT / "data" / "downloads",
                          allow_download=False)
    read = lareqa.read_lareqa_file(path, "de")
    questions, candidates = lareqa.to_tables([read])
    assert questions.schema.equals(EVAL_QUESTIONS) and candidates.schema.equals(EVAL_CANDIDATES)
    assert (questions.num_rows, candidates.num_rows) == (1190, 1276)  # LAReQA README table
    assert read.stats.gold_not_found == 0 and read.stats.break_mismatches == 0
    assert read.stats.paragraphs == 240
    cids = set(candidates.column("cid").to_pylist())
    golds = questions.column("gold_cids").to_pylist()
    assert len(cids) == 1276 and len(set(questions.column("qid").to_pylist())) == 1190
    assert all(len(g) == 1 and g[0] in cids for g in golds)
    first = questions.slice(0, 1).to_pylist()[0]
    assert first["qid"] == "de:56beb4343aeaaa14008c925b"
    assert first["text"] == "Wie viele Punkte gab die Verteidigung der Panthers ab?"
    text_by_cid = dict(zip(candidates.column("cid").to_pylist(),
                           candidates.column("text").to_pylist()))
    assert "308 Punkte" in text_by_cid[first["gold_cids"][0]]


def _params(tmp_path: Path, mirror: Path, datasets: str, extra: str = "") -> Path:
    params = tmp_path / "params.yaml"
    params.write_text(
        f"data: {{mirror: '{mirror}', download_dir: '{tmp_path / 'dl'}'}}\n"
        f"eval_data:\n  datasets: {datasets}\n  xquad_r_languages: [de]\n"
        f"  mlqa_r_languages: [de]\n  faq_languages: [en, pt]\n  faq_max_passage_words: 100\n"
        f"  faq_max_copied_share: 0.5\n  faq_skip_chapters: [faqinfo]\n{extra}")
    return params


def _run_stage(params: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "stages" / "prepare_eval.py"),
                           "--params", str(params), "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)


@needs_mirror
def test_stage_fails_cleanly_and_writes_nothing(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    (mirror / "xquad-r").mkdir(parents=True)
    (mirror / "mlqa-r").mkdir()
    shutil.copy(MIRROR / "xquad-r" / "de.json", mirror / "xquad-r" / "de.json")
    good = (MIRROR / "mlqa-r" / "de.json").read_text(encoding="utf-8")
    (mirror / "mlqa-r" / "de.json").write_text(good[: len(good) // 2], encoding="utf-8")
    out = tmp_path / "eval"
    out.mkdir()
    (out / "stats.json").write_text("{\"previous\": true}\n")  # an earlier run's output

    result = _run_stage(_params(tmp_path, mirror, "[xquad-r, mlqa-r]"), out)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "mlqa-r/de.json" in errors[0] and "checksum" in errors[0]
    assert "Traceback" not in result.stderr
    # xquad-r was read fine, but nothing of this run was written: the old output is intact.
    assert sorted(p.name for p in out.iterdir()) == ["stats.json"]
    assert json.loads((out / "stats.json").read_text()) == {"previous": True}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".eval")] == []


@needs_mirror
def test_stage_rejects_unknown_dataset(tmp_path: Path) -> None:
    result = _run_stage(_params(tmp_path, MIRROR, "[xquad-r, squad]"), tmp_path / "eval")
    assert result.returncode == 2
    assert "'eval_data.datasets'" in result.stderr and "'debian-faq-r'" in result.stderr
    assert not (tmp_path / "eval").exists()


@needs_mirror
def test_stage_writes_tables_and_stats(tmp_path: Path) -> None:
    out = tmp_path / "eval"
    result = _run_stage(_params(tmp_path, MIRROR, "[xquad-r, debian-faq-r]"), out)
    assert result.returncode == 0, result.stderr
    assert "prepare_eval: xquad-r 1190 questions / 1276 candidates" in result.stdout
    questions = read_parquet(out / "debian-faq-r" / "questions.parquet", schema=EVAL_QUESTIONS)
    candidates = read_parquet(out / "debian-faq-r" / "candidates.parquet",
                              schema=EVAL_CANDIDATES)
    assert set(questions.column("lang").to_pylist()) == {"en", "pt"}
    assert questions.num_rows == 216  # 108 sections each, none of pt left untranslated
    cids = set(candidates.column("cid").to_pylist())
    assert all(g in cids for gold in questions.column("gold_cids").to_pylist() for g in gold)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["xquad-r"]["languages"]["de"]["questions"] == 1190
    assert stats["debian-faq-r"]["languages"]["pt"]["dropped_untranslated_title"] == 0
    assert not (out / "mlqa-r").exists()
