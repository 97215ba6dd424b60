"""hybrid_retrieval.progress: a tqdm bar on a terminal, plain lines every interval elsewhere."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from tqdm import tqdm

from hybrid_retrieval.errors import PipelineError
from hybrid_retrieval.progress import LineProgress, format_duration, progress_bar, track

ROOT = Path(__file__).resolve().parents[1]


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_off_terminal_first_update_then_every_interval_then_summary():
    clock, out = FakeClock(), io.StringIO()
    bar = progress_bar(300, desc="train", unit="step", interval_s=30, stream=out, clock=clock)
    assert isinstance(bar, LineProgress) and bar.total == 300 and bar.n == 0
    assert lines(out) == []

    clock.t += 4
    bar.set_postfix(loss="2.3012", lr="1.00e-05")
    bar.update(1)  # first update: the loop has started
    assert lines(out) == ["train: 1/300 (0%), 0.25 step/s, elapsed 4s, ETA 19m56s, "
                          "loss=2.3012, lr=1.00e-05"]

    for _ in range(29):  # 29 s more: still inside the interval
        clock.t += 1
        bar.update(1)
    assert len(lines(out)) == 1

    clock.t += 1  # 30 s after the first line: 30 steps in 30 s
    bar.set_postfix(loss=f"{0.2311:.4f}")
    bar.update(1)
    assert bar.n == 31
    assert lines(out)[-1] == ("train: 31/300 (10%), 1 step/s, elapsed 34s, ETA 4m29s, "
                              "loss=0.2311")

    clock.t += 10
    bar.update(269)  # within the interval: no line, but the summary has the count
    assert len(lines(out)) == 2
    bar.close()
    bar.close()  # idempotent
    assert lines(out)[-1] == "train: done 300/300 in 44s, 6.82 step/s, loss=0.2311"
    assert len(lines(out)) == 3


def test_context_manager_resume_scaled_units_and_early_stop():
    clock, out = FakeClock(), io.StringIO()
    with progress_bar(10_000_000, desc="download x", unit="B", unit_scale=True, initial=2_000_000,
                      interval_s=30, stream=out, clock=clock) as bar:
        clock.t += 2
        bar.update(3_000_000)  # the rate counts from `initial`, not from 0
        bar.set_postfix_str("mirror")
    first, last = lines(out)
    assert first == ("download x: 5.00M/10.0M (50%), 1.50MB/s, elapsed 2s, ETA 3s")
    assert last == "download x: stopped at 5.00M/10.0M in 2s, 1.50MB/s, mirror"


def test_unknown_total_and_disabled():
    clock, out = FakeClock(), io.StringIO()
    with progress_bar(None, desc="download y", unit="B", unit_scale=True, interval_s=0,
                      stream=out, clock=clock) as bar:
        clock.t += 1
        bar.update(1024)
    assert lines(out) == ["download y: 1.02k B, 1.02kB/s, elapsed 1s",
                          "download y: done 1.02k B in 1s, 1.02kB/s"]

    out = io.StringIO()
    with progress_bar(5, desc="rank 1", unit="step", disable=True, stream=out) as bar:
        bar.update(2)
    assert out.getvalue() == "" and bar.n == 2


def test_terminal_gets_a_tqdm_bar():
    out = FakeTTY()
    with progress_bar(3, desc="train", unit="step", stream=out) as bar:
        assert isinstance(bar, tqdm)
        bar.update(1)
        bar.set_postfix(loss="0.5")
    assert "train" in out.getvalue() and "\r" in out.getvalue()


def test_interval_from_environment(monkeypatch):
    monkeypatch.setenv("HR_PROGRESS_INTERVAL", "2.5")
    assert progress_bar(1, desc="a", unit="x", stream=io.StringIO()).interval_s == 2.5
    # an explicit interval wins over the environment
    assert progress_bar(1, desc="a", unit="x", stream=io.StringIO(),
                        interval_s=7).interval_s == 7
    monkeypatch.setenv("HR_PROGRESS_INTERVAL", "soon")
    with pytest.raises(PipelineError, match="HR_PROGRESS_INTERVAL"):
        progress_bar(1, desc="a", unit="x", stream=io.StringIO())
    monkeypatch.delenv("HR_PROGRESS_INTERVAL")
    assert progress_bar(1, desc="a", unit="x", stream=io.StringIO()).interval_s == 30.0


def test_track_and_durations():
    out = io.StringIO()
    assert list(track(["en", "pt"], desc="langs", unit="language", interval_s=0,
                      stream=out)) == ["en", "pt"]
    assert [line.split(",")[0] for line in lines(out)] == [
        "langs: 1/2 (50%)", "langs: 2/2 (100%)", "langs: done 2/2 in 0s"]
    assert [format_duration(s) for s in (0.4, 59, 192, 3720)] == ["0s", "59s", "3m12s", "1h02m"]


@pytest.mark.parametrize("with_logging", [True, False])
def test_lines_reach_a_subprocess_stderr(with_logging):
    """As a stage runs under dvc/CI: stderr is a pipe, logging set up by run_stage (or none)."""
    script = textwrap.dedent(f"""
        from hybrid_retrieval.progress import progress_bar
        from hybrid_retrieval.stage import run_stage

        def main():
            with progress_bar(3, desc="train", unit="step") as bar:
                for _ in range(3):
                    bar.set_postfix(loss="0.1234")
                    bar.update(1)

        run_stage(main) if {with_logging} else main()
    """)
    env = {**os.environ, "HR_PROGRESS_INTERVAL": "0", "PYTHONPATH": str(ROOT)}
    env.pop("HR_LOGLEVEL", None)
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    progress = [line for line in done.stderr.splitlines() if "train:" in line]
    assert len(progress) == 4, done.stderr
    assert "train: 3/3 (100%)" in progress[2] and "loss=0.1234" in progress[2]
    assert "train: done 3/3 in" in progress[3]
    assert "\r" not in done.stderr
    assert all(" INFO train:" in line for line in progress) == with_logging
