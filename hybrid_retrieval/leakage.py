"""Every leakage guard of the pipeline: no evaluation text may reach training.

"The same text" is one definition, :func:`text.same_text_key` (NFKC, whitespace collapsed,
case-folded), used by both guards:

* :func:`assert_no_leakage`: no training query or passage (a shard table) *equals* any text of
  the evaluation tables; ``train`` runs it on every shard folder against every eval table.
* :class:`FaqLeakageGuard`: Debian domain text (manual paragraphs) must neither equal, contain,
  nor lie inside a Debian FAQ-R question or answer passage (containment for texts of at least
  ``min_chars`` characters); ``prepare_domain`` drops such pairs and ``build_domain_shards``
  asserts none are left.

Inputs are texts or Arrow tables (schemas ``SHARD``, ``EVAL_QUESTIONS``, ``EVAL_CANDIDATES``);
outputs are reasons per text/row, or a :class:`PipelineError` naming where the leak is.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from pathlib import Path
from typing import Iterable, Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .errors import PipelineError
from .io import read_parquet
from .schemas import EVAL_CANDIDATES, EVAL_QUESTIONS
from .text import normalize_text, same_text_key


def assert_no_leakage(shard_table: pa.Table, forbidden_texts: Iterable[str], *,
                      columns: tuple[str, ...] = ("query", "passage"), examples: int = 3,
                      what: str = "training shards") -> None:
    """Fail if a training text equals a forbidden one (e.g. an evaluation question or answer).

    Texts are compared by :func:`text.same_text_key` (NFKC, whitespace, case-folded) on both
    sides, as every other guard here, so a case-only variant of an evaluation text is caught.
    Raises
    :class:`PipelineError` naming ``what`` (e.g. the shard folder), with the number of leaking
    rows per column and a few examples.
    """
    forbidden = {same_text_key(text) for text in forbidden_texts}
    forbidden.discard("")
    if not forbidden or len(shard_table) == 0:
        return
    forbidden_array = pa.array(sorted(forbidden), pa.string())
    problems = []
    for column in columns:
        texts = shard_table.column(column)
        keys = pa.array([same_text_key(t) for t in texts.to_pylist()], pa.string())
        hits = pc.is_in(keys, value_set=forbidden_array)
        count = pc.sum(hits).as_py() or 0
        if count:
            shown = sorted({normalize_text(t) for t in pc.filter(texts, hits).to_pylist()}
                           )[:examples]
            problems.append(f"{count} rows in column '{column}' (e.g. {shown})")
    if problems:
        raise PipelineError(f"{what}: evaluation texts in the training data, expected none: "
                            + "; ".join(problems))


def containment_hits(needles: Sequence[str], haystacks: Sequence[str], probe_chars: int
                     ) -> set[tuple[int, int]]:
    """``(needle, haystack)`` index pairs where ``needles[i]`` occurs inside ``haystacks[j]``.

    Only needles of at least ``probe_chars`` characters are looked for. Each needle is indexed
    by its first ``probe_chars`` characters and every window of every haystack is looked up,
    so the cost is linear in the haystacks' total length (no needle x haystack scan).
    """
    probes: dict[str, list[int]] = defaultdict(list)
    for i, needle in enumerate(needles):
        if len(needle) >= probe_chars:
            probes[needle[:probe_chars]].append(i)
    hits: set[tuple[int, int]] = set()
    if not probes:
        return hits
    for j, haystack in enumerate(haystacks):
        for start in range(len(haystack) - probe_chars + 1):
            found = probes.get(haystack[start:start + probe_chars])
            if found:
                hits.update((i, j) for i in found if haystack.startswith(needles[i], start))
    return hits


class FaqLeakageGuard:
    """Finds the texts of the Debian domain test sets (FAQ-R, Install-R) in training texts.

    A training text (query or passage) leaks when, after :func:`text.same_text_key` on both sides, it
    * equals a FAQ question or answer passage (``exact``),
    * contains a whole FAQ answer passage (``contains_faq``), or
    * lies inside a FAQ answer passage or answer text (``inside_faq``): it was copied from the
      test answers.
    Containment is only checked for texts of at least ``min_chars`` characters (a FAQ passage
    "Yes." inside a manual paragraph is not a leak).
    """

    def __init__(self, questions: Iterable[str], passages: Iterable[str],
                 contexts: Iterable[str] = (), *, min_chars: int = 30) -> None:
        self.min_chars = min_chars
        question_keys = {same_text_key(t) for t in questions} - {""}
        self.passages = sorted({same_text_key(t) for t in passages} - {""})
        self.exact = question_keys | set(self.passages)
        self.haystacks = sorted(set(self.passages) | ({same_text_key(t) for t in contexts} - {""}))

    @classmethod
    def from_tables(cls, questions: pa.Table, candidates: pa.Table, *,
                    min_chars: int = 30) -> "FaqLeakageGuard":
        """From the FAQ-R tables (schemas ``EVAL_QUESTIONS`` / ``EVAL_CANDIDATES``)."""
        return cls(questions.column("text").to_pylist(), candidates.column("text").to_pylist(),
                   candidates.column("context").to_pylist(), min_chars=min_chars)

    @classmethod
    def from_dir(cls, faq_dir: str | os.PathLike, *, min_chars: int = 30) -> "FaqLeakageGuard":
        """From ``faq_dir/{questions,candidates}.parquet`` (stage ``prepare_eval``'s Debian
        FAQ-R output); a missing or malformed table raises :class:`PipelineError` naming it."""
        questions = read_parquet(Path(faq_dir) / "questions.parquet", schema=EVAL_QUESTIONS)
        candidates = read_parquet(Path(faq_dir) / "candidates.parquet", schema=EVAL_CANDIDATES)
        return cls.from_tables(questions, candidates, min_chars=min_chars)

    @classmethod
    def from_dirs(cls, eval_dirs: Sequence[str | os.PathLike], *,
                  min_chars: int = 30) -> "FaqLeakageGuard":
        """One guard over several domain test sets (Debian FAQ-R, Install-R): the texts of every
        ``<dir>/{questions,candidates}.parquet``."""
        questions, passages, contexts = [], [], []
        for eval_dir in eval_dirs:
            q = read_parquet(Path(eval_dir) / "questions.parquet", schema=EVAL_QUESTIONS)
            c = read_parquet(Path(eval_dir) / "candidates.parquet", schema=EVAL_CANDIDATES)
            questions += q.column("text").to_pylist()
            passages += c.column("text").to_pylist()
            contexts += c.column("context").to_pylist()
        return cls(questions, passages, contexts, min_chars=min_chars)

    def __len__(self) -> int:
        return len(self.exact)

    def leak_reasons(self, texts: Sequence[str]) -> list[str | None]:
        """Per text: ``exact``, ``contains_faq``, ``inside_faq`` or ``None`` (no leak)."""
        keys = [same_text_key(t) for t in texts]
        unique = sorted(set(keys))
        reasons: dict[str, str] = {k: "exact" for k in unique if k in self.exact}
        rest = [k for k in unique if k not in reasons]
        for _, j in containment_hits(self.passages, rest, self.min_chars):
            reasons.setdefault(rest[j], "contains_faq")
        rest = [k for k in rest if k not in reasons]
        for i, _ in containment_hits(rest, self.haystacks, self.min_chars):
            reasons.setdefault(rest[i], "inside_faq")
        return [reasons.get(k) for k in keys]

    def leaking_rows(self, table: pa.Table, columns: Sequence[str] = ("query", "passage")
                     ) -> list[str | None]:
        """Per row: ``"<column>:<reason>"`` of its first leaking column, or ``None``."""
        result: list[str | None] = [None] * len(table)
        for column in columns:
            for row, reason in enumerate(self.leak_reasons(table.column(column).to_pylist())):
                if reason and result[row] is None:
                    result[row] = f"{column}:{reason}"
        return result

    def assert_clean(self, table: pa.Table, *, what: str, examples: int = 3) -> None:
        """Raise :class:`PipelineError` naming ``what`` if any row of ``table`` leaks."""
        reasons = self.leaking_rows(table)
        bad = [i for i, reason in enumerate(reasons) if reason]
        if bad:
            counts = Counter(reasons[i] for i in bad)
            shown = [(reasons[i], table.column("query")[i].as_py()[:80]) for i in bad[:examples]]
            raise PipelineError(f"{what}: {len(bad)} rows contain Debian domain test-set text "
                                f"({dict(sorted(counts.items()))}; e.g. {shown}); expected none")


def read_forbidden_texts(paths: Sequence[str | os.PathLike]) -> list[str]:
    """The ``text`` column of each Parquet file (evaluation questions and candidates), the
    texts a training stage must not contain; a missing or malformed file names itself."""
    texts: list[str] = []
    for path in paths:
        if not Path(path).is_file():
            raise PipelineError(f"{path}: forbidden-texts file not found")
        try:
            texts += pq.read_table(path, columns=["text"]).column("text").to_pylist()
        except (KeyError, ValueError, OSError) as exc:
            raise PipelineError(f"{path}: expected a Parquet file with a 'text' column ({exc})") \
                from None
    return texts
