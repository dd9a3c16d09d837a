"""Nothing outside the indexed root is read: symlinks that leave it (absolute, `..`, chains that
come back, /proc), special files, links swapped between the scan and a stage's read — in a plain
directory, a git work tree and a repository fetched by URL; and a store built before the rule
drops such files at its next index."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import codegraph
from codegraph.confine import OUTSIDE, Refused, RootDir
from codegraph.pipeline import IndexOptions
from codegraph.snapshot import read_text, scan
from codegraph.stages import IndexConfig
from conftest import git_init, write_tree

NO_VECTORS = IndexOptions(IndexConfig(vectors=False))
SECRET = "zanzibar_secret_token"  # appears only outside the repository
CLI = [sys.executable, "-m", "codegraph.cli"]


def outside_files(tmp: Path) -> Path:
    return write_tree(tmp / "outside", {
        "secret.py": f"{SECRET} = 1\n",
        "ignore_all": "*\n",  # as a .gitignore it would hide every file
    })


def hostile_repo(tmp: Path, name: str = "repo") -> tuple[Path, dict[str, str]]:
    """A repository whose links try every way out; returns it and the reasons expected."""
    outside = outside_files(tmp)
    root = write_tree(tmp / name, {
        "pkg/__init__.py": "",
        "pkg/real.py": "def real_function():\n    return 1\n",
        "main.py": "from pkg.real import real_function\n",
    })
    # A hop outside that points straight back into the root: still refused at the first step.
    os.symlink(root / "pkg" / "real.py", outside / "back.py")
    links = {
        "abs_out.py": str(outside / "secret.py"),
        "dotdot_out.py": "../outside/secret.py",
        "deep_dotdot.py": "pkg/../../outside/secret.py",
        "chain_out.py": "pkg/via.py",  # -> pkg/via.py -> ../../outside/secret.py
        "pkg/via.py": "../../outside/secret.py",
        "leave_and_return.py": str(outside / "back.py"),
        "dotdot_return.py": f"../{name}/pkg/real.py",  # lexically leaves the root, then re-enters
        "environ.py": "/proc/self/environ",
        "passwd.py": "/etc/passwd",
        "alias.py": "pkg/real.py",  # inside: indexed as its target's content
        "abs_alias.py": str(root / "pkg" / "real.py"),  # inside too, written absolute
        "pkg_link": "pkg",  # a directory
        "loop_a.py": "loop_b.py",
        "loop_b.py": "loop_a.py",
        "broken.py": "missing.py",
    }
    for link, target in links.items():
        os.symlink(target, root / link)
    expected = {link: OUTSIDE for link in ("abs_out.py", "dotdot_out.py", "deep_dotdot.py", "chain_out.py",
                                           "pkg/via.py", "leave_and_return.py", "dotdot_return.py",
                                           "environ.py", "passwd.py")}
    expected.update({"pkg_link": "symlink to a directory: not followed", "loop_a.py": "symlink loop",
                     "loop_b.py": "symlink loop", "broken.py": "broken symlink"})
    return root, expected


def reasons(result: dict) -> dict[str, str]:
    return {e["path"]: e["reason"] for e in result["files_skipped"] + result["files_failed"]}


def check_contained(result: dict, db: str, expected: dict[str, str]) -> None:
    assert result["state"] == "completed"
    assert {p: r for p, r in reasons(result).items() if p in expected} == expected
    idx = codegraph.open(db)
    assert idx.search(SECRET, mode="lexical") == []
    assert idx.search("root", mode="lexical") == []  # /etc/passwd's first line
    hits = {h.path for h in idx.search("real_function", mode="lexical", limit=20)}
    assert {"alias.py", "abs_alias.py", "pkg/real.py"} <= hits
    assert SECRET not in json.dumps(list(idx.export()))


@pytest.mark.parametrize("git", [False, True], ids=["plain", "git"])
def test_links_out_of_the_root_are_skipped_and_links_inside_are_indexed(tmp_path: Path, git: bool) -> None:
    root, expected = hostile_repo(tmp_path)
    if git:
        git_init(root)
    else:
        del expected["pkg_link"]  # a plain walk lists a linked directory as a directory: not entered
        os.mkfifo(root / "fifo.py")  # opening it would block: never opened
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(root / "sock.py"))
        os.symlink("../outside/ignore_all", root / ".gitignore")
        expected.update({"fifo.py": "not a regular file", "sock.py": "not a regular file",
                         ".gitignore": OUTSIDE})
    db = str(tmp_path / "db")
    check_contained(codegraph.index(str(root), db, options=NO_VECTORS), db, expected)


def test_a_link_swapped_after_the_scan_is_not_followed_out_by_the_read(tmp_path: Path) -> None:
    outside = outside_files(tmp_path)
    root = write_tree(tmp_path / "repo", {"pkg/real.py": "x = 1\n", "other.py": "y = 2\n"})
    os.symlink("other.py", root / "alias.py")
    snapshot = scan(root)
    hashes = {f.path: f.content_hash for f in snapshot.files}
    assert set(hashes) == {"pkg/real.py", "other.py", "alias.py"}
    # The same bytes outside: the hash check alone would accept them.
    (outside / "real.py").write_text("x = 1\n")
    (outside / "other.py").write_text("y = 2\n")
    os.replace(root / "pkg", tmp_path / "pkg.moved")
    os.symlink(outside, root / "pkg")  # a directory on the way becomes a link out
    os.remove(root / "alias.py")
    os.symlink(outside / "other.py", root / "alias.py")  # the link itself is retargeted
    for path in ("pkg/real.py", "alias.py"):
        with pytest.raises(Refused, match=OUTSIDE):
            read_text(root, path, hashes[path])
    with RootDir(root) as tree:  # the descriptors a stage shares between files: the same rule
        with pytest.raises(Refused):
            tree.read("pkg/real.py")
        assert tree.read("other.py")[0] == b"y = 2\n"


def test_files_of_kernel_pseudo_file_systems_are_never_read() -> None:
    with RootDir("/proc/self") as tree, pytest.raises(Refused, match="procfs"):
        tree.read("environ")  # a "regular file" of size 0 holding this process's environment


def test_a_store_built_before_the_rule_drops_the_file_at_its_next_index(tmp_path: Path) -> None:
    outside = outside_files(tmp_path)
    root = write_tree(tmp_path / "repo", {"a.py": "def a():\n    return 1\n", "leak.py": f"{SECRET} = 1\n"})
    db = str(tmp_path / "db")
    first = codegraph.index(str(root), db, options=NO_VECTORS)
    assert first["files_indexed"] == 2 and codegraph.open(db).search(SECRET, mode="lexical")
    # What an old version indexed through a link: same size and mtime as recorded, so only the
    # rule (not a change of stat) can drop it.
    st = os.stat(root / "leak.py")
    os.utime(outside / "secret.py", ns=(st.st_atime_ns, st.st_mtime_ns))
    os.remove(root / "leak.py")
    os.symlink(outside / "secret.py", root / "leak.py")
    second = codegraph.index(str(root), db, options=NO_VECTORS)
    assert second["changed_files"]["deleted"] == ["leak.py"]
    assert reasons(second) == {"leak.py": OUTSIDE}
    assert codegraph.open(db).search(SECRET, mode="lexical") == []


def test_a_repository_fetched_by_url_cannot_reach_out_either(tmp_path: Path) -> None:
    origin, expected = hostile_repo(tmp_path, "origin")
    git_init(origin)
    db = str(tmp_path / "db")
    proc = subprocess.run([*CLI, "index", f"file://{origin}", "--db", db, "--no-vectors", "--json",
                           "--cache", str(tmp_path / "cache")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    # In the checkout, "../origin/…" leaves the checkout's root (its directory is also named
    # origin, elsewhere): out, as in the work tree; absolute links into the work tree point
    # outside the checkout.
    expected["abs_alias.py"] = OUTSIDE
    assert {p: r for p, r in reasons(result).items() if p in expected} == expected
    idx = codegraph.open(db)
    assert idx.search(SECRET, mode="lexical") == []
    hits = {h.path for h in idx.search("real_function", mode="lexical", limit=20)}
    assert hits >= {"alias.py", "pkg/real.py"}
