"""Ground state: which files a repository holds right now, and their content hashes.

A snapshot is the set of (path, content hash) of the files that would be indexed. A git work tree
contributes its tracked and untracked-but-not-ignored files; a plain directory is walked with its
.gitignore files honoured. Files that cannot be indexed (binary, too large, unreadable, not
decodable) are reported with a reason and left out; nothing about one file stops the scan.
"""

from __future__ import annotations

import errno
import os
import re
import subprocess
import time
import tokenize
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from io import BytesIO
from pathlib import Path

import pathspec
import xxhash

from codegraph import procs
from codegraph.confine import BrokenLink, FileTooLarge, Refused, RootDir
from codegraph.model import FileError

# Never indexed, whatever the ignore files say: VCS data, our own store, bytecode caches.
ALWAYS_EXCLUDED = [".git/", ".hg/", ".svn/", ".codegraph/", "__pycache__/", "*.pyc", "*.pyo"]
DEFAULT_MAX_FILE_BYTES = 2 * 1024 * 1024
_BINARY_SNIFF = 8192


@dataclass(frozen=True)
class SourceFile:
    path: str  # relative, "/"-separated
    content_hash: str
    size: int
    mtime_ns: int


@dataclass
class Snapshot:
    root: Path
    files: list[SourceFile] = field(default_factory=list)
    failed: list[FileError] = field(default_factory=list)
    skipped: list[FileError] = field(default_factory=list)
    started_at: float = 0.0  # wall clock when the scan began: later mtimes are not trusted
    files_read: int = 0  # how many files had to be read and hashed (the rest: stat proved them)

    @cached_property  # asked several times per run, once the scan is done
    def manifest_hash(self) -> str:
        """Identity of everything the index records about the tree: files and their problems."""
        h = xxhash.xxh3_128()
        for f in sorted(self.files, key=lambda f: f.path):
            h.update(f"{f.path}\0{f.content_hash}\n".encode("utf-8", "surrogateescape"))
        for kind, problems in (("failed", self.failed), ("skipped", self.skipped)):
            for e in sorted(problems, key=lambda e: (e.path, e.reason)):
                h.update(f"{kind}\0{e.path}\0{e.reason}\n".encode("utf-8", "surrogateescape"))
        return h.hexdigest()


class UndecodableError(ValueError):
    pass


# How content hashes are made: part of L1's key, so a store whose hashes were made otherwise is
# never trusted for them (the pipeline takes size/mtime hints only from a base with L1's key).
CONTENT_HASH_SCHEME = "xxh3-128+language+path"


def content_hash(data: bytes, path: str) -> str:
    """The key of a file's content at its path: xxh3-128 of its bytes, seeded by the path and by
    the language the path is indexed in (`languages.language_for`; plain text: none). Every
    per-file output is keyed by it, and every per-file output may depend on where the file is:
    a unit's embedded texts carry its file's path (`units.path_words`), and equal bytes in two
    languages (`a.js` renamed `a.ts`) are parsed as each language does. So equal bytes under two
    paths are two contents (each is cut and embedded with its own path, as a search must see
    it); a renamed file is parsed again, a small part of embedding its texts again (ARCHITECTURE
    "Ground state")."""
    return xxhash.xxh3_128_hexdigest(data, _path_seed(path))


def _path_seed(path: str) -> int:
    from codegraph.languages import language_for  # imported on use: it loads the plug-ins

    lang = language_for(path)
    return xxhash.xxh3_64_intdigest(f"{'' if lang is None else lang.name}\0{path}".encode(
        "utf-8", "surrogateescape"))


