"""Language groups come from the shard manifests: what trained each evaluation language."""

from __future__ import annotations

from hybrid_retrieval.language_groups import group_members, language_groups, language_supervision

QA = {"pair_counts": {"qa:en-en": 5, "qa:en-pt": 5, "qa:pt-en": 5, "qa:pt-pt": 5}}
DOMAIN = {"pair_counts": {"domain:vi-vi": 3, "domain:ar-ar": 4, "domain:ar-en": 2,
                          "domain:en-ar": 2, "domain:de-de": 1, "domain:tr-tr": 0}}
EVAL = ["ar", "de", "el", "en", "hi", "pt", "th", "tr", "vi"]


def test_every_language_gets_its_strongest_label() -> None:
    groups = language_groups(EVAL, [QA, DOMAIN])
    assert groups == {"ar": "domain-aligned", "de": "domain-mono", "el": "none", "en": "qa",
                      "hi": "none", "pt": "qa", "th": "none", "tr": "none", "vi": "domain-mono"}
    assert group_members(groups) == {"qa": ["en", "pt"], "domain-aligned": ["ar"],
                                     "domain-mono": ["de", "vi"], "none": ["el", "hi", "th", "tr"]}


def test_labels_follow_the_manifests_not_a_list() -> None:
    assert language_groups(EVAL, [QA])["ar"] == "none"  # QA-only run: ar is zero-shot
    supervision = language_supervision([QA, DOMAIN])
    assert supervision["en"] == {"qa", "domain-aligned"} and "tr" not in supervision  # 0 pairs
    other = {"pair_counts": {"parallel:el-en": 7}}
    assert language_groups(["el"], [other]) == {"el": "parallel"}


def test_a_source_never_sampled_trains_no_language() -> None:
    from hybrid_retrieval.language_groups import groups_from_supervision, trained_supervision

    qa_only = trained_supervision([QA, DOMAIN], {"qa": 1.0, "domain": 0.0})
    assert qa_only == {"en": ["qa"], "pt": ["qa"]}
    both = trained_supervision([QA, DOMAIN], {"qa": 0.8, "domain": 0.2})
    assert both["ar"] == ["domain-aligned", "domain-mono"] and both["en"][0] == "qa"
    assert groups_from_supervision(["ar", "hi"], both) == {"ar": "domain-aligned", "hi": "none"}
