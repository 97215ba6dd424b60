"""The one exception type the pipeline raises for bad input, and how stages report it."""

from __future__ import annotations


class PipelineError(Exception):
    """Bad input or configuration. The message names the file, the field and what was expected.

    Stage scripts catch it (see :func:`hybrid_retrieval.stage.run_stage`) and print it as one
    ``error: ...`` line with a non-zero exit status instead of a traceback.
    """
