"""What every stage script shares: reading ``params.yaml`` and turning bad input into one error line.

A section of the params becomes a validated config with
:func:`hybrid_retrieval.config.read_section`.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import yaml

from .errors import PipelineError, one_line

log = logging.getLogger("hybrid_retrieval")


def load_params(path: str | os.PathLike = "params.yaml") -> dict[str, Any]:
    """Read the whole params file; a missing or malformed file raises :class:`PipelineError`."""
    path = Path(path)
    try:
        params = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PipelineError(f"{path}: params file not found") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or exc
        raise PipelineError(f"{path}: malformed YAML{where}: {one_line(problem)}") from None
    if not isinstance(params, dict):
        raise PipelineError(f"{path}: expected a mapping of sections, got {type(params).__name__}")
    return params


def run_stage(main: Callable[[], Any]) -> None:
    """Run a stage's ``main``: log to stderr, report :class:`PipelineError` as one line, exit 2.

    Anything else that escapes ``main`` is a bug, not bad input: its traceback is printed,
    followed by one ``error: internal error ...`` line, and the exit status is 1. Out of memory
    gets its own line (exit 3), naming the parameters that size the work.
    """
    logging.basicConfig(level=os.environ.get("HR_LOGLEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    start = time.perf_counter()
    try:
        main()
    except PipelineError as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        sys.exit(2)
    except MemoryError as exc:
        print(f"error: out of memory ({one_line(exc) or 'MemoryError'}); lower the batch size "
              f"or maximum length in params.yaml", file=sys.stderr)
        sys.exit(3)
    except Exception as exc:  # noqa: BLE001 - a bug: keep the traceback, end with one line
        traceback.print_exc()
        print(f"error: internal error {type(exc).__name__}: {one_line(exc)} (a bug, not bad "
              f"input: traceback above)", file=sys.stderr)
        sys.exit(1)
    log.info("stage finished in %.1f s", time.perf_counter() - start)
