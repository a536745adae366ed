"""Attack: learn a department's row count from how long its rounds take.

Sampling was planned from the public size figure, but each step still processed only the
real rows it sampled: a round on 30,000 rows took 15 times longer than on 300, and the
coordinator could tune a spec so that the node's wall-time limit fails the round only
above some row count - bisecting the count with tiny-epsilon jobs. Now each step's batch
is drawn over the public bound's slots, phantom rows of zeros filling the slots past the
data, so the work per step is the same whatever the row count.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from clients.kinds.risk.plan import plan_dp
from clients.kinds.risk.trainer import train_round
from clients.ledger.sqlite_ledger import SqliteLedger
from clients.node_config import render_node_config
from testkit.synthetic import make_rows, synthetic_spec, write_node
from tests.adversarial.conftest import train_as_coordinator
from vocab.models import build_model, get_weights
from vocab.wire import ReplyStatus

SLOTS = 3_000
SPEC = synthetic_spec("work", rounds=1, local_epochs=1, batch_size=64, epsilon=2.0)


class _FirstLayerPasses(TorchDispatchMode):
    """Records the rows of every forward pass through a model's first linear layer, seen
    at torch's dispatcher: a module hook would miss the book-keeping engine, which calls
    the layers' functions, and sends a hooked model to another engine."""

    def __init__(self, layer: nn.Linear) -> None:
        super().__init__()
        self._mat2 = (layer.in_features, layer.out_features)
        self.rows: list[int] = []

    def __torch_dispatch__(  # type: ignore[override]
        self, func: Any, types: Any, args: Any = (), kwargs: Any = None
    ) -> Any:
        # A forward pass of a linear layer with a bias: addmm(bias, input, weight.T).
        if func is torch.ops.aten.addmm.default and tuple(args[2].shape) == self._mat2:
            self.rows.append(int(args[1].shape[0]))
        return func(*args, **(kwargs or {}))


def _batch_sizes(rows: int) -> list[int]:
    """The rows each DP-SGD step pushes through the model, for a node holding `rows`."""
    rng = np.random.default_rng(rows)
    x = rng.normal(size=(rows, SPEC.n_inputs)).astype(np.float32)
    y = (rng.random(rows) < 0.5).astype(np.float32)
    model = build_model(SPEC)
    layer = next(m for m in model.modules() if isinstance(m, nn.Linear))
    plan = plan_dp(SPEC, int(SLOTS * 0.75))
    with _FirstLayerPasses(layer) as passes:
        train_round(model, x, y, plan, slots=SLOTS)
    return passes.rows


def test_each_steps_work_does_not_depend_on_the_row_count() -> None:
    small, large = _batch_sizes(300), _batch_sizes(SLOTS)
    assert len(small) == len(large)  # the same number of steps: planned from public figures
    expected = SLOTS * plan_dp(SPEC, int(SLOTS * 0.75)).sample_rate
    # Without phantom rows the small node's batches would be a tenth of the large one's.
    for sizes in (small, large):
        assert abs(float(np.mean(sizes)) - expected) < 0.1 * expected


def test_a_row_whose_activations_overflow_costs_no_extra_pass() -> None:
    # Crafted weights can overflow the activations of rows with a large first feature.
    # Ghost clipping ran such a batch forward a second time without them: whether a batch
    # held one changed the work. Book-keeping does the same passes either way.
    spec = synthetic_spec("work", model="mlp", rounds=1, local_epochs=1, epsilon=2.0)
    rng = np.random.default_rng(4)
    x = rng.uniform(-4, 4, size=(600, spec.n_inputs)).astype(np.float32)
    y = (rng.random(600) < 0.5).astype(np.float32)
    plan = plan_dp(spec, 600)

    def passes(first_weight: float) -> tuple[int, bool]:
        model = build_model(spec)
        with torch.no_grad():
            model[0].weight[:, 0] = first_weight
        overflowing = bool(torch.isinf(model[1](model[0](torch.from_numpy(x)))).any())
        with _FirstLayerPasses(model[0]) as seen:
            train_round(model, x, y, plan)
        return len(seen.rows), overflowing

    crafted, overflowed = passes(3e38)
    assert overflowed  # the attack's rows are there
    assert crafted == passes(0.5)[0] == plan.steps_per_round


def test_data_beyond_the_public_bound_is_refused_before_anything_is_charged(
    tmp_path: Path,
) -> None:
    cfg = write_node(tmp_path / "tax", "tax", 10.0, make_rows(700, seed=8))
    cfg = dataclasses.replace(cfg, public_rows=600)  # the officer's bound is wrong
    cfg.config_path.write_text(render_node_config(cfg))
    outcome = train_as_coordinator(cfg, SPEC, "work#1", get_weights(build_model(SPEC)))
    assert outcome.report.status is ReplyStatus.REFUSED
    assert "public_rows" in outcome.report.reason and "700" not in outcome.report.reason
    assert SqliteLedger(cfg.ledger_path, cfg.dataset, cfg.budget).history() == []
