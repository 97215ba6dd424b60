"""Helpers of the reliability tests (issue 8): stage runners, tiny params, tiny pipelines.

* :func:`run_stage` runs a ``stages/*.py`` script in this process (as ``python stages/x.py``
  would: ``__name__ == "__main__"``, so through :func:`hybrid_retrieval.stage.run_stage`) and
  returns its exit status and output; :func:`run_stage_cli` does the same in a subprocess.
* :func:`tiny_params` is the repository's ``params.yaml`` made small (30 SQuAD questions,
  Bergamot en->pt, two languages per evaluation set, 3 training steps on a tiny random encoder).
* :func:`make_workspace` makes a throw-away DVC project (``dvc.yaml``, ``stages/``,
  ``hybrid_retrieval/`` copied from this repository, ``git init``, ``dvc init``); the session
  fixture ``tiny_pipeline`` (conftest.py) is one on which ``dvc repro`` has run once with
  :func:`tiny_params` (about 20 s). Tests that change it work on a copy
  (:func:`copy_workspace`). Nothing runs ``dvc`` in the repository itself.
* :data:`HOOK_DIR` holds ``python``, a wrapper that runs a stage with a pause injected (see
  ``hooks/pause.py``), so that a test can SIGKILL a real stage at a known point.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import os
import runpy
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MIRROR = ROOT.parent / "shared" / "data"
HOOK_DIR = Path(__file__).resolve().parent / "hooks"

needs_mirror = pytest.mark.skipif(not (MIRROR / "squad-v1.1").is_dir(),
                                  reason=f"data mirror {MIRROR} not present")


# ---------------------------------------------------------------------------------------------
# Running stages
# ---------------------------------------------------------------------------------------------

@dataclass
class StageRun:
    """Exit status and output of one stage run."""

    code: int
    out: str
    err: str

    @property
    def error(self) -> str:
        """The stage's one ``error: ...`` line (asserting that there is exactly one, that it is
        the last line of stderr and that no traceback was printed)."""
        lines = self.err.strip().splitlines()
        errors = [line for line in lines if line.startswith("error: ")]
        assert len(errors) == 1, f"expected one error line, got stderr:\n{self.err}"
        assert lines[-1] == errors[0], f"the error is not the last line:\n{self.err}"
        assert "Traceback" not in self.err, self.err
        return errors[0]


def expect_error(run: StageRun, *fragments: str, outputs: tuple[Path, ...] = (),
                 code: int = 2) -> str:
    """Assert that a stage failed cleanly: exit status ``code``, one ``error:`` line (the last,
    no traceback) holding every fragment (the file, the field, what was expected), and none of
    ``outputs`` (nor a temporary folder of theirs) left behind. Returns the error line.

    With ``HR_RELIABILITY_MESSAGES=<file>`` set, each line is also appended to that file (the
    list of messages quoted in the closing note of issue 8).
    """
    assert run.code == code, f"exit status {run.code}, expected {code}:\n{run.err}"
    line = run.error
    for fragment in fragments:
        assert fragment in line, f"{fragment!r} not in {line!r}"
    assert leftovers(*outputs) == [], f"left behind: {leftovers(*outputs)}"
    if os.environ.get("HR_RELIABILITY_MESSAGES"):
        test = os.environ.get("PYTEST_CURRENT_TEST", "?").split(" ")[0]
        with open(os.environ["HR_RELIABILITY_MESSAGES"], "a", encoding="utf-8") as fh:
            fh.write(f"{test}\t{line}\n")
    return line


def run_stage(script: str, *args: str | os.PathLike, cwd: Path | None = None) -> StageRun:
    """Run ``stages/<script>`` in this process with ``args``; its exit status and output."""
    argv, path = sys.argv, sys.path[:]
    out, err = io.StringIO(), io.StringIO()
    code = 0
    sys.argv = [str(ROOT / "stages" / script), *map(str, args)]
    try:
        with contextlib.chdir(cwd or Path.cwd()), contextlib.redirect_stdout(out), \
                contextlib.redirect_stderr(err):
            runpy.run_path(str(ROOT / "stages" / script), run_name="__main__")
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv, sys.path[:] = argv, path
    return StageRun(code, out.getvalue(), err.getvalue())


def stage_env(**extra: str) -> dict[str, str]:
    """Environment for subprocesses: this interpreter's ``bin`` first on PATH (the ``python``
    of dvc.yaml's commands), offline Hugging Face, quiet logs, no DVC analytics."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "HR_LOGLEVEL": "WARNING",
           "DVC_NO_ANALYTICS": "1", "OMP_NUM_THREADS": "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.update(extra)
    return env


