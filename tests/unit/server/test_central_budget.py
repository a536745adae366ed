"""Central caps: check, reserve, settle - refuse over a cap, and exactly one racer wins."""

from __future__ import annotations

import multiprocessing
import queue
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from server.central_budget.central_budget import (
    CapExceeded,
    CapKind,
    CentralBudget,
    ChargeStatus,
)
from server.central_budget.sqlite_central_budget import SqliteCentralBudget
from vocab.errors import BudgetExceeded, ConfigError, InternalError, RefusalCode


class CentralBudgetContract:
    """Behaviour every CentralBudget must have; subclass per implementation with `make`."""

    def make(self, tmp_path: Path) -> CentralBudget:
        raise NotImplementedError

    def test_fresh_budget_has_no_caps_and_no_charges(self, tmp_path: Path) -> None:
        budget = self.make(tmp_path)
        assert budget.caps() == []
        assert budget.standings() == []
        assert budget.history() == []
        assert budget.charges() == []

    def test_set_cap_records_every_change(self, tmp_path: Path) -> None:
        budget = self.make(tmp_path)
        first = budget.set_cap(CapKind.ANALYST, "r.ahmed", 5.0)
        second = budget.set_cap(CapKind.ANALYST, "r.ahmed", 3.0)
        budget.set_cap(CapKind.PROJECT, "fraud", 2.0)
        assert (first.old, first.new) == (None, 5.0)
        assert (second.old, second.new) == (5.0, 3.0)
        assert [(c.kind, c.key, c.epsilon) for c in budget.caps()] == [
            (CapKind.ANALYST, "r.ahmed", 3.0),
            (CapKind.PROJECT, "fraud", 2.0),
        ]
        assert [(c.key, c.old, c.new) for c in budget.history()] == [
            ("r.ahmed", None, 5.0),
            ("r.ahmed", 5.0, 3.0),
            ("fraud", None, 2.0),
        ]

    @pytest.mark.parametrize(
        ("key", "epsilon"),
        [("r.ahmed", float("nan")), ("r.ahmed", -1.0), ("r.ahmed", float("inf")),
         ("r.ahmed", True), ("", 1.0), ("bad name", 1.0), ("x" * 65, 1.0)],
    )  # fmt: skip
    def test_invalid_caps_are_refused(self, tmp_path: Path, key: str, epsilon: float) -> None:
        budget = self.make(tmp_path)
        with pytest.raises(ConfigError):
            budget.set_cap(CapKind.ANALYST, key, epsilon)
        assert budget.history() == []

    def test_reserve_within_the_cap_counts_the_full_epsilon(self, tmp_path: Path) -> None:
        budget = self.make(tmp_path)
        budget.set_cap(CapKind.ANALYST, "r.ahmed", 3.0)
        check = budget.reserve("j#1", "r.ahmed", "", 1.0)
        assert check.fits and check.requested == 1.0
        ((kind, key, cap, spent, after),) = [
            (c.kind, c.key, c.cap, c.spent, c.after) for c in check.checks
        ]
        assert (kind, key, cap, spent, after) == (CapKind.ANALYST, "r.ahmed", 3.0, 0.0, 1.0)
        (standing,) = budget.standings()
        assert (standing.reserved, standing.settled, standing.remaining) == (1.0, 0.0, 2.0)
        (charge,) = budget.charges()
        assert charge.status is ChargeStatus.RESERVED and charge.counted == 1.0

    def test_over_cap_is_refused_with_the_amounts_and_records_nothing(self, tmp_path: Path) -> None:
        budget = self.make(tmp_path)
        budget.set_cap(CapKind.ANALYST, "r.ahmed", 2.0)
        budget.reserve("j#1", "r.ahmed", "", 1.5)
        with pytest.raises(CapExceeded) as caught:
            budget.reserve("j#2", "r.ahmed", "", 1.0)
        err = caught.value
        assert isinstance(err, BudgetExceeded) and err.code is RefusalCode.BUDGET_EXCEEDED
        assert (err.requested, err.spent, err.remaining, err.budget) == (1.0, 1.5, 0.5, 2.0)
        # Composed figures: spent -> after, against the cap.
        assert err.after == 2.5
        assert str(err).startswith(
            "the central cap of analyst 'r.ahmed' would bring epsilon spent from 1.5000 to "
            "2.5000, above the cap 2.0000"
        )
        assert "central privacy officer" in err.hint
        assert [c.job_id for c in budget.charges()] == ["j#1"]

    def test_exact_fit_is_allowed_and_the_next_job_is_not(self, tmp_path: Path) -> None:
        budget = self.make(tmp_path)
        budget.set_cap(CapKind.PROJECT, "fraud", 1.0)
        budget.reserve("j#1", "", "fraud", 0.5)
        budget.reserve("j#2", "", "fraud", 0.5)
        with pytest.raises(CapExceeded):
            budget.reserve("j#3", "", "fraud", 1e-9)

    def test_zero_cap_stops_every_job(self, tmp_path: Path) -> None:
        budget = self.make(tmp_path)
        budget.set_cap(CapKind.ANALYST, "r.ahmed", 0.0)
        with pytest.raises(CapExceeded):
            budget.reserve("j#1", "r.ahmed", "", 0.01)

    def test_the_tighter_of_analyst_and_project_caps_refuses(self, tmp_path: Path) -> None:
        budget = self.make(tmp_path)
        budget.set_cap(CapKind.ANALYST, "r.ahmed", 10.0)
        budget.set_cap(CapKind.PROJECT, "fraud", 1.0)
        check = budget.check("r.ahmed", "fraud", 2.0)
        assert not check.fits
        assert [(c.kind, c.fits) for c in check.checks] == [
            (CapKind.ANALYST, True),
            (CapKind.PROJECT, False),
        ]
        with pytest.raises(CapExceeded, match="project 'fraud'"):
            budget.reserve("j#1", "r.ahmed", "fraud", 2.0)

    def test_jobs_without_analyst_or_project_meet_only_existing_caps(self, tmp_path: Path) -> None:
        budget = self.make(tmp_path)
        budget.set_cap(CapKind.ANALYST, "r.ahmed", 0.1)
        assert budget.reserve("j#1", "someone.else", "", 2.5).checks == ()
        assert budget.reserve("j#2", "someone.else", "", 2.5).checks == ()
        # Recorded all the same: a cap set later counts them.
        assert [c.job_id for c in budget.charges()] == ["j#1", "j#2"]
        budget.set_cap(CapKind.ANALYST, "someone.else", 6.0)
        with pytest.raises(CapExceeded, match=r"from 5\.0000 to 6\.5000"):
            budget.reserve("j#3", "someone.else", "", 1.5)

    def test_check_changes_nothing(self, tmp_path: Path) -> None:
        budget = self.make(tmp_path)
        budget.set_cap(CapKind.ANALYST, "r.ahmed", 1.0)
        assert not budget.check("r.ahmed", "", 2.0).fits
        assert budget.check("r.ahmed", "", 0.5).fits
        assert budget.charges() == []

    def test_settle_lowers_the_charge_to_what_nodes_charged(self, tmp_path: Path) -> None:
        budget = self.make(tmp_path)
        budget.set_cap(CapKind.ANALYST, "r.ahmed", 2.0)
        budget.reserve("j#1", "r.ahmed", "fraud", 1.5)
        charge = budget.settle("j#1", 0.4)
        assert (charge.status, charge.charged, charge.counted) == (ChargeStatus.SETTLED, 0.4, 0.4)
        assert charge.settled_at is not None
        analyst = next(s for s in budget.standings() if s.kind is CapKind.ANALYST)
        assert (analyst.reserved, analyst.settled, analyst.remaining) == (0.0, 0.4, 1.6)
        # The settled room is usable again.
        budget.reserve("j#2", "r.ahmed", "", 1.5)

    @pytest.mark.parametrize(
        ("reported", "settled"), [(9.0, 9.0), (-1.0, 0.0), (float("nan"), 1.0), (0.0, 0.0)]
    )
    def test_settle_records_what_nodes_charged_even_above_the_reservation(
        self, tmp_path: Path, reported: float, settled: float
    ) -> None:
        budget = self.make(tmp_path)
        budget.reserve("j#1", "r.ahmed", "", 1.0)
        assert budget.settle("j#1", reported).charged == settled

    def test_settling_twice_or_unknown_jobs_is_a_bug(self, tmp_path: Path) -> None:
        budget = self.make(tmp_path)
        budget.reserve("j#1", "r.ahmed", "", 1.0)
        budget.settle("j#1", 0.5)
        with pytest.raises(InternalError, match="twice"):
            budget.settle("j#1", 0.5)
        with pytest.raises(InternalError, match="never admitted"):
            budget.settle("j#9", 0.5)

    def test_admitting_a_job_twice_is_a_bug(self, tmp_path: Path) -> None:
        budget = self.make(tmp_path)
        budget.reserve("j#1", "r.ahmed", "", 1.0)
        for other in (("l.chen", "", 1.0), ("r.ahmed", "p", 1.0), ("r.ahmed", "", 2.0)):
            with pytest.raises(InternalError, match="admitted twice"):
                budget.reserve("j#1", *other)
        budget.settle("j#1", 1.0)
        with pytest.raises(InternalError, match="admitted twice"):
            budget.reserve("j#1", "r.ahmed", "", 1.0)  # settled: over

    def test_a_resumed_job_keeps_its_one_reservation(self, tmp_path: Path) -> None:
        budget = self.make(tmp_path)
        budget.set_cap(CapKind.ANALYST, "r.ahmed", 1.5)
        first = budget.reserve("j#1", "r.ahmed", "", 1.0)
        again = budget.reserve("j#1", "r.ahmed", "", 1.0)  # the coordinator died: resumed
        assert first.fits and again.fits  # not counted against itself
        assert [c.job_id for c in budget.charges()] == ["j#1"]
        (standing,) = [s for s in budget.standings() if s.key == "r.ahmed"]
        assert standing.spent == 1.0

    def test_standings_cover_uncapped_analysts_and_projects(self, tmp_path: Path) -> None:
        budget = self.make(tmp_path)
        budget.set_cap(CapKind.PROJECT, "fraud", 4.0)
        budget.reserve("j#1", "r.ahmed", "fraud", 1.0)
        budget.reserve("j#2", "l.chen", "", 2.0)
        budget.settle("j#2", 1.25)
        rows = {(s.kind, s.key): (s.cap, s.spent, s.remaining) for s in budget.standings()}
        assert rows == {
            (CapKind.ANALYST, "l.chen"): (None, 1.25, None),
            (CapKind.ANALYST, "r.ahmed"): (None, 1.0, None),
            (CapKind.PROJECT, "fraud"): (4.0, 1.0, 3.0),
        }


