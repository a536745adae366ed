"""Attack: leave the DP-SGD values to the node and read its row count from what it chose.

A node that sized its default batch, steps or learning rate from its true row count would
print that count into everything the coordinator sees of a round: the sample rate, steps
and noise multiplier in its report, the size of its model update, the round's duration.
The defaults are chosen from public figures only (the officer's size bound, the spec), so
two departments with the same bound and different rows choose, and report, the same.
"""

from __future__ import annotations

from pathlib import Path

from clients.kinds.risk.plan import plan_for_node
from testkit.synthetic import make_rows, synthetic_spec, write_node
from tests.adversarial.conftest import train_as_coordinator
from vocab.models import build_model, get_weights
from vocab.wire import ReplyStatus

UNTUNED = synthetic_spec("auto", local_epochs=None, batch_size=None, learning_rate=None)


def test_two_row_counts_under_one_public_bound_choose_and_report_the_same(
    tmp_path: Path,
) -> None:
    few = write_node(tmp_path / "few", "few", 10.0, make_rows(610, seed=1))
    many = write_node(tmp_path / "many", "many", 10.0, make_rows(700, seed=2))
    assert few.public_rows == many.public_rows == 700  # the officers' published bound
    assert plan_for_node(few, UNTUNED) == plan_for_node(many, UNTUNED)
    weights = get_weights(build_model(UNTUNED))
    reports = [train_as_coordinator(cfg, UNTUNED, "auto#1", weights).report for cfg in (few, many)]
    for report in reports:
        assert report.status is ReplyStatus.OK, report.reason
        assert 0 < report.epsilon_spent <= UNTUNED.epsilon
    seen = [(r.sample_rate, r.steps, r.noise_multiplier, r.epsilon_spent) for r in reports]
    assert seen[0] == seen[1]
