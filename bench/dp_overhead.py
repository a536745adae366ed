"""BENCHMARKS.md section 3, DP overhead: time per epoch of DP-SGD over plain SGD, side by side.

Run: ``python -m bench.dp_overhead [--quick] [--out results]``

Data: the largest demo department's train rows, encoded with the demo job's features.
Every variant trains the same model from the same weights on the same rows with the same
batch size, in this one process, and the variants alternate within each repetition (the
starting variant rotates), so a load spike on the shared machine hits all of them. Each
repetition yields one ratio per variant (its time over plain SGD's in that repetition);
the report gives the median ratio and the median time per epoch.

Variants:

* ``plain``: `torch.optim.SGD` over a shuffled `DataLoader`, no DP.
* ``dp/<mode>``: the loop of `clients.kinds.risk.trainer.train_round` (Opacus, Poisson sampling,
  flat clipping, Gaussian noise) with Opacus' ``grad_sample_mode`` ``<mode>``; setup
  (`PrivacyEngine` + `make_private`) is timed separately, since a node pays it once per round
  and not per epoch.
* ``train_round``: the nodes' function itself, the repetition's epochs in one call as a
  round runs them: book-keeping clipping (per-row norms and the clipped sum from one
  backward pass), noise and Poisson masks from the secure generator (ChaCha20) drawn many
  steps ahead, batches gathered from tensors; compared with ``plain/tensor``. Its epoch
  time is the difference between a call over three times the epochs and one over the
  epochs, per epoch more (setup apart, as for ``dp/<mode>``); its ratio with the setup
  in, over the epochs of the shorter call, is reported beside it.
* ``loader``: iterating the `DataLoader` alone: the share of an epoch that is data fetch.
* ``plain/tensor`` and ``dp/hooks/tensor``: the same two trainings with batches sliced
  from tensors (Poisson batches as one boolean mask) instead of a per-row `DataLoader`;
  ``dp/hooks/tensor`` (torch's generator) is compared with ``plain/tensor``, the ``dp/<mode>``
  variants and ``loader`` with ``plain``.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from rich.console import Console
from rich.table import Table
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from bench.departments import DemoDepartments, NodeData
from bench.report import command_line, environment, make_console, write_result
from clients.kinds.risk.plan import DpPlan
from clients.kinds.risk.trainer import train_round
from clients.training.defaults import TrainingChoice
from vocab.jobspec import ModelKind, RiskJobSpec, load_job_spec
from vocab.models import build_model, get_weights, set_weights

__all__ = ["GradSampleMode", "OverheadSettings", "main", "run"]

Float32Array = npt.NDArray[np.float32]
NAME = "dp_overhead"
DEMO_SPEC = Path(__file__).resolve().parents[1] / "examples" / "jobs" / "lending_risk.toml"


class GradSampleMode(enum.Enum):
    """Opacus' per-sample-gradient implementations that handle Linear/ReLU models."""

    HOOKS = "hooks"
    """Module hooks with per-layer einsum rules (Opacus' default; what `train_round` uses)."""

    FUNCTORCH = "functorch"
    """`torch.func.vmap` over every layer instead of the hand-written rules."""

    EW = "ew"
    """PyTorch's ExpandedWeights (`call_for_per_sample_grads`)."""

    GHOST = "ghost"
    """Ghost clipping: per-sample norms without materialising per-sample gradients."""


@dataclass(frozen=True)
class OverheadSettings:
    """What to time and how often."""

    models: tuple[ModelKind, ...] = (ModelKind.LOGISTIC, ModelKind.MLP)
    batch_sizes: tuple[int, ...] = (64, 256, 512)
    modes: tuple[GradSampleMode, ...] = tuple(GradSampleMode)
    repetitions: int = 7
    epochs_per_timing: int = 2
    """Epochs timed together per variant and repetition, so timer resolution is no issue."""

    noise_multiplier: float = 1.0
    """Fixed noise for the timing: sigma changes no cost, and a fixed one needs no plan."""


def _largest(nodes: list[NodeData]) -> NodeData:
    return max(nodes, key=lambda n: n.n_train)


def _loader(x: Float32Array, y: Float32Array, batch_size: int) -> DataLoader[Any]:
    dataset = TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    return DataLoader(dataset, batch_size=batch_size, shuffle=True)


