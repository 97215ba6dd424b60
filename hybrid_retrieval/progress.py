"""Progress of the long loops: a tqdm bar on a terminal, plain log lines everywhere else.

tqdm's own output off a terminal is one ever-growing line of carriage returns (or nothing,
with ``disable=None``), so ``dvc queue logs``, CI and ``nohup`` saw no sign of life for the
whole of a stage. :func:`progress_bar` returns a tqdm bar when the stream is a terminal and
otherwise a :class:`LineProgress`, which writes one line at the first update (the loop has
started), then at most one every ``interval_s`` seconds, and a summary when closed::

    12:03:01 INFO train: 1/300 (0%), 0.25 step/s, elapsed 4s, ETA 19m56s, loss=2.3012, lr=1.00e-05
    12:03:31 INFO train: 49/300 (16%), 1.6 step/s, elapsed 34s, ETA 2m37s, loss=0.8113, lr=...
    12:06:10 INFO train: done 300/300 in 3m13s, 1.55 step/s, loss=0.2311, lr=0.00e+00

The lines go to the ``hybrid_retrieval.progress`` logger at INFO (stderr, as
:func:`hybrid_retrieval.stage.run_stage` configures logging; ``HR_LOGLEVEL=WARNING`` silences
them), or straight to ``sys.stderr`` when logging has no handler, or to ``stream`` when one
is given.

Environment: ``HR_PROGRESS_INTERVAL`` (seconds, a float; default 30) sets how often the
off-terminal lines come; ``0`` writes one per update (tests, short CI runs). An ``interval_s``
passed to :func:`progress_bar` takes precedence.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any, Callable, Iterable, Iterator, TextIO, TypeVar, Union

from tqdm import tqdm

from .errors import PipelineError

log = logging.getLogger("hybrid_retrieval.progress")

DEFAULT_INTERVAL_S = 30.0
T = TypeVar("T")


def _interval_from_env() -> float:
    raw = os.environ.get("HR_PROGRESS_INTERVAL", "").strip()
    if not raw:
        return DEFAULT_INTERVAL_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also NaN
        raise PipelineError(f"HR_PROGRESS_INTERVAL is {raw!r}, expected seconds >= 0 (e.g. 30)")
    return value


def format_duration(seconds: float) -> str:
    """``45s``, ``3m12s``, ``1h02m``."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class LineProgress:
    """The tqdm subset the pipeline uses (``update``, ``set_postfix``, ``set_postfix_str``,
    ``close``, ``n``, ``total``, context manager), reported as one plain line per interval."""

    def __init__(self, total: float | None, *, desc: str | None, unit: str, initial: float = 0,
                 unit_scale: bool = False, interval_s: float = DEFAULT_INTERVAL_S,
                 stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self.unit, self.unit_scale = total, unit, unit_scale
        self.desc = desc or "progress"
        self.n = self.initial = initial
        self.interval_s, self.stream, self.clock = interval_s, stream, clock
        self.postfix = ""
        self.start_t = clock()
        self._last_t: float | None = None  # when the last line was written (None: none yet)
        self._last_n = initial
        self.closed = False

    # --- tqdm API ---------------------------------------------------------------------------
    def update(self, n: float = 1) -> None:
        self.n += n
        now = self.clock()
        if self._last_t is None or now - self._last_t >= self.interval_s:
            self._write(self._line(now))
            self._last_t, self._last_n = now, self.n

    def set_postfix(self, ordered_dict: dict[str, Any] | None = None, refresh: bool = True,
                    **kwargs: Any) -> None:
        items = {**(ordered_dict or {}), **kwargs}
        self.postfix = ", ".join(f"{key}={value}" for key, value in items.items())

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.postfix = str(s)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        elapsed = self.clock() - self.start_t
        done = self.n - self.initial
        ending = "done" if self.total is None or self.n >= self.total else "stopped at"
        line = (f"{self.desc}: {ending} {self._count()} in {format_duration(elapsed)}, "
                f"{self._rate(done / elapsed if elapsed > 0 else None)}")
        self._write(line + (f", {self.postfix}" if self.postfix else ""))

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- formatting -------------------------------------------------------------------------
    def _num(self, value: float) -> str:
        return tqdm.format_sizeof(value) if self.unit_scale else f"{value:g}"

    def _count(self) -> str:
        if self.total is None:
            return f"{self._num(self.n)} {self.unit}"
        return f"{self._num(self.n)}/{self._num(self.total)}"

    def _rate(self, rate: float | None) -> str:
        if rate is None:
            return f"? {self.unit}/s"
        if self.unit_scale:
            return f"{tqdm.format_sizeof(rate)}{self.unit}/s"
        return f"{rate:.3g} {self.unit}/s"

    def _line(self, now: float) -> str:
        elapsed = now - self.start_t
        # The rate since the previous line (since the start for the first one): it follows
        # changes of speed (warm-up, length-sorted inputs) that a mean since the start hides.
        since, done = (self.start_t, self.n - self.initial) if self._last_t is None \
            else (self._last_t, self.n - self._last_n)
        rate = done / (now - since) if now > since else None
        parts = [f"{self.desc}: {self._count()}"]
        if self.total:
            parts[0] += f" ({100 * self.n / self.total:.0f}%)"
        parts += [self._rate(rate), f"elapsed {format_duration(elapsed)}"]
        if self.total and rate:
            parts.append(f"ETA {format_duration(max(0.0, self.total - self.n) / rate)}")
        if self.postfix:
            parts.append(self.postfix)
        return ", ".join(parts)

    def _write(self, line: str) -> None:
        if self.stream is None and log.hasHandlers():
            log.info("%s", line)
        else:
            stream = self.stream or sys.stderr
            print(line, file=stream, flush=True)


class _NoProgress(LineProgress):
    """``disable=True``: counts (``n`` stays right) and writes nothing."""

    def _write(self, line: str) -> None:
        pass


Progress = Union[tqdm, LineProgress]


def progress_bar(total: float | None, *, desc: str | None, unit: str, initial: float = 0,
                 unit_scale: bool = False, disable: bool = False, leave: bool = True,
                 mininterval: float = 0.1, interval_s: float | None = None,
                 stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic) -> Progress:
    """A progress reporter for a loop of ``total`` ``unit`` (``None``: unknown).

    On a terminal (``stream``, default ``sys.stderr``, is a tty) a tqdm bar, as before
    (``leave``, ``mininterval`` apply to it); elsewhere a :class:`LineProgress` writing a line
    at most every ``interval_s`` seconds (default ``HR_PROGRESS_INTERVAL`` or 30).
    ``disable``: nothing is shown (e.g. non-main ranks).
    """
    if interval_s is None:
        interval_s = _interval_from_env()
    target = stream if stream is not None else sys.stderr
    kwargs = dict(desc=desc, unit=unit, initial=initial, unit_scale=unit_scale, clock=clock)
    if disable:
        return _NoProgress(total, **kwargs)
    isatty = getattr(target, "isatty", None)
    if isatty is not None and isatty():
        return tqdm(total=total, desc=desc, unit=unit, initial=initial, unit_scale=unit_scale,
                    leave=leave, mininterval=mininterval, file=stream)
    return LineProgress(total, interval_s=interval_s, stream=stream, **kwargs)


def track(items: Iterable[T], *, desc: str, unit: str, **kwargs: Any) -> Iterator[T]:
    """``for item in track(items, ...)``: :func:`progress_bar` over a sized iterable, one
    update after each item's loop body."""
    items = list(items)
    with progress_bar(len(items), desc=desc, unit=unit, **kwargs) as bar:
        for item in items:
            yield item
            bar.update(1)
