"""Hybrid batches: each batch is monolingual with probability ``mix_ratio``, else cross-lingual.

The training rows are split into *groups* keyed by ``(source, query_lang, passage_lang)``: e.g.
``("qa", "pt", "pt")`` holds the Portuguese question / Portuguese answer pairs, ``("qa", "en",
"pt")`` the English question / Portuguese answer pairs. Every batch is drawn from one group:

1. a *source* (``source_ratios``; with one source, that one),
2. a *kind*: ``mono`` (query_lang == passage_lang) with probability ``mix_ratio``, else ``cross``,
3. a group of that source and kind: uniformly over its language (pairs), or in proportion to the
   groups' rows (``language_sampling="proportional"``),

and then fills the batch from that group's shuffled queue of rows, skipping (and keeping for a
later batch) a row whose pair id, query or passage is already in the batch, so every in-batch
negative is a true negative. When the drawn source has no group of the drawn kind (e.g. only one
language, so no cross-lingual pairs), the other kind is used and the fallback is counted.

The three draws are independent: adding a source (the Debian domain pairs, with probability
``domain_ratio``) is one more entry in ``source_ratios``, not a new sampler.

Batches are a pure function of ``(seed, epoch, rank, world_size)``, so a resumed run can skip to
any position (:meth:`HybridBatchSampler.plans`). In a distributed run every epoch splits each
group's rows into ``world_size`` disjoint random parts and each rank draws only from its own part,
so no row is in two ranks' batches of the same epoch.
"""

from __future__ import annotations

import logging
import math
from collections import Counter, deque
from dataclasses import dataclass
from typing import Iterator, Mapping, Sequence

import numpy as np
import pyarrow as pa
from torch.utils.data import Sampler

from .errors import PipelineError
from .shards import CROSS, MONO, pair_kind
from .text import same_text_key

log = logging.getLogger(__name__)

#: (source, query_lang, passage_lang)
GroupKey = tuple[str, str, str]
LANGUAGE_SAMPLING = ("uniform", "proportional")
#: Training sources besides the QA pairs -> the top-level param giving P(batch from it); the QA
#: pairs take the rest. A new source (its own shard folder) is one more entry.
SOURCE_RATIO_PARAMS = {"domain": "domain_ratio", "parallel": "parallel_ratio"}