def run_stage_cli(script: str, *args: str | os.PathLike, cwd: Path | None = None,
                  timeout: float = 300) -> StageRun:
    """Run ``python stages/<script> args`` in a subprocess."""
    done = subprocess.run([sys.executable, str(ROOT / "stages" / script), *map(str, args)],
                          capture_output=True, text=True, cwd=cwd or ROOT, env=stage_env(),
                          timeout=timeout, check=False)
    return StageRun(done.returncode, done.stdout, done.stderr)


def leftovers(*paths: Path) -> list[str]:
    """What exists of ``paths``, plus any temporary folder of theirs (``.<name>.*.tmp``)."""
    found = []
    for path in map(Path, paths):
        if path.exists():
            found.append(str(path))
        if path.parent.is_dir():
            found += [str(p) for p in path.parent.glob(f".{path.name}.*.tmp")]
    return found


def tree_digest(path: Path) -> dict[str, str]:
    """relative path -> SHA-256 of every file under ``path`` (or of the file ``path``)."""
    path = Path(path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p.relative_to(path)) if p != path else p.name:
            hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


# ---------------------------------------------------------------------------------------------
# Params
# ---------------------------------------------------------------------------------------------

#: What the tiny pipeline changes in the repository's params.yaml (every other key, including
#: keys added later, comes from params.yaml itself): 30 SQuAD questions, Bergamot en->pt, two
#: languages per evaluation set, small domain caps, 3 training steps of a tiny random encoder
#: on one CPU thread in fp32, evaluation on the CPU with few bootstrap resamples.
TINY_OVERRIDES: dict[str, Any] = {
    "seed": 13,
    "mix_ratio": 0.5,
    "domain_ratio": 0.2,
    "data": {"mirror": str(MIRROR), "download_dir": "data/downloads"},
    "prepare": {"max_questions": 30, "seed": 13},
    "encoder": {"source": "folder", "path": None, "max_length": 512},
    "eval_data": {"datasets": ["xquad-r", "mlqa-r", "debian-faq-r", "debian-install-r"],
                  "xquad_r_languages": ["en", "de"], "mlqa_r_languages": ["de", "es"],
                  "faq_languages": ["en", "pt"], "install_languages": ["en", "pt"]},
    "domain": {"languages": ["en", "pt"], "seed": 13, "max_mono_pairs_per_language": 20,
               "max_cross_pairs_per_language": 20},
    "translate": {"engine": "bergamot", "languages": ["pt"], "threads": 2, "intra_threads": 1,
                  "cache_chunk": 2000, "max_bad_share": 0.2},
    "mt_quality": {"test_sets": ["debian-faq"], "max_pairs": 5, "seed": 13},
    "shards": {"rows_per_shard": 50, "row_group_size": 16, "include_title": False},
    "parallel": {"languages": ["en", "de", "pt"], "holdout_languages": [], "max_sentences": 20,
                 "seed": 13},
    "train": {"steps": 3, "batch_size": 4, "max_length": 32, "learning_rate": 1.0e-3,
              "warmup_steps": 1, "temperature": 0.05, "precision": "fp32", "device": "cpu",
              "torch_threads": 1, "checkpoint_every": 0, "keep_checkpoints": 1},
    "evaluate": {"datasets": ["xquad-r", "mlqa-r", "debian-faq-r", "debian-install-r"],
                 "max_length": 64,
                 "batch_tokens": 2048, "device": "cpu", "threads": 1, "bootstrap_samples": 20},
}