def decode(path: str, data: bytes) -> str:
    """UTF-8, or for Python files the encoding their PEP 263 coding line declares."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as utf8_error:
        if path.endswith(".py"):
            try:
                encoding, _ = tokenize.detect_encoding(BytesIO(data).readline)
                if encoding.lower().replace("_", "-") not in ("utf-8", "utf-8-sig"):
                    return data.decode(encoding)
            except (SyntaxError, LookupError, UnicodeDecodeError):
                pass
        raise UndecodableError(
            f"invalid UTF-8 at byte {utf8_error.start} and no usable coding declaration"
        ) from None


def read_text(root: Path, path: str, expected_hash: str, tree: RootDir | None = None) -> str:
    """The text of a snapshot file, checked against the hash the snapshot recorded. Read inside
    the root whatever happened since the scan (`confine`): a link swapped to point out of the
    root is refused here too. `tree`: an open `RootDir` of `root`, to share between files."""
    if tree is None:
        with RootDir(root) as own:
            data = own.read(path)[0]
    else:
        data = tree.read(path)[0]
    if content_hash(data, path) != expected_hash:
        raise OSError(f"{path} changed while it was being indexed")
    return decode(path, data)


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[bytes] | None:
    try:
        return procs.run(["git", "-C", str(root), *args], capture_output=True, timeout=120)
    except (OSError, subprocess.SubprocessError):
        return None


def _in_git_work_tree(root: Path) -> bool:
    """Inside a work tree, and not in an ignored part of it (e.g. a venv inside a checkout)."""
    top = _git(root, "rev-parse", "--show-toplevel")
    if top is None or top.returncode != 0:
        return False
    toplevel = Path(top.stdout.decode().strip()).resolve()
    if toplevel == root:
        return True
    ignored = _git(toplevel, "check-ignore", "-q", str(root.relative_to(toplevel)) + "/")
    return ignored is not None and ignored.returncode == 1


def _git_files(root: Path) -> list[str] | None:
    """Tracked plus untracked-not-ignored files of the work tree containing root, or None."""
    if not _in_git_work_tree(root):
        return None
    try:
        out = procs.run(
            ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            capture_output=True,
            check=True,
            timeout=120,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    paths = {p.decode("utf-8", "surrogateescape") for p in out.split(b"\0") if p}
    return sorted(paths)


def _walk_files(root: Path, tree: RootDir) -> Iterator[str]:
    """A plain directory walk honouring every .gitignore on the way; symlinked dirs not entered."""
    specs: list[tuple[str, pathspec.PathSpec]] = []

    def ignored(rel: str, is_dir: bool) -> bool:
        candidate = rel + "/" if is_dir else rel
        for base, spec in specs:
            if base and not candidate.startswith(base + "/"):
                continue
            if spec.match_file(candidate[len(base) + 1 :] if base else candidate):
                return True
        return False

    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        rel_dir = os.path.relpath(dirpath, root).replace(os.sep, "/")
        rel_dir = "" if rel_dir == "." else rel_dir
        specs[:] = [(b, s) for b, s in specs if not b or rel_dir == b or rel_dir.startswith(b + "/")]
        if ".gitignore" in filenames:
            try:  # read inside the root like any file: a linked .gitignore may point anywhere
                data = tree.read(f"{rel_dir}/.gitignore" if rel_dir else ".gitignore")[0]
                lines = data.decode("utf-8", "replace").splitlines()
                specs.append((rel_dir, pathspec.GitIgnoreSpec.from_lines(lines)))
            except OSError:
                pass
        keep = []
        for d in sorted(dirnames):
            rel = f"{rel_dir}/{d}" if rel_dir else d
            if not ignored(rel, True):
                keep.append(d)
        dirnames[:] = keep
        for name in sorted(filenames):
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if not ignored(rel, False):
                yield rel


def list_files(root: Path, tree: RootDir) -> list[str]:
    git = _git_files(root)
    return git if git is not None else list(_walk_files(root, tree))


def _matcher(spec: pathspec.GitIgnoreSpec) -> Callable[[str], bool]:
    """`spec.match_file`, as one regular expression when no pattern is a negation (then a path
    is excluded iff any pattern matches it): a scan asks once per file, and pathspec tries each
    pattern in turn. Any pattern it cannot combine keeps pathspec's own matching."""
    patterns = [p for p in spec.patterns if p.include is not None]
    regexes = [getattr(p, "regex", None) for p in patterns]
    if any(not p.include for p in patterns) or any(r is None for r in regexes):
        return spec.match_file
    try:  # pathspec names a group in every pattern: one name may appear only once in a regex
        combined = re.compile("|".join(f"(?:{r.pattern.replace('(?P<ps_d>', '(')})" for r in regexes))
    except re.error:
        return spec.match_file
    return lambda path: combined.match(path) is not None


