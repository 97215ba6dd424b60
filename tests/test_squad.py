"""SQuAD reader and the prepare_squad stage: answer sentences, subsets, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hybrid_retrieval import squad
from hybrid_retrieval.errors import PipelineError
from hybrid_retrieval.text import normalize_text, sentence_containing, sentence_spans

ROOT = Path(__file__).resolve().parents[1]
CONTEXT = ("The Normans were a people. They gave their name to Normandy, a region in France. "
           "Rollo was their first ruler.")


def _squad_file(tmp_path: Path, qas: list[dict], context: str = CONTEXT) -> Path:
    doc = {"version": "1.1", "data": [{"title": "Normans", "paragraphs": [
        {"context": context, "qas": qas}]}]}
    path = tmp_path / "train.json"
    path.write_text(json.dumps(doc))
    return path


def _qa(qid: str, start: int, text: str) -> dict:
    return {"id": qid, "question": f" Question {qid}? ",
            "answers": [{"answer_start": start, "text": text}]}


def test_sentence_containing_edges() -> None:
    assert sentence_spans(CONTEXT) == [(0, 26), (27, 80), (81, 109)]
    assert sentence_containing(CONTEXT, 0) == "The Normans were a people."
    assert sentence_containing(CONTEXT, 51) == "They gave their name to Normandy, a region in France."
    # The space between two sentences belongs to the following one.
    assert sentence_containing(CONTEXT, 26) == "They gave their name to Normandy, a region in France."
    assert sentence_containing(CONTEXT, 108) == "Rollo was their first ruler."
    with pytest.raises(ValueError):
        sentence_containing(CONTEXT, 109)


def test_normalize_text() -> None:
    assert normalize_text("  ｆｕｌｌ\u00a0width\n\ttext ") == "full width text"


def test_read_squad_finds_answer_sentences(tmp_path: Path) -> None:
    path = _squad_file(tmp_path, [_qa("a", CONTEXT.index("Normandy"), "Normandy"),
                                  _qa("b", CONTEXT.index("Rollo"), "Rollo")])
    table = squad.read_squad(path)
    assert table.num_rows == 2
    rows = table.to_pylist()
    assert rows[0]["answer_sentence"] == "They gave their name to Normandy, a region in France."
    assert rows[1]["answer_sentence"] == "Rollo was their first ruler."
    assert rows[0]["question"] == "Question a?" and rows[0]["title"] == "Normans"


def test_real_squad_train_answers_lie_in_their_sentence() -> None:
    table = squad.read_squad(ROOT.parent / "shared/data/squad-v1.1/train-v1.1.json")
    assert table.num_rows == 87_599
    subset = squad.sample_questions(table, 2000, seed=13).to_pylist()
    inside = sum(r["answer_text"] in r["answer_sentence"] for r in subset)
    assert inside >= 0.99 * len(subset)  # the rest are answers that span a sentence boundary
    assert squad.sample_questions(table, 2000, seed=13).column("id").to_pylist() == \
        [r["id"] for r in subset]
    assert squad.sample_questions(table, 0, seed=13).num_rows == 87_599


@pytest.mark.parametrize("qas, message", [
    ([{"id": "a", "question": "q?", "answers": []}], r"'data\[0\].paragraphs\[0\].qas\[0\].answers' is empty"),
    ([{"id": "a", "answers": [{"answer_start": 0, "text": "T"}]}], r"missing field 'data\[0\].paragraphs\[0\].qas\[0\].question'"),
    ([_qa("a", 500, "x")], r"answer_start' is 500, expected a position"),
    ([{"id": "a", "question": "q", "answers": [{"answer_start": "3", "text": "T"}]}], r"answer_start' is str, expected int"),
])
def test_bad_squad_fields_are_named(tmp_path: Path, qas: list, message: str) -> None:
    with pytest.raises(PipelineError, match=message):
        squad.read_squad(_squad_file(tmp_path, qas))


def test_stage_fails_cleanly_without_partial_output(tmp_path: Path) -> None:
    """A corrupt mirror file: one error line, exit 2, no output written."""
    mirror = tmp_path / "mirror" / "squad-v1.1"
    mirror.mkdir(parents=True)
    (mirror / "train-v1.1.json").write_text('{"data": [')
    params = tmp_path / "params.yaml"
    params.write_text(f"data: {{mirror: {tmp_path / 'mirror'}, download_dir: {tmp_path / 'dl'}}}\n"
                      "prepare: {max_questions: 10, seed: 1}\n")
    out = tmp_path / "out" / "train.parquet"
    proc = subprocess.run([sys.executable, str(ROOT / "stages/prepare_squad.py"), "--params",
                           str(params), "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "checksum mismatch" in proc.stderr and "train-v1.1.json" in proc.stderr
    assert not out.exists()


def test_stage_rejects_bad_params(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("data: {mirror: ../shared/data, download_dir: data/downloads}\n"
                      "prepare: {max_questions: -5, seed: 1}\n")
    proc = subprocess.run([sys.executable, str(ROOT / "stages/prepare_squad.py"), "--params",
                           str(params), "--out", str(tmp_path / "o.parquet")],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2
    assert "'prepare.max_questions' is -5, expected a value >= 0" in proc.stderr
