"""Which training text each evaluation language had, read from the shard manifests (not typed).

A run's shards say, in ``manifest.json`` ``pair_counts`` (``"<source>:<query_lang>-<passage_lang>"
-> pairs``), exactly which languages its training touched and how. Every evaluation language
gets the strongest of four labels (:data:`GROUPS`, most supervision first):

* ``qa``: a QA pair (SQuAD, machine-translated) has a side in it;
* ``parallel``: a human-translated NTREX sentence pair has a side in it (issue 15);
* ``domain-aligned``: an aligned cross-lingual Debian pair has a side in it;
* ``domain-mono``: only monolingual Debian pairs are in it;
* ``none``: no training pair of any kind (zero-shot).

Labels per source are :data:`SOURCE_GROUPS`; a source not listed there labels a language by
its own name (ranked just before ``none``).
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

GROUPS = ("qa", "parallel", "domain-aligned", "domain-mono", "none")
#: shard source -> the group its cross-lingual / monolingual pairs give a language.
SOURCE_GROUPS: dict[str, tuple[str, str]] = {"qa": ("qa", "qa"),
                                              "domain": ("domain-aligned", "domain-mono"),
                                              "parallel": ("parallel", "parallel")}


def _rank(group: str) -> float:
    """Sort key: :data:`GROUPS` order; a label of another source just before ``none``."""
    return GROUPS.index(group) if group in GROUPS else GROUPS.index("none") - 0.5


def language_supervision(manifests: Iterable[Mapping[str, Any]]) -> dict[str, set[str]]:
    """Language -> every group label its training pairs give it (from ``pair_counts``)."""
    labels: dict[str, set[str]] = {}
    for manifest in manifests:
        for key, count in manifest["pair_counts"].items():
            if not count:
                continue
            source, langs = key.split(":", 1)
            query_lang, passage_lang = langs.split("-", 1)
            cross, mono = SOURCE_GROUPS.get(source, (source, source))
            group = mono if query_lang == passage_lang else cross
            for lang in (query_lang, passage_lang):
                labels.setdefault(lang, set()).add(group)
    return labels


def language_groups(languages: Sequence[str], manifests: Iterable[Mapping[str, Any]]
                    ) -> dict[str, str]:
    """Each of ``languages`` -> its strongest label (:data:`GROUPS` order), ``none`` if no
    training pair touched it."""
    supervision = language_supervision(manifests)
    return {lang: min(supervision.get(lang, {"none"}), key=_rank) for lang in languages}


def group_members(groups: Mapping[str, str]) -> dict[str, list[str]]:
    """Label -> its languages (sorted), labels in :data:`GROUPS` order, empty ones left out."""
    members: dict[str, list[str]] = {}
    for label in sorted(set(groups.values()), key=_rank):
        members[label] = sorted(lang for lang, g in groups.items() if g == label)
    return members


def trained_supervision(manifests: Iterable[Mapping[str, Any]],
                        source_ratios: Mapping[str, float]) -> dict[str, list[str]]:
    """What a run trained each language with: :func:`language_supervision` of the pairs of the
    sources it drew batches from (``source_ratios`` > 0; a source at 0 was never sampled),
    labels sorted in :data:`GROUPS` order. Written by the train stage to
    ``metrics/train_languages.json`` (in git), so any experiment's groups can be read back."""
    used = [{"pair_counts": {k: n for k, n in m["pair_counts"].items()
                             if source_ratios.get(k.split(":", 1)[0], 0) > 0}}
            for m in manifests]
    return {lang: sorted(labels, key=_rank)
            for lang, labels in sorted(language_supervision(used).items())}


def groups_from_supervision(languages: Sequence[str], supervision: Mapping[str, Sequence[str]]
                            ) -> dict[str, str]:
    """Each of ``languages`` -> the strongest label of ``supervision`` (as read back from
    ``metrics/train_languages.json``), ``none`` where it has none."""
    return {lang: min(supervision.get(lang, ["none"]), key=_rank) for lang in languages}
