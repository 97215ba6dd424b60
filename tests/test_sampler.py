"""HybridBatchSampler: batch invariants, mix ratio, determinism, ranks, fallbacks, validation."""

from __future__ import annotations

import itertools

import numpy as np
import pyarrow as pa
import pytest

from hybrid_retrieval.errors import PipelineError
from hybrid_retrieval.sampler import (BatchMixture, GroupChooser, HybridBatchSampler,
                                       NoDuplicatesBatchFiller)
from hybrid_retrieval.schemas import SHARD
from hybrid_retrieval.shards import pair_kind


def shard_table(n_pairs: int = 60, langs: tuple[str, ...] = ("en", "pt", "de"),
                source: str = "qa", duplicate_passages: int = 0) -> pa.Table:
    """Every ordered language pair of ``n_pairs`` pairs; the first ``duplicate_passages`` pairs
    share one passage text (differing only in case and spacing), as SQuAD questions often do."""
    rows = []
    for q, p in itertools.product(langs, langs):
        for i in range(n_pairs):
            passage = f"{p} passage {i}"
            if i < duplicate_passages:
                passage = f"{p}  Shared passage" if i % 2 else f"{p} shared PASSAGE"
            rows.append({"pair_id": f"{source}{i}", "query_lang": q, "passage_lang": p,
                         "query": f"{q} query {i}", "passage": passage, "source": source,
                         "kind": pair_kind(q, p)})
    return pa.Table.from_pylist(rows, schema=SHARD)


def is_mono(table: pa.Table, batch: list[int]) -> bool:
    return table["query_lang"][batch[0]].as_py() == table["passage_lang"][batch[0]].as_py()


def test_batches_are_pure_and_true_negatives():
    table = shard_table(duplicate_passages=10)
    sampler = HybridBatchSampler.from_table(table, batch_size=8, mix_ratio=0.5, seed=1,
                                            batches_per_epoch=200)
    rows = table.to_pylist()
    batches = list(sampler)
    assert len(batches) == len(sampler) == 200
    for batch in batches:
        assert len(batch) == 8
        langs = {(rows[i]["query_lang"], rows[i]["passage_lang"]) for i in batch}
        assert len(langs) == 1  # one language pair per batch
        assert len({rows[i]["pair_id"] for i in batch}) == 8
        passages = {" ".join(rows[i]["passage"].split()).casefold() for i in batch}
        assert len(passages) == 8  # no duplicate passage, even up to case/whitespace
        assert len({rows[i]["query"] for i in batch}) == 8
    # Languages (uniform): every mono language and every cross pair is used.
    used = {(rows[b[0]]["query_lang"], rows[b[0]]["passage_lang"]) for b in batches}
    assert len(used) == 9


@pytest.mark.parametrize("mix_ratio", [0.0, 0.3, 0.5, 1.0])
def test_share_of_monolingual_batches_matches_mix_ratio(mix_ratio):
    table = shard_table(n_pairs=20, langs=("en", "pt"))
    sampler = HybridBatchSampler.from_table(table, batch_size=4, mix_ratio=mix_ratio, seed=7,
                                            batches_per_epoch=10_000)
    plans = sampler.epoch_plans(0)
    share = np.mean([is_mono(table, p.indices) for p in plans])
    assert abs(share - mix_ratio) <= 0.02
    assert all((p.kind == "mono") == is_mono(table, p.indices) for p in plans[:100])
    if mix_ratio in (0.0, 1.0):
        assert share == mix_ratio
    assert not sampler.fallback_counts(0)


def test_deterministic_for_seed_and_epoch():
    table = shard_table()
    make = lambda seed: HybridBatchSampler.from_table(table, batch_size=6, mix_ratio=0.4,
                                                      seed=seed, batches_per_epoch=50)
    a, b = make(3), make(3)
    assert list(a) == list(b)
    a.set_epoch(1)
    epoch1 = list(a)
    assert epoch1 != list(b)
    b.set_epoch(1)
    assert epoch1 == list(b)
    assert list(make(4)) != list(make(3))
    # plans(start) resumes anywhere, across epoch boundaries.
    stream = [p.indices for p in itertools.islice(make(3).plans(0), 120)]
    assert stream[:50] == list(make(3))
    assert [p.indices for p in itertools.islice(make(3).plans(73), 47)] == stream[73:]


