"""House rule 1: protos <- vocab <- {server, clients} <- silobridge; server and clients never
meet; `testkit` (dev-only helpers) is imported by no product package."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {
    "protos": {"vocab", "server", "clients", "silobridge", "testkit"},
    "vocab": {"server", "clients", "silobridge", "testkit"},
    "server": {"clients", "silobridge", "testkit"},
    "clients": {"server", "silobridge", "testkit"},
    "silobridge": {"testkit"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_downstream(package: str) -> None:
    files = list((ROOT / package).rglob("*.py"))
    assert files, f"package {package} has no modules"
    offenders = {str(f.relative_to(ROOT)): sorted(_imports(f) & FORBIDDEN[package]) for f in files}
    assert {k: v for k, v in offenders.items() if v} == {}


def _full_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("side", ["clients", "server"])
def test_a_kind_never_imports_another_kind(side: str) -> None:
    """Kinds are plug-ins: each folder under <side>/kinds/ stands alone (only the registry
    knows them all); what they share lives outside `kinds/`."""
    root = ROOT / side / "kinds"
    kinds = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name != "__pycache__")
    assert {"risk", "statistics", "regression"} <= set(kinds)
    offenders = {}
    for kind in kinds:
        others = {f"{side}.kinds.{k}" for k in kinds if k != kind}
        for path in (root / kind).rglob("*.py"):
            bad = {
                m
                for m in _full_imports(path)
                if any(m == o or m.startswith(o + ".") for o in others)
            }
            if bad:
                offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert offenders == {}


def test_protobuf_stubs_are_current() -> None:
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_protos.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
