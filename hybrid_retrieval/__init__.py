"""hybrid-retrieval: hybrid-batch training and LAReQA evaluation of multilingual dense retrievers.

The package holds the logic; ``stages/`` holds thin DVC stage scripts that call it.
"""

__version__ = "0.1.0"
