"""The seed's orchestrator shape over `pipeline.index`: a full rebuild and an incremental update
that report changed files, affected files, total files, per-stage durations and the measured
speedup. A thin typed view of the job result; the pipeline does the work."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codegraph.pipeline import IndexOptions, index


@dataclass(frozen=True)
class UpdateResult:
    mode: str  # "full" | "incremental"
    changed_files: list[str]  # added, modified and deleted paths
    affected_files: list[str]  # files whose cross-file resolution was redone
    total_files: int
    stage_durations_ms: dict[str, float]
    duration_ms: float
    # The repo's last full build's measured duration over this update's; None for a full build.
    speedup: float | None
    result: dict[str, Any] = field(repr=False)  # the whole job result (`index --json`)

    @classmethod
    def of(cls, result: dict[str, Any]) -> UpdateResult:
        if result["state"] != "completed":
            raise RuntimeError(result.get("error") or f"index run {result['state']}")
        changed = result["changed_files"]
        return cls(
            mode=result["mode"],
            changed_files=sorted({*changed["added"], *changed["modified"], *changed["deleted"]}),
            affected_files=list(result["affected_files"]),
            total_files=result["files_total"],
            stage_durations_ms={s["name"]: s["duration_ms"] for s in result["stages"]},
            duration_ms=result["duration_ms"],
            speedup=result.get("speedup"),
            result=result,
        )


class Orchestrator:
    """One repository and one store: `full_rebuild()` once, then `incremental_update()` after
    every change."""

    def __init__(self, repo: str | Path, db: str | None = None, options: IndexOptions | None = None):
        self.repo = str(repo)
        self.db = db
        self.options = options or IndexOptions()

    def full_rebuild(self) -> UpdateResult:
        return UpdateResult.of(index(self.repo, self.db, self.options, full=True))

    def incremental_update(self) -> UpdateResult:
        return UpdateResult.of(index(self.repo, self.db, self.options))
