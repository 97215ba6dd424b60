"""Shared test fixtures. Everything is built locally: tests never download anything.

``tiny_encoder_dir`` is a Hugging Face encoder folder shaped like ``models/base_encoder``
(a ``BertModel`` without pooler + an XLM-R-style fast tokenizer with ``<s> ... </s>``), but tiny
and random: 2 layers, hidden size 32, a ~300-piece Unigram vocabulary trained on a few
multilingual sentences. Tests must treat it as read-only (it is shared by the whole session);
copy it (``shutil.copytree``) to modify it.

The suite runs on pytest-xdist workers (``-n 2`` in pyproject's addopts). A session fixture
that is expensive to build (the tiny encoder, the tiny pipelines) goes through ``build_once``:
the first worker to need it builds it in the run's shared temporary folder under a file lock,
the others wait and reuse it. Test files are never split across workers (``--dist loadfile``),
so module fixtures are built once as well.
"""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path
from typing import Callable, TypeVar

import pytest
from filelock import FileLock

T = TypeVar("T")

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

#: A few sentences per script, so the tiny vocabulary covers Latin, Cyrillic, Arabic, Hebrew,
#: Greek, Devanagari, Thai and CJK characters (other characters map to <unk>).
TINY_CORPUS = [
    "What is the capital of France? Paris is the capital and largest city of France.",
    "¿Cuál es la capital de Francia? París es la capital de Francia.",
    "Was ist die Hauptstadt von Frankreich? Paris ist die Hauptstadt Frankreichs.",
    "Ποια είναι η πρωτεύουσα της Γαλλίας; Το Παρίσι είναι η πρωτεύουσα.",
    "Какая столица Франции? Париж является столицей Франции.",
    "ما هي عاصمة فرنسا؟ باريس هي عاصمة فرنسا.",
    "מהי בירת צרפת? פריז היא בירת צרפת.",
    "फ्रांस की राजधानी क्या है? पेरिस फ्रांस की राजधानी है।",
    "เมืองหลวงของฝรั่งเศสคืออะไร ปารีสเป็นเมืองหลวงของฝรั่งเศส",
    "Fransa'nın başkenti neresidir? Paris Fransa'nın başkentidir.",
    "Thủ đô của Pháp là gì? Paris là thủ đô của Pháp.",
    "法国的首都是什么？巴黎是法国的首都。",
    "query: passage: How do I install a Debian package with apt-get install?",
]

TINY_SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


def build_tiny_encoder(folder: Path, *, hidden_size: int = 32, layers: int = 2,
                       max_positions: int = 512, seed: int = 0) -> Path:
    """Write a tiny random ``BertModel`` + Unigram fast tokenizer to ``folder``; return it."""
    import torch
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from tokenizers import trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=300, special_tokens=TINY_SPECIAL_TOKENS,
                                      unk_token="<unk>", show_progress=False)
    tok.train_from_iterator(TINY_CORPUS * 4, trainer)
    bos, eos = tok.token_to_id("<s>"), tok.token_to_id("</s>")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", bos), ("</s>", eos)])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
        sep_token="</s>", cls_token="<s>", pad_token="<pad>", mask_token="<mask>",
        model_max_length=max_positions)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(folder)

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=hidden_size,
                        num_hidden_layers=layers, num_attention_heads=2,
                        intermediate_size=2 * hidden_size, max_position_embeddings=max_positions,
                        pad_token_id=tokenizer.pad_token_id)
    BertModel(config, add_pooling_layer=False).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def build_once(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, Callable[[Path], T]], T]:
    """``build_once(name, build)``: ``build(folder)``'s result, computed once per test run.

    Without xdist, ``folder`` is a fresh temporary folder and ``build`` runs in this process.
    Under xdist it is ``<run's temporary root>/<name>``, shared by every worker: the first worker
    runs ``build`` under a file lock and stores its (picklable) result beside the folder; the
    others wait for the lock and load that result. A build that raised leaves no result, so the
    next worker builds again.
    """
    def once(name: str, build: Callable[[Path], T]) -> T:
        if os.environ.get("PYTEST_XDIST_WORKER") is None:
            return build(tmp_path_factory.mktemp(name))
        folder = tmp_path_factory.getbasetemp().parent / name
        result_file = folder.with_name(f"{name}.result.pickle")
        with FileLock(f"{folder}.lock"):
            if not result_file.exists():
                shutil.rmtree(folder, ignore_errors=True)
                folder.mkdir()
                result_file.write_bytes(pickle.dumps(build(folder)))
            return pickle.loads(result_file.read_bytes())
    return once


@pytest.fixture(scope="session")
def tiny_encoder_dir(build_once: Callable) -> Path:
    """A tiny random HF encoder folder (BertModel, no pooler; XLM-R-style tokenizer). Read-only."""
    return build_once("tiny_encoder", lambda folder: build_tiny_encoder(folder / "encoder"))
