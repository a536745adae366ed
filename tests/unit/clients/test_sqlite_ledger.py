"""The node privacy ledger: check, reserve, release, commit - and refuse, never warn."""

from __future__ import annotations

import multiprocessing
import queue
import sqlite3
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest

from clients.ledger.ledger import DuplicateRelease, EntryStatus, Ledger, Requester, Scope, ScopeKind
from clients.ledger.sqlite_ledger import SqliteLedger
from vocab.accounting import epsilon_spent
from vocab.errors import (
    BudgetExceeded,
    ConfigError,
    InternalError,
    JobSpecError,
    PolicyRefusal,
    RefusalCode,
)
from vocab.privacy import Budget, DpSgdEvent

DELTA = 1e-5
ROUND_EVENT = DpSgdEvent(noise_multiplier=1.0, sample_rate=0.01, steps=200)
OTHER_EVENT = DpSgdEvent(noise_multiplier=2.0, sample_rate=0.05, steps=300)


class LedgerContract:
    """Behaviour every Ledger must have; subclass per implementation with `make`."""

    def make(self, tmp_path: Path, budget: Budget, dataset: str = "lending") -> Ledger:
        raise NotImplementedError

    def test_fresh_ledger_has_spent_nothing(self, tmp_path: Path) -> None:
        ledger = self.make(tmp_path, Budget(3.0, DELTA))
        assert ledger.spent() == 0.0
        assert ledger.remaining() == 3.0
        assert ledger.budget() == Budget(3.0, DELTA)
        assert ledger.history() == []

    def test_reserve_then_commit(self, tmp_path: Path) -> None:
        ledger = self.make(tmp_path, Budget(3.0, DELTA))
        reservation = ledger.reserve("job-1", 0, ROUND_EVENT)
        assert (reservation.job_id, reservation.round, reservation.event) == (
            "job-1",
            0,
            ROUND_EVENT,
        )
        ledger.commit(reservation)
        (entry,) = ledger.history()
        assert entry.entry_id == reservation.entry_id
        assert entry.status is EntryStatus.COMMITTED
        assert (entry.dataset, entry.job_id, entry.round) == ("lending", "job-1", 0)
        assert entry.event == ROUND_EVENT
        assert entry.created_at.tzinfo == UTC
        assert entry.updated_at >= entry.created_at
        expected = epsilon_spent([ROUND_EVENT], DELTA)
        assert ledger.spent() == expected
        assert ledger.job_epsilon("job-1") == expected
        assert ledger.remaining() == pytest.approx(3.0 - expected)

    def test_cancelled_entries_do_not_count(self, tmp_path: Path) -> None:
        ledger = self.make(tmp_path, Budget(3.0, DELTA))
        ledger.cancel(ledger.reserve("job-1", 0, ROUND_EVENT))
        assert ledger.spent() == 0.0
        assert ledger.job_epsilon("job-1") == 0.0
        assert [e.status for e in ledger.history()] == [EntryStatus.CANCELLED]
        # Nothing was released, so the round may be answered after all.
        ledger.commit(ledger.reserve("job-1", 0, ROUND_EVENT))
        assert ledger.spent() == epsilon_spent([ROUND_EVENT], DELTA)

    def test_unresolved_reservation_counts_as_spent(self, tmp_path: Path) -> None:
        # A node that crashes between reserve and commit may have released: it stays charged.
        ledger = self.make(tmp_path, Budget(3.0, DELTA))
        ledger.reserve("job-1", 0, ROUND_EVENT)
        assert ledger.spent() == epsilon_spent([ROUND_EVENT], DELTA)
        assert self.make(tmp_path, Budget(3.0, DELTA)).spent() == ledger.spent()

    @pytest.mark.parametrize("first", ["commit", "cancel"])
    @pytest.mark.parametrize("second", ["commit", "cancel"])
    def test_resolving_twice_is_a_bug(self, tmp_path: Path, first: str, second: str) -> None:
        ledger = self.make(tmp_path, Budget(3.0, DELTA))
        reservation = ledger.reserve("job-1", 0, ROUND_EVENT)
        getattr(ledger, first)(reservation)
        with pytest.raises(InternalError, match="bug: cannot mark reservation"):
            getattr(ledger, second)(reservation)

    def test_over_budget_is_refused_with_the_amounts(self, tmp_path: Path) -> None:
        cost = epsilon_spent([ROUND_EVENT], DELTA)
        ledger = self.make(tmp_path, Budget(cost * 0.9, DELTA))
        with pytest.raises(BudgetExceeded) as refused:
            ledger.reserve("job-1", 3, ROUND_EVENT)
        err = refused.value
        assert err.code is RefusalCode.BUDGET_EXCEEDED
        assert err.requested == cost
        assert err.spent == 0.0
        assert err.remaining == pytest.approx(cost * 0.9)
        assert err.budget == pytest.approx(cost * 0.9)
        assert "job 'job-1' round 3" in str(err)
        assert ledger.history() == []

    def test_refusal_counts_what_was_already_spent(self, tmp_path: Path) -> None:
        one = epsilon_spent([ROUND_EVENT], DELTA)
        two = epsilon_spent([ROUND_EVENT, ROUND_EVENT], DELTA)
        ledger = self.make(tmp_path, Budget((one + two) / 2, DELTA))
        ledger.commit(ledger.reserve("job-1", 0, ROUND_EVENT))
        with pytest.raises(BudgetExceeded) as refused:
            ledger.reserve("job-1", 1, ROUND_EVENT)
        err = refused.value
        assert (err.requested, err.spent) == (one, one)
        assert err.remaining == pytest.approx((one + two) / 2 - one)
        assert err.requested < err.remaining + err.spent  # alone it fits; composed it does not
        assert len(ledger.history()) == 1

    def test_quote_changes_nothing(self, tmp_path: Path) -> None:
        ledger = self.make(tmp_path, Budget(2.0, DELTA))
        ledger.commit(ledger.reserve("job-1", 0, ROUND_EVENT))
        before = ledger.history()
        quote = ledger.quote([OTHER_EVENT, OTHER_EVENT])
        assert quote.requested == epsilon_spent([OTHER_EVENT, OTHER_EVENT], DELTA)
        (total,) = quote.scopes
        assert total.scope == f"period {ledger.period()}"
        assert total.spent == epsilon_spent([ROUND_EVENT], DELTA)
        assert total.spent_after == epsilon_spent([ROUND_EVENT, OTHER_EVENT, OTHER_EVENT], DELTA)
        assert total.remaining == pytest.approx(2.0 - total.spent)
        assert (total.epsilon, total.delta) == (2.0, DELTA)
        assert quote.fits is (total.spent_after <= 2.0)
        assert ledger.history() == before

    def test_quote_says_when_it_does_not_fit(self, tmp_path: Path) -> None:
        ledger = self.make(tmp_path, Budget(0.5, DELTA))
        quote = ledger.quote([ROUND_EVENT] * 5)
        assert not quote.fits
        assert quote.binding.spent_after > 0.5
        assert ledger.quote([]).binding.spent_after == 0.0

    def test_two_jobs_compose_by_rdp(self, tmp_path: Path) -> None:
        ledger = self.make(tmp_path, Budget(10.0, DELTA))
        for rnd in range(3):
            ledger.commit(ledger.reserve("job-a", rnd, ROUND_EVENT))
        for rnd in range(2):
            ledger.commit(ledger.reserve("job-b", rnd, OTHER_EVENT))
        a, b = ledger.job_epsilon("job-a"), ledger.job_epsilon("job-b")
        assert a == epsilon_spent([ROUND_EVENT] * 3, DELTA)
        assert b == epsilon_spent([OTHER_EVENT] * 2, DELTA)
        spent = ledger.spent()
        assert spent == epsilon_spent([ROUND_EVENT] * 3 + [OTHER_EVENT] * 2, DELTA)
        assert max(a, b) <= spent < a + b

    def test_duplicate_round_is_refused(self, tmp_path: Path) -> None:
        ledger = self.make(tmp_path, Budget(10.0, DELTA))
        reservation = ledger.reserve("job-1", 4, ROUND_EVENT)
        for resolve in (None, ledger.commit):
            if resolve is not None:
                resolve(reservation)
            with pytest.raises(DuplicateRelease) as refused:
                ledger.reserve("job-1", 4, ROUND_EVENT)
            assert refused.value.code is RefusalCode.POLICY
            assert "already answered" in str(refused.value)
            assert "no second release" in str(refused.value)
        assert len(ledger.history()) == 1
        ledger.reserve("job-2", 4, ROUND_EVENT)  # another job's round 4 is its own

    def test_duplicate_is_reported_even_without_budget(self, tmp_path: Path) -> None:
        cost = epsilon_spent([ROUND_EVENT], DELTA)
        ledger = self.make(tmp_path, Budget(cost * 1.01, DELTA))
        ledger.commit(ledger.reserve("job-1", 0, ROUND_EVENT))
        with pytest.raises(DuplicateRelease):
            ledger.reserve("job-1", 0, ROUND_EVENT)

    @pytest.mark.parametrize(("job_id", "rnd"), [("", 0), ("job", -1), ("job", True)])
    def test_malformed_job_or_round_is_refused(self, tmp_path: Path, job_id: str, rnd: int) -> None:
        ledger = self.make(tmp_path, Budget(3.0, DELTA))
        with pytest.raises(JobSpecError):
            ledger.reserve(job_id, rnd, ROUND_EVENT)

    def test_spent_is_recomputed_at_the_budget_delta(self, tmp_path: Path) -> None:
        ledger = self.make(tmp_path, Budget(5.0, 1e-8))
        ledger.commit(ledger.reserve("job-1", 0, ROUND_EVENT))
        assert ledger.spent() == epsilon_spent([ROUND_EVENT], 1e-8)
        assert ledger.spent() > epsilon_spent([ROUND_EVENT], DELTA)


