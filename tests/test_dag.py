from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import pytest

from codegraph import dag


@dataclass
class FakeStage:
    name: str
    depends_on: tuple[str, ...] = ()
    fail: bool = False
    log: list[str] = field(default_factory=list)
    barrier: threading.Barrier | None = None

    def run(self, ctx: Any) -> dict[str, Any]:
        if self.barrier is not None:
            # Both stages of a phase must be inside run() at once, or this times out.
            self.barrier.wait(timeout=5)
        self.log.append(self.name)
        if self.fail:
            raise RuntimeError(f"{self.name} broke")
        return {"ran": self.name}


def test_plan_orders_the_seed_pipeline_into_three_phases() -> None:
    stages = [
        FakeStage("L4", ("L2",)),
        FakeStage("L2", ("L1", "L3")),
        FakeStage("L1"),
        FakeStage("L3"),
    ]
    phases = [[s.name for s in phase] for phase in dag.plan(stages)]
    assert phases == [["L1", "L3"], ["L2"], ["L4"]]


def test_cycle_is_rejected_with_the_stages_named() -> None:
    with pytest.raises(dag.CycleError, match="a -> b"):
        dag.plan([FakeStage("a", ("b",)), FakeStage("b", ("a",)), FakeStage("c")])


def test_missing_dependency_is_rejected() -> None:
    with pytest.raises(dag.MissingDependencyError, match="'x' depends on 'nope'"):
        dag.plan([FakeStage("x", ("nope",))])


def test_duplicate_stage_names_are_rejected() -> None:
    with pytest.raises(dag.DagError, match="two stages"):
        dag.plan([FakeStage("x"), FakeStage("x")])


def test_independent_stages_run_concurrently() -> None:
    barrier = threading.Barrier(2)
    log: list[str] = []
    run = dag.execute(
        [FakeStage("L1", log=log, barrier=barrier), FakeStage("L3", log=log, barrier=barrier),
         FakeStage("L2", ("L1", "L3"), log=log)],
        ctx=None,
    )
    assert run.ok, run.first_error()
    assert sorted(log[:2]) == ["L1", "L3"] and log[2] == "L2"
    assert [o.counters["ran"] for o in run.outcomes] == ["L1", "L3", "L2"]


def test_a_failing_stage_stops_the_run_before_the_next_phase() -> None:
    log: list[str] = []
    run = dag.execute(
        [FakeStage("L1", fail=True, log=log), FakeStage("L3", log=log),
         FakeStage("L2", ("L1", "L3"), log=log), FakeStage("L4", ("L2",), log=log)],
        ctx=None,
    )
    status = {o.name: o.status for o in run.outcomes}
    assert status == {"L1": "failed", "L3": "completed", "L2": "skipped", "L4": "skipped"}
    assert "L2" not in log and "L4" not in log
    assert not run.ok and "L1 broke" in str(run.first_error())


def test_a_cancelled_run_skips_what_has_not_started() -> None:
    cancel = threading.Event()
    cancel.set()
    run = dag.execute([FakeStage("a"), FakeStage("b", ("a",))], None, cancel)
    assert [o.status for o in run.outcomes] == ["skipped", "skipped"]
