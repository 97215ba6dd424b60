"""Run ``python <script> args...`` with a pause injected, so that a test can SIGKILL the stage at
a known point. Used through the ``python`` wrapper beside this file (first on PATH).

* ``HR_HOOK_PAUSE_RENAME=<name>``: before the first ``os.replace`` that involves the temporary
  folder of the output called ``<name>`` (``.<name>.<pid>.<random>.tmp``, see
  ``hybrid_retrieval.io.atomic_path``), i.e. when the new output is completely written but not
  yet renamed into place.
* ``HR_HOOK_PAUSE_AFTER_CHUNKS=<n>``: after the n-th chunk stored in the translation cache.
* ``HR_HOOK_LOG=<file>``: no pause; every ``os.replace`` is appended to ``<file>`` as
  ``<script>\t<source>\t<destination>`` (absolute paths).

When pausing, the process writes ``<pid> <where>\\n`` to ``HR_HOOK_MARKER`` and sleeps.
Anything that is not ``python <script>.py ...`` runs unchanged.
"""

import os
import runpy
import sys
import time


def pause(where: str) -> None:
    with open(os.environ["HR_HOOK_MARKER"] + ".part", "w") as fh:
        fh.write(f"{os.getpid()} {where}\n")
    os.replace(os.environ["HR_HOOK_MARKER"] + ".part", os.environ["HR_HOOK_MARKER"])
    time.sleep(600)


def install(script: str) -> None:
    log = os.environ.get("HR_HOOK_LOG")
    if log:
        logged_replace = os.replace

        def replace(src, dst, *args, **kwargs):
            logged_replace(src, dst, *args, **kwargs)
            with open(log, "a", encoding="utf-8") as fh:
                fh.write(f"{script}\t{os.path.abspath(src)}\t{os.path.abspath(dst)}\n")

        os.replace = replace
    rename = os.environ.get("HR_HOOK_PAUSE_RENAME")
    if rename:
        real_replace = os.replace

        def in_temp_of(path) -> bool:
            folder = os.path.basename(os.path.dirname(os.fspath(path)))
            return folder.startswith(f".{rename}.") and folder.endswith(".tmp")

        def replace(src, dst, *args, **kwargs):
            if in_temp_of(src) or in_temp_of(dst):
                pause(f"rename {src} -> {dst}")
            return real_replace(src, dst, *args, **kwargs)

        os.replace = replace
    chunks = os.environ.get("HR_HOOK_PAUSE_AFTER_CHUNKS")
    if chunks:
        from hybrid_retrieval.translation import TranslationCache

        real_add = TranslationCache.add
        stored = []

        def add(self, sources, translations):
            real_add(self, sources, translations)
            stored.append(len(sources))
            if len(stored) == int(chunks):
                pause(f"after {len(stored)} cache chunks ({sum(stored)} segments)")

        TranslationCache.add = add


if len(sys.argv) > 1 and sys.argv[1].endswith(".py"):
    script = sys.argv[1]
    sys.argv = sys.argv[1:]
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    install(script)
    runpy.run_path(script, run_name="__main__")
else:
    os.execv(sys.executable, [sys.executable, *sys.argv[1:]])
