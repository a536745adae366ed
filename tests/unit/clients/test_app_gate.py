"""The node's app gate: which bundles may run, decided from the officer's signed approvals."""

from __future__ import annotations

import hashlib
import sys
import warnings
import zipfile
from io import BytesIO
from pathlib import Path

import pytest

from clients.node_config import NodeConfig
from clients.runtime.app_gate import (
    apps_folder,
    forget_bundle_modules,
    install_approved,
    judge_bundle,
)
from silobridge.app_approvals import sign_app_approval, write_app_approval
from silobridge.officer_keys import generate_key_pair, load_private_key
from testkit.synthetic import write_node

BUNDLE = b"a bundle's bytes"
BUNDLE_HASH = hashlib.sha256(BUNDLE).hexdigest()


@pytest.fixture
def node(tmp_path: Path) -> NodeConfig:
    return write_node(tmp_path / "tax", "tax", 3.0, None)


def _approve(cfg: NodeConfig, key_folder: Path, app_hash: str, department: str = "tax") -> Path:
    key = load_private_key(key_folder / "officer.key")
    return write_app_approval(sign_app_approval(key, app_hash, department), apps_folder(cfg))


def _officer(cfg: NodeConfig) -> Path:
    return cfg.config_path.parent / "officer"


def test_a_bundle_the_officer_signed_is_approved(node: NodeConfig) -> None:
    _approve(node, _officer(node), BUNDLE_HASH)
    verdict = judge_bundle(node, BUNDLE, BUNDLE_HASH)
    assert verdict.approved and verdict.app_hash == BUNDLE_HASH


def test_an_unlisted_bundle_is_refused_without_naming_local_paths(node: NodeConfig) -> None:
    verdict = judge_bundle(node, BUNDLE, BUNDLE_HASH)
    assert not verdict.approved
    assert BUNDLE_HASH[:16] in verdict.reason and "approve-app" in verdict.reason
    assert str(node.config_path.parent) not in verdict.reason


def test_an_approval_signed_by_another_key_counts_for_nothing(
    node: NodeConfig, tmp_path: Path
) -> None:
    generate_key_pair(tmp_path / "impostor")
    _approve(node, tmp_path / "impostor", BUNDLE_HASH)
    assert not judge_bundle(node, BUNDLE, BUNDLE_HASH).approved


def test_an_approval_for_another_department_counts_for_nothing(node: NodeConfig) -> None:
    _approve(node, _officer(node), BUNDLE_HASH, department="health")
    assert not judge_bundle(node, BUNDLE, BUNDLE_HASH).approved


def test_an_edited_approval_fails_its_signature(node: NodeConfig) -> None:
    other = hashlib.sha256(b"other bytes").hexdigest()
    path = _approve(node, _officer(node), other)
    path.write_text(path.read_text().replace(other, BUNDLE_HASH))
    assert not judge_bundle(node, BUNDLE, BUNDLE_HASH).approved


def test_the_hash_a_run_claims_is_not_believed(node: NodeConfig) -> None:
    _approve(node, _officer(node), BUNDLE_HASH)
    # Bytes of another bundle presented under the approved hash.
    verdict = judge_bundle(node, b"modified bundle", BUNDLE_HASH)
    assert not verdict.approved and "hashing to" in verdict.reason


def test_a_broken_file_does_not_hide_a_good_approval(node: NodeConfig) -> None:
    _approve(node, _officer(node), BUNDLE_HASH)
    (apps_folder(node) / "broken.json").write_text("{not json")
    assert judge_bundle(node, BUNDLE, BUNDLE_HASH).approved


def test_a_node_without_an_officer_key_runs_no_app(tmp_path: Path) -> None:
    cfg = write_node(tmp_path / "tax", "tax", 3.0, None)
    text = cfg.config_path.read_text()
    cfg.config_path.write_text(text.split("[officer]")[0])
    from clients.node_config import load_node_config

    verdict = judge_bundle(load_node_config(cfg.config_path), BUNDLE, BUNDLE_HASH)
    assert not verdict.approved and "no readable officer key" in verdict.reason


def _fab(tmp_path: Path) -> bytes:
    """A minimal Flower bundle, built by Flower's own builder."""
    from flwr.cli.build import build_fab_from_disk

    app = tmp_path / "app"
    (app / "pkg").mkdir(parents=True)
    (app / "pkg" / "__init__.py").write_text("")
    (app / "pyproject.toml").write_text(
        '[project]\nname = "gate-test"\nversion = "1.0.0"\n'
        '[tool.flwr.app]\npublisher = "silobridge"\n'
        '[tool.flwr.app.components]\nserverapp = "pkg:x"\nclientapp = "pkg:x"\n'
        "[tool.flwr.app.config]\n"
    )
    with warnings.catch_warnings():
        # Flower's build calls a pathspec API that pathspec deprecates; not ours to fix.
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="pathspec")
        return build_fab_from_disk(app)


def test_an_approved_bundle_is_unpacked_once_under_its_full_hash(tmp_path: Path) -> None:
    from flwr.cli.install import install_from_fab

    content = _fab(tmp_path)
    with zipfile.ZipFile(BytesIO(content)) as bundle:
        assert "pkg/__init__.py" in bundle.namelist()
    app_hash = hashlib.sha256(content).hexdigest()
    root = tmp_path / "apps"
    first = install_approved(content, app_hash, root, install_from_fab)
    assert first == root / app_hash and (first / "pkg" / "__init__.py").is_file()
    calls: list[bytes] = []
    again = install_approved(content, app_hash, root, lambda c, **_: calls.append(c))  # type: ignore[arg-type]
    assert again == first and not calls  # already there: not unpacked again
    assert [p.name for p in root.iterdir()] == [app_hash]  # no staging folder left


def test_the_bundles_packages_are_forgotten_before_it_loads(tmp_path: Path) -> None:
    (tmp_path / "gatepkg").mkdir()
    (tmp_path / "gatepkg" / "__init__.py").write_text("")
    sys.modules["gatepkg"] = sys.modules[__name__]
    sys.modules["gatepkg.inner"] = sys.modules[__name__]
    forget_bundle_modules(tmp_path)
    assert "gatepkg" not in sys.modules and "gatepkg.inner" not in sys.modules
    assert __name__ in sys.modules


def test_a_folder_the_gate_did_not_finish_is_never_loaded(tmp_path: Path) -> None:
    from flwr.cli.install import install_from_fab

    content = _fab(tmp_path)
    app_hash = hashlib.sha256(content).hexdigest()
    root = tmp_path / "apps"
    planted = root / app_hash / "pkg"
    planted.mkdir(parents=True)  # e.g. a result folder a ServerApp was told to write here
    (planted / "__init__.py").write_text("raise SystemExit('planted code ran')")
    path = install_approved(content, app_hash, root, install_from_fab)
    assert (path / "pkg" / "__init__.py").read_text() == ""
