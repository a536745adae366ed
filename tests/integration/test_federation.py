"""Real SuperLink + SuperNodes on loopback: DP training, refusals, persistence, composition."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from clients.ledger.ledger import EntryStatus
from clients.ledger.sqlite_ledger import SqliteLedger
from testkit.synthetic import make_rows
from testkit.synthetic import synthetic_spec as job_spec
from tests.integration.conftest import LiveFederation
from vocab.bundle import files_from_event
from vocab.features import encode_features, encode_target
from vocab.metrics import roc_auc
from vocab.models import build_model, set_weights
from vocab.progress import FinalEvent, JobEnd

pytestmark = pytest.mark.integration


def _result(final: FinalEvent) -> dict[str, Any]:
    assert isinstance(final, JobEnd), final
    on_disk = Path(final.result).read_bytes()
    # The bundle also reaches the analyst inside the final event, byte for byte.
    inline = files_from_event(final.files)
    assert inline["result.json"] == on_disk
    assert {"MODEL_CARD.md", "model.npz", "model.pt"} <= set(inline)
    result: dict[str, Any] = json.loads(on_disk)
    return result


def _ledger(fed: LiveFederation, name: str) -> SqliteLedger:
    cfg = fed.nodes[name]
    return SqliteLedger(cfg.ledger_path, cfg.dataset, cfg.budget)


# The first job is untuned: it leaves every DP-SGD value to the nodes' defaults, chosen
# from public figures only (clients/training/defaults.py).
UNTUNED: dict[str, Any] = {"local_epochs": None, "batch_size": None, "learning_rate": None}


@pytest.fixture(scope="module")
def first_job(federation: LiveFederation) -> dict[str, Any]:
    return _result(federation.run(job_spec("first", **UNTUNED), "first"))


def test_job_trains_jointly_and_learns_the_signal(
    federation: LiveFederation, first_job: dict[str, Any]
) -> None:
    assert first_job["status"] == "succeeded", first_job["failure"]
    assert [r["participants"] for r in first_job["rounds"]] == [["alpha", "beta"]] * 2
    # The released metrics are noisy (charged) figures with their noise's standard error.
    metrics = first_job["metrics"]
    assert metrics["auc_se"] > 0 and metrics["n_holdout_se"] > 0
    # The model itself, scored exactly on fresh rows from the same signal, has learnt it.
    spec = job_spec("first", **UNTUNED)
    assert first_job["job"]["learning_rate"] is None and first_job["job"]["batch_size"] is None
    card = (federation.root / "first" / "MODEL_CARD.md").read_text()
    assert "batch auto, learning rate auto" in card and "chose it from public figures" in card
    model = build_model(spec)
    arrays = np.load(federation.root / "first" / "model.npz")
    set_weights(model, [arrays[k] for k in arrays.files])
    rows = make_rows(2000, seed=99)
    with torch.no_grad():
        scores = model(torch.from_numpy(encode_features(rows, spec))).squeeze(-1).numpy()
    assert roc_auc(scores, encode_target(rows, spec)) > 0.75


def test_every_release_is_listed_with_its_mechanism(first_job: dict[str, Any]) -> None:
    for name in ("alpha", "beta"):
        node = first_job["nodes"][name]
        releases = [(r["round"], r["what"], r["mechanism"]) for r in node["releases"]]
        assert releases == [
            (1, "model_update", "subsampled_gaussian"),
            (2, "model_update", "subsampled_gaussian"),
            (4, "evaluation", "gaussian"),
        ]
        # The training figures are the plan's, not the evaluation's zeros.
        assert node["noise_multiplier"] > 0 and 0 < node["sample_rate"] < 1


def test_every_node_stays_within_job_epsilon_and_budget(first_job: dict[str, Any]) -> None:
    for name in ("alpha", "beta"):
        node = first_job["nodes"][name]
        assert 0 < node["epsilon_spent"] <= first_job["job"]["epsilon"] + 1e-9
        assert node["epsilon_dataset_spent"] <= node["epsilon_budget"]
        assert node["rounds"] == [1, 2]


def test_small_budget_node_refuses_at_admission_with_composed_figures(
    first_job: dict[str, Any],
) -> None:
    poor = first_job["nodes"]["poor"]
    assert [(r["round"], r["code"]) for r in poor["refusals"]] == [(0, "budget_exceeded")]
    reason = poor["refusals"][0]["reason"]
    assert "would bring epsilon spent from 0.0000 to" in reason and "above the cap" in reason
    assert poor["rounds"] == [] and poor["releases"] == []


def test_corrupt_csv_node_refuses_with_a_clear_reason(first_job: dict[str, Any]) -> None:
    corrupt = first_job["nodes"]["corrupt"]
    assert [(r["round"], r["code"]) for r in corrupt["refusals"]] == [(0, "data_invalid")]
    # Named, not described: the details (a node-local path, values) stay in the node's log.
    reason = corrupt["refusals"][0]["reason"]
    assert "data" in reason and "node's log" in reason and "data.csv" not in reason


def test_ledgers_persist_what_the_nodes_reported(
    federation: LiveFederation, first_job: dict[str, Any]
) -> None:
    for name in ("alpha", "beta"):
        ledger = _ledger(federation, name)
        committed = [e for e in ledger.history() if e.status is EntryStatus.COMMITTED]
        assert len(committed) == 3  # two training rounds and the final evaluation
        assert ledger.spent() == pytest.approx(first_job["nodes"][name]["epsilon_dataset_spent"])
    assert _ledger(federation, "poor").spent() == 0.0


def test_second_job_composes_and_repaired_node_joins(
    federation: LiveFederation, first_job: dict[str, Any]
) -> None:
    # The corrupt node's daemon kept running: fix its data and it takes part.
    make_rows(700, 4).to_csv(federation.nodes["corrupt"].source.path, index=False)  # type: ignore[arg-type]
    spent_before = _ledger(federation, "alpha").spent()
    second = _result(federation.run(job_spec("second"), "second"))
    assert second["status"] == "succeeded", second["failure"]
    assert second["rounds"][0]["participants"] == ["alpha", "beta", "corrupt"]
    assert second["nodes"]["poor"]["refusals"][0]["code"] == "budget_exceeded"
    assert second["nodes"]["poor"]["releases"] == []
    alpha = _ledger(federation, "alpha")
    assert spent_before < alpha.spent() <= alpha.budget().epsilon
    # Composition across jobs is at least each job alone.
    assert alpha.spent() >= max(
        alpha.job_epsilon(first_job["job_id"]), alpha.job_epsilon(second["job_id"])
    )


def test_restricted_column_is_refused_and_cli_exits_non_zero(
    federation: LiveFederation, first_job: dict[str, Any], tmp_path: Path
) -> None:
    spec = tmp_path / "leak.toml"
    spec.write_text(
        '[job]\nname = "leak"\ntarget = "y"\npositive = "1"\nrounds = 1\nmin_nodes = 2\n'
        'node_wait_s = 30.0\n[features.secret]\ncategories = ["s1"]\n'
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "silobridge.cli.main",
            "job",
            "run",
            str(spec),
            "--out",
            str(tmp_path / "leak"),
            "--coordinator",
            federation.control,
            "--root-certificates",
            str(federation.root_certificates),
            "--home",
            str(federation.root / "coordinator"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stdout + proc.stderr
    result = json.loads((tmp_path / "leak" / "result.json").read_text())
    assert result["status"] == "failed"
    codes = {n: [r["code"] for r in v["refusals"]] for n, v in result["nodes"].items()}
    assert codes["alpha"] == ["policy"] and codes["beta"] == ["policy"]
    assert "secret" in result["nodes"]["alpha"]["refusals"][0]["reason"]


def test_node_audit_logs_record_the_job_and_verify_against_the_result(
    federation: LiveFederation, first_job: dict[str, Any]
) -> None:
    from clients.ledger.node_audit import audit_path_for
    from vocab.audit_log import read_entries

    alpha = federation.nodes["alpha"]
    kinds = [e.kind for e in read_entries(audit_path_for(alpha.ledger_path))
             if e.data.get("job_id") == first_job["job_id"]]  # fmt: skip
    # Admission (a quote), then each release: reserved, charged, released.
    assert kinds[:6] == ["job_received", "quote", "job_received", "reservation", "charge",
                         "release"]  # fmt: skip
    poor = federation.nodes["poor"]
    # The poor node refused at admission: its quote of the job said no.
    quotes = [e for e in read_entries(audit_path_for(poor.ledger_path)) if e.kind == "quote"]
    assert quotes and not quotes[0].data["would_run"]
    assert quotes[0].data["code"] == "budget_exceeded"
    result_json = Path(federation.root / "first" / "result.json")
    assert first_job["nodes"]["alpha"]["audit_head"]["seq"] >= 5
    verify = [sys.executable, "-m", "silobridge.cli.main", "audit", "verify"]
    ok = subprocess.run([*verify, "--node-config", str(alpha.config_path),
                         "--result", str(result_json)], capture_output=True, text=True)  # fmt: skip
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "audit log OK" in ok.stdout