def check_probability(value: object, name: str) -> float:
    """``value`` as a float in [0, 1]; otherwise :class:`PipelineError` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not 0.0 <= value <= 1.0:
        raise PipelineError(f"{name} is {value!r}, expected a number in [0, 1]")
    return float(value)


@dataclass(frozen=True)
class BatchPlan:
    """One batch: its rows, the group it came from, and whether its kind was a fallback."""

    indices: list[int]
    group: GroupKey
    requested_kind: str
    epoch: int
    position: int  # index of the batch in this rank's sequence for ``epoch``

    @property
    def kind(self) -> str:
        return pair_kind(self.group[1], self.group[2])

    @property
    def source(self) -> str:
        return self.group[0]

    @property
    def fallback(self) -> bool:
        return self.kind != self.requested_kind


def _codes(values: Sequence[str]) -> np.ndarray:
    """Small integer codes of ``values`` (equal values, equal codes)."""
    _, inverse = np.unique(np.asarray(values, dtype=object), return_inverse=True)
    return inverse.astype(np.int64)


@dataclass(frozen=True)
class BatchMixture:
    """What a batch is drawn from, validated once: P(monolingual) ``mix_ratio``, the named
    ``source_ratios`` (source -> P(batch from it), summing to 1; ``None`` = the one source
    there is) and ``language_sampling`` (``uniform`` or ``proportional``)."""

    mix_ratio: float
    source_ratios: Mapping[str, float] | None = None
    language_sampling: str = "uniform"

    def __post_init__(self) -> None:
        object.__setattr__(self, "mix_ratio", check_probability(self.mix_ratio, "mix_ratio"))
        if self.language_sampling not in LANGUAGE_SAMPLING:
            raise PipelineError(f"language_sampling is {self.language_sampling!r}, expected one "
                                f"of {list(LANGUAGE_SAMPLING)}")
        if self.source_ratios is not None:
            checked = {s: check_probability(p, f"source_ratios.{s}")
                       for s, p in self.source_ratios.items()}
            if not math.isclose(sum(checked.values()), 1.0, abs_tol=1e-9):
                raise PipelineError(f"source_ratios {checked} sum to {sum(checked.values())}, "
                                    f"expected 1")
            object.__setattr__(self, "source_ratios", checked)

    @classmethod
    def from_params(cls, params: Mapping, params_path: str, sources: Sequence[str],
                    ratio_params: Mapping[str, str] | None = None) -> "BatchMixture":
        """The mixture of the top-level params: ``mix_ratio``, ``train.language_sampling`` and
        one ``<name>_ratio`` per extra source (``ratio_params``, default
        :data:`SOURCE_RATIO_PARAMS`: source -> its top-level key, so that ``dvc exp run -S
        domain_ratio=0.2`` works as written); the one source of ``sources`` (those the shards
        hold) without a key, the QA pairs, takes the rest. With one source, ``source_ratios`` is
        ``None``. A ratio > 0 for a source no shard holds is an error naming the key."""
        ratio_params = SOURCE_RATIO_PARAMS if ratio_params is None else ratio_params
        ratios = {}
        for source, key in ratio_params.items():
            value = check_probability(params.get(key, 0.0), f"{params_path}: '{key}'")
            if source in sources:
                ratios[source] = value
            elif value > 0:
                raise PipelineError(f"{params_path}: '{key}' is {value} but no shard folder "
                                    f"holds '{source}' rows (sources: {list(sources)}); add "
                                    f"--shards data/shards/{source}")
        rest = [s for s in sources if s not in ratio_params]
        if len(rest) != 1:
            raise PipelineError(f"sources {list(sources)}: expected exactly one without a ratio "
                                f"parameter (it takes 1 - the others), got {rest}")
        if sum(ratios.values()) > 1.0 + 1e-9:
            raise PipelineError(f"{params_path}: {' + '.join(ratio_params[s] for s in ratios)} "
                                f"is {sum(ratios.values())}, expected at most 1")
        ratios[rest[0]] = max(0.0, 1.0 - sum(ratios.values()))
        train = params.get("train", {}) or {}
        return cls(params.get("mix_ratio", 0.0), ratios if len(sources) > 1 else None,
                   train.get("language_sampling", "uniform"))


def drawn_shard_dirs(sources_by_dir: Mapping[str, Sequence[str]],
                     source_ratios: Mapping[str, float] | None) -> list[str]:
    """The shard folders (``folder -> its sources``, in order) that hold a source the mixture
    draws batches from (ratio > 0; every folder when there is one source). A source at 0 is
    never sampled, so its rows are not loaded: the run is then the run without that folder
    (same rows, batches, fingerprint), e.g. the default run with ``parallel_ratio: 0``."""
    if source_ratios is None:
        return list(sources_by_dir)
    return [d for d, sources in sources_by_dir.items()
            if any(source_ratios.get(source, 0) > 0 for source in sources)]


class GroupChooser:
    """Source -> kind -> group draws for a whole epoch (the "which group" half of a sampler).

    Args:
        groups: the usable group keys ``(source, query_lang, passage_lang)`` -> row count.
        mixture: the validated :class:`BatchMixture`.
        all_sources: every source of the rows, usable or not (for the error messages).
    """

    def __init__(self, groups: Mapping[GroupKey, int], mixture: BatchMixture,
                 all_sources: set[str]) -> None:
        self.mix_ratio = mixture.mix_ratio
        sources = sorted({key[0] for key in groups})
        self.source_ratios = self._usable_ratios(mixture.source_ratios, sources, all_sources)
        # Per (source, kind): the candidate groups and the cumulative probability of each.
        self.choices: dict[tuple[str, str], tuple[list[GroupKey], np.ndarray]] = {}
        for source in sources:
            for kind in (MONO, CROSS):
                keys = [k for k in groups if k[0] == source and pair_kind(k[1], k[2]) == kind]
                if not keys:
                    continue
                weights = np.array([groups[k] if mixture.language_sampling == "proportional"
                                    else 1.0 for k in keys], dtype=np.float64)
                self.choices[(source, kind)] = (keys, np.cumsum(weights / weights.sum()))

    @staticmethod
    def _usable_ratios(ratios: Mapping[str, float] | None, sources: list[str],
                       all_sources: set[str]) -> dict[str, float]:
        if ratios is None:
            if len(all_sources) > 1:
                raise PipelineError(f"source_ratios missing: the rows come from several sources "
                                    f"{sorted(all_sources)}, expected a probability for each")
            return {sources[0]: 1.0}
        for source, p in ratios.items():
            if p > 0 and source not in sources:
                raise PipelineError(f"source_ratios.{source} is {p} but there are no usable "
                                    f"rows of source '{source}'")
        return {s: p for s, p in sorted(ratios.items()) if p > 0}

    def draw(self, n: int, rng: np.random.Generator) -> list[tuple[GroupKey, str]]:
        """``n`` (group, requested kind) draws. ``rng`` gives three arrays, in this order:
        sources, mono-or-cross, groups; a source without the requested kind falls back."""
        sources, source_cdf = list(self.source_ratios), np.cumsum(list(self.source_ratios.values()))
        source_draw = np.minimum(np.searchsorted(source_cdf, rng.random(n), side="right"),
                                 len(sources) - 1)
        mono_draw = rng.random(n) < self.mix_ratio
        group_draw = rng.random(n)
        draws = []
        for i in range(n):
            source = sources[source_draw[i]]
            requested = MONO if mono_draw[i] else CROSS
            kind = requested if (source, requested) in self.choices else \
                (CROSS if requested == MONO else MONO)
            keys, cdf = self.choices[(source, kind)]
            key = keys[min(int(np.searchsorted(cdf, group_draw[i], side="right")), len(keys) - 1)]
            draws.append((key, requested))
        return draws


class NoDuplicatesBatchFiller:
    """Fills a batch from one group's queue of rows so that no two rows share a pair id, a
    query or a passage (as sentence-transformers' ``NoDuplicatesBatchSampler``): every in-batch
    negative is a true negative. A skipped row is kept, in order, for the next batch.

    Args:
        pair_codes, query_codes, passage_codes: per row, integer codes (equal text, equal code).
        batch_size: rows per batch.
    """

    def __init__(self, pair_codes: np.ndarray, query_codes: np.ndarray,
                 passage_codes: np.ndarray, batch_size: int) -> None:
        self.pair_codes = np.asarray(pair_codes, dtype=np.int64)
        self.query_codes = np.asarray(query_codes, dtype=np.int64)
        self.passage_codes = np.asarray(passage_codes, dtype=np.int64)
        self.batch_size = batch_size

    def distinct(self, rows: np.ndarray) -> int:
        """How many rows of ``rows`` can share a batch at most (fewest distinct codes)."""
        return min(len(np.unique(codes[rows])) for codes in
                   (self.pair_codes, self.query_codes, self.passage_codes))

    def fill(self, key: GroupKey, part: np.ndarray, queue: deque[int],
             rng: np.random.Generator) -> list[int]:
        """Take ``batch_size`` rows with distinct pair ids, queries and passages from ``queue``
        (this rank's rows of group ``key``), refilling it with a new shuffle of ``part``."""
        batch: list[int] = []
        seen_pairs, seen_queries, seen_passages = set(), set(), set()
        held_back: list[int] = []
        refills = 0
        while len(batch) < self.batch_size:
            if not queue:
                # The group is used up in this epoch: start a new shuffled pass over it.
                held = set(held_back)
                if refills < 2:
                    queue.extend(r for r in rng.permutation(part).tolist() if r not in held)
                    refills += 1
                if not queue:  # every row is held back: the group cannot fill this batch
                    raise PipelineError(f"cannot fill a batch of {self.batch_size} distinct pairs "
                                        f"from group {key}")
            row = queue.popleft()
            pair, query, passage = (int(self.pair_codes[row]), int(self.query_codes[row]),
                                    int(self.passage_codes[row]))
            if pair in seen_pairs or query in seen_queries or passage in seen_passages:
                held_back.append(row)
                continue
            batch.append(row)
            seen_pairs.add(pair)
            seen_queries.add(query)
            seen_passages.add(passage)
        queue.extendleft(reversed(held_back))
        return batch


class HybridBatchSampler(Sampler[list[int]]):
    """Yield lists of row indices forming hybrid (monolingual or cross-lingual) batches.

    Args:
        groups: group key ``(source, query_lang, passage_lang)`` -> indices of its rows.
        pair_codes, query_codes, passage_codes: per row (indexed like the dataset), integer codes
            of the pair id, the normalised query and the normalised passage; two rows with equal
            codes never share a batch.
        batch_size: rows per batch (>= 2).
        mix_ratio: probability that a batch is monolingual, in [0, 1].
        language_sampling: ``uniform`` (each language / language pair equally likely) or
            ``proportional`` (groups weighted by their rows).
        source_ratios: source -> probability (summing to 1); may be omitted with one source.
        seed: base seed; batches depend only on (seed, epoch).
        rank, world_size: this process's share of a distributed run.
        batches_per_epoch: batches per rank and epoch; default: one pass over the rows,
            ``rows // (batch_size * world_size)``.

    Groups with fewer than ``batch_size * world_size`` distinct pair ids, queries or passages
    cannot fill a batch on every rank; they are left out (listed in ``unusable_groups``).
    """

    def __init__(self, groups: Mapping[GroupKey, Sequence[int] | np.ndarray],
                 pair_codes: np.ndarray, query_codes: np.ndarray, passage_codes: np.ndarray, *,
                 batch_size: int, mix_ratio: float | None = None,
                 language_sampling: str = "uniform",
                 source_ratios: Mapping[str, float] | None = None, seed: int = 0,
                 rank: int = 0, world_size: int = 1,
                 batches_per_epoch: int | None = None,
                 mixture: BatchMixture | None = None) -> None:
        if mixture is None:
            mixture = BatchMixture(mix_ratio, source_ratios, language_sampling)
        elif mix_ratio is not None or source_ratios is not None:
            raise PipelineError("give either mixture or mix_ratio/source_ratios, not both")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 2:
            raise PipelineError(f"batch_size is {batch_size!r}, expected an integer >= 2")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise PipelineError(f"seed is {seed!r}, expected an integer")
        if not (isinstance(world_size, int) and world_size >= 1
                and isinstance(rank, int) and 0 <= rank < world_size):
            raise PipelineError(f"rank {rank!r} / world_size {world_size!r}: expected "
                                f"0 <= rank < world_size")
        self.mixture, self.batch_size, self.seed = mixture, batch_size, seed
        self.mix_ratio, self.language_sampling = mixture.mix_ratio, mixture.language_sampling
        self.rank, self.world_size, self.epoch = rank, world_size, 0
        self.filler = NoDuplicatesBatchFiller(pair_codes, query_codes, passage_codes, batch_size)
        self.groups, self.unusable_groups = self._usable_groups(groups)
        self.chooser = GroupChooser({k: len(rows) for k, rows in self.groups.items()}, mixture,
                                    {key[0] for key in groups})
        self.source_ratios = self.chooser.source_ratios
        rows = sum(len(r) for r in self.groups.values())
        if batches_per_epoch is None:
            batches_per_epoch = max(1, rows // (batch_size * world_size))
        if isinstance(batches_per_epoch, bool) or not isinstance(batches_per_epoch, int) \
                or batches_per_epoch < 1:
            raise PipelineError(f"batches_per_epoch is {batches_per_epoch!r}, expected an integer >= 1")
        self.batches_per_epoch = batches_per_epoch
        self._cached: tuple[int, list[BatchPlan]] | None = None

    def _usable_groups(self, groups: Mapping[GroupKey, Sequence[int] | np.ndarray]
                       ) -> tuple[dict[GroupKey, np.ndarray], list[GroupKey]]:
        """Groups that can fill a batch on every rank, and the keys of those that cannot."""
        usable: dict[GroupKey, np.ndarray] = {}
        unusable: list[GroupKey] = []
        for key in sorted(groups):
            rows = np.asarray(groups[key], dtype=np.int64)
            if self.filler.distinct(rows) >= self.batch_size * self.world_size:
                usable[key] = rows
            else:
                unusable.append(key)
        if unusable:
            log.warning("groups too small for batch_size %d x world_size %d, left out: %s",
                        self.batch_size, self.world_size, unusable)
        if not usable:
            raise PipelineError(f"batch_size (params.yaml: 'train.batch_size') is "
                                f"{self.batch_size}, but no group of training rows (source, "
                                f"query language, passage language) can fill a batch of that "
                                f"size on each of {self.world_size} ranks (groups: "
                                f"{sorted(groups)})")
        return usable, unusable

    @classmethod
    def from_table(cls, table: pa.Table, **kwargs) -> "HybridBatchSampler":
        """Build a sampler over a :data:`schemas.SHARD` table's rows (see the class for kwargs)."""
        sources = table.column("source").to_pylist()
        query_langs = table.column("query_lang").to_pylist()
        passage_langs = table.column("passage_lang").to_pylist()
        keys = list(zip(sources, query_langs, passage_langs))
        group_codes = _codes([f"{s}\x00{q}\x00{p}" for s, q, p in keys])
        groups: dict[GroupKey, np.ndarray] = {}
        order = np.argsort(group_codes, kind="stable")
        bounds = np.flatnonzero(np.diff(group_codes[order])) + 1
        for rows in np.split(order, bounds):
            if len(rows):
                groups[keys[rows[0]]] = rows
        # Source-qualified so that ids of different sources never collide.
        pair_codes = _codes([f"{s}\x00{p}" for s, p in
                             zip(sources, table.column("pair_id").to_pylist())])
        query_codes = _codes([same_text_key(t)
                              for t in table.column("query").to_pylist()])
        passage_codes = _codes([same_text_key(t)
                                for t in table.column("passage").to_pylist()])
        return cls(groups, pair_codes, query_codes, passage_codes, **kwargs)

    def __len__(self) -> int:
        """Batches per epoch for this rank."""
        return self.batches_per_epoch

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch that :meth:`__iter__` yields (as ``DistributedSampler.set_epoch``)."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[list[int]]:
        for plan in self.epoch_plans(self.epoch):
            yield plan.indices

    def plans(self, start: int = 0) -> Iterator[BatchPlan]:
        """This rank's batches from its ``start``-th one on (counted from epoch 0), endlessly."""
        epoch, position = divmod(start, self.batches_per_epoch)
        while True:
            yield from self.epoch_plans(epoch)[position:]
            epoch, position = epoch + 1, 0

    def epoch_plans(self, epoch: int) -> list[BatchPlan]:
        """This rank's batches of ``epoch``."""
        if self._cached is None or self._cached[0] != epoch:
            self._cached = (epoch, self._plan_epoch(epoch))
        return self._cached[1]

    def _plan_epoch(self, epoch: int) -> list[BatchPlan]:
        n = self.batches_per_epoch
        partition_seed, *rank_seeds = np.random.SeedSequence([self.seed, epoch]).spawn(
            1 + self.world_size)
        choice_seed, shuffle_seed = rank_seeds[self.rank].spawn(2)
        choice_rng = np.random.default_rng(choice_seed)
        shuffle_rng = np.random.default_rng(shuffle_seed)
        # Every rank computes the same split of every group and keeps its own part.
        partition_rng = np.random.default_rng(partition_seed)
        parts = {key: partition_rng.permutation(rows)[self.rank::self.world_size]
                 for key, rows in self.groups.items()}
        queues = {key: deque(part.tolist()) for key, part in parts.items()}
        return [BatchPlan(self.filler.fill(key, parts[key], queues[key], shuffle_rng), key,
                          requested, epoch, i)
                for i, (key, requested) in enumerate(self.chooser.draw(n, choice_rng))]

    def fallback_counts(self, epoch: int | None = None) -> Counter:
        """``(source, requested_kind) -> batches`` that fell back to the other kind (this rank)."""
        plans = self.epoch_plans(self.epoch if epoch is None else epoch)
        return Counter((p.source, p.requested_kind) for p in plans if p.fallback)
