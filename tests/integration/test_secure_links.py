"""The session federation's links: TLS on every gRPC link, only registered node keys joined,
and a real job runs over them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from testkit.synthetic import synthetic_spec
from tests.integration.conftest import LiveFederation
from vocab.progress import JobEnd

pytestmark = pytest.mark.integration


def test_a_job_runs_over_tls_with_only_registered_nodes(federation: LiveFederation) -> None:
    assert federation.root_certificates is not None
    link_log = (federation.root / "logs" / "superlink.log").read_text(errors="replace")
    # Flower logs this warning whenever node authentication is off.
    assert "SuperNode authentication is disabled" not in link_log
    # Every node was registered through the Control API and activated with its own key.
    assert link_log.count("[ControlServicer.RegisterNode] Created node_id") == len(federation.nodes)
    assert link_log.count("[Fleet.ActivateNode] Activated node_id") == len(federation.nodes)
    registered = {p.stem for p in (federation.root / "coordinator" / "nodes").glob("*.pub")}
    assert registered == set(federation.nodes)

    # Named: once any analyst cap is set (test_governance sets one), an unnamed analyst's
    # cap is 0.
    spec = synthetic_spec("secure-links", rounds=1, analyst="tls.check")
    final = federation.run(spec, "secure-links")
    assert isinstance(final, JobEnd), final
    result = json.loads(Path(final.result).read_bytes())
    # Every registered node answered over the authenticated links, whatever its verdict.
    assert set(result["nodes"]) == set(federation.nodes), result
    assert result["status"] == "succeeded", result["failure"]
    assert {"alpha", "beta"} <= {d for d, node in result["nodes"].items() if node["rounds"]}
