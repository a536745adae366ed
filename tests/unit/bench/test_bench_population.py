"""Smoke test of the population benchmark at `--quick` size: it runs and writes sane JSON."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from bench import population


def test_quick_population_writes_sane_figures(tmp_path: Path) -> None:
    assert population.main(["--quick", "--out", str(tmp_path)]) == 0

    result = json.loads((tmp_path / "population.json").read_text())
    for key in (
        "date",
        "command",
        "machine",
        "versions",
        "settings",
        "statistics",
        "coverage",
        "latency",
        "linear_regression",
        "poisson_regression",
    ):
        assert key in result, key
    assert result["settings"]["statistics_repeats"] == 30
    assert result["settings"]["deployment"] is False
    assert result["departments"]["earnings"].keys() == {"northeast", "midwest", "south", "west"}
    assert sum(result["departments"]["births"].values()) == 372_864

    configs = result["statistics"]["configs"]
    assert {(c["noise"], c["epsilon"]) for c in configs} == {
        (noise, eps) for noise in ("gaussian", "laplace") for eps in (0.1, 1.0, 10.0)
    }
    for config in configs:
        for name, stat in config["statistics"].items():
            # Intervals of the coordinator cover the truth about 95 % of the time.
            assert 0.8 <= stat["coverage_95"] <= 1.0, (config["noise"], config["epsilon"], name)
            assert stat["federated"]["median_relative_error"] < 0.1
        calibration = config["calibration"]
        # OpenDP's own calibration of the central curator agrees with silobridge's plan.
        assert calibration["opendp_central_epsilon"] <= config["epsilon"] * (1 + 1e-9)
        ratio = calibration["opendp_central_scale"] / calibration["silobridge_noise_multiplier"]
        assert 0.9 < ratio < 1.1
    # Each department adds its own noise: the federated error is about sqrt(4) = 2 times
    # the central one, never below it on average.
    assert result["statistics"]["federated_over_central_rms_error_mean"] >= 1.0
    medians = [
        c["statistics"][s]["federated_over_central_median_error"]
        for c in configs
        if c["noise"] == "gaussian"
        for s in ("count", "sum", "mean")
    ]
    assert statistics.fmean(medians) >= 1.0

    latency = result["latency"]
    assert latency["combine_ms"] > 0
    assert all(v["release_ms"] > 0 for v in latency["per_node"].values())

    linear = result["linear_regression"]
    at_10 = next(e for e in linear["per_epsilon"] if e["epsilon"] == 10.0)
    assert at_10["ssp"]["rmse_over_ols"] <= 1.1
    assert at_10["central_dp_sgd"]["rmse_over_ols"] >= 1.0 - 1e-9  # OLS is the minimum

    poisson = result["poisson_regression"]
    glm = poisson["glm"]
    assert 0 < glm["deviance"] <= glm["null_deviance"]
    for entry in poisson["per_epsilon"]:
        assert entry["deviance_over_glm"] >= 1.0 - 1e-9  # the GLM is the maximum likelihood
        refined = entry["after_refinement"]
        assert refined["refined"] + len(refined["not_refined_because"]) >= 1
        if refined["refined"]:
            assert refined["deviance_over_glm"] >= 1.0 - 1e-9
            assert 0.0 <= refined["interval_coverage_of_glm"] <= 1.0
    at_10 = next(e for e in poisson["per_epsilon"] if e["epsilon"] == 10.0)
    # At epsilon 10 the information is far above its noise: the Newton step lands on the
    # GLM's deviance, which DP-SGD's clipped training alone misses by some 20 %.
    assert at_10["after_refinement"]["refined"] == 1
    assert at_10["after_refinement"]["deviance_over_glm"] < 1.01

    assert (tmp_path / "population_error.png").is_file() or "skipped" in result["plot"]
