"""Watch mode (issue 14, point 2) with real file edits on a git work tree: an edit becomes
searchable, branch switches are followed, a save in the middle of an update is not lost, and
deleted, recreated and unreadable files and a repository moved away are survived."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from codegraph.tools import Tools
from codegraph.watch import Watcher
from conftest import SHOP, git_init, write_tree


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                   check=True, capture_output=True)


def _until(predicate: Callable[[], Any], timeout: float, what: str) -> float:
    t0 = time.monotonic()
    while True:
        if predicate():
            return time.monotonic() - t0
        assert time.monotonic() - t0 < timeout, f"timed out waiting for {what}"
        time.sleep(0.05)


def _hits(tools: Tools, word: str) -> list[str]:
    return [h["path"] for h in tools.search(word, mode="lexical", limit=5)["hits"]
            if word in h["snippet"]]


@pytest.fixture
def watched(tmp_path: Path) -> Iterator[tuple[Path, Watcher, Tools]]:
    repo = write_tree(tmp_path / "repo", SHOP)
    git_init(repo)
    watcher = Watcher([str(repo)], str(tmp_path / "db"), vectors=False, workers=1, log=lambda _: None)
    watcher.start()
    assert watcher.ready.wait(60)
    tools = Tools.open(str(tmp_path / "db"), live=watcher)
    try:
        yield repo, watcher, tools
    finally:
        watcher.stop()


def _idle(watcher: Watcher) -> bool:
    state = watcher.live_state(watcher.repos[0].identity) or {}
    return not state.get("pending") and not state.get("updating")


def test_edits_and_branch_switches_become_searchable_and_answers_say_when_stale(
    watched: tuple[Path, Watcher, Tools]
) -> None:
    repo, watcher, tools = watched
    (repo / "shop" / "pricing.py").write_text("def zebra_unicorn_total(items):\n    return sum(items)\n")
    latency = _until(lambda: _hits(tools, "zebra_unicorn_total"), 20, "the edit to be searchable")
    assert latency < 10
    _until(lambda: _idle(watcher), 10, "the watcher to settle")
    assert tools.status()["fresh"]
    # A branch with a new module, then back and forth: each switch is the snapshot change it is.
    _git(repo, "checkout", "-qb", "feature")
    (repo / "shop" / "giraffe.py").write_text("def giraffe_token():\n    return 7\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "feature")
    _until(lambda: _hits(tools, "giraffe_token"), 20, "the feature branch")
    _git(repo, "checkout", "-q", "master")
    _until(lambda: not _hits(tools, "giraffe_token"), 20, "the switch back to master")
    _until(lambda: _idle(watcher), 10, "the watcher to settle")
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    (status,) = tools.status()["repositories"]
    assert status["commit"] == head and status["watch"]["pending"] == 0
    # While changes wait for their update, answers say they are not fresh.
    class Pending:
        def live_state(self, repo: str) -> dict[str, Any]:
            return {"pending": ["shop/models.py"], "updating": False, "problem": None}

    answer = Tools(tools.index, tools.queue, Pending()).definition("shop.models.Customer")
    assert answer["fresh"] is False and "not indexed yet" in answer["snapshots"][0]["stale_because"][0]


def test_a_save_during_an_update_is_seen_by_the_next_one(
    watched: tuple[Path, Watcher, Tools], monkeypatch: pytest.MonkeyPatch
) -> None:
    import codegraph.pipeline as pipeline

    repo, watcher, tools = watched
    real_scan = pipeline.scan
    saved: list[bool] = []

    def scan_then_save(*args: Any, **kwargs: Any) -> Any:
        snapshot = real_scan(*args, **kwargs)
        if not saved:  # the save lands after this update read the file: it indexes the old text
            saved.append(True)
            (repo / "shop" / "models.py").write_text("class Okapi_saved_mid_update:\n    pass\n")
        return snapshot

    monkeypatch.setattr(pipeline, "scan", scan_then_save)
    (repo / "shop" / "checkout.py").write_text("def first_edit_marker():\n    return 1\n")
    _until(lambda: _hits(tools, "first_edit_marker"), 20, "the first edit")
    _until(lambda: _hits(tools, "Okapi_saved_mid_update"), 20, "the save made during the update")
    assert saved == [True] and watcher.repos[0].updates >= 3


def test_watch_survives_deleted_recreated_unreadable_files_and_a_repository_moved_away(
    watched: tuple[Path, Watcher, Tools], tmp_path: Path
) -> None:
    repo, watcher, tools = watched
    (repo / "shop" / "pricing.py").unlink()
    _until(lambda: not _hits(tools, "TAX_RATE"), 20, "the deletion")
    (repo / "shop" / "pricing.py").write_text("TAX_RATE = 0.3\n")
    _until(lambda: _hits(tools, "TAX_RATE"), 20, "the recreation")
    (repo / "loop.py").symlink_to("loop.py")  # unreadable: a symlink loop
    (repo / "bad.py").write_bytes(b"\xff\xfe not utf-8 \x00")
    (repo / "good_after_bad.py").write_text("def survivor_marker():\n    return 1\n")
    _until(lambda: _hits(tools, "survivor_marker"), 20, "an update despite unreadable files")

    def reported() -> set[str]:  # the update's result is recorded just after its snapshot completes
        result = watcher.repos[0].last_result or {}
        return {f["path"] for f in result.get("files_failed", []) + result.get("files_skipped", [])}

    _until(lambda: {"loop.py", "bad.py"} <= reported(), 10, "the unreadable files to be reported")
    # Moved away: it says so and keeps serving the last snapshot; back again, it catches up.
    moved = tmp_path / "elsewhere"
    repo.rename(moved)
    _until(lambda: (watcher.live_state(str(repo)) or {}).get("problem"), 10, "the move to be noticed")
    answer = tools.search("survivor_marker", mode="lexical")
    assert answer["hits"] and answer["fresh"] is False
    assert "gone" in answer["snapshots"][0]["stale_because"][0]
    (moved / "back_marker.py").write_text("def back_again_marker():\n    return 2\n")
    moved.rename(repo)
    _until(lambda: _hits(tools, "back_again_marker"), 20, "the repository's return")
    assert (watcher.live_state(str(repo)) or {}).get("problem") is None
