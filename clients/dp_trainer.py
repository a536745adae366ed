"""DP-SGD at the node with Opacus: plan the noise for the whole job, then train one round."""

from __future__ import annotations

import secrets
import warnings
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from vocab.accounting import calibrate_noise_multiplier
from vocab.jobspec import RiskJobSpec
from vocab.metrics import HoldoutSummary, summarize
from vocab.privacy import DpSgdEvent

__all__ = ["DpPlan", "RoundResult", "evaluate", "plan_dp", "train_round"]


@dataclass(frozen=True)
class DpPlan:
    """How this node runs DP-SGD for a job: same sigma, rate and steps every round.

    The noise multiplier is calibrated once so that *all* planned rounds together cost at
    most the job's epsilon at its delta; each round is then one `DpSgdEvent` in the ledger.
    """

    sample_rate: float
    steps_per_round: int
    noise_multiplier: float
    rounds: int

    def round_event(self) -> DpSgdEvent:
        return DpSgdEvent(self.noise_multiplier, self.sample_rate, self.steps_per_round)

    def events_for(self, rounds: int) -> list[DpSgdEvent]:
        return [self.round_event()] * rounds


@dataclass(frozen=True)
class RoundResult:
    """What one local round produced: new weights and the steps actually taken."""

    model: nn.Module
    steps: int
    mean_batch: float


def plan_dp(spec: RiskJobSpec, n_train: int) -> DpPlan:
    """Calibrate the noise multiplier for `spec.rounds` x local steps on `n_train` rows."""
    sample_rate = min(1.0, spec.batch_size / n_train)
    # With Poisson sampling one epoch is 1/q expected batches.
    steps_per_round = max(1, round(spec.local_epochs / sample_rate))
    sigma = calibrate_noise_multiplier(
        target_epsilon=spec.epsilon,
        delta=spec.delta,
        sample_rate=sample_rate,
        steps=steps_per_round * spec.rounds,
    )
    return DpPlan(sample_rate, steps_per_round, sigma, spec.rounds)


def _seed_from_os() -> None:
    # Noise and sampling must not be predictable by the coordinator, so they never derive
    # from the job's seed: a party that knew the noise could subtract it.
    torch.manual_seed(secrets.randbits(63))


def train_round(
    model: nn.Module,
    x: npt.NDArray[np.float32],
    y: npt.NDArray[np.float32],
    spec: RiskJobSpec,
    plan: DpPlan,
) -> RoundResult:
    """Run exactly `plan.steps_per_round` DP-SGD steps (Poisson sampling, per-sample clipping).

    Returns the trained plain module (Opacus wrappers removed).
    """
    from opacus import PrivacyEngine  # heavy import, only on the training path

    _seed_from_os()
    model.train()  # Opacus validates the module in training mode
    dataset = TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    loader = DataLoader(dataset, batch_size=spec.batch_size)
    optimizer = torch.optim.SGD(model.parameters(), lr=spec.learning_rate)
    with warnings.catch_warnings():
        # Opacus warns that its secure RNG is off; noise seeding is handled above (and
        # the CSPRNG limitation is stated in the README).
        warnings.filterwarnings("ignore", message="Secure RNG turned off")
        engine = PrivacyEngine(accountant="rdp")
        dp_model, dp_optimizer, dp_loader = engine.make_private(
            module=model,
            optimizer=optimizer,
            data_loader=loader,
            noise_multiplier=plan.noise_multiplier,
            max_grad_norm=spec.max_grad_norm,
            poisson_sampling=True,
        )
    # Opacus' own accountant is unused: the node ledger accounts from the plan instead.
    loss_fn = nn.BCEWithLogitsLoss()
    steps, rows = 0, 0
    dp_model.train()
    with warnings.catch_warnings():
        # Opacus' hooks fire on inputs that need no gradient; expected, not a problem.
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        while steps < plan.steps_per_round:
            for xb, yb in dp_loader:
                dp_optimizer.zero_grad(set_to_none=True)
                logits = dp_model(xb).squeeze(-1)
                # An empty Poisson batch still takes a (pure-noise) step, as the accounting
                # assumes; its zero loss gives Opacus empty per-sample gradients instead of NaN.
                loss = loss_fn(logits, yb) if len(xb) > 0 else logits.sum() * 0.0
                loss.backward()
                rows += len(xb)
                dp_optimizer.step()
                steps += 1
                if steps == plan.steps_per_round:
                    break
    trained: nn.Module = dp_model._module
    # Drop Opacus hooks and per-sample buffers so the module is a plain model again.
    dp_model.remove_hooks()
    for p in trained.parameters():
        setattr(p, "grad_sample", None)  # noqa: B010 - attribute Opacus added
    return RoundResult(trained, steps, rows / max(steps, 1))


def evaluate(
    model: nn.Module, x: npt.NDArray[np.float32], y: npt.NDArray[np.float32]
) -> HoldoutSummary:
    """Held-out statistics of `model` (not noised: see the model card)."""
    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(x)).squeeze(-1).numpy()
    if not np.all(np.isfinite(logits)):
        # A diverged model must still give finite loss sums (inf - inf would be NaN).
        logits = np.nan_to_num(logits, nan=0.0, posinf=1e6, neginf=-1e6)
    return summarize(logits, y)