class TestSqliteLedger(LedgerContract):
    def make(self, tmp_path: Path, budget: Budget, dataset: str = "lending") -> Ledger:
        return SqliteLedger(tmp_path / "node" / "ledger.sqlite", dataset, budget)

    def test_creates_parent_directories_and_uses_wal(self, tmp_path: Path) -> None:
        path = tmp_path / "a" / "b" / "ledger.sqlite"
        SqliteLedger(path, "lending", Budget(1.0, DELTA))
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"

    def test_state_survives_a_restart(self, tmp_path: Path) -> None:
        first = self.make(tmp_path, Budget(5.0, DELTA))
        first.commit(first.reserve("job-1", 0, ROUND_EVENT))
        first.reserve("job-1", 1, OTHER_EVENT)
        del first
        again = self.make(tmp_path, Budget(5.0, DELTA))
        assert again.spent() == epsilon_spent([ROUND_EVENT, OTHER_EVENT], DELTA)
        assert [e.status for e in again.history()] == [
            EntryStatus.COMMITTED,
            EntryStatus.RESERVED,
        ]
        with pytest.raises(DuplicateRelease):
            again.reserve("job-1", 1, OTHER_EVENT)

    def test_budget_change_is_recorded(self, tmp_path: Path) -> None:
        self.make(tmp_path, Budget(1.0, DELTA))
        ledger = self.make(tmp_path, Budget(2.0, 1e-6))
        assert ledger.budget() == Budget(2.0, 1e-6)
        self.make(tmp_path, Budget(2.0, 1e-6))  # same budget again: no new change
        first, change = ledger.budget_changes()
        assert (first.old, first.new, first.source) == (None, Budget(1.0, DELTA), "config")
        assert (change.dataset, change.old, change.new, change.source) == (
            "lending",
            Budget(1.0, DELTA),
            Budget(2.0, 1e-6),
            "config",
        )
        assert change.scope == Scope(ScopeKind.PERIOD, ledger.period())
        assert change.changed_at.tzinfo == UTC

    def test_datasets_in_one_file_are_separate(self, tmp_path: Path) -> None:
        lending = self.make(tmp_path, Budget(3.0, DELTA), dataset="lending")
        housing = self.make(tmp_path, Budget(2.0, 1e-6), dataset="housing")
        lending.commit(lending.reserve("job-1", 0, ROUND_EVENT))
        assert housing.spent() == 0.0
        assert housing.history() == []
        assert housing.budget() == Budget(2.0, 1e-6)
        housing.reserve("job-1", 0, ROUND_EVENT)  # same job and round, other dataset
        assert [c.dataset for c in lending.budget_changes()] == ["lending"]
        assert [c.dataset for c in housing.budget_changes()] == ["housing"]

    def test_empty_dataset_name_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="dataset"):
            self.make(tmp_path, Budget(1.0, DELTA), dataset=" ")

    def test_newer_schema_is_refused(self, tmp_path: Path) -> None:
        path = tmp_path / "node" / "ledger.sqlite"
        self.make(tmp_path, Budget(1.0, DELTA))
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA user_version = 99")
        with pytest.raises(ConfigError, match="schema version 99"):
            self.make(tmp_path, Budget(1.0, DELTA))

    def test_processes_racing_for_the_last_budget_exactly_one_wins(self, tmp_path: Path) -> None:
        one = epsilon_spent([ROUND_EVENT], DELTA)
        two = epsilon_spent([ROUND_EVENT, ROUND_EVENT], DELTA)
        budget = Budget((one + two) / 2, DELTA)  # room for one release, not two
        path = tmp_path / "node" / "ledger.sqlite"
        SqliteLedger(path, "lending", budget)

        ctx = multiprocessing.get_context("spawn")
        racers = 4
        barrier = ctx.Barrier(racers)
        results: Any = ctx.Queue()
        procs = [
            ctx.Process(target=_race, args=(path, budget, f"job-{i}", barrier, results))
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
        (entry,) = SqliteLedger(path, "lending", budget).history()
        winner = next(job for o, job in outcomes if o == "reserved")
        assert entry.job_id == winner


def _race(path: Path, budget: Budget, job_id: str, barrier: Any, results: Any) -> None:
    """One node process trying to reserve a round; runs in a spawned child."""
    ledger = SqliteLedger(path, "lending", budget)
    barrier.wait(timeout=200)
    try:
        ledger.reserve(job_id, 0, ROUND_EVENT)
    except BudgetExceeded:
        results.put(("refused", job_id))
    except Exception as exc:  # reported to the parent, which fails the test
        results.put((f"error: {exc!r}", job_id))
    else:
        results.put(("reserved", job_id))


THREE = Budget(3.0, DELTA)


def _ledger(tmp_path: Path, budget: Budget = THREE) -> SqliteLedger:
    return SqliteLedger(tmp_path / "node" / "ledger.sqlite", "lending", budget, "2026")


class TestScopes:
    def test_purpose_sub_budget_refuses_its_purpose_only(self, tmp_path: Path) -> None:
        ledger = _ledger(tmp_path)
        one = epsilon_spent([ROUND_EVENT], DELTA)
        ledger.set_budget(Scope(ScopeKind.PURPOSE, "fraud"), Budget(one * 1.05, DELTA))
        fraud = Requester(purpose="fraud")
        ledger.commit(ledger.reserve("job-1", 0, ROUND_EVENT, fraud))
        with pytest.raises(BudgetExceeded) as refused:
            ledger.reserve("job-1", 1, ROUND_EVENT, fraud)
        assert "budget: purpose fraud" in str(refused.value)
        assert refused.value.budget == pytest.approx(one * 1.05)
        # Another purpose draws on the period total only, which still has room.
        ledger.commit(ledger.reserve("job-2", 0, ROUND_EVENT, Requester(purpose="planning")))
        assert ledger.spent(Scope(ScopeKind.PURPOSE, "fraud")) == one
        assert ledger.spent() == epsilon_spent([ROUND_EVENT] * 2, DELTA)

    def test_analyst_cap_and_quote_lists_every_scope(self, tmp_path: Path) -> None:
        ledger = _ledger(tmp_path)
        ledger.set_budget(Scope(ScopeKind.ANALYST, "r.ahmed"), Budget(0.5, DELTA))
        ledger.set_budget(Scope(ScopeKind.PURPOSE, "fraud"), Budget(2.0, DELTA))
        quote = ledger.quote([ROUND_EVENT] * 3, Requester("fraud", "r.ahmed"))
        assert [s.scope for s in quote.scopes] == [
            "period 2026",
            "purpose fraud",
            "analyst r.ahmed",
        ]
        assert not quote.fits
        assert quote.binding.scope == "analyst r.ahmed"
        assert "budget: analyst r.ahmed" in str(quote.refusal("the job"))
        assert ledger.quote([ROUND_EVENT], Requester(analyst="someone-else")).fits

    def test_sub_budget_is_accounted_at_its_own_delta(self, tmp_path: Path) -> None:
        ledger = _ledger(tmp_path)
        ledger.set_budget(Scope(ScopeKind.PURPOSE, "fraud"), Budget(2.5, 1e-8))
        ledger.commit(ledger.reserve("job-1", 0, ROUND_EVENT, Requester("fraud")))
        assert ledger.spent(Scope(ScopeKind.PURPOSE, "fraud")) == epsilon_spent([ROUND_EVENT], 1e-8)

    def test_statistics_and_dp_sgd_compose_in_one_accountant(self, tmp_path: Path) -> None:
        from vocab.privacy import GaussianEvent, LaplaceEvent

        ledger = _ledger(tmp_path, Budget(10.0, DELTA))
        events = [ROUND_EVENT, GaussianEvent(5.0, count=4), LaplaceEvent(4.0, count=2)]
        for rnd, event in enumerate(events):
            ledger.commit(ledger.reserve("mixed", rnd, event))
        assert ledger.spent() == epsilon_spent(events, DELTA)
        assert [e.event for e in ledger.history()] == events


class TestPeriods:
    def test_new_period_starts_fresh_but_lifetime_keeps_counting(self, tmp_path: Path) -> None:
        ledger = _ledger(tmp_path)
        ledger.commit(ledger.reserve("job-1", 0, ROUND_EVENT))
        assert ledger.period() == "2026"
        ledger.open_period("2027", Budget(2.0, DELTA))
        assert ledger.period() == "2027"
        assert ledger.budget() == Budget(2.0, DELTA)
        assert ledger.spent() == 0.0
        ledger.commit(ledger.reserve("job-2", 0, ROUND_EVENT))
        assert ledger.spent() == epsilon_spent([ROUND_EVENT], DELTA)
        assert ledger.lifetime_spent() == epsilon_spent([ROUND_EVENT] * 2, DELTA)
        assert [e.period for e in ledger.history()] == ["2026", "2027"]

    def test_periods_never_reopen(self, tmp_path: Path) -> None:
        ledger = _ledger(tmp_path)
        with pytest.raises(ConfigError, match="already had a period named '2026'"):
            ledger.open_period("2026", Budget(9.0, DELTA))
        with pytest.raises(ConfigError, match="not the current period"):
            ledger.set_budget(Scope(ScopeKind.PERIOD, "1999"), Budget(9.0, DELTA))

    def test_officer_budget_survives_restart_until_the_config_changes(self, tmp_path: Path) -> None:
        ledger = _ledger(tmp_path)
        ledger.set_budget(Scope(ScopeKind.PERIOD, "2026"), Budget(1.5, DELTA))
        assert _ledger(tmp_path).budget() == Budget(1.5, DELTA)  # config unchanged: kept
        assert _ledger(tmp_path, Budget(4.0, DELTA)).budget() == Budget(4.0, DELTA)
        sources = [(c.source, c.new.epsilon) for c in ledger.budget_changes()]
        assert sources == [("config", 3.0), ("officer", 1.5), ("config", 4.0)]


class TestIdempotentRounds:
    def test_committed_round_keeps_its_reply(self, tmp_path: Path) -> None:
        ledger = _ledger(tmp_path)
        ledger.commit(ledger.reserve("job-1", 0, ROUND_EVENT), b"reply-bytes")
        assert ledger.stored_reply("job-1", 0) == b"reply-bytes"
        assert ledger.stored_reply("job-1", 1) is None
        with pytest.raises(DuplicateRelease, match="committed"):
            ledger.reserve("job-1", 0, ROUND_EVENT)

    def test_reservation_of_a_dead_process_is_resumed_not_recharged(self, tmp_path: Path) -> None:
        ledger = _ledger(tmp_path)
        _reserve_in_a_process_that_dies(ledger.path, ROUND_EVENT)
        spent = ledger.spent()
        assert spent == epsilon_spent([ROUND_EVENT], DELTA)  # the crash did not lose it
        resumed = ledger.reserve("job-1", 0, ROUND_EVENT)
        assert resumed.resumed
        ledger.commit(resumed)
        assert ledger.spent() == spent
        assert [e.status for e in ledger.history()] == [EntryStatus.COMMITTED]

    def test_dead_reservation_with_other_parameters_stays_charged(self, tmp_path: Path) -> None:
        ledger = _ledger(tmp_path)
        _reserve_in_a_process_that_dies(ledger.path, ROUND_EVENT)
        with pytest.raises(DuplicateRelease, match="other parameters"):
            ledger.reserve("job-1", 0, OTHER_EVENT)
        assert ledger.spent() == epsilon_spent([ROUND_EVENT], DELTA)


def _reserve_and_exit(path: Path, event: DpSgdEvent) -> None:
    SqliteLedger(path, "lending", Budget(3.0, DELTA), "2026").reserve("job-1", 0, event)
    import os

    os._exit(0)  # gone without committing or cancelling, as after a kill


def _reserve_in_a_process_that_dies(path: Path, event: DpSgdEvent) -> None:
    proc = multiprocessing.get_context("spawn").Process(
        target=_reserve_and_exit, args=(path, event)
    )
    proc.start()
    proc.join(timeout=120)
    assert proc.exitcode == 0


def test_schema_1_ledger_is_migrated_with_every_release(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript(
            """
            CREATE TABLE budgets (dataset TEXT PRIMARY KEY, epsilon REAL, delta REAL,
                                  updated_at TEXT);
            CREATE TABLE budget_changes (id INTEGER PRIMARY KEY, dataset TEXT,
                old_epsilon REAL, old_delta REAL, new_epsilon REAL, new_delta REAL,
                changed_at TEXT);
            CREATE TABLE entries (id INTEGER PRIMARY KEY, dataset TEXT, job_id TEXT,
                round INTEGER, noise_multiplier REAL, sample_rate REAL, steps INTEGER,
                status TEXT, created_at TEXT, updated_at TEXT);
            INSERT INTO budgets VALUES ('lending', 2.0, 1e-5, '2026-01-01T00:00:00+00:00');
            INSERT INTO budget_changes VALUES (1, 'lending', 1.0, 1e-5, 2.0, 1e-5,
                                               '2026-01-01T00:00:00+00:00');
            INSERT INTO entries VALUES (7, 'lending', 'job-1', 0, 1.0, 0.01, 200, 'committed',
                '2026-01-02T00:00:00+00:00', '2026-01-02T00:00:00+00:00');
            INSERT INTO entries VALUES (8, 'lending', 'job-1', 1, 1.0, 0.01, 200, 'reserved',
                '2026-01-02T00:00:00+00:00', '2026-01-02T00:00:00+00:00');
            PRAGMA user_version = 1;
            """
        )
    ledger = SqliteLedger(path, "lending", Budget(2.0, 1e-5))
    assert ledger.period() == "initial"
    assert ledger.budget() == Budget(2.0, 1e-5)
    assert [(e.entry_id, e.status, e.event) for e in ledger.history()] == [
        (7, EntryStatus.COMMITTED, ROUND_EVENT),
        (8, EntryStatus.RESERVED, ROUND_EVENT),
    ]
    assert ledger.spent() == epsilon_spent([ROUND_EVENT] * 2, 1e-5)
    assert [(c.old, c.new) for c in ledger.budget_changes()] == [
        (Budget(1.0, 1e-5), Budget(2.0, 1e-5))
    ]


class TestReviewHardening:
    def test_a_retry_with_another_spec_is_neither_resumed_nor_answered(
        self, tmp_path: Path
    ) -> None:
        ledger = _ledger(tmp_path)
        ledger.commit(ledger.reserve("job-1", 0, ROUND_EVENT, fingerprint="spec-a"), b"reply")
        assert ledger.stored_reply("job-1", 0, "spec-a") == b"reply"
        with pytest.raises(DuplicateRelease, match="different job spec"):
            ledger.stored_reply("job-1", 0, "spec-b")

    def test_purposes_and_analysts_match_however_they_are_written(self, tmp_path: Path) -> None:
        ledger = _ledger(tmp_path)
        ledger.set_budget(Scope(ScopeKind.PURPOSE, "Fraud  Screening"), Budget(0.5, DELTA))
        quote = ledger.quote([ROUND_EVENT], Requester(purpose=" fraud screening "))
        assert [s.scope for s in quote.scopes][1:] == ["purpose fraud screening"]
        assert not quote.fits

    def test_a_job_naming_no_analyst_is_refused_once_analysts_are_capped(
        self, tmp_path: Path
    ) -> None:
        from vocab.errors import PolicyRefusal

        ledger = _ledger(tmp_path)
        ledger.set_budget(Scope(ScopeKind.ANALYST, "alice"), Budget(2.0, DELTA))
        with pytest.raises(PolicyRefusal, match="names no analyst"):
            ledger.reserve("job-1", 0, ROUND_EVENT)
        ledger.reserve("job-1", 0, ROUND_EVENT, Requester(analyst="ALICE"))
        assert ledger.spent(Scope(ScopeKind.ANALYST, "alice")) > 0

    def test_sub_budgets_carry_into_a_new_period(self, tmp_path: Path) -> None:
        ledger = _ledger(tmp_path)
        ledger.set_budget(Scope(ScopeKind.PURPOSE, "fraud"), Budget(0.5, DELTA))
        ledger.open_period("2027", Budget(2.0, DELTA))
        assert {b.scope.label: b.budget.epsilon for b in ledger.budgets()} == {
            "period 2027": 2.0,
            "purpose fraud": 0.5,
        }
        assert ledger.budget_changes()[-1].source == "carried into 2027"

    def test_config_edits_are_reported_for_the_audit_log(self, tmp_path: Path) -> None:
        first = _ledger(tmp_path)
        assert first.config_change is not None and first.config_change.old is None
        assert _ledger(tmp_path).config_change is None  # unchanged config: nothing new
        edited = _ledger(tmp_path, Budget(4.0, DELTA))
        assert edited.config_change is not None
        assert (edited.config_change.old, edited.config_change.new) == (THREE, Budget(4.0, DELTA))

    def test_a_committed_round_drops_its_lock_file(self, tmp_path: Path) -> None:
        ledger = _ledger(tmp_path)
        locks = ledger.path.with_name(ledger.path.name + ".locks")
        reservation = ledger.reserve("job-1", 0, ROUND_EVENT)
        assert len(list(locks.iterdir())) == 1
        ledger.commit(reservation)
        assert list(locks.iterdir()) == []
        assert [e.status for e in ledger.history()] == [EntryStatus.COMMITTED]
        assert ledger.job_events("job-1") == [ROUND_EVENT]


def test_a_pure_dp_budget_says_why_gaussian_releases_never_fit(tmp_path: Path) -> None:
    from vocab.privacy import LaplaceEvent

    ledger = SqliteLedger(tmp_path / "l.sqlite", "lending", Budget(1.0, 0.0), "2026")
    with pytest.raises(BudgetExceeded, match="only Laplace releases fit"):
        ledger.reserve("job-1", 0, ROUND_EVENT)
    ledger.commit(ledger.reserve("job-1", 1, LaplaceEvent(scale=2.0)))
    assert 0.5 <= ledger.spent() <= 0.5 * (1 + 1e-5)  # pure epsilon, rounded up


def test_a_job_id_names_one_spec(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    ledger.commit(ledger.reserve("job-1", 1, ROUND_EVENT, fingerprint="spec-a"))
    with pytest.raises(PolicyRefusal, match="under another job spec"):
        ledger.reserve("job-1", 2, ROUND_EVENT, fingerprint="spec-b")
    assert len(ledger.history()) == 1


def test_the_jobs_own_epsilon_is_checked_inside_the_reservation(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    one = epsilon_spent([ROUND_EVENT], DELTA)
    two = epsilon_spent([ROUND_EVENT] * 2, DELTA)
    job = Budget((one + two) / 2, DELTA)  # room for one release, not two
    ledger.reserve("job-1", 1, ROUND_EVENT, job_budget=job)
    with pytest.raises(PolicyRefusal, match="above the job's own epsilon"):
        ledger.reserve("job-1", 2, ROUND_EVENT, job_budget=job)
    assert [e.round for e in ledger.history()] == [1]
