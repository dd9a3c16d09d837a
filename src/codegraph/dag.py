"""The stage DAG: declared dependencies -> topological phases -> concurrent execution.

Knows nothing about what stages do. A stage declares its name and the names it depends on; the
executor runs the stages of one phase on threads at once (they release the GIL in C code or farm
work out to processes) and stops before the next phase when any stage failed.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol


class StageStatus(StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"  # not run: an earlier stage failed or the run was cancelled
    CANCELLED = "cancelled"


class Stage(Protocol):
    name: str
    depends_on: tuple[str, ...]

    def run(self, ctx: Any) -> dict[str, Any]:
        """Do the work; return counters for the result. Raise to fail the stage."""
        ...


class DagError(ValueError):
    """The declared stages do not form a DAG."""


class CycleError(DagError):
    pass


class MissingDependencyError(DagError):
    pass


class StageCancelled(Exception):
    """Raised by a stage that saw the cancel event between two batches."""


@dataclass
class StageOutcome:
    name: str
    status: StageStatus
    duration_ms: float = 0.0
    counters: dict[str, Any] = field(default_factory=dict)
    error: BaseException | None = None
    started_at: float = 0.0
    finished_at: float = 0.0


def plan(stages: Sequence[Stage]) -> list[list[Stage]]:
    """Phases in dependency order (Kahn's algorithm); within a phase, declaration order."""
    by_name: dict[str, Stage] = {}
    for stage in stages:
        if stage.name in by_name:
            raise DagError(f"two stages are named {stage.name!r}")
        by_name[stage.name] = stage
    for stage in stages:
        for dep in stage.depends_on:
            if dep not in by_name:
                raise MissingDependencyError(
                    f"stage {stage.name!r} depends on {dep!r}, which is not in the pipeline"
                )
    remaining = {s.name: set(s.depends_on) for s in stages}
    phases: list[list[Stage]] = []
    done: set[str] = set()
    while remaining:
        ready = [s for s in stages if s.name in remaining and remaining[s.name] <= done]
        if not ready:
            cycle = " -> ".join(sorted(remaining))
            raise CycleError(f"stages depend on each other in a cycle: {cycle}")
        phases.append(ready)
        for s in ready:
            del remaining[s.name]
            done.add(s.name)
    return phases


@dataclass
class DagRun:
    outcomes: list[StageOutcome]

    @property
    def ok(self) -> bool:
        return all(o.status == StageStatus.COMPLETED for o in self.outcomes)

    def first_error(self) -> BaseException | None:
        return next((o.error for o in self.outcomes if o.error is not None), None)


def execute(
    stages: Sequence[Stage],
    ctx: Any,
    cancel: threading.Event | None = None,
    on_stage: Callable[[str, StageStatus | None], None] | None = None,
    concurrent: bool = True,
) -> DagRun:
    """Run every phase; a failure or cancellation stops the run before the next phase.

    `concurrent=False` runs a phase's stages one after another: for a few files' work the
    threads only contend for the GIL (and each other's locks) and finish later than in turn."""
    phases = plan(stages)
    cancel = cancel or threading.Event()
    outcomes: dict[str, StageOutcome] = {}
    stopped = False

    def run_one(stage: Stage) -> StageOutcome:
        if on_stage is not None:
            on_stage(stage.name, None)
        started = time.time()
        t0 = time.perf_counter()
        try:
            counters = stage.run(ctx) or {}
            status, error = StageStatus.COMPLETED, None
        except StageCancelled as exc:
            counters, status, error = {}, StageStatus.CANCELLED, exc
        except BaseException as exc:  # a stage failing must not take the executor down
            counters, status, error = {}, StageStatus.FAILED, exc
            exc.__notes__ = [*getattr(exc, "__notes__", []), traceback.format_exc()]
        outcome = StageOutcome(
            stage.name, status, (time.perf_counter() - t0) * 1000, counters, error, started, time.time()
        )
        if on_stage is not None:
            on_stage(stage.name, status)
        return outcome

    widest = max((len(p) for p in phases), default=1)
    with ThreadPoolExecutor(max_workers=widest if concurrent else 1) as pool:
        for phase in phases:
            if stopped or cancel.is_set():
                for stage in phase:
                    outcomes[stage.name] = StageOutcome(stage.name, StageStatus.SKIPPED)
                continue
            futures = [pool.submit(run_one, stage) for stage in phase]
            for future in as_completed(futures):
                outcome = future.result()
                outcomes[outcome.name] = outcome
                if outcome.status != StageStatus.COMPLETED:
                    stopped = True
                    cancel.set()  # tell siblings still running in this phase to stop early
    return DagRun([outcomes[s.name] for p in phases for s in p])
