"""Attack: ship the nodes modified code. Real SuperLink, SuperNodes and `flwr run` on loopback.

A submitter who can reach the Control API ships a checkout of their own. Before the app
gate, every node installed it and imported from it (a submitter could zero the noise or read
the ledger); with the warm launcher a node even ran its own `clients/` beside the bundle's
`vocab/`. Now the node hashes the bundle, looks for its officer's signed approval, and
imports nothing of an unapproved one; an approved one runs alone.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from clients.ledger.node_audit import audit_path_for
from clients.node_config import NodeConfig
from clients.node_identity import node_identity
from server.home.coordinator_home import CoordinatorHome
from silobridge.app_approvals import approve_release, release_hash
from silobridge.coordinator_apps import approve_coordinator_app
from silobridge.coordinator_runner import start_coordinator
from silobridge.daemons import CoordinatorAddresses
from silobridge.flower_federation import Federation, app_root
from silobridge.flower_runner import submit_job
from silobridge.node_runner import start_node
from silobridge.officer_keys import load_private_key
from silobridge.processes import ProcessGroup, free_port, wait_for_port
from testkit.synthetic import make_rows, synthetic_spec, write_node
from vocab.audit_log import read_entries
from vocab.errors import SilobridgeError
from vocab.progress import FinalEvent, JobEnd

pytestmark = pytest.mark.integration

_MARKER = "bundle-code-ran.txt"
# Planted at the end of the modified checkout's node-side modules: every import of them
# in a node's app process appends the module's file to a marker in the node's Flower home.
_PLANT = (
    "import os as _o, pathlib as _p\n"
    "with open(_p.Path(_o.environ.get('FLWR_HOME', '/nonexistent')) / {marker!r}, 'a') as _f:\n"
    "    _f.write(__file__ + '\\n')\n"
)
# The attack itself: the modified checkout adds no noise to DP-SGD.
_NO_NOISE = "\n\ndef _no_noise(*args, **kwargs):\n    return 0.0\n"


@dataclass
class Fed:
    root: Path
    control: str
    nodes: dict[str, NodeConfig]

    def run(self, name: str, app_dir: Path | None = None) -> FinalEvent:
        spec = synthetic_spec(name, rounds=1)
        return submit_job(
            spec,
            self.root / name,
            Federation(self.control),
            self.root / "analyst-flwr",
            lambda _event: None,
            home=self.root / "coordinator",
            app_dir=app_dir,
        )


def _modified_checkout(dest: Path) -> Path:
    """A copy of this release whose node code reports its imports and drops the noise."""
    source = app_root()
    shutil.copy2(source / "pyproject.toml", dest / "pyproject.toml")
    for package in ("vocab", "server", "clients", "protos"):
        shutil.copytree(
            source / package, dest / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    for module in ("clients/__init__.py", "clients/client_app.py", "vocab/__init__.py"):
        path = dest / module
        path.write_text(path.read_text() + "\n" + _PLANT.format(marker=_MARKER))
    noise = dest / "clients" / "secure_noise.py"
    noise.write_text(noise.read_text() + _NO_NOISE)
    return dest


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fed]:
    root = tmp_path_factory.mktemp("app-gate")
    addresses = CoordinatorAddresses(
        fleet=f"127.0.0.1:{free_port()}",
        control=f"127.0.0.1:{free_port()}",
        runtime_port=free_port(),
    )
    nodes = {
        name: write_node(root / name, name, 8.0, make_rows(400, seed))
        for seed, name in enumerate(("alpha", "beta"), start=1)
    }
    for name, cfg in nodes.items():  # enrolment: the coordinator knows each node's key
        CoordinatorHome(root / "coordinator").nodes.register(
            name, node_identity(cfg.ledger_path).public.pem()
        )
    group = ProcessGroup(root / "logs")
    with group.running():
        link = start_coordinator(
            group,
            addresses,
            database=root / "superlink.db",
            flwr_home=root / "superlink-flwr",
            home=root / "coordinator",
        )[0]
        host, port = addresses.control.rsplit(":", 1)
        wait_for_port(host, int(port), 120, link)
        for name, cfg in nodes.items():
            daemon = start_node(
                group,
                config_path=cfg.config_path,
                department=name,
                coordinator=addresses.fleet,
                port=free_port(),
                flwr_home=_home(cfg),
                warm=name == "alpha",  # beta spawns each app cold: the same gate
            )[0]
            assert daemon.log_path is not None
            _wait_for(daemon.log_path, "SuperNode ID")
        yield Fed(root, addresses.control, nodes)


def _home(cfg: NodeConfig) -> Path:
    return cfg.config_path.parent / ".flwr"


def _wait_for(path: Path, needle: str, timeout_s: float = 240) -> None:
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and needle in path.read_text(errors="replace"):
            return
        time.sleep(0.3)
    raise TimeoutError(f"{path.name} never logged {needle!r}")


def test_unapproved_checkout_is_refused_by_every_node_and_none_of_it_runs(
    fed: Fed, tmp_path: Path
) -> None:
    evil = _modified_checkout(tmp_path)
    evil_hash = release_hash(evil.resolve())
    # The coordinator host is not trusted: a hostile one lets any ServerApp run.
    approve_coordinator_app(fed.root / "coordinator", evil_hash)
    final = fed.run("evil", app_dir=evil)

    assert isinstance(final, JobEnd) and "not started, nothing charged" in final.failure, final
    for name, cfg in fed.nodes.items():
        home = _home(cfg)
        assert not (home / _MARKER).exists(), (home / _MARKER).read_text()
        assert not (home / "silobridge-apps" / evil_hash).exists()
        logged = [
            e.data for e in read_entries(audit_path_for(cfg.ledger_path)) if e.kind == "refusal"
        ]
        assert any(
            d["code"] == "app_not_approved" and evil_hash[:16] in d["reason"] for d in logged
        ), (name, logged)


def test_officer_approved_bundle_runs_alone_on_its_node_and_unapproved_node_refuses(
    fed: Fed, tmp_path: Path
) -> None:
    patched = _modified_checkout(tmp_path)
    approve_coordinator_app(fed.root / "coordinator", release_hash(patched.resolve()))
    alpha = fed.nodes["alpha"]
    approve_release(
        load_private_key(alpha.config_path.parent / "officer" / "officer.key"),
        "alpha",
        alpha.approvals_dir,
        patched,
    )
    fed.run("approved-at-alpha", app_dir=patched)  # beta's refusal fails the quorum

    imported = (_home(alpha) / _MARKER).read_text().split()
    install = _home(alpha) / "silobridge-apps" / release_hash(patched.resolve())
    assert imported, "the approved bundle's code did not run at alpha"
    # One consistent version: every planted module came from the verified install.
    assert all(Path(p).is_relative_to(install) for p in imported), imported
    assert {Path(p).relative_to(install).as_posix() for p in imported} >= {
        "clients/__init__.py",
        "clients/client_app.py",
        "vocab/__init__.py",
    }
    assert not (_home(fed.nodes["beta"]) / _MARKER).exists()


def test_the_released_checkout_still_trains(fed: Fed) -> None:
    final = fed.run("released")
    assert isinstance(final, JobEnd), final
    result = json.loads(Path(final.result).read_text())
    assert sorted(result["nodes"]) == ["alpha", "beta"]


def test_coordinator_runs_no_serverapp_from_an_unapproved_checkout(
    fed: Fed, tmp_path: Path
) -> None:
    rogue = _modified_checkout(tmp_path)
    init = rogue / "server" / "__init__.py"
    init.write_text(init.read_text() + "\n" + _PLANT.format(marker=_MARKER))
    marker = fed.root / "superlink-flwr" / _MARKER  # earlier tests' approved runs wrote it
    before = marker.read_text() if marker.exists() else ""
    with pytest.raises(SilobridgeError):
        fed.run("rogue", app_dir=rogue)
    assert (marker.read_text() if marker.exists() else "") == before
    assert not (fed.root / "superlink-flwr" / "silobridge-apps" / release_hash(rogue)).exists()
    for cfg in fed.nodes.values():
        received = [
            e for e in read_entries(audit_path_for(cfg.ledger_path)) if "rogue" in str(e.data)
        ]
        assert not received, received
