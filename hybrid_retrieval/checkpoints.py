"""Training checkpoints that survive a kill: write, find the latest, restore, clear.

A checkpoint is one ``torch.save`` file ``step-NNNNNNN.pt`` holding the full training state: the
trainable weights (frozen ones come back from the base encoder), optimizer, scheduler, grad
scaler, sampler position (micro-batches drawn), every rank's RNG states and the logged history.
Each is written atomically (a killed writer leaves a temporary folder, never a half file), and a
run resumes only from a checkpoint whose ``fingerprint`` (config + inputs, see
``training.run_fingerprint``) equals its own. The split follows DPR's ``_save_checkpoint`` /
``_load_saved_state``.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from .errors import PipelineError
from .io import atomic_path

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = 1
CHECKPOINT_GLOB = "step-*.pt"


def rng_state() -> dict[str, Any]:
    """This process's Python, NumPy, torch (and CUDA) RNG states."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state dict without the frozen parameters (those come back from the base encoder)."""
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    return {n: t.detach().cpu().clone() for n, t in model.state_dict().items() if n not in frozen}


@dataclass
class Progress:
    """Where a run stands: optimizer steps done, micro-batches drawn, the per-step history."""

    step: int = 0
    micro_batches: int = 0
    history: list[dict[str, float]] = field(default_factory=list)


@dataclass
class TrainingState:
    """The objects a checkpoint saves and restores."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler


def checkpoint_paths(checkpoint_dir: Path) -> list[Path]:
    """Complete checkpoints in ``checkpoint_dir``, oldest first (half-written ones are temp dirs)."""
    return sorted(checkpoint_dir.glob(CHECKPOINT_GLOB))


class CheckpointStore:
    """The checkpoints of one run (``folder`` ``None``: none are written or read).

    Args:
        folder: where ``step-*.pt`` files go.
        fingerprint: the run's :func:`training.run_fingerprint`; others are not resumed.
        keep: how many of the newest checkpoints to keep.
    """

    def __init__(self, folder: Path | None, fingerprint: str, keep: int = 1) -> None:
        self.folder, self.fingerprint, self.keep = folder, fingerprint, keep

    def latest(self) -> dict | None:
        """The newest readable checkpoint of this fingerprint, or ``None`` (start from step 0)."""
        if self.folder is None or not self.folder.is_dir():
            return None
        for path in reversed(checkpoint_paths(self.folder)):
            try:
                state = torch.load(path, map_location="cpu", weights_only=False)
            except Exception as exc:  # noqa: BLE001 - any unreadable file: try the previous one
                log.warning("%s: unreadable checkpoint (%s), trying an older one", path, exc)
                continue
            if state.get("format") != CHECKPOINT_FORMAT or \
                    state.get("fingerprint") != self.fingerprint:
                log.warning("%s: checkpoint of another configuration or input, not resumed "
                            "(starting from step 0)", path)
                return None
            log.info("resuming from %s (step %d)", path, state["step"])
            return state
        return None

    def restore(self, saved: Mapping[str, Any], state: TrainingState, rank: int) -> Progress:
        """Load ``saved`` (from :meth:`latest`) into ``state`` and this rank's RNGs."""
        missing, unexpected = state.model.load_state_dict(saved["model"], strict=False)
        if unexpected or any(p.requires_grad for n, p in state.model.named_parameters()
                             if n in missing):
            raise PipelineError(f"{self.folder}: checkpoint does not match the model "
                                f"(unexpected {unexpected[:3]}, missing {missing[:3]})")
        state.optimizer.load_state_dict(saved["optimizer"])
        state.scheduler.load_state_dict(saved["scheduler"])
        state.scaler.load_state_dict(saved["scaler"])
        set_rng_state(saved["rng"][rank])
        return Progress(saved["step"], saved["micro_batches"], saved["history"])

    def write(self, state: TrainingState, progress: Progress,
              rng_states: list[dict[str, Any]]) -> Path:
        """Write the checkpoint of ``progress.step`` atomically; drop all but the newest ``keep``."""
        assert self.folder is not None
        path = self.folder / f"step-{progress.step:07d}.pt"
        with atomic_path(path) as tmp:
            torch.save({
                "format": CHECKPOINT_FORMAT, "fingerprint": self.fingerprint,
                "step": progress.step, "micro_batches": progress.micro_batches,
                "model": trainable_state(state.model), "optimizer": state.optimizer.state_dict(),
                "scheduler": state.scheduler.state_dict(), "scaler": state.scaler.state_dict(),
                "rng": rng_states, "history": progress.history,
            }, tmp)
        for old in checkpoint_paths(self.folder)[:-self.keep]:
            old.unlink(missing_ok=True)
        return path

    def clear(self) -> None:
        """Remove every checkpoint (the run's output is written)."""
        if self.folder is not None:
            for path in checkpoint_paths(self.folder):
                path.unlink(missing_ok=True)
