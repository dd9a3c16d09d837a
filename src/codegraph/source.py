"""Where a job's files come from, and which repository they belong to.

A *source* is what `codegraph enqueue` is given: a local directory, or a git repository by URL.
Its *identity* names the repository in the store (`repos.root`), whatever machine or checkout
directory indexes it — so any worker finds the repository's latest snapshot and updates it
incrementally:

- a local path: the resolved absolute path (the directory is the repository: current behaviour);
- a network URL (https, http, ssh, git, or scp-like `user@host:path`): `host[:port]/path` without
  user, default port, trailing `/` or `.git` — `https://github.com/a/b.git` and
  `git@github.com:a/b` are one repository;
- a `file://` URL: `file://` + the normalised absolute path.

A worker indexes a URL job, and a local git repository at a `--rev`, from its own `GitCache`: one
bare repository per identity, cloned once and fetched before each job (under a file lock, so the
worker processes of one machine can share the cache), and a detached worktree per job at the
exact commit — the files as of that commit, never a work tree's edits — removed afterwards.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import posixpath
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from glob import escape as glob_escape
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

from codegraph import procs
from codegraph.errors import UserError
from codegraph.jobs import PermanentJobError, TransientJobError
from codegraph.names import default_cache_dir  # there: a search finds the model cache with it

NETWORK_SCHEMES = {"https": 443, "http": 80, "ssh": 22, "git": 9418, "git+ssh": 22, "ssh+git": 22}
# git's rule for scp-like syntax: a colon before any slash ("host:path", "user@host:path").
_SCP = re.compile(r"^(?:(?P<user>[^@/:]+)@)?(?P<host>[^@/:]+):(?P<path>.+)$")
# What a host may look like: never "-oProxyCommand=…" (an ssh option) or a remote helper name
# ("ext::sh -c …" reads as scp-like syntax with host "ext" and path ":sh -c …").
_HOST = re.compile(r"^[a-z0-9][a-z0-9.-]*$")
_FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
# Where the remote's default branch lands in a cache: a job without --rev indexes that commit.
REMOTE_HEAD = "refs/codegraph/remote-head"
_REFSPECS = ("+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*")
# Messages of git failures that a later attempt may not see (network, server overload). Matched
# here, at the one boundary where git only gives us text; anything else is permanent (a wrong
# URL, a missing repository or commit, refused credentials do not go away on retry).
_TRANSIENT_GIT = re.compile(
    r"could not resolve host|temporary failure in name resolution|connection (timed out|refused|"
    r"reset)|operation timed out|timed out|network is unreachable|no route to host|"
    r"failed to connect|couldn't connect|early eof|remote end hung up|rpc failed|"
    r"returned error: (5\d\d|429)|ssl|gnutls|tls connection|broken pipe|unable to get local issuer",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Source:
    location: str  # what git fetches from (a URL without password) or the local directory
    identity: str  # the repository's name in the store, independent of the checkout directory
    name: str  # short name: the directory's or the URL's last component (also the checkout's)
    is_url: bool


def looks_like_url(text: str) -> bool:
    if "://" in text:
        return True
    return bool(_SCP.match(text)) and not text.startswith(("/", ".", "~")) and not Path(text).exists()


def parse_source(text: str) -> Source:
    """A URL or a local directory; a one-line UserError for anything unusable."""
    text = text.strip()
    if not text:
        raise UserError("empty repository: give a git URL or a directory")
    if looks_like_url(text):
        return _parse_url(text)
    root = Path(text).expanduser()
    if not root.exists():
        raise UserError(f"no such directory: {text}")
    if not root.is_dir():
        raise UserError(f"not a directory: {text}")
    root = root.resolve()
    return Source(str(root), str(root), root.name, False)


def repo_identity(text: str) -> str:
    """The identity `text` names (a URL or an existing directory), or `text` itself."""
    try:
        return parse_source(text).identity
    except UserError:
        return text


def _strip_git(path: str) -> str:
    path = path.rstrip("/")
    return path[: -len(".git")] if path.endswith(".git") else path


def _name_of(path: str, fallback: str) -> str:
    """The last path component: it names the checkout directory, so never "" or ".."."""
    name = _strip_git(path).rsplit("/", 1)[-1]
    return fallback if name in ("", ".", "..") else name


def _parse_url(text: str) -> Source:
    scp = None if "://" in text else _SCP.match(text)
    if scp is not None:
        user, host, path = scp.group("user"), scp.group("host").lower(), scp.group("path")
        if not _HOST.match(host) or path.startswith((":", "-")) or (user or "").startswith("-"):
            raise UserError(f"not a repository URL: {text}")
        location = f"{user + '@' if user else ''}{host}:{path.rstrip('/') or path}"
        identity = f"{host}/{_strip_git(path).lstrip('/')}"
        return Source(location, identity, _name_of(path, host), True)
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise UserError(f"not a repository URL: {text} ({exc})") from None
    scheme = parts.scheme.lower()
    if parts.password is not None:
        raise UserError("the repository URL carries a password: use a git credential helper or an "
                        "ssh key instead (URLs are stored in the jobs table)")
    if parts.query or parts.fragment:
        raise UserError(f"not a repository URL (query or fragment): {text}")
    if scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise UserError(f"a file:// URL needs an absolute local path: {text}")
        path = posixpath.normpath(parts.path)
        return Source(f"file://{path}", f"file://{path}", _name_of(path, "repo"), True)
    if scheme not in NETWORK_SCHEMES:
        raise UserError(f"unsupported repository URL scheme {scheme}://: use https, http, ssh, git "
                        "or file (or a local path)")
    host = (parts.hostname or "").lower()
    if not host:
        raise UserError(f"no host in repository URL: {text}")
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    elif not _HOST.match(host):
        raise UserError(f"not a repository URL: {text}")
    path = parts.path.rstrip("/")
    hostport = f"{host}:{port}" if port is not None else host
    user = f"{parts.username}@" if parts.username else ""
    location = f"{scheme}://{user}{hostport}{path}"
    if port == NETWORK_SCHEMES[scheme]:
        hostport = host
    return Source(location, f"{hostport}/{_strip_git(path).lstrip('/')}", _name_of(path, host), True)


def check_rev(rev: str | None) -> str | None:
    """A rev git will not read as an option (`--upload-pack=…`) or a refspec (`a:b`)."""
    if rev is not None and (not rev.strip() or rev.startswith("-") or ":" in rev
                            or any(c.isspace() for c in rev)):
        raise UserError(f"not a revision: {rev!r}")
    return rev


# ----- the worker's git cache ---------------------------------------------------------------


@dataclass(frozen=True)
class Checkout:
    path: Path  # a detached worktree at `commit`, named after the repository
    commit: str


class GitCache:
    """`root/git/<name>-<hash of identity>.git`: bare repositories, one per identity;
    `root/checkouts/job-*/<name>`: one detached worktree per running job."""

    def __init__(self, root: Path | str | None = None, timeout: float = 600.0) -> None:
        self.root = Path(root).expanduser().resolve() if root is not None else default_cache_dir()
        self.timeout = timeout

    def repository(self, source: Source) -> Path:
        digest = hashlib.sha256(source.identity.encode()).hexdigest()[:16]
        slug = re.sub(r"[^A-Za-z0-9._-]", "_", source.name)[:40]
        return self.root / "git" / f"{slug}-{digest}.git"

    @contextlib.contextmanager
    def checkout(self, source: Source, rev: str | None) -> Iterator[Checkout]:
        """The tree of `rev` (default: the remote's HEAD) as a directory, for the with-block."""
        check_rev(rev)
        repo = self.repository(source)
        repo.parent.mkdir(parents=True, exist_ok=True)
        with _locked(repo.with_suffix(".lock")):
            self._update(source, repo, rev)
            commit = self._resolve(source, repo, rev)
            job_dir, job_lock = self._new_job_dir()
            path = job_dir / source.name
            try:
                self._git(source, "-C", str(repo), "worktree", "add", "--detach", "--quiet",
                          str(path), commit, what="checkout")
            except BaseException:
                _release(job_lock)
                shutil.rmtree(job_dir, ignore_errors=True)
                raise
        try:
            yield Checkout(path, commit)
        finally:
            with _locked(repo.with_suffix(".lock")):
                shutil.rmtree(job_dir, ignore_errors=True)
                # Forget the worktree whose directory is gone (this one, and crashed jobs').
                with contextlib.suppress(Exception):
                    self._git(source, "-C", str(repo), "worktree", "prune", what="worktree prune")
            _release(job_lock)

    def _new_job_dir(self) -> tuple[Path, IO[bytes]]:
        """A fresh `checkouts/job-*` directory, locked for as long as its job runs. Directories
        whose lock nobody holds are left over from killed workers: removed on the way."""
        checkouts = self.root / "checkouts"
        checkouts.mkdir(parents=True, exist_ok=True)
        with _locked(self.root / "checkouts.lock"):  # creating and sweeping never interleave
            for stale in checkouts.glob("job-*"):
                lock = _try_lock(stale / ".lock")
                if lock is not None:
                    shutil.rmtree(stale, ignore_errors=True)
                    _release(lock)
            job_dir = Path(tempfile.mkdtemp(prefix="job-", dir=checkouts))
            lock = _try_lock(job_dir / ".lock")
            assert lock is not None  # nobody else knows the directory yet
        return job_dir, lock

    def _update(self, source: Source, repo: Path, rev: str | None) -> None:
        if not (repo / "HEAD").exists():
            # Clone into a temporary name: a clone killed halfway never looks like a cache (and
            # is removed here: under this repository's lock nobody else is cloning it).
            for stale in repo.parent.glob(glob_escape(repo.name) + ".tmp-*"):
                shutil.rmtree(stale, ignore_errors=True)
            tmp = Path(tempfile.mkdtemp(prefix=repo.name + ".tmp-", dir=repo.parent))
            try:
                self._git(source, "init", "--bare", "--quiet", str(tmp), what="init")
                for args in (("remote.origin.url", source.location),
                             ("remote.origin.fetch", _REFSPECS[0]),
                             ("--add", "remote.origin.fetch", _REFSPECS[1])):
                    self._git(source, "-C", str(tmp), "config", *args, what="init")
                self._fetch(source, tmp, rev)
                os.rename(tmp, repo)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            return
        if rev is not None and _FULL_SHA.match(rev) and self._has_commit(repo, rev):
            return  # a commit never changes: nothing to fetch
        self._fetch(source, repo, rev)

    def _fetch(self, source: Source, repo: Path, rev: str | None) -> None:
        # The remote's HEAD only when the job wants it: a repository whose HEAD names no branch
        # still serves its branches, tags and commits.
        head = [f"+HEAD:{REMOTE_HEAD}"] if rev is None else []
        self._git(source, "-C", str(repo), "fetch", "--quiet", "--prune", "--no-write-fetch-head",
                  "origin", *_REFSPECS, *head, what="fetch")

    def _has_commit(self, repo: Path, rev: str) -> bool:
        return self._rev_parse(repo, rev) is not None

    def _rev_parse(self, repo: Path, rev: str) -> str | None:
        proc = procs.run(["git", "-C", str(repo), "rev-parse", "--verify", "--quiet",
                               "--end-of-options", f"{rev}^{{commit}}"],
                              capture_output=True, text=True, timeout=60, env=_git_env())
        return proc.stdout.strip() if proc.returncode == 0 else None

    def _resolve(self, source: Source, repo: Path, rev: str | None) -> str:
        commit = self._rev_parse(repo, rev or REMOTE_HEAD)
        if commit is None and rev is not None:
            # Not a branch, tag or fetched commit: a ref or commit the server has by name.
            with contextlib.suppress(PermanentJobError):
                self._git(source, "-C", str(repo), "fetch", "--quiet", "origin", rev, what="fetch")
                commit = self._rev_parse(repo, "FETCH_HEAD")
        if commit is None:
            raise PermanentJobError(f"{source.identity}: no commit named {rev or 'HEAD'!r}")
        return commit

    def _git(self, source: Source, *args: str, what: str) -> str:
        try:
            proc = procs.run(["git", *args], capture_output=True, text=True,
                                  timeout=self.timeout, env=_git_env())
        except subprocess.TimeoutExpired:
            raise TransientJobError(f"git {what} {source.identity}: no answer within "
                                    f"{self.timeout:g} s") from None
        except OSError as exc:
            raise PermanentJobError(f"cannot run git: {exc.strerror or exc}") from None
        if proc.returncode != 0:
            message = _one_line(proc.stderr) or f"exit status {proc.returncode}"
            error = TransientJobError if _TRANSIENT_GIT.search(proc.stderr) else PermanentJobError
            raise error(f"git {what} {source.identity}: {message}")
        return proc.stdout


def _git_env() -> dict[str, str]:
    env = dict(os.environ)
    env["GIT_TERMINAL_PROMPT"] = "0"  # a worker has no terminal: fail, never wait for a password
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    env["LC_ALL"] = "C"  # English messages: `_TRANSIENT_GIT` reads them
    return env


def _one_line(stderr: str) -> str:
    """git's fatal/error lines (the reasons), without their prefixes, on one line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    reasons = [line.split(":", 1)[1].strip() for line in lines if line.startswith(("fatal:", "error:"))]
    return "; ".join(dict.fromkeys(reasons or lines[-1:]))


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive flock: between the worker processes (and job threads) of one machine."""
    with open(path, "ab") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _try_lock(path: Path) -> IO[bytes] | None:
    try:
        handle = open(path, "ab")  # noqa: SIM115 - held until _release
    except OSError:
        return None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle


def _release(handle: IO[bytes]) -> None:
    with contextlib.suppress(OSError):
        fcntl.flock(handle, fcntl.LOCK_UN)
    handle.close()


__all__ = ["Checkout", "GitCache", "Source", "check_rev", "default_cache_dir", "looks_like_url",
           "parse_source", "repo_identity"]