def test_ranks_get_disjoint_batches():
    table = shard_table(n_pairs=200)
    world = [HybridBatchSampler.from_table(table, batch_size=8, mix_ratio=0.5, seed=0, rank=r,
                                           world_size=3) for r in range(3)]
    for epoch in (0, 1):
        for sampler in world:
            sampler.set_epoch(epoch)
        per_rank = [list(s) for s in world]
        assert all(len(batches) == len(table) // (8 * 3) for batches in per_rank)
        # Some groups are drawn more often than their share of rows, so a rank reuses its rows
        # within an epoch; still, no row is in two ranks' batches.
        row_sets = [set(itertools.chain.from_iterable(b)) for b in per_rank]
        for x, y in itertools.combinations(row_sets, 2):
            assert not x & y
        assert len(set().union(*row_sets)) > 0.7 * len(table)
    single = HybridBatchSampler.from_table(table, batch_size=8, mix_ratio=0.5, seed=0)
    alone = HybridBatchSampler.from_table(table, batch_size=8, mix_ratio=0.5, seed=0, rank=0,
                                          world_size=1)
    assert list(single) == list(alone)


def test_fallback_when_a_kind_is_missing():
    one_language = shard_table(langs=("en",))
    sampler = HybridBatchSampler.from_table(one_language, batch_size=4, mix_ratio=0.3,
                                            batches_per_epoch=100)
    plans = sampler.epoch_plans(0)
    assert all(p.kind == "mono" for p in plans)
    fallbacks = sampler.fallback_counts(0)
    assert set(fallbacks) == {("qa", "cross")}
    assert fallbacks[("qa", "cross")] == sum(p.requested_kind == "cross" for p in plans) > 50
    # Cross pairs only (no mono rows) and mix_ratio 1: every batch falls back to cross.
    cross_only = shard_table(langs=("en", "pt")).filter(pa.compute.equal(
        shard_table(langs=("en", "pt"))["kind"], "cross"))
    sampler = HybridBatchSampler.from_table(cross_only, batch_size=4, mix_ratio=1.0,
                                            batches_per_epoch=20)
    assert sampler.fallback_counts(0)[("qa", "mono")] == 20


def test_proportional_language_sampling():
    big = shard_table(n_pairs=300, langs=("en",))
    small = shard_table(n_pairs=30, langs=("pt",))
    table = pa.concat_tables([big, small])
    counts = {}
    for mode in ("uniform", "proportional"):
        sampler = HybridBatchSampler.from_table(table, batch_size=4, mix_ratio=1.0, seed=0,
                                                language_sampling=mode, batches_per_epoch=2000)
        counts[mode] = np.mean([p.group[1] == "en" for p in sampler.epoch_plans(0)])
    assert abs(counts["uniform"] - 0.5) < 0.04
    assert abs(counts["proportional"] - 300 / 330) < 0.03


def test_sources_are_an_independent_choice():
    table = pa.concat_tables([shard_table(n_pairs=40, langs=("en", "pt")),
                              shard_table(n_pairs=40, langs=("en", "pt"), source="domain")])
    with pytest.raises(PipelineError, match="source_ratios"):
        HybridBatchSampler.from_table(table, batch_size=4, mix_ratio=0.5)
    sampler = HybridBatchSampler.from_table(table, batch_size=4, mix_ratio=0.5, seed=2,
                                            source_ratios={"domain": 0.2, "qa": 0.8},
                                            batches_per_epoch=5000)
    plans = sampler.epoch_plans(0)
    domain = np.array([p.source == "domain" for p in plans])
    mono = np.array([p.kind == "mono" for p in plans])
    assert abs(domain.mean() - 0.2) < 0.02 and abs(mono.mean() - 0.5) < 0.02
    assert abs(mono[domain].mean() - 0.5) < 0.04  # independent draws
    sources = table["source"].to_pylist()
    assert all(len({sources[i] for i in p.indices}) == 1 for p in plans)


@pytest.mark.parametrize("bad", [-0.1, 1.5, "0.5", None, True, float("nan")])
def test_bad_mix_ratio_names_mix_ratio(bad):
    with pytest.raises(PipelineError, match="mix_ratio"):
        HybridBatchSampler.from_table(shard_table(n_pairs=10), batch_size=4, mix_ratio=bad)


def test_other_bad_arguments():
    table = shard_table(n_pairs=10)
    with pytest.raises(PipelineError, match="batch_size"):
        HybridBatchSampler.from_table(table, batch_size=1, mix_ratio=0.5)
    with pytest.raises(PipelineError, match="language_sampling"):
        HybridBatchSampler.from_table(table, batch_size=4, mix_ratio=0.5, language_sampling="x")
    with pytest.raises(PipelineError, match="rank"):
        HybridBatchSampler.from_table(table, batch_size=4, mix_ratio=0.5, rank=2, world_size=2)
    with pytest.raises(PipelineError, match="can fill a batch"):
        HybridBatchSampler.from_table(table, batch_size=11, mix_ratio=0.5)


# ------------------------------------------------ the two halves alone, and the mixture (issue 13)

def _mixed_table() -> pa.Table:
    """Two sources (qa: en pt; domain: en de fr, some cross pairs missing), case-only duplicate
    queries: the table the pre-refactor digest below was computed on."""
    rows = []
    for i in range(60):
        for source, langs in (("qa", ("en", "pt")), ("domain", ("en", "de", "fr"))):
            for q, p in itertools.product(langs, langs):
                if source == "domain" and i % 3 == 0 and q != p:
                    continue
                text = f"{q} Question {i % 50} about {source}?" if i % 7 else \
                    f"{q} QUESTION {i % 50} ABOUT {source}?"
                rows.append({"pair_id": f"{source}{i % 55}", "query_lang": q,
                             "passage_lang": p, "query": text,
                             "passage": f"{p} answer {i} of {source}.", "source": source,
                             "kind": pair_kind(q, p)})
    return pa.Table.from_pylist(rows, schema=SHARD)


def test_batches_are_identical_to_the_sampler_before_it_was_split():
    """Digest of the plans (indices, group, kind, epoch, position) that the one-class sampler of
    commit 48b51ee (which trained the committed encoder) gave on this table: the composed
    sampler must give the same batches for the same seed."""
    import hashlib

    digest = hashlib.sha256()
    table = _mixed_table()
    for sampling in ("uniform", "proportional"):
        for world, rank in ((1, 0), (2, 1)):
            sampler = HybridBatchSampler.from_table(
                table, batch_size=6, mix_ratio=0.4, language_sampling=sampling,
                source_ratios={"qa": 0.7, "domain": 0.3}, seed=13, rank=rank, world_size=world)
            plans = sampler.plans()
            for _ in range(3 * len(sampler) + 5):
                p = next(plans)
                digest.update(repr((p.indices, p.group, p.requested_kind, p.epoch,
                                    p.position)).encode())
    assert digest.hexdigest() == \
        "91c90f981618c9de48072cb0f92f462b0dc459ada2dee4c20543a7f08486c3f4"


def test_group_chooser_alone_follows_the_mixture():
    groups = {("qa", "en", "en"): 10, ("qa", "en", "pt"): 10, ("qa", "pt", "pt"): 30,
              ("domain", "de", "de"): 10}
    mixture = BatchMixture(0.25, {"qa": 0.8, "domain": 0.2}, "uniform")
    chooser = GroupChooser(groups, mixture, {"qa", "domain"})
    draws = chooser.draw(20_000, np.random.default_rng(0))
    sources = np.array([key[0] for key, _ in draws])
    requested = np.array([kind for _, kind in draws])
    kinds = np.array([pair_kind(key[1], key[2]) for key, _ in draws])
    assert abs((sources == "domain").mean() - 0.2) < 0.01
    assert abs((requested == "mono").mean() - 0.25) < 0.01
    # domain has no cross group: its cross requests fall back to mono
    assert set(kinds[sources == "domain"]) == {"mono"}
    qa_mono = [key for (key, _), k in zip(draws, kinds) if key[0] == "qa" and k == "mono"]
    share_pt = sum(key[1] == "pt" for key in qa_mono) / len(qa_mono)
    assert abs(share_pt - 0.5) < 0.03  # uniform over languages, not 30:10 by rows
    proportional = GroupChooser(groups, BatchMixture(1.0, {"qa": 1.0}, "proportional"),
                                {"qa"})
    keys = [key for key, _ in proportional.draw(20_000, np.random.default_rng(1))]
    assert abs(sum(k == ("qa", "pt", "pt") for k in keys) / len(keys) - 0.75) < 0.02


def test_no_duplicates_filler_alone():
    from collections import deque

    # rows 0-3 share a query code, rows 4-5 a passage code; row 6 repeats row 7's pair id
    filler = NoDuplicatesBatchFiller(pair_codes=np.array([0, 1, 2, 3, 4, 5, 6, 6, 8, 9]),
                                     query_codes=np.array([0, 0, 0, 0, 4, 5, 6, 7, 8, 9]),
                                     passage_codes=np.array([0, 1, 2, 3, 4, 4, 6, 7, 8, 9]),
                                     batch_size=4)
    queue = deque(range(10))
    batch = filler.fill(("qa", "en", "en"), np.arange(10), queue, np.random.default_rng(0))
    assert batch == [0, 4, 6, 8]
    assert list(queue)[:5] == [1, 2, 3, 5, 7]  # held back rows first, in order
    assert filler.distinct(np.arange(10)) == 7  # at most 7 rows can share a batch
    with pytest.raises(PipelineError, match="cannot fill a batch of 4"):
        filler.fill(("qa", "en", "en"), np.arange(4), deque([0, 1, 2, 3]),
                    np.random.default_rng(0))


def test_mixture_from_params_names_sources_and_keys():
    params = {"mix_ratio": 0.5, "domain_ratio": 0.2, "train": {"language_sampling": "uniform"}}
    mixture = BatchMixture.from_params(params, "p.yaml", ["domain", "qa"])
    assert mixture.source_ratios == {"domain": 0.2, "qa": 0.8} and mixture.mix_ratio == 0.5
    assert BatchMixture.from_params({**params, "domain_ratio": 0.0}, "p.yaml",
                                    ["qa"]).source_ratios is None
    with pytest.raises(PipelineError, match=r"p.yaml: 'domain_ratio' is 0.2 but no shard folder "
                                            r"holds 'domain' rows"):
        BatchMixture.from_params(params, "p.yaml", ["qa"])
    with pytest.raises(PipelineError, match=r"p.yaml: 'domain_ratio' is 1.5, expected a number"):
        BatchMixture.from_params({**params, "domain_ratio": 1.5}, "p.yaml", ["domain", "qa"])
    three = BatchMixture.from_params({**params, "parallel_ratio": 0.3}, "p.yaml",
                                     ["domain", "parallel", "qa"],
                                     {"domain": "domain_ratio", "parallel": "parallel_ratio"})
    assert three.source_ratios == pytest.approx({"domain": 0.2, "parallel": 0.3, "qa": 0.5})
    with pytest.raises(PipelineError, match="sum to"):
        BatchMixture(0.5, {"qa": 0.5, "domain": 0.2})
    with pytest.raises(PipelineError, match="language_sampling"):
        BatchMixture(0.5, None, "by-size")


def test_three_sources_share_the_batches_and_a_sentence_is_never_twice_in_one() -> None:
    """The NTREX source: pair_id = sentence id in every language pair, so a batch never holds two
    pairs of one sentence (each in-batch negative a true negative), over many batches."""
    table = pa.concat_tables([shard_table(n_pairs=40, langs=("en", "pt")),
                              shard_table(n_pairs=40, langs=("en", "pt"), source="domain"),
                              shard_table(n_pairs=30, langs=("en", "de", "el", "vi"),
                                          source="parallel")])
    mixture = BatchMixture.from_params({"mix_ratio": 0.5, "domain_ratio": 0.2,
                                        "parallel_ratio": 0.3}, "p.yaml",
                                       ["domain", "parallel", "qa"])
    sampler = HybridBatchSampler.from_table(table, batch_size=8, mixture=mixture, seed=3,
                                            batches_per_epoch=4000)
    plans = sampler.epoch_plans(0)
    share = {s: np.mean([p.source == s for p in plans]) for s in ("qa", "domain", "parallel")}
    assert share == pytest.approx({"qa": 0.5, "domain": 0.2, "parallel": 0.3}, abs=0.025)
    pair_ids = table["pair_id"].to_pylist()
    for plan in plans:
        ids = [pair_ids[i] for i in plan.indices]
        assert len(set(ids)) == len(ids)


def test_a_source_at_ratio_zero_is_not_loaded() -> None:
    from hybrid_retrieval.sampler import drawn_shard_dirs

    folders = {"data/shards/parallel": ["qa"], "data/shards/domain": ["domain"],
               "data/shards/ntrex": ["parallel"]}
    default = {"domain": 0.2, "parallel": 0.0, "qa": 0.8}
    assert drawn_shard_dirs(folders, default) == ["data/shards/parallel", "data/shards/domain"]
    assert drawn_shard_dirs(folders, {"domain": 0.0, "parallel": 0.2, "qa": 0.8}) == \
        ["data/shards/parallel", "data/shards/ntrex"]
    assert drawn_shard_dirs({"a": ["qa"]}, None) == ["a"]
