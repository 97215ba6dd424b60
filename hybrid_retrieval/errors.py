"""The one exception type the pipeline raises for bad input, and how stages report it."""

from __future__ import annotations


class PipelineError(Exception):
    """Bad input or configuration. The message names the file, the field and what was expected.

    Stage scripts catch it (see :func:`hybrid_retrieval.stage.run_stage`) and print it as one
    ``error: ...`` line with a non-zero exit status instead of a traceback.
    """


def one_line(message: object) -> str:
    """``message`` as a single line: its lines joined with ``; `` (e.g. a YAML parser's
    multi-line report), so that the error is always the last line of a stage's stderr."""
    lines = [line.strip() for line in str(message).splitlines()]
    return "; ".join(line for line in lines if line)