def _sgd(spec: RiskJobSpec) -> TrainingChoice:
    """The spec's own DP-SGD values: the benchmark times a tuned spec, defaults aside."""
    if spec.batch_size is None or spec.learning_rate is None or spec.max_grad_norm is None:
        raise ValueError(f"{DEMO_SPEC} must set batch_size, learning_rate and max_grad_norm")
    return TrainingChoice(spec.batch_size, 1, spec.max_grad_norm, spec.learning_rate)


def _epoch_steps(batch_size: int, n: int) -> int:
    """Steps in one epoch exactly as `plan_dp` counts them for Poisson sampling."""
    return max(1, round(n / batch_size)) if batch_size < n else 1


def _time_plain(
    model: nn.Module, x: Float32Array, y: Float32Array, spec: RiskJobSpec, epochs: int
) -> float:
    optimizer = torch.optim.SGD(model.parameters(), lr=_sgd(spec).learning_rate)
    loader = _loader(x, y, _sgd(spec).batch_size)
    loss_fn = nn.BCEWithLogitsLoss()
    model.train()
    start = time.perf_counter()
    for _ in range(epochs):
        for xb, yb in loader:
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(xb).squeeze(-1), yb).backward()
            optimizer.step()
    return (time.perf_counter() - start) / epochs


def _time_plain_tensor(
    model: nn.Module, x: Float32Array, y: Float32Array, spec: RiskJobSpec, epochs: int
) -> float:
    """Plain SGD slicing shuffled tensors: no per-row `DataLoader` fetch and collate."""
    optimizer = torch.optim.SGD(model.parameters(), lr=_sgd(spec).learning_rate)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    loss_fn = nn.BCEWithLogitsLoss()
    model.train()
    start = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(yt))
        for i in range(0, len(yt), _sgd(spec).batch_size):
            idx = order[i : i + _sgd(spec).batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(xt[idx]).squeeze(-1), yt[idx]).backward()
            optimizer.step()
    return (time.perf_counter() - start) / epochs


def _time_dp_tensor(
    model: nn.Module, x: Float32Array, y: Float32Array, spec: RiskJobSpec, sigma: float, epochs: int
) -> float:
    """`train_round`'s DP-SGD (hooks) with Poisson batches drawn as one boolean mask.

    Opacus' Poisson sampler draws `torch.rand(n) < q` per step and the `DataLoader` then
    fetches and collates the chosen rows one by one; indexing the tensors with the mask
    draws the same batches without that per-row work. Only the data path differs.
    """
    from opacus import PrivacyEngine

    model.train()
    n = len(y)
    rate = min(1.0, _sgd(spec).batch_size / n)
    steps = _epoch_steps(_sgd(spec).batch_size, n) * epochs
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    loss_fn = nn.BCEWithLogitsLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=_sgd(spec).learning_rate)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        engine = PrivacyEngine(accountant="rdp")
        dp_model, dp_optimizer, _ = engine.make_private(
            module=model,
            optimizer=optimizer,
            data_loader=_loader(x, y, _sgd(spec).batch_size),
            noise_multiplier=sigma,
            max_grad_norm=_sgd(spec).max_grad_norm,
            poisson_sampling=True,
        )
        start = time.perf_counter()
        for _ in range(steps):
            mask = torch.rand(n) < rate
            dp_optimizer.zero_grad(set_to_none=True)
            if bool(mask.any()):
                loss_fn(dp_model(xt[mask]).squeeze(-1), yt[mask]).backward()
                dp_optimizer.step()
        elapsed = time.perf_counter() - start
    dp_model.remove_hooks()
    return elapsed / epochs


def _time_loader(x: Float32Array, y: Float32Array, batch_size: int, epochs: int) -> float:
    loader = _loader(x, y, batch_size)
    start = time.perf_counter()
    for _ in range(epochs):
        for _batch in loader:
            pass
    return (time.perf_counter() - start) / epochs


@dataclass(frozen=True)
class _DpTiming:
    setup_s: float
    epoch_s: float
    weights: list[npt.NDArray[np.float32]]


