"""A fleet: many repositories in one store, known by an identity that does not depend on where
they are checked out; workers that fetch git URLs into their own caches and index exact commits;
queries across repositories. The last test runs two groups of worker processes, each with its own
working directory and git cache (two "machines"), against one PostgreSQL database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import codegraph
from codegraph.errors import UserError
from codegraph.jobs import ErrorClass, PermanentJobError, TransientJobError, classify
from codegraph.pipeline import IndexOptions
from codegraph.queue import open_queue
from codegraph.source import GitCache, parse_source
from codegraph.stages import IndexConfig
from conftest import pg_database, write_tree

CLI = [sys.executable, "-m", "codegraph.cli"]
NO_VECTORS = IndexOptions(IndexConfig(vectors=False))


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CODEGRAPH_DB", "CODEGRAPH_CACHE")}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                          check=True, capture_output=True, text=True).stdout.strip()


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)
    return git(repo, "rev-parse", "HEAD")


# ----- identity ---------------------------------------------------------------------------------


def test_every_spelling_of_a_repository_url_is_one_identity(tmp_path: Path) -> None:
    spellings = ["https://GitHub.com/psf/requests.git", "https://github.com/psf/requests/",
                 "git@github.com:psf/requests.git", "ssh://git@github.com:22/psf/requests",
                 "git://github.com/psf/requests"]
    assert {parse_source(s).identity for s in spellings} == {"github.com/psf/requests"}
    assert parse_source("https://git.example.org:8443/a/b.git").identity == "git.example.org:8443/a/b"
    assert parse_source("file:///srv/git/tool.git/").identity == "file:///srv/git/tool.git"
    assert parse_source(str(tmp_path) + "/").identity == str(tmp_path.resolve())  # a path: the path
    assert parse_source("git@github.com:psf/requests.git").name == "requests"


@pytest.mark.parametrize("bad", ["https://user:secret@host/r.git", "ftp://host/r", "ext::sh -c id",
                                 "-oProxyCommand=x:y", "file://otherhost/r", "https:///r"])
def test_unsafe_or_unusable_urls_are_refused_in_one_line(bad: str) -> None:
    with pytest.raises(UserError) as info:
        parse_source(bad)
    assert "\n" not in str(info.value) and "secret" not in str(info.value)


def test_git_failures_are_permanent_or_transient_by_what_went_wrong(tmp_path: Path) -> None:
    origin = write_tree(tmp_path / "origin", {"a.py": "x = 1\n"})
    git(origin, "init", "-q")
    commit_all(origin, "one")
    cache = GitCache(tmp_path / "cache")
    cases = [(f"file://{tmp_path}/missing", None, ErrorClass.PERMANENT, "does not appear to be a git"),
             (f"file://{origin}", "no-such-branch", ErrorClass.PERMANENT, "no commit named"),
             ("http://127.0.0.1:9/nothing-listens-here.git", None, ErrorClass.TRANSIENT, "connect")]
    for url, rev, expected, words in cases:
        with pytest.raises((PermanentJobError, TransientJobError)) as info, \
                cache.checkout(parse_source(url), rev):
            pass
        assert classify(info.value) == expected and words in str(info.value), url
        assert "\n" not in str(info.value)
    assert not list((tmp_path / "cache").glob("checkouts/*"))  # nothing left behind

    # A remote whose HEAD names no branch still serves its branches; only "its HEAD" fails.
    bare = tmp_path / "bare.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(origin), str(bare)], check=True)
    git(bare, "symbolic-ref", "HEAD", "refs/heads/gone")
    branch = git(origin, "rev-parse", "--abbrev-ref", "HEAD")
    with cache.checkout(parse_source(f"file://{bare}"), branch) as checkout:
        assert (checkout.path / "a.py").is_file()
    with pytest.raises(PermanentJobError, match="HEAD"), cache.checkout(parse_source(f"file://{bare}"), None):
        pass


def test_a_checkout_left_by_a_killed_worker_is_removed_and_a_running_one_is_kept(tmp_path: Path) -> None:
    origin = write_tree(tmp_path / "origin", {"a.py": "x = 1\n"})
    git(origin, "init", "-q")
    sha = commit_all(origin, "one")
    cache = GitCache(tmp_path / "cache")
    source = parse_source(f"file://{origin}")
    killed = tmp_path / "cache" / "checkouts" / "job-killed"
    with cache.checkout(source, sha) as running:
        (killed / "origin").mkdir(parents=True)  # a SIGKILLed job: nobody holds its lock
        with cache.checkout(source, None) as other:  # two jobs of one repository at once
            assert other.commit == sha and (other.path / "a.py").read_text() == "x = 1\n"
            assert running.path.exists() and not killed.exists()
        assert running.path.exists() and not other.path.exists()
    assert not list((tmp_path / "cache").glob("checkouts/*"))


# ----- --rev: the commit, not the work tree ------------------------------------------------------


def test_a_local_repository_at_a_rev_is_indexed_as_of_that_commit(tmp_path: Path, store_url: str) -> None:
    repo = write_tree(tmp_path / "lib", {"lib.py": "def first_version():\n    return 1\n"})
    git(repo, "init", "-q")
    old = commit_all(repo, "one")
    (repo / "lib.py").write_text("def second_version():\n    return 2\n")
    commit_all(repo, "two")
    (repo / "lib.py").write_text("def uncommitted_edit():\n    return 3\n")  # never indexed

    proc = cli("enqueue", str(repo), "--rev", old[:10], "--db", store_url, "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["snapshot"] == f"rev:{old}"
    proc = cli("worker", "--db", store_url, "--burst", "--no-vectors", "--cache", str(tmp_path / "cache"),
               "--poll", "0.05", "--json")
    assert json.loads(proc.stdout)["outcomes"] == {"completed": 1}, proc.stderr
    idx = codegraph.open(store_url)
    assert idx.snapshot.repo == str(repo.resolve())  # the path is the identity, wherever checked out
    assert [r["qname"] for r in idx.graph("defs", "first_version")] == ["lib.first_version"]
    assert idx.graph("defs", "uncommitted_edit") == [] and idx.graph("defs", "second_version") == []
    job = open_queue(store_url).list()[0]
    assert json.loads(job.result or "{}")["commit"] == old

    # A plain directory has no commits; an unknown rev is refused before anything is queued.
    plain = write_tree(tmp_path / "plain", {"a.py": "x = 1\n"})
    for args in ((str(plain), "--rev", "main"), (str(repo), "--rev", "no-such-rev")):
        proc = cli("enqueue", *args, "--db", store_url)
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


# ----- queries across repositories ----------------------------------------------------------------


def test_search_and_graph_span_every_repository_and_repo_picks_one(tmp_path: Path, store_url: str) -> None:
    for name in ("billing", "shipping"):
        write_tree(tmp_path / name, {f"{name}/__init__.py": "",
                                     f"{name}/rates.py": f"def compute_rate(order):\n"
                                                         f"    return '{name}' and order\n",
                                     "main.py": f"from {name}.rates import compute_rate\n\n\n"
                                                "def run():\n    return compute_rate(1)\n"})
        codegraph.index(str(tmp_path / name), store_url, options=NO_VECTORS)

    idx = codegraph.open(store_url)
    hits = idx.search("compute_rate", mode="lexical")
    assert {(Path(h.repo).name, h.path) for h in hits} >= {("billing", "billing/rates.py"),
                                                          ("shipping", "shipping/rates.py")}
    callers = idx.graph("callers", "compute_rate")
    assert sorted((Path(r["repo"]).name, r["src"]) for r in callers) == [
        ("billing", "main.run"), ("shipping", "main.run")]

    only = codegraph.open(store_url, "shipping")  # by name; a path or URL works too
    assert {Path(h.repo).name for h in only.search("compute_rate", mode="lexical")} == {"shipping"}
    assert codegraph.open(store_url, str(tmp_path / "billing")).snapshot.repo_name == "billing"

    proc = cli("export", "--db", store_url)  # which repository? one line, exit 2
    assert proc.returncode == 2 and "pass --repo" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    proc = cli("export", "--db", store_url, "--repo", "billing")
    assert proc.returncode == 0 and '"billing/rates.py"' in proc.stdout and "shipping" not in proc.stdout
    proc = cli("search", "compute_rate", "--db", store_url, "--mode", "lexical")
    assert "billing:billing/rates.py" in proc.stdout and "shipping:shipping/rates.py" in proc.stdout
    proc = cli("graph", "defs", "compute_rate", "--db", store_url, "--repo", "nope")
    assert proc.returncode == 2 and "no indexed repository 'nope'" in proc.stderr


# ----- many machines ------------------------------------------------------------------------------


def _package(name: str, version: int) -> dict[str, str]:
    """Three versions of a small package, each with real edits: v2 edits a body and renames the
    exported `compute` (re-exported by __init__, called from main.py); v3 moves util.py to
    tools.py, renames its `helper` and adds a module that calls the renamed function."""
    fn = "compute" if version == 1 else "calculate"
    helper, util = ("helper", "util") if version < 3 else ("assist", "tools")
    files = {
        f"{name}/__init__.py": f"from .core import {fn} as {fn}\nfrom .{util} import {helper}\n",
        f"{name}/core.py": f"from .{util} import {helper}\n\n\ndef {fn}(x):\n    return {helper}(x) + 1\n",
        f"{name}/{util}.py": f"def {helper}(x):\n    return x * {1 + version}\n",
        "main.py": f"from {name} import {fn}\n\n\ndef run():\n    return {fn}(3)\n",
    }
    if version == 3:
        files["extra.py"] = f"from {name}.core import calculate\n\n\ndef more():\n    return calculate(4)\n"
    return files


def _make_repo(root: Path, name: str) -> list[str]:
    """A git repository with three commits of `_package`; their shas."""
    repo = root / name
    shas = []
    for version in (1, 2, 3):
        if repo.exists():
            for path in repo.rglob("*.py"):
                path.unlink()
        write_tree(repo, _package(name, version))
        if version == 1:
            git(repo, "init", "-q")
        shas.append(commit_all(repo, f"v{version}"))
    return shas


class Machine:
    """A group of worker processes with its own working directory and git cache."""

    def __init__(self, root: Path, name: str, db: str) -> None:
        self.name, self.db = name, db
        self.home = root / name
        self.cache = self.home / "cache"
        self.home.mkdir(parents=True)
        self.pids: set[int] = set()

    def run_workers(self, n: int) -> list[subprocess.Popen[bytes]]:
        procs = []
        for i in range(n):
            log = open(self.home / f"worker-{len(self.pids)}-{i}.log", "ab")  # noqa: SIM115
            proc = subprocess.Popen([*CLI, "worker", "--db", self.db, "--burst", "--no-vectors",
                                     "--workers", "1", "--cache", str(self.cache), "--poll", "0.05",
                                     "--lease", "10"], cwd=self.home, stdout=log, stderr=log)
            log.close()
            self.pids.add(proc.pid)
            procs.append(proc)
        return procs

    def logs(self) -> str:
        return "\n".join(p.read_text() for p in sorted(self.home.glob("worker-*.log")))


def _wait(procs: list[subprocess.Popen[bytes]], machines: list[Machine]) -> None:
    for proc in procs:
        try:
            assert proc.wait(timeout=60) == 0, "\n".join(m.logs() for m in machines)
        finally:
            if proc.poll() is None:
                proc.kill()


def test_two_machines_update_each_others_snapshots_incrementally_and_equal_full_rebuilds(
    tmp_path: Path,
) -> None:
    t0 = time.monotonic()
    names = ["alpha", "beta", "gamma"]
    origins = tmp_path / "origins"
    commits = {name: _make_repo(origins, name) for name in names}
    urls = {name: f"file://{origins / name}" for name in names}
    with pg_database() as db:
        a, b = Machine(tmp_path, "machine-a", db), Machine(tmp_path, "machine-b", db)
        queue = open_queue(db)
        built_by: dict[tuple[str, int], str] = {}  # (repo, version) -> machine
        # Version 1 on machine A, version 2 on machine B (so every update continues from the other
        # machine's snapshot), version 3 on both at once.
        for version, machines in ((1, [a]), (2, [b]), (3, [a, b])):
            jobs = {}
            for name in names:
                proc = cli("enqueue", urls[name], "--rev", commits[name][version - 1], "--db", db, "--json")
                assert proc.returncode == 0, proc.stderr
                jobs[name] = json.loads(proc.stdout)["id"]
            _wait([p for m in machines for p in m.run_workers(2)], machines)
            for name, job_id in jobs.items():
                job = queue.get(job_id)
                assert job is not None and job.state == "completed", (job, a.logs(), b.logs())
                result = json.loads(job.result or "{}")
                assert result["mode"] == ("full" if version == 1 else "incremental"), (name, version)
                assert result["commit"] == commits[name][version - 1]
                assert result["repo"] == f"file://{origins / name}"
                pid = int((job.worker_id or "-0").rsplit("-", 1)[1])
                built_by[name, version] = next(m.name for m in (a, b) if pid in m.pids)
                if version == 2:  # the rename re-resolved the importers of the renamed function
                    assert {"main.py", f"{name}/__init__.py"} <= set(result["affected_files"])
        assert all(built_by[n, 1] == "machine-a" and built_by[n, 2] == "machine-b" for n in names)

        # Both machines cloned once into their own caches and left no checkouts behind.
        for machine in (a, b):
            assert len(list((machine.cache / "git").glob("*.git"))) == 3
            assert not list((machine.cache / "checkouts").iterdir())

        # Every repository's incremental result equals a full build of the same commit.
        reference = GitCache(tmp_path / "reference-cache")
        for name in names:
            source = parse_source(urls[name])
            with reference.checkout(source, commits[name][2]) as checkout:
                full = codegraph.index(str(checkout.path), str(tmp_path / f"full-{name}"),
                                       options=NO_VECTORS, full=True, repo=source.identity)
            assert full["state"] == "completed"
            fleet = list(codegraph.open(db, urls[name]).export())
            assert fleet == list(codegraph.open(str(tmp_path / f"full-{name}")).export()), name
            assert any(row[0] == "symbol" and row[1] == f"{name}.tools.assist" for row in fleet)

        # One database, three repositories: queries span them all.
        idx = codegraph.open(db)
        assert {s.repo_name for s in idx.snapshots} == set(names)
        callers = idx.graph("callers", "calculate")
        assert {(r["repo"], r["src"]) for r in callers} >= {(urls[n], "extra.more") for n in names}
    assert time.monotonic() - t0 < 90