class TestSqliteCentralBudget(CentralBudgetContract):
    def make(self, tmp_path: Path) -> CentralBudget:
        return SqliteCentralBudget(tmp_path / "home" / "central_budget.sqlite")

    def test_state_survives_a_restart(self, tmp_path: Path) -> None:
        self.make(tmp_path).set_cap(CapKind.ANALYST, "r.ahmed", 2.0)
        self.make(tmp_path).reserve("j#1", "r.ahmed", "", 1.0)
        (standing,) = self.make(tmp_path).standings()
        assert (standing.cap, standing.spent) == (2.0, 1.0)

    def test_newer_schema_is_refused(self, tmp_path: Path) -> None:
        path = tmp_path / "home" / "central_budget.sqlite"
        self.make(tmp_path)
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA user_version = 99")
        with pytest.raises(ConfigError, match="schema version 99"):
            self.make(tmp_path)

    def test_processes_racing_for_the_last_of_a_cap_exactly_one_wins(self, tmp_path: Path) -> None:
        path = tmp_path / "home" / "central_budget.sqlite"
        SqliteCentralBudget(path).set_cap(CapKind.ANALYST, "r.ahmed", 1.5)  # room for one job
        ctx = multiprocessing.get_context("spawn")
        racers = 4
        barrier = ctx.Barrier(racers)
        results: Any = ctx.Queue()
        procs = [
            ctx.Process(target=_race, args=(path, f"j#{i}", barrier, results))
            for i in range(racers)
        ]
        for p in procs:
            p.start()
        outcomes = []
        try:
            for _ in range(racers):
                outcomes.append(results.get(timeout=240))
        except queue.Empty:
            pytest.fail(f"racers reported only {outcomes}")
        finally:
            for p in procs:
                p.join(timeout=60)
        assert sorted(o for o, _ in outcomes) == ["refused"] * (racers - 1) + ["reserved"]
        (charge,) = SqliteCentralBudget(path).charges()
        assert charge.job_id == next(job for o, job in outcomes if o == "reserved")