def _dp_epochs(
    model: nn.Module,
    x: Float32Array,
    y: Float32Array,
    spec: RiskJobSpec,
    mode: GradSampleMode,
    sigma: float,
    epochs: int,
) -> _DpTiming:
    """`train_round`'s loop with a chosen grad_sample_mode: setup and per-epoch time apart."""
    from opacus import PrivacyEngine

    model.train()
    steps = _epoch_steps(_sgd(spec).batch_size, len(y)) * epochs
    loss_fn = nn.BCEWithLogitsLoss()
    start = time.perf_counter()
    optimizer = torch.optim.SGD(model.parameters(), lr=_sgd(spec).learning_rate)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        engine = PrivacyEngine(accountant="rdp")
        made = engine.make_private(
            module=model,
            optimizer=optimizer,
            criterion=loss_fn,
            data_loader=_loader(x, y, _sgd(spec).batch_size),
            noise_multiplier=sigma,
            max_grad_norm=_sgd(spec).max_grad_norm,
            poisson_sampling=True,
            grad_sample_mode=mode.value,
        )
        if mode is GradSampleMode.GHOST:
            dp_model, dp_optimizer, criterion, dp_loader = made
        else:
            dp_model, dp_optimizer, dp_loader = made
            criterion = loss_fn
        dp_model.train()
        setup = time.perf_counter() - start
        start = time.perf_counter()
        done = 0
        while done < steps:
            for xb, yb in dp_loader:
                dp_optimizer.zero_grad(set_to_none=True)
                if len(xb) > 0:
                    criterion(dp_model(xb).squeeze(-1), yb).backward()
                    dp_optimizer.step()
                done += 1
                if done == steps:
                    break
        elapsed = time.perf_counter() - start
    trained: nn.Module = dp_model._module
    dp_model.remove_hooks()
    return _DpTiming(setup, elapsed / epochs, get_weights(trained))


