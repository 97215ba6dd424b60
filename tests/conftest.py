"""Shared test fixtures. Everything is built locally: tests never download anything.

``tiny_encoder_dir`` is a Hugging Face encoder folder shaped like ``models/base_encoder``
(a ``BertModel`` without pooler + an XLM-R-style fast tokenizer with ``<s> ... </s>``), but tiny
and random: 2 layers, hidden size 32, a ~300-piece Unigram vocabulary trained on a few
multilingual sentences. Tests must treat it as read-only (it is shared by the whole session);
copy it (``shutil.copytree``) to modify it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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
def tiny_encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random HF encoder folder (BertModel, no pooler; XLM-R-style tokenizer). Read-only."""
    return build_tiny_encoder(tmp_path_factory.mktemp("tiny_encoder") / "encoder")
