"""L4 with the real all-MiniLM-L6-v2 model (loads in a few seconds; marked slow)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import codegraph
from codegraph import embed
from conftest import write_tree

pytestmark = pytest.mark.slow


def test_embeddings_are_normalised_and_semantic() -> None:
    vectors = embed.embed(["compute the sales tax of an order", "sum prices and add tax",
                           "open a network socket"])
    assert vectors.shape == (3, embed.DIMENSIONS)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


def test_vector_and_hybrid_search_and_the_embedding_cache(shop_repo: Path, tmp_path: Path) -> None:
    write_tree(shop_repo, {"net.py": '''
        import socket


        def connect(host, port):
            """Open a TCP connection to a remote server."""
            return socket.create_connection((host, port))
        '''})
    db = str(tmp_path / "db")
    first = codegraph.index(str(shop_repo), db)
    assert first["state"] == "completed"
    assert first["embedded"] == first["vectors"] > 0
    assert [s["name"] for s in first["stages"]][-1] == "L4_vector"

    idx = codegraph.open(db)
    assert idx.has_vectors
    hit = idx.search("establish a network connection to a host", mode="vector", limit=1)[0]
    assert hit.path == "net.py" and hit.symbol.startswith("net") and "def connect" in hit.snippet
    hybrid = idx.search("tax on the items of an order", limit=3)  # hybrid is the default
    assert hybrid[0].path == "shop/pricing.py"

    again = codegraph.index(str(shop_repo), db)
    assert again["embedded"] == 0 and again["vectors"] == first["vectors"]  # never twice

    net = shop_repo / "net.py"
    net.write_text(net.read_text() + "\n\ndef close(c):\n    c.close()\n")
    edited = codegraph.index(str(shop_repo), db)
    assert 1 <= edited["embedded"] <= 2  # only the chunk texts that changed


def test_a_vector_does_not_depend_on_its_batch_partners() -> None:
    texts = ["import os", "def add(a, b):\n    return a + b\n",
             "class Stack:\n    def push(self, x):\n        self.items.append(x)\n" * 6, "x = 1"]
    together = embed.embed(texts)
    alone = np.vstack([embed.embed([t]) for t in texts])
    reversed_order = embed.embed(texts[::-1])[::-1]
    assert (together == alone).all() and (together == reversed_order).all()  # bit-identical
