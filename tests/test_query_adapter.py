"""The query adapter (`embed.query_adapter`): a matrix that maps the bundled model's query
vectors, and nothing else — stored vectors and other models' queries are the model's own."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

import codegraph
from codegraph import embed, vector_index
from codegraph.names import L2, L4

BUNDLED = f"{embed.MODEL_NAME}:onnx-{embed.DEFAULT_QUANTISATION}"


def fake_vectors(texts: list[str], model_name: str | None = None, batch_size: int = 32) -> np.ndarray:
    """A stand-in for MiniLM of its dimensions: unit vectors, a function of each text alone."""
    rows = [np.random.default_rng(int(hashlib.sha1(t.encode()).hexdigest()[:8], 16)).standard_normal(
        embed.DIMENSIONS) for t in texts]
    out = np.array(rows, dtype=np.float32).reshape(len(texts), embed.DIMENSIONS)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def adapted(texts: list[str]) -> np.ndarray:
    w = embed.query_adapter(BUNDLED)
    assert w is not None
    mapped = fake_vectors(texts) @ w
    return mapped / np.linalg.norm(mapped, axis=1, keepdims=True)


def test_the_adapter_maps_the_bundled_models_queries_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embed, "embed", fake_vectors)
    w = embed.query_adapter(BUNDLED)
    assert w is not None and w.shape == (embed.DIMENSIONS, embed.DIMENSIONS)
    assert not np.allclose(w, np.eye(embed.DIMENSIONS), atol=1e-3)
    texts = ["open a connection to a host", "Return the sum of the prices"]
    plain = fake_vectors(texts)
    for spec in (BUNDLED, f"{embed.MODEL_NAME}:onnx-fp32", f"{embed.MODEL_NAME}:torch"):  # any runtime
        got = embed.embed_query(texts, spec)
        assert np.allclose(got, adapted(texts), atol=1e-6)
        assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
        assert (np.abs(got - plain).max(axis=1) > 1e-3).all()
    other = "/models/code-model#0123456789abcdef:onnx-fp32"  # a model named by its path
    assert embed.query_adapter(other) is None
    assert (embed.embed_query(texts, other) == plain).all()
    monkeypatch.setattr(embed, "QUERY_ADAPTER", False)
    assert embed.query_adapter(BUNDLED) is None
    assert (embed.embed_query(texts, BUNDLED) == plain).all()


def test_stored_vectors_are_the_models_and_a_vector_search_adapts_its_query(
        shop_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embed, "embed", fake_vectors)
    queried: list[str] = []
    real_embed_query = embed.embed_query

    def spy(texts: list[str], model_name: str | None = None) -> np.ndarray:
        queried.extend(texts)
        return real_embed_query(texts, model_name)

    monkeypatch.setattr(embed, "embed_query", spy)
    db = str(tmp_path / "db")
    assert codegraph.index(str(shop_repo), db)["embedder"] == BUNDLED
    assert queried == []  # indexing embeds no query
    idx = codegraph.open(db)
    (snap,) = idx.snapshots
    chunks = idx.store.chunks_of_files(snap.id, snap.stage_keys[L2], sorted(idx.files(snap)))
    stored = {h: np.frombuffer(bytes(v), dtype=np.float32) for h, v, _ in
              idx.store.embeddings_of(snap.stage_keys[L4], sorted({c.text_hash for c in chunks}))}
    assert chunks and all((stored[c.text_hash] == fake_vectors([c.text])[0]).all() for c in chunks)

    searched: list[np.ndarray] = []
    real_search = vector_index.VectorIndex.search

    def search(self: vector_index.VectorIndex, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        searched.append(np.asarray(vector))
        return real_search(self, vector, k)

    monkeypatch.setattr(vector_index.VectorIndex, "search", search)
    hits = idx.search("tax of an order", mode="vector", limit=3)
    assert queried == ["tax of an order"] and hits
    assert searched and np.allclose(searched[0], adapted(["tax of an order"])[0], atol=1e-6)
    # A unit's score is its best text's cosine with the adapted query.
    best = max(float(stored[c.text_hash] @ searched[0]) for c in chunks)
    assert hits[0].score == pytest.approx(best, abs=1e-3)