def _merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def tiny_params(encoder_dir: Path | str | None = None, **overrides: Any) -> dict[str, Any]:
    """The repository's params.yaml with :data:`TINY_OVERRIDES`; ``overrides`` replace whole
    top-level keys or, as ``section__key=value``, one key of a section
    (``train__batch_size=10**7``)."""
    repo = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    params = _merge(repo, TINY_OVERRIDES)
    if encoder_dir is not None:
        params["encoder"]["path"] = str(encoder_dir)
    for key, value in overrides.items():
        if "__" in key:
            section, name = key.split("__", 1)
            params[section][name] = value
        else:
            params[key] = value
    return params


def write_params(path: Path, params: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True),
                    encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------
# Tiny DVC pipelines
# ---------------------------------------------------------------------------------------------

def make_workspace(folder: Path, params: dict[str, Any]) -> Path:
    """A fresh DVC project at ``folder`` with this repository's pipeline, ``.gitignore`` and
    ``params``."""
    folder.mkdir(parents=True)
    shutil.copy(ROOT / "dvc.yaml", folder / "dvc.yaml")
    shutil.copy(ROOT / ".gitignore", folder / ".gitignore")     # what git tracks, as in the repo
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("stages", "hybrid_retrieval"):
        shutil.copytree(ROOT / name, folder / name, ignore=ignore)
    write_params(folder / "params.yaml", params)
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]
    subprocess.run([*git, "init", "-q"], cwd=folder, check=True)
    dvc(folder, "init", "-q")
    subprocess.run([*git, "add", "-A"], cwd=folder, check=True)
    subprocess.run([*git, "commit", "-qm", "tiny pipeline"], cwd=folder, check=True)
    return folder


def copy_workspace(source: Path, folder: Path) -> Path:
    """A copy of a workspace (git, DVC cache, outputs) to change without touching ``source``."""
    shutil.copytree(source, folder, symlinks=True)
    return folder


def dvc(workspace: Path, *args: str, env: dict[str, str] | None = None,
        check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess:
    """``dvc <args>`` in ``workspace``; with ``check``, fail the test with its output."""
    done = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=workspace,
                          env=env or stage_env(), capture_output=True, text=True,
                          timeout=timeout, check=False)
    if check and done.returncode != 0:
        pytest.fail(f"dvc {' '.join(args)} failed ({done.returncode}):\n"
                    f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return done


# ---------------------------------------------------------------------------------------------
# Killing a stage at a known point
# ---------------------------------------------------------------------------------------------

def hook_env(marker: Path | None = None, **settings: str) -> dict[str, str]:
    """Environment under which ``python`` is the wrapper ``hooks/python`` (see hooks/pause.py).

    ``settings``: ``HR_HOOK_PAUSE_RENAME=<output name>`` pauses before the first rename of that
    output's temporary folder; ``HR_HOOK_PAUSE_AFTER_CHUNKS=<n>`` pauses after the n-th
    translation-cache chunk is stored (the paused process writes its pid to ``marker``);
    ``HR_HOOK_LOG=<file>`` logs every rename.
    """
    if marker is not None:
        settings["HR_HOOK_MARKER"] = str(marker)
    return stage_env(PATH=f"{HOOK_DIR}{os.pathsep}{stage_env()['PATH']}",
                     HR_REAL_PYTHON=sys.executable, **settings)


def lock_outs(workspace: Path) -> dict[str, str]:
    """``<stage>:<out path>`` -> md5 of every output in the workspace's dvc.lock."""
    lock = yaml.safe_load((workspace / "dvc.lock").read_text())
    return {f"{stage}:{out['path']}": out["md5"]
            for stage, entry in lock["stages"].items() for out in entry.get("outs", [])}


def wait_and_kill(marker: Path, proc: subprocess.Popen, timeout: float = 120) -> int:
    """Wait until the hook has paused a stage (``marker`` written), SIGKILL that stage process;
    return its pid. Fails if ``proc`` ends first."""
    deadline = time.monotonic() + timeout
    while not (marker.is_file() and marker.read_text().endswith("\n")):
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the run ended ({proc.returncode}) before the hook paused it:\n"
                        f"{out[-3000:]}\n{err[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the hook did not pause the stage in time")
        time.sleep(0.02)
    pid = int(marker.read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    return pid