# A file whose mtime is this close to (or after) the previous scan's start may have changed again
# within one timestamp tick after it was read (git's "racily clean" problem): it is re-read.
RACY_WINDOW_NS = 2_000_000_000


def scan(
    root: Path,
    excludes: list[str] | None = None,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    on_file: Callable[[], None] | None = None,
    known: Mapping[str, tuple[int, int, str]] | None = None,
    known_scanned_at: float = 0.0,
) -> Snapshot:
    """`known`: path -> (size, mtime_ns, content hash) from the previous scan (started at
    `known_scanned_at`). A file whose size and mtime still match, and whose mtime is safely older
    than that scan, is not read again: its recorded hash is taken."""
    root = root.resolve()
    excluded = _matcher(pathspec.GitIgnoreSpec.from_lines([*ALWAYS_EXCLUDED, *(excludes or [])]))
    snapshot = Snapshot(root, started_at=time.time())
    known = known or {}
    trust_before_ns = int(known_scanned_at * 1e9) - RACY_WINDOW_NS
    with RootDir(root) as tree:
        for rel in list_files(root, tree):
            if on_file is not None:
                on_file()
            if excluded(rel):
                continue
            data = _read_for_scan(tree, rel, snapshot, known.get(rel), trust_before_ns, max_file_bytes)
            if data is None:
                continue
            data, mtime_ns = data
            if b"\0" in data[:_BINARY_SNIFF]:
                snapshot.skipped.append(FileError(rel, "binary file"))
                continue
            try:
                decode(rel, data)
            except UndecodableError as exc:
                snapshot.failed.append(FileError(rel, str(exc)))
                continue
            snapshot.files.append(SourceFile(rel, content_hash(data, rel), len(data), mtime_ns))
    return snapshot


def _read_for_scan(tree: RootDir, rel: str, snapshot: Snapshot, seen: tuple[int, int, str] | None,
                   trust_before_ns: int, max_file_bytes: int) -> tuple[bytes, int] | None:
    """The file's bytes and mtime, or None: recorded in `snapshot` as taken from `seen` (stat
    proved it unchanged), skipped or failed with its reason, or gone. Every path is resolved
    inside the root (`confine`): a symlink out of it is skipped and never opened."""
    try:
        st, linked = tree.lstat(rel)
        if st.st_size > max_file_bytes:
            snapshot.skipped.append(FileError(rel, f"too large: {st.st_size} bytes > limit {max_file_bytes}"))
            return None
        # A link's own target may change while the file it names keeps its size and mtime: a
        # file reached through a link is always read.
        if (not linked and seen is not None and seen[0] == st.st_size and seen[1] == st.st_mtime_ns
                and st.st_mtime_ns < trust_before_ns):
            snapshot.files.append(SourceFile(rel, seen[2], st.st_size, st.st_mtime_ns))
            return None
        data, st, _ = tree.read(rel, max_file_bytes)
        snapshot.files_read += 1
        return data, st.st_mtime_ns
    except (Refused, FileTooLarge) as exc:
        snapshot.skipped.append(FileError(rel, exc.reason))
    except BrokenLink:
        snapshot.failed.append(FileError(rel, "broken symlink"))
    except FileNotFoundError:
        pass  # deleted in the work tree: not part of this snapshot
    except OSError as exc:
        reason = "symlink loop" if exc.errno == errno.ELOOP else f"unreadable: {exc.strerror or exc}"
        snapshot.failed.append(FileError(rel, reason))
    return None
