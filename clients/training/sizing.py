"""How much DP-SGD work a job is at this node, from public figures only: the rows it plans
for and the node's [limits] on rounds, steps and model size (shared by the kinds that
train: risk and Poisson regression)."""

from __future__ import annotations

from clients.node_config import NodeConfig, NodeLimits
from vocab.errors import ConfigError, PolicyRefusal

__all__ = ["check_training_limits", "planned_rows"]


def planned_rows(cfg: NodeConfig, *, holdout: bool = True) -> int:
    """The training rows a node plans for: its public size figure, less the held-out share
    (public too) for a job that holds rows out.

    Raises:
        ConfigError: The node config declares no `public_rows`.
    """
    if cfg.public_rows is None:
        problem = (
            f"node {cfg.department!r} declares no public size figure, so it cannot plan "
            "DP-SGD sampling without releasing its exact row count"
        )
        raise ConfigError(
            problem,
            "the officer adds `public_rows = <rows, rounded as published>` under [data] "
            "in the node config",
            public=f"{problem}; its officer publishes one as `public_rows`",
        )
    kept = 1.0 - cfg.holdout_fraction if holdout else 1.0
    return max(1, round(cfg.public_rows * kept))


def check_training_limits(
    limits: NodeLimits, job: str, *, rounds: int, steps: int, parameters: int
) -> None:
    """Refuses a DP-SGD job that asks more of this node than its [limits] allow.

    Raises:
        PolicyRefusal: Naming the limit, the value asked, and the node's cap.
    """
    asked = (
        ("rounds", rounds, limits.max_rounds, "max_rounds"),
        ("DP-SGD steps per round", steps, limits.max_steps_per_round, "max_steps_per_round"),
        ("model parameters", parameters, limits.max_model_parameters, "max_model_parameters"),
    )
    for what, value, cap, key in asked:
        if value > cap:
            raise PolicyRefusal(
                f"job {job!r} asks for {value} {what}; this node allows at most {cap} "
                f"([limits] {key})",
                "lower the job's rounds, local epochs, batch size or model size",
            )