def _race(path: Path, job_id: str, barrier: Any, results: Any) -> None:
    """One ServerApp process admitting a job; runs in a spawned child."""
    budget = SqliteCentralBudget(path)
    barrier.wait(timeout=200)
    try:
        budget.reserve(job_id, "r.ahmed", "", 1.0)
    except CapExceeded:
        results.put(("refused", job_id))
    except Exception as exc:  # reported to the parent, which fails the test
        results.put((f"error: {exc!r}", job_id))
    else:
        results.put(("reserved", job_id))


def test_a_job_naming_no_analyst_is_refused_once_analysts_are_capped(tmp_path: Path) -> None:
    from server.central_budget.central_budget import UNNAMED

    budget = SqliteCentralBudget(tmp_path / "central.sqlite")
    assert budget.check("", "", 1.0).fits  # no caps at all: nothing to meet
    budget.set_cap(CapKind.ANALYST, "r.ahmed", 5.0)
    check = budget.check("", "", 1.0)
    assert not check.fits
    assert [(c.key, c.cap) for c in check.checks] == [(UNNAMED, 0.0)]
    assert "names no analyst" in str(check.refusal())
    budget.set_cap(CapKind.PROJECT, "fraud", 5.0)
    assert budget.check("r.ahmed", "", 1.0).fits  # naming no project is fine