def _time_train_round(
    fresh: Callable[[], nn.Module], x: Float32Array, y: Float32Array, spec: RiskJobSpec,
    sigma: float, epochs: int,
) -> dict[str, float]:  # fmt: skip
    """The nodes' own `train_round`, one call over `epochs` epochs and one over three times
    as many, each on a fresh model (setup included in each, as a node pays it once a round).

    Returns:
        `epoch_s`: the time of one more epoch (the two calls' difference over the
        `2 * epochs` more), setup apart as for the `dp/<mode>` variants; `setup_s`: the
        rest of the shorter call (secure generator, batches, optimizer, the first draws);
        `round_epoch_s`: the shorter call over `epochs`, setup included.
    """
    timed = []
    for count in (epochs, 3 * epochs):
        model = fresh()
        rounds_worth = DpPlan(
            training=_sgd(spec),
            sample_rate=min(1.0, _sgd(spec).batch_size / len(y)),
            steps_per_round=count * _epoch_steps(_sgd(spec).batch_size, len(y)),
            noise_multiplier=sigma,
            rounds=1,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            start = time.perf_counter()
            train_round(model, x, y, rounds_worth)
            timed.append(time.perf_counter() - start)
    short, long = timed
    epoch_s = (long - short) / (2 * epochs)
    return {
        "epoch_s": epoch_s,
        "setup_s": short - epochs * epoch_s,
        "round_epoch_s": short / epochs,
    }


def _agreement(
    spec: RiskJobSpec, node: NodeData, modes: Sequence[GradSampleMode]
) -> dict[str, float | str]:
    """Max |weight difference| after one noiseless epoch, each mode against `hooks`.

    Same initial weights and the same Poisson batches (same torch seed), sigma = 0: the
    modes must compute the same clipped gradients, so the weights must agree to float error.
    """
    results: dict[str, list[npt.NDArray[np.float32]]] = {}
    out: dict[str, float | str] = {}
    for mode in (GradSampleMode.HOOKS, *[m for m in modes if m is not GradSampleMode.HOOKS]):
        torch.manual_seed(1234)
        try:
            timing = _dp_epochs(build_model(spec), node.x_train, node.y_train, spec, mode, 0.0, 1)
        except Exception as err:  # an unsupported mode is a finding, not a crash
            out[mode.value] = f"failed: {type(err).__name__}: {err}"
            continue
        results[mode.value] = timing.weights
        reference = results[GradSampleMode.HOOKS.value]
        out[mode.value] = float(
            max(np.max(np.abs(a - b)) for a, b in zip(timing.weights, reference, strict=True))
        )
    return out


def _measure(
    spec: RiskJobSpec, node: NodeData, settings: OverheadSettings, sigma: float
) -> dict[str, Any]:
    """All variants for one (model, batch size), alternating, rotated start each repetition."""
    start_weights = get_weights(build_model(spec))

    def fresh() -> nn.Module:
        model = build_model(spec)
        set_weights(model, start_weights)
        return model

    epochs = settings.epochs_per_timing
    x, y = node.x_train, node.y_train
    variants: dict[str, Callable[[], dict[str, float]]] = {
        "plain": lambda: {"epoch_s": _time_plain(fresh(), x, y, spec, epochs)},
        "loader": lambda: {"epoch_s": _time_loader(x, y, _sgd(spec).batch_size, epochs)},
        "train_round": lambda: _time_train_round(fresh, x, y, spec, sigma, epochs),
        "plain/tensor": lambda: {"epoch_s": _time_plain_tensor(fresh(), x, y, spec, epochs)},
        "dp/hooks/tensor": lambda: {"epoch_s": _time_dp_tensor(fresh(), x, y, spec, sigma, epochs)},
    }
    for mode in settings.modes:

        def dp(mode: GradSampleMode = mode) -> dict[str, float]:
            timing = _dp_epochs(fresh(), x, y, spec, mode, sigma, epochs)
            return {"epoch_s": timing.epoch_s, "setup_s": timing.setup_s}

        variants[f"dp/{mode.value}"] = dp
    names = list(variants)
    raw: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    errors: dict[str, str] = {}
    for rep in range(settings.repetitions):
        order = names[rep % len(names) :] + names[: rep % len(names)]
        for name in order:
            if name in errors:
                continue
            try:
                raw[name].append(variants[name]())
            except Exception as err:  # an unsupported mode is a finding, not a crash
                errors[name] = f"{type(err).__name__}: {err}"
    summary: dict[str, Any] = {}
    for name in names:
        if name in errors:
            summary[name] = {"error": errors[name]}
            continue
        # Each data path is compared with plain SGD on the same data path.
        # The node's round slices tensors with a secure Poisson mask: its fair baseline is
        # plain SGD on sliced tensors too.
        sliced = name.endswith("/tensor") or name == "train_round"
        baseline = "plain/tensor" if sliced else "plain"
        plain = [r["epoch_s"] for r in raw[baseline]]
        epoch = [r["epoch_s"] for r in raw[name]]
        ratios = [t / p for t, p in zip(epoch, plain, strict=True)]
        entry: dict[str, Any] = {
            "baseline": baseline,
            "median_epoch_ms": 1000 * statistics.median(epoch),
            "median_ratio_to_plain": statistics.median(ratios),
            "ratios": ratios,
            "epoch_s": epoch,
        }
        setups = [r["setup_s"] for r in raw[name] if "setup_s" in r]
        if setups:
            entry["median_setup_ms"] = 1000 * statistics.median(setups)
            entry["setup_s"] = setups
        rounds = [r["round_epoch_s"] for r in raw[name] if "round_epoch_s" in r]
        if rounds:
            # Setup included, per epoch of a round of `epochs_per_timing` epochs.
            entry["median_round_epoch_ms"] = 1000 * statistics.median(rounds)
            entry["median_round_ratio_to_plain"] = statistics.median(
                [t / p for t, p in zip(rounds, plain, strict=True)]
            )
            entry["round_epoch_s"] = rounds
        summary[name] = entry
    return summary


def _fastest(cases: list[dict[str, Any]]) -> dict[str, Any]:
    """Per mode, the median over cases of its ratio to `dp/hooks` (below 1 is faster)."""
    per_mode: dict[str, list[float]] = {}
    for case in cases:
        hooks = case["variants"].get("dp/hooks", {}).get("median_ratio_to_plain")
        for name, entry in case["variants"].items():
            if (
                name.startswith("dp/")
                and not name.endswith("/tensor")
                and "median_ratio_to_plain" in entry
                and hooks
            ):
                per_mode.setdefault(name[3:], []).append(entry["median_ratio_to_plain"] / hooks)
    relative = {mode: statistics.median(v) for mode, v in per_mode.items()}
    best = min(relative, key=lambda m: relative[m]) if relative else None
    return {"relative_to_hooks": relative, "fastest": best}


def run(settings: OverheadSettings, out_dir: Path, command: str, console: Console) -> Path:
    """Time every variant for every model and batch size; print tables; write the JSON."""
    spec = load_job_spec(DEMO_SPEC)
    departments = DemoDepartments()
    try:
        node = _largest(departments.nodes(spec))
    finally:
        departments.close()
    sigma = settings.noise_multiplier
    cases = []
    for model in settings.models:
        for batch_size in settings.batch_sizes:
            case_spec = dataclasses.replace(spec, model=model, batch_size=batch_size)
            with console.status(f"timing {model.value}, batch {batch_size}"):
                variants = _measure(case_spec, node, settings, sigma)
            cases.append(
                {
                    "model": model.value,
                    "batch_size": batch_size,
                    "steps_per_epoch": _epoch_steps(batch_size, node.n_train),
                    "variants": variants,
                }
            )
    agreement = {
        model.value: _agreement(dataclasses.replace(spec, model=model), node, settings.modes)
        for model in settings.models
    }
    fastest = _fastest(cases)
    payload = {
        **environment(command),
        "benchmark": "BENCHMARKS.md section 3: DP overhead",
        "data": {
            "department": node.name,
            "train_rows": node.n_train,
            "inputs": spec.n_inputs,
            "features": [f.column for f in spec.features],
        },
        "settings": {
            **{
                k: v
                for k, v in dataclasses.asdict(settings).items()
                if k not in {"models", "modes"}
            },
            "models": [m.value for m in settings.models],
            "modes": [m.value for m in settings.modes],
            "learning_rate": _sgd(spec).learning_rate,
            "max_grad_norm": _sgd(spec).max_grad_norm,
            "hidden": spec.hidden,
        },
        "cases": cases,
        "mode_agreement_max_abs_weight_diff_vs_hooks": agreement,
        "grad_sample_mode": fastest,
    }
    path = write_result(out_dir, NAME, payload)
    _print(console, cases, agreement, fastest, node)
    return path


def _cell(entry: dict[str, Any], plain: bool) -> str:
    if "error" in entry:
        return "unsupported"
    if plain:
        return f"{entry['median_epoch_ms']:.1f} ms"
    cell = f"{entry['median_epoch_ms']:.1f} ms, {entry['median_ratio_to_plain']:.2f}x"
    if "median_setup_ms" in entry:
        cell += f" (+{entry['median_setup_ms']:.1f} ms setup)"
    if "median_round_ratio_to_plain" in entry:
        cell += f"; setup in: {entry['median_round_ratio_to_plain']:.2f}x"
    return cell


def _print(
    console: Console,
    cases: list[dict[str, Any]],
    agreement: dict[str, dict[str, float | str]],
    fastest: dict[str, Any],
    node: NodeData,
) -> None:
    names = list(cases[0]["variants"]) if cases else []
    for model in dict.fromkeys(c["model"] for c in cases):
        mine = [c for c in cases if c["model"] == model]
        table = Table(
            title=f"DP overhead, {model}, on `{node.name}` ({node.n_train} train rows): median "
            "time per epoch and median ratio to plain SGD (same data path, same repetition)"
        )
        table.add_column("variant")
        for case in mine:
            table.add_column(
                f"batch {case['batch_size']} ({case['steps_per_epoch']} steps)", justify="right"
            )
        for name in names:
            table.add_row(
                name, *(_cell(c["variants"][name], name.startswith("plain")) for c in mine)
            )
        console.print(table)
    for model, diffs in agreement.items():
        text = ", ".join(
            f"{mode}: {diff:.1e}" if isinstance(diff, float) else f"{mode}: {diff}"
            for mode, diff in diffs.items()
        )
        console.print(f"{model}: max |weight diff| vs hooks after one noiseless epoch: {text}")
    relative = ", ".join(f"{m}: {r:.2f}x" for m, r in fastest["relative_to_hooks"].items())
    console.print(f"DP epoch time relative to hooks (median over cases): {relative}")
    console.print(f"fastest grad_sample_mode: {fastest['fastest']}")


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.dp_overhead", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one batch size, 3 repetitions")
    parser.add_argument("--out", type=Path, default=Path("results"), help="JSON folder")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, *, via: str | None = None) -> int:
    """Entry point: `python -m bench.dp_overhead [--quick] [--out DIR]`.

    Args:
        argv: The flags (default: the process's own).
        via: The command that really ran, when another module called this one.
    """
    args = _parse(argv)
    settings = OverheadSettings()
    if args.quick:
        settings = dataclasses.replace(settings, batch_sizes=(256,), repetitions=3)
    command = command_line("dp_overhead", argv, via)
    console = make_console()
    path = run(settings, args.out, command, console)
    console.print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
