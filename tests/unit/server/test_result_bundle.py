"""The result bundle carries the fields analysts and officers read, and never NaN."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from server.kinds.risk.bundle import render_bundle
from server.kinds.risk.rounds import JobOutcome, NodeTally, RoundRecord
from vocab.bundle import files_from_event, files_to_event, write_files
from vocab.jobspec import parse_job_spec
from vocab.models import build_model, get_weights
from vocab.wire import NodeReport, ReleaseRecord, ReplyStatus


def test_bundle_has_required_fields_and_a_card(tmp_path: Path) -> None:
    spec = parse_job_spec(
        {
            "job": {"name": "j", "target": "y", "positive": "1"},
            "features": {"x": {"lower": 0.0, "upper": 1.0}},
        }
    )
    ok = NodeReport(
        "tax",
        ReplyStatus.OK,
        epsilon_job=0.9,
        epsilon_spent=1.4,
        epsilon_budget=3.0,
        delta=1e-5,
        noise_multiplier=2.0,
        sample_rate=0.05,
        steps=60,
    )
    release = ReleaseRecord(
        4, "evaluation", "gaussian", {"noise_multiplier": 30.0, "count": 1, "sensitivity": 1},
        0.1,
    )  # fmt: skip
    evaluated = NodeReport("tax", ReplyStatus.OK, epsilon_job=0.9, epsilon_spent=1.4,
                           epsilon_budget=3.0, delta=1e-5, releases=(release,))  # fmt: skip
    outcome = JobOutcome(
        spec=spec, job_id="j#1", status="succeeded", weights=get_weights(build_model(spec))
    )
    outcome.nodes = {
        1: NodeTally(1, "tax", evaluated, ok, rounds=[1, 2, 3], releases=[release]),
        2: NodeTally(2, "?", refusals=[{"round": 1, "code": "no_reply", "reason": "x"}]),
        3: NodeTally(3, "?", refusals=[{"round": 1, "code": "no_reply", "reason": "y"}]),
    }
    outcome.rounds = [RoundRecord(1, ("tax",), ("?",), {"auc": float("nan")}, 1.0)]
    outcome.final_metrics = {"auc": 0.8, "auc_se": 0.05, "accuracy": 0.9, "n_holdout": 10.0}
    files = render_bundle(outcome)
    # The bundle survives the trip through a progress event byte for byte.
    assert files_from_event(files_to_event(files)) == files
    path = write_files(tmp_path / "risk", files)
    result = json.loads(path.read_text())
    assert set(result) >= {"job", "rounds", "metrics", "nodes"}
    assert (
        result["metrics"]["auc"] == 0.8
        and result["rounds"][0]["metrics_after_round"]["auc"] is None
    )
    # The training figures survive the evaluation's report (which carries none).
    tax = result["nodes"]["tax"]
    assert (tax["noise_multiplier"], tax["sample_rate"], tax["steps_per_round"]) == (2.0, 0.05, 60)
    assert tax["releases"] == [
        {"round": 4, "what": "evaluation", "mechanism": "gaussian",
         "params": {"noise_multiplier": 30.0, "count": 1, "sensitivity": 1}, "epsilon": 0.1}
    ]  # fmt: skip
    assert result["nodes"]["tax"]["epsilon_spent"] == 0.9
    assert result["nodes"]["tax"]["epsilon_remaining"] == 3.0 - 1.4
    assert len(result["nodes"]) == 3  # two silent nodes do not collide
    card = (tmp_path / "risk" / "MODEL_CARD.md").read_text()
    assert "These figures are differentially private" in card and "tax" in card
    assert "| tax | 4 | evaluation | gaussian |" in card
    weights = np.load(tmp_path / "risk" / "model.npz")
    assert len(weights.files) == 2


def test_event_files_cannot_name_paths_outside_the_bundle() -> None:
    assert files_from_event({"../../etc/passwd": "eA==", "result.json": "e30="}) == {
        "result.json": b"{}"
    }
    assert files_from_event("not a dict") == {}


def test_a_failed_jobs_bundle_leaves_no_model_of_an_earlier_run(tmp_path: Path) -> None:
    out = tmp_path / "risk"
    write_files(out, {"model.npz": b"w", "model.pt": b"t", "result.json": b"{}"})
    (out / "notes.txt").write_text("the analyst's own file")
    write_files(out, {"result.json": b'{"status": "failed"}', "MODEL_CARD.md": b"# failed"})
    assert sorted(p.name for p in out.iterdir()) == ["MODEL_CARD.md", "notes.txt", "result.json"]


def test_a_failed_job_renders_no_model_files() -> None:
    spec = parse_job_spec(
        {"job": {"name": "j", "target": "y", "positive": "1"},
         "features": {"x": {"lower": 0.0, "upper": 1.0}}}
    )  # fmt: skip
    weights = get_weights(build_model(spec))
    failed = JobOutcome(spec=spec, job_id="j#2", status="failed", weights=weights)
    assert sorted(render_bundle(failed)) == ["MODEL_CARD.md", "result.json"]
