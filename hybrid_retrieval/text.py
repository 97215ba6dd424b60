"""Text utilities shared by every reader: Unicode/whitespace normalisation and sentence splitting.

Sentence splitting uses blingfire (a finite-state, multilingual splitter that works offline):
on SQuAD it is ~25x faster than pysbd and handles honorifics such as "Fr. Sorin" that pysbd
splits; see README "Sentence splitting" for the by-eye check.
"""

from __future__ import annotations

import bisect
import re
import unicodedata

import blingfire

_WHITESPACE = re.compile(r"\s+")


def sanitize_text(text: str) -> str:
    """Make ``text`` safe to tokenise: lone surrogates (not encodable as UTF-8) become U+FFFD.

    Everything else (control characters, NUL, RTL marks, emoji) is left to the tokenizer,
    which normalises or maps it to the unknown token.
    """
    if not isinstance(text, str):
        raise TypeError(f"expected a str, got {type(text).__name__}")
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", errors="surrogatepass").decode("utf-8", errors="replace")


def normalize_text(text: str) -> str:
    """NFKC, whitespace collapsed to single spaces, stripped (what a stored text looks like)."""
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFKC", text)).strip()


def same_text_key(text: str) -> str:
    """The one definition of "the same text": :func:`normalize_text`, then case-folded. Two texts
    with equal keys are duplicates (de-duplication, no-duplicate batches) and an evaluation text's
    key in training data is a leak (:mod:`leakage`)."""
    return normalize_text(text).casefold()


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Character spans ``[start, end)`` of the sentences of ``text``, in order, covering its words.

    Spans index into ``text`` itself (blingfire's offsets), so ``text[start:end]`` is a sentence.
    """
    if not text.strip():
        return []
    _, offsets = blingfire.text_to_sentences_and_offsets(text)
    return [(int(s), int(e)) for s, e in offsets]


def sentence_index(spans: list[tuple[int, int]], position: int) -> int:
    """Index of the span in ``spans`` (from :func:`sentence_spans`) that contains ``position``.

    A position in the whitespace between two sentences belongs to the following sentence;
    one after the last sentence belongs to the last.
    """
    if not spans:
        raise ValueError("no sentences")
    return min(bisect.bisect_right([end for _, end in spans], position), len(spans) - 1)


def sentence_containing(text: str, position: int) -> str:
    """The sentence of ``text`` that contains character ``position`` (e.g. a SQuAD answer_start).

    Raises ``ValueError`` when ``position`` is outside ``text``.
    """
    if not 0 <= position < len(text):
        raise ValueError(f"position {position} outside a text of {len(text)} characters")
    spans = sentence_spans(text)
    start, end = spans[sentence_index(spans, position)]
    return text[start:end]
